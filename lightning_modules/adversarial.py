"""The GAN family's LightningModule: one manual-optimization loop for every adversarial objective."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.objectives import AdversarialObjective
from lightning_modules.two_player import NOT_HYPERPARAMETERS, TwoPlayerModule


class AdversarialModule(TwoPlayerModule):
    """GAN family (Goodfellow et al. 2014, Algorithm 1): ``n_critic`` discriminator steps per generator step.

    Every batch takes one discriminator (critic) step on the real batch and a generated batch; every
    ``n_critic``-th batch also takes one generator step (Goodfellow's ``k``; WGAN's ``n_critic`` = 5,
    Arjovsky et al. 2017, Algorithm 1). What differs between GAN, DCGAN, LSGAN, EBGAN and WGAN is the
    networks, the ``objective`` (see :mod:`lightning_modules.objectives`) and the optimizers: presets in
    ``conf/model/``. With ``conditional=True`` (conditional GAN, Mirza & Osindero 2014) the generator and
    discriminator both receive the label as a ``(B, num_classes)`` one-hot (or multi-hot) vector.

    Generative protocol used by the callbacks: :meth:`sample` and :meth:`generate` return images
    ``(B, C, H, W)`` in ``[-1, 1]``; ``fixed_z`` / ``fixed_labels`` are the fixed noise of the sample grids.

    Note: manual optimization advances ``trainer.global_step`` once per optimizer step, i.e. about
    ``1 + 1/n_critic`` times per batch; use ``trainer.max_epochs`` rather than ``max_steps``.

    Args:
        generator: ``G(z (B, latent_dim), cond) -> (B, C, H, W)`` in ``[-1, 1]``.
        discriminator: ``D(x, cond) -> (B,)`` scores (or what ``objective`` expects).
        objective: an :class:`AdversarialObjective`.
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``), bound to parameters here.
        n_critic: discriminator steps per generator step (>= 1).
        latent_dim: dimension of ``z``.
        noise: ``"normal"`` (N(0, I)) or ``"uniform"`` (U[-1, 1], as Goodfellow et al. 2014).
        conditional: condition G and D on labels (needs ``num_classes > 0``).
        num_classes: classes (or attributes) of the labels, ``data.num_classes``.
        num_fixed: images in the fixed-noise sample grid.
        gradient_clip_val, max_col_norm, scheduler_g, scheduler_d: see
            :class:`lightning_modules.two_player.TwoPlayerModule`.

    Raises:
        ValueError: on ``n_critic < 1``, an unknown ``noise``, or ``conditional`` without classes.
    """

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
        conditional: bool = False,
        num_classes: int = 0,
        num_fixed: int = 64,
        gradient_clip_val: float | None = None,
        max_col_norm: float | None = None,
        scheduler_g: Callable | None = None,
        scheduler_d: Callable | None = None,
    ) -> None:
        super().__init__(generator, discriminator, objective, optimizer_g, optimizer_d, n_critic,
                         gradient_clip_val, max_col_norm, scheduler_g, scheduler_d)
        if noise not in ("normal", "uniform"):
            raise ValueError(f"model.noise must be 'normal' or 'uniform', got {noise!r}")
        if conditional and num_classes < 1:
            raise ValueError("model.conditional=true needs a labelled dataset, but data.num_classes is 0")
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS)
        # the sample grids' fixed noise, and labels cycling through the classes (one grid column each)
        self.register_buffer("fixed_z", self.noise(num_fixed, torch.Generator().manual_seed(1234)))
        self.register_buffer("fixed_labels", torch.arange(num_fixed) % max(num_classes, 1))

    # ------------------------------------------------------------------ generative protocol
    def noise(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """``n`` latents ``z`` ``(n, latent_dim)``: N(0, I) or U[-1, 1] as ``noise`` says."""
        shape = (n, self.hparams.latent_dim)
        if self.hparams.noise == "uniform":
            return torch.rand(shape, generator=generator, device=device) * 2 - 1
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

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``G(z | labels)``: images ``(B, C, H, W)`` in ``[-1, 1]`` from ``z`` ``(B, latent_dim)``."""
        return self.generator(z, self.condition(labels)) if self.hparams.conditional else self.generator(z)

    @torch.no_grad()
    def sample(self, num_samples: int, labels: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` images ``(N, C, H, W)`` in ``[-1, 1]`` (labels drawn uniformly if needed)."""
        z = self.noise(num_samples, generator).to(self.device)
        if labels is None:
            labels = self.random_labels(num_samples, generator)
        return self.generate(z, labels)

    def discriminate(self, images: Tensor, labels: Tensor | None = None):
        """``D(images | labels)``: whatever the discriminator returns (scores ``(B,)`` by default)."""
        if self.hparams.conditional:
            return self.discriminator(images, self.condition(labels))
        return self.discriminator(images)

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        real, labels = batch
        opt_g, opt_d = self.optimizers()
        generator_step = self.is_generator_step(batch_idx)
        z = self.noise(real.shape[0], device=self.device)

        # Discriminator (critic) step: maximise the objective on real vs generated images.
        with torch.set_grad_enabled(generator_step):
            fake = self.generate(z, labels)
        self.toggle_optimizer(opt_d)
        self.discriminator_step(opt_d, self.discriminate(real, labels), self.discriminate(fake.detach(), labels))
        self.untoggle_optimizer(opt_d)

        if generator_step:
            self.toggle_optimizer(opt_g)
            g_loss, g_logs = self.objective.generator_loss(self.discriminate(fake, labels))
            self.update(opt_g, g_loss, self.generator)
            self.untoggle_optimizer(opt_g)
            self.log("train/g_loss", g_loss.detach(), prog_bar=True)
            self.log_dict({f"train/{k}": v for k, v in g_logs.items()})

    # ------------------------------------------------------------------ evaluation
    def _evaluation_step(self, batch, split: str) -> None:
        real, labels = batch
        fake = self.generate(self.noise(real.shape[0], device=self.device), labels)
        fake_out = self.discriminate(fake, labels)
        d_loss, d_logs = self.objective.discriminator_loss(self.discriminate(real, labels), fake_out)
        g_loss, _ = self.objective.generator_loss(fake_out)
        self.log_dict({f"{split}/d_loss": d_loss, f"{split}/g_loss": g_loss,
                       **{f"{split}/{k}": v for k, v in d_logs.items()}}, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")
