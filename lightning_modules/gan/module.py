"""The GAN family's LightningModule: one manual-optimization loop for every adversarial objective."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightning_modules.labels import LabelClasses
from lightning_modules.objectives import AdversarialObjective
from lightning_modules.two_player import TwoPlayerModule


class AdversarialModule(LabelClasses, TwoPlayerModule):
    """GAN family (Goodfellow et al. 2014, Algorithm 1): ``n_critic`` discriminator steps per generator step.

    Every batch takes one discriminator (critic) step on the real batch and a generated batch; after
    ``n_critic`` of them (Goodfellow's ``k``; WGAN's ``n_critic`` = 5, Arjovsky et al. 2017, Algorithm 1,
    or the reference code's bursts of 100, ``n_critic_burst``) the batch also takes one generator step on
    the same generated batch. What differs between GAN, DCGAN, LSGAN, EBGAN and WGAN is the networks, the
    ``objective`` (see :mod:`lightning_modules.objectives`), the optimizers and their schedules: presets in
    ``conf/model/``. With ``conditional=True`` (conditional GAN, Mirza & Osindero 2014) the generator and
    discriminator both receive the label as a ``(B, num_classes)`` one-hot (or multi-hot) vector.
    ``generator_steps`` counts generator iterations and ``max_generator_steps`` is the budget in them (see
    :class:`TwoPlayerModule`).

    The callbacks' protocols (:mod:`callbacks.protocols`: FixedNoise, LatentPrior, Samples,
    GeneratorSteps): :meth:`sample` and :meth:`generate` return images
    ``(B, C, H, W)`` in ``[-1, 1]``; ``fixed_z`` / ``fixed_labels`` are the fixed noise of the sample grids.
    With ``ema_decay`` they use the exponential moving average of the generator's weights (``ema=False``:
    the trained generator itself); ``has_ema`` says whether there is one.

    Args:
        generator: ``G(z (B, latent_dim), cond) -> (B, C, H, W)`` in ``[-1, 1]`` (``[0, 1]`` with
            ``unit_pixels``).
        discriminator: ``D(x, cond) -> (B,)`` scores (or what ``objective`` expects).
        objective: an :class:`AdversarialObjective`.
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``), bound to parameters here.
        n_critic: discriminator steps per generator step (>= 1).
        latent_dim: dimension of ``z``.
        noise: ``"normal"`` (N(0, I)) or ``"uniform"`` (U(-noise_bound, noise_bound)).
        noise_bound: half-width of the uniform noise: 1 (DCGAN's reference code), sqrt(3) (unit variance,
            the GAN paper's code, goodfeli/adversarial ``Generator.get_noise``).
        unit_pixels: the networks work on pixels in ``[0, 1]`` as Goodfellow et al. 2014 (sigmoid output,
            the discriminator fed ``(x + 1) / 2``); genforge's ``[-1, 1]`` stays the module's interface.
        output_bias_from_marginals: before training, set the generator's output bias from the training
            pixels' marginals (pylearn2's ``init_sigmoid_bias_from_marginals``; needs a generator with
            ``init_output_bias_from_marginals``, the MLP generator).
        ema_decay: decay of an exponential moving average of the generator's weights and batch-norm
            statistics, updated after every generator step (e.g. 0.999; ``None``: off, the papers' setting).
        conditional: condition G and D on labels (needs ``num_classes > 0``).
        num_classes: classes (or attributes) of the labels, ``data.num_classes``.
        num_fixed: images in the fixed-noise sample grid.
        simultaneous: on a batch with a generator step, compute both networks' gradients from one forward
            pass before either steps (the GAN paper's code); ``False``: the discriminator steps first and the
            generator's step sees the updated discriminator (the paper's Algorithm 1, DCGAN's code).
        gradient_clip_val, max_col_norm, scheduler_g, scheduler_d, n_critic_burst, burst_first, burst_every,
        max_generator_steps: see :class:`lightning_modules.two_player.TwoPlayerModule`.

    Raises:
        ValueError: on ``n_critic < 1``, an unknown ``noise``, a non-positive ``noise_bound``, an
            ``ema_decay`` outside (0, 1), ``conditional`` without classes, a generator whose ``unit_output``
            disagrees with ``unit_pixels``, or ``output_bias_from_marginals`` with a generator that has no
            output bias to set.
    """

    #: FID/KID and Parzen windows measure its samples (see :class:`callbacks.protocols.Samples`)
    sample_metrics = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        objective: AdversarialObjective,
        optimizer_g: Callable,
        optimizer_d: Callable,
        n_critic: int = 1,
        latent_dim: int = 100,
        noise: str = "normal",
        noise_bound: float = 1.0,
        unit_pixels: bool = False,
        output_bias_from_marginals: bool = False,
        ema_decay: float | None = None,
        conditional: bool = False,
        num_classes: int = 0,
        num_fixed: int = 64,
        gradient_clip_val: float | None = None,
        max_col_norm: float | None = None,
        scheduler_g=None,
        scheduler_d=None,
        n_critic_burst: int | None = None,
        burst_first: int = 25,
        burst_every: int = 500,
        max_generator_steps: int | None = None,
        simultaneous: bool = False,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, objective=objective,
                         optimizer_g=optimizer_g, optimizer_d=optimizer_d, n_critic=n_critic,
                         gradient_clip_val=gradient_clip_val, max_col_norm=max_col_norm, scheduler_g=scheduler_g,
                         scheduler_d=scheduler_d, n_critic_burst=n_critic_burst, burst_first=burst_first,
                         burst_every=burst_every, max_generator_steps=max_generator_steps)
        if noise not in ("normal", "uniform"):
            raise ValueError(f"model.noise must be 'normal' or 'uniform', got {noise!r}")
        if not noise_bound > 0:
            raise ValueError(f"model.noise_bound must be > 0, got {noise_bound}")
        if conditional and num_classes < 1:
            raise ValueError("model.conditional=true needs a labelled dataset, but data.num_classes is 0")
        if getattr(generator, "unit_output", unit_pixels) != unit_pixels:
            raise ValueError(f"model.generator.unit_output={generator.unit_output} disagrees with "
                             f"model.unit_pixels={unit_pixels}: the generator must output the networks' pixel range")
        if output_bias_from_marginals and not hasattr(generator, "init_output_bias_from_marginals"):
            raise ValueError(f"model.output_bias_from_marginals=true needs a generator with an output bias to set "
                             f"(the MLP generator), got {type(generator).__name__}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"model.ema_decay must be in (0, 1) or null, got {ema_decay}")
        self.save_plain_hyperparameters()
        self.generator_ema = None
        if ema_decay is not None:
            self.generator_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay),
                                               use_buffers=True)
            self.generator_ema.requires_grad_(False)  # never trained: no gradients, nothing for DDP to reduce
        # the sample grids' fixed noise, and labels cycling through the classes (one grid column each)
        self.register_buffer("fixed_z", self.noise(num_fixed, torch.Generator().manual_seed(1234)))
        self.register_buffer("fixed_labels", torch.arange(num_fixed) % max(num_classes, 1))

    # ------------------------------------------------------------------ pixels at the boundary
    @property
    def has_ema(self) -> bool:
        """Whether samples come from an exponential moving average of the generator (``model.ema_decay``)."""
        return self.generator_ema is not None

    def to_network(self, images: Tensor) -> Tensor:
        """genforge's images ``[-1, 1]`` -> the networks' pixel range (``[0, 1]`` with ``unit_pixels``)."""
        return (images + 1) / 2 if self.hparams.unit_pixels else images

    def from_network(self, images: Tensor) -> Tensor:
        """The networks' pixel range -> genforge's ``[-1, 1]``."""
        return images * 2 - 1 if self.hparams.unit_pixels else images

    def setup(self, stage: str) -> None:
        """Before fitting: the generator's output bias from the training pixels' marginals, if asked
        (a resumed run then loads its checkpoint's weights over it)."""
        if stage != "fit" or not self.hparams.output_bias_from_marginals:
            return
        from datamodules.base import dataset_images

        if self.trainer is None or self.trainer.datamodule is None:
            raise RuntimeError("model.output_bias_from_marginals needs the Trainer to be given a datamodule")
        marginals = ((dataset_images(self.trainer.datamodule.dataset("train")) + 1) / 2).mean(dim=0)
        self.generator.init_output_bias_from_marginals(marginals)
        if self.generator_ema is not None:
            self.generator_ema.module.load_state_dict(self.generator.state_dict())

    # ------------------------------------------------------------------ generative protocol
    def noise(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """``n`` latents ``z`` ``(n, latent_dim)``: N(0, I) or U(-noise_bound, noise_bound) as ``noise`` says."""
        shape = (n, self.hparams.latent_dim)
        if self.hparams.noise == "uniform":
            return (torch.rand(shape, generator=generator, device=device) * 2 - 1) * self.hparams.noise_bound
        return torch.randn(shape, generator=generator, device=device)

    def condition(self, labels: Tensor | None) -> Tensor | None:
        """Labels as the networks' condition: int ``(B,)`` -> one-hot ``(B, num_classes)``; float
        ``(B, K)`` multi-hot is passed through; ``None`` for an unconditional model.

        Raises:
            ValueError: if the model is conditional and ``labels`` are missing or unlabelled (-1).
        """
        if not self.hparams.conditional:
            return None
        if labels is None:
            raise ValueError("a conditional model needs labels")
        if labels.dim() == 1:
            if (labels < 0).any():
                raise ValueError("a conditional model needs labelled data, got label -1 (unlabelled)")
            return F.one_hot(labels.long(), self.hparams.num_classes).float()
        return labels.float()

    def random_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """Uniformly drawn class labels ``(n,)`` for a conditional model, ``None`` otherwise."""
        if not self.hparams.conditional:
            return None
        return torch.randint(self.hparams.num_classes, (n,), generator=generator).to(self.device)

    def generator_output(self, z: Tensor, labels: Tensor | None = None, ema: bool = False) -> Tensor:
        """The generator network's images ``(B, C, H, W)`` in its own pixel range, from ``z`` ``(B, latent_dim)``
        (``ema=True``: the moving average's weights)."""
        network = self.generator_ema.module if ema and self.generator_ema is not None else self.generator
        return network(z, self.condition(labels)) if self.hparams.conditional else network(z)

    def generate(self, z: Tensor, labels: Tensor | None = None, ema: bool | None = None) -> Tensor:
        """``G(z | labels)``: images ``(B, C, H, W)`` in ``[-1, 1]`` from ``z`` ``(B, latent_dim)``; from the
        moving average when there is one, unless ``ema=False``."""
        return self.from_network(self.generator_output(z, labels, self.has_ema if ema is None else ema))

    @torch.no_grad()
    def sample(self, num_samples: int, labels: Tensor | None = None,
               generator: torch.Generator | None = None, ema: bool | None = None) -> Tensor:
        """Draw ``num_samples`` images ``(N, C, H, W)`` in ``[-1, 1]`` (labels drawn uniformly if needed);
        ``generator`` seeds the draw, ``ema`` as :meth:`generate`."""
        z = self.noise(num_samples, generator).to(self.device)
        if labels is None:
            labels = self.random_labels(num_samples, generator)
        return self.generate(z, labels, ema)

    def discriminate(self, images: Tensor, labels: Tensor | None = None):
        """``D(images | labels)`` on images in the networks' pixel range: whatever the discriminator returns
        (scores ``(B,)`` by default)."""
        if self.hparams.conditional:
            return self.discriminator(images, self.condition(labels))
        return self.discriminator(images)

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        real, labels = batch
        real = self.to_network(real)
        players = self.players()
        opt_g, opt_d = players["generator"], players["discriminator"]
        generator_step = self.count_critic_step()
        z = self.noise(real.shape[0], device=self.device)
        with torch.set_grad_enabled(generator_step):
            fake = self.generator_output(z, labels)

        if generator_step and self.hparams.simultaneous:
            g_loss, g_logs = self._simultaneous_step(opt_g, opt_d, real, fake, labels)
        else:
            # Discriminator (critic) step: maximise the objective on real vs generated images.
            with self.toggled_optimizer(opt_d):
                self.discriminator_step(opt_d, self.discriminate, real, fake.detach(), labels)
            if not generator_step:
                return
            with self.toggled_optimizer(opt_g):
                g_loss, g_logs = self.objective.generator_loss(self.discriminate(fake, labels))
                self.update(opt_g, g_loss, "generator")
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.log("train/g_loss", g_loss.detach(), prog_bar=True)
        self.log_dict({f"train/{k}": v for k, v in g_logs.items()})

    def _simultaneous_step(self, opt_g, opt_d, real: Tensor, fake: Tensor, labels):
        """Both networks' gradients from one forward pass at the same parameters (the same dropout masks),
        then both steps: the update of goodfeli/adversarial (``AdversaryCost2.get_gradients``, one SGD
        step on both costs). Returns the generator's loss and logs.

        The generator's gradient goes through the images: ``dg_loss/dfake`` first (``autograd.grad``, no
        parameter touched), then one backward of ``<fake, dg_loss/dfake>`` through the generator alone -- the
        same gradient by the chain rule, and two backward passes that each reach one network's parameters,
        as DDP's reducer needs (two backward passes through both networks stop it)."""
        fake_in = fake.detach().requires_grad_(True)
        fake_out = self.discriminate(fake_in, labels)
        # the objective's penalty (R1, WGAN-GP) reruns the discriminator on detached inputs: it is part of
        # d_loss only, whose backward below reaches the discriminator's parameters alone
        d_loss, d_logs = self.objective.penalized_discriminator_loss(
            self.discriminate(real, labels), fake_out, self.discriminate, real, fake.detach(), labels)
        g_loss, g_logs = self.objective.generator_loss(fake_out)
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        (grad_fake,) = torch.autograd.grad(g_loss, fake_in, retain_graph=True)
        self.manual_backward(d_loss, inputs=list(self.discriminator.parameters()))
        self.manual_backward((fake * grad_fake.to(fake.dtype)).sum())
        self.step(opt_d, "discriminator")
        self.step(opt_g, "generator")
        self.log_discriminator(d_loss, d_logs)
        return g_loss, g_logs

    # ------------------------------------------------------------------ evaluation
    def _evaluation_step(self, batch, split: str) -> None:
        real, labels = batch
        fake = self.generator_output(self.noise(real.shape[0], device=self.device), labels)
        fake_out = self.discriminate(fake, labels)
        # the objective's loss without its penalty: inference mode records no input gradient
        d_loss, d_logs = self.objective.discriminator_loss(self.discriminate(self.to_network(real), labels), fake_out)
        g_loss, _ = self.objective.generator_loss(fake_out)
        self.log_dict({f"{split}/d_loss": d_loss, f"{split}/g_loss": g_loss,
                       **{f"{split}/{k}": v for k, v in d_logs.items()}}, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")
