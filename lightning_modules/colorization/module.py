"""Automatic colorization as a conditional GAN in LAB space (Fabbri 2017, Sec. 4, after pix2pix)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from datamodules.lab import AB_SCALE, lab_scaled_to_rgb, rgb_to_lab_scaled
from datamodules.transforms import to_unit
from lightning_modules.colorization.metrics import ab_accuracy_auc, colourfulness
from lightning_modules.objectives import AdversarialObjective
from lightning_modules.two_player import TwoPlayerModule

#: the generator-loss weights as the study names them (``G* = lambda_1 L_GAN + lambda_2 L_L1 +
#: lambda_3 L_L2``) with their defaults: pix2pix's adversarial weight 1 and L1 weight 100, no L2 term
DEFAULT_WEIGHTS = {"lambda_1": 1.0, "lambda_2": 100.0, "lambda_3": 0.0}
#: the weights' names in checkpoints and run configs from before issue 30 -> the study's names
RENAMED_WEIGHTS = {"lambda_adv": "lambda_1", "lambda_l1": "lambda_2", "lambda_l2": "lambda_3"}
#: ``model.l2_reduction``: the per-element mean (pix2pix-style, scale-free) or the study code's
#: ``tf.nn.l2_loss``, half the squared error summed over the whole batch
L2_REDUCTIONS = ("mean", "half_sum")


def l2_term(difference: Tensor, reduction: str) -> Tensor:
    """The L2 term of the generator's loss from ``difference = G(L) - ab`` ``(B, 2, H, W)`` (scaled ab).

    ``"mean"``: ``mean(difference**2)``, the per-element mean squared error (about 0 to 4 for ab in
    ``[-1, 1]``, whatever the batch and image size). ``"half_sum"``: ``0.5 * sum(difference**2)`` over the
    batch, both channels and every pixel, i.e. TensorFlow's ``tf.nn.l2_loss`` as the study's code takes it
    (``tf.reduce_mean(tf.nn.l2_loss(ab_image - gen_ab))`` in cameronfabbri/Colorizing-Images-Using-
    Adversarial-Networks ``train.py``; the ``reduce_mean`` of that scalar changes nothing), which is
    ``B * H * W`` times the mean (65,536 for ``data=photos``: 16 crops of 64 x 64; 262,144 for the study's
    batch of 4 at 256 x 256). Both on the same ab scale: the study's ``ab / 110`` is ours
    (:data:`datamodules.lab.AB_SCALE`).

    Args:
        difference: ``G(L) - ab``, ``(B, 2, H, W)`` (any shape works: the reductions run over all of it).
        reduction: one of :data:`L2_REDUCTIONS`.

    Returns:
        a scalar tensor, ``>= 0``.

    Raises:
        ValueError: ``reduction`` is not one of :data:`L2_REDUCTIONS` (config key ``model.l2_reduction``).
    """
    squared = difference.pow(2)
    if reduction == "mean":
        return squared.mean()
    if reduction == "half_sum":
        return 0.5 * squared.sum()
    raise ValueError(f"model.l2_reduction must be one of {L2_REDUCTIONS}, got {reduction!r}")


def renamed_weights(weights: dict[str, float], renamed: dict) -> dict[str, float]:
    """``weights`` (``{"lambda_1": ..., "lambda_2": ..., "lambda_3": ...}``) with the values given under
    their old names (:data:`RENAMED_WEIGHTS`: ``lambda_adv``, ``lambda_l1``, ``lambda_l2``) moved to the
    new ones, so that checkpoints and run configs saved before the rename load unchanged.

    ``renamed`` is the constructor's ``**renamed`` keyword arguments; the old names are removed from it
    (so they are not saved again as hyper-parameters).

    Raises:
        TypeError: a keyword that is neither an argument nor an old name (as Python would for a typo).
        ValueError: an old name together with its new name at another value than the old one and the
            default (e.g. ``model.lambda_l2=1 model.lambda_3=5``): say one of them.
    """
    weights = dict(weights)
    for old, new in RENAMED_WEIGHTS.items():
        if old in renamed:
            value = float(renamed.pop(old))
            if weights[new] not in (value, DEFAULT_WEIGHTS[new]):
                raise ValueError(f"model.{old} is the old name of model.{new}; got both ({value} and "
                                 f"{weights[new]}): give model.{new} only")
            weights[new] = value
    if renamed:
        raise TypeError(f"ColorizationModule got unexpected keyword arguments {sorted(renamed)} "
                        f"(the loss weights are model.lambda_1, model.lambda_2, model.lambda_3)")
    return weights


class ColorizationModule(TwoPlayerModule):
    """Colorization GAN: a generator maps lightness L to chroma ab, a discriminator judges (L, ab) pairs.

    Fabbri 2017 ("A Comparative Study of Generative Adversarial Networks Towards Automatic Image
    Colorization", Sec. 4), building on pix2pix (Isola et al. 2017, eq. 4): the generator minimises
    ``G* = lambda_1 * adversarial + lambda_2 * L1 + lambda_3 * L2`` on the scaled ab of
    :mod:`datamodules.lab` (:meth:`generator_loss`; L1 a per-element mean, L2 per ``l2_reduction``), the
    discriminator sees ``cat(L, ab)`` ``(B, 3, H, W)`` and is trained by any objective of the GAN family
    (gan, lsgan, ebgan, wgan with its clipping, ``n_critic`` and critic bursts). With
    ``discriminator=None`` it is the regression baseline (no adversary; the study code's ``cnn`` mode).

    Batches are RGB images ``(B, 3, H, W)`` in ``[-1, 1]`` (labels ignored); they are converted to LAB on
    the fly. Training logs ``train/l1`` and ``train/l2`` as per-element means whatever the reduction.
    Validation and test log ``l1`` (scaled ab), ``psnr`` (dB) and ``ssim`` on RGB in ``[0, 1]``
    (torchmetrics), ``auc`` (Zhang et al. 2016) and ``colourfulness`` (Hasler & Suesstrunk 2003), and the
    same for the grayscale baseline ``ab = 0`` as ``gray_*``.

    Args:
        generator: ``G(L (B, 1, H, W)) -> ab (B, 2, H, W)`` in ``[-1, 1]`` (a U-Net).
        discriminator: ``D(cat(L, ab))`` (a PatchGAN, or the EBGAN auto-encoder), or ``None``.
        objective: the adversarial objective (``None`` without a discriminator).
        optimizer_g, optimizer_d: partial optimizers.
        n_critic: discriminator steps per generator step.
        lambda_1, lambda_2, lambda_3: weights of the adversarial, L1 and L2 terms (the study's names; the
            old ``lambda_adv``, ``lambda_l1``, ``lambda_l2`` are accepted, see :func:`renamed_weights`).
        l2_reduction: ``"mean"`` or ``"half_sum"`` (the study's code), see :func:`l2_term`.
        monitor: the metric checkpoints and sweeps rank this method by (``optimized_metric``).
        gradient_clip_val, max_col_norm, scheduler_g, scheduler_d, n_critic_burst, burst_first,
            burst_every, max_generator_steps: see :class:`TwoPlayerModule`.
        **renamed: the weights under their old names (checkpoints and run configs from before the rename).

    Raises:
        ValueError: a negative weight, no loss term left (no discriminator and ``model.lambda_2`` and
            ``model.lambda_3`` both 0), an unknown ``model.l2_reduction``, an old weight name in conflict
            with its new one, or see :class:`TwoPlayerModule`.
        TypeError: an unknown keyword argument.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None = None,
        objective: AdversarialObjective | None = None,
        optimizer_g: Callable | None = None,
        optimizer_d: Callable | None = None,
        n_critic: int = 1,
        lambda_1: float = DEFAULT_WEIGHTS["lambda_1"],
        lambda_2: float = DEFAULT_WEIGHTS["lambda_2"],
        lambda_3: float = DEFAULT_WEIGHTS["lambda_3"],
        l2_reduction: str = "mean",
        monitor: str = "val/l1",
        gradient_clip_val: float | None = None,
        max_col_norm: float | None = None,
        scheduler_g: Callable | None = None,
        scheduler_d: Callable | None = None,
        n_critic_burst: int | None = None,
        burst_first: int = 25,
        burst_every: int = 500,
        max_generator_steps: int | None = None,
        **renamed: float,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, objective=objective,
                         optimizer_g=optimizer_g, optimizer_d=optimizer_d, n_critic=n_critic,
                         gradient_clip_val=gradient_clip_val, max_col_norm=max_col_norm, scheduler_g=scheduler_g,
                         scheduler_d=scheduler_d, n_critic_burst=n_critic_burst, burst_first=burst_first,
                         burst_every=burst_every, max_generator_steps=max_generator_steps)
        # the locals are what save_plain_hyperparameters records: the new names only, ``renamed`` emptied
        weights = renamed_weights({"lambda_1": lambda_1, "lambda_2": lambda_2, "lambda_3": lambda_3}, renamed)
        lambda_1, lambda_2, lambda_3 = weights["lambda_1"], weights["lambda_2"], weights["lambda_3"]
        if min(weights.values()) < 0:
            raise ValueError(f"model.lambda_1, model.lambda_2 and model.lambda_3 must be >= 0, got "
                             f"{lambda_1}, {lambda_2}, {lambda_3}")
        if discriminator is None and lambda_2 == 0 and lambda_3 == 0:
            raise ValueError("without a discriminator model.lambda_2 (L1) or model.lambda_3 (L2) must be "
                             "positive")
        l2_term(torch.zeros(1), l2_reduction)  # validates model.l2_reduction
        self.save_plain_hyperparameters()

    # ------------------------------------------------------------------ colorization
    def colorize(self, lightness: Tensor) -> Tensor:
        """``G(L)``: scaled ab ``(B, 2, H, W)`` in ``[-1, 1]`` from scaled L ``(B, 1, H, W)`` in ``[-1, 1]``."""
        return self.generator(lightness)

    @torch.no_grad()
    def colorize_rgb(self, images: Tensor) -> Tensor:
        """Colour versions ``(B, 3, H, W)`` in ``[-1, 1]`` of images (``(B, 1 or 3, H, W)`` in ``[-1, 1]``):
        only their lightness is used (a gray image's L is its gray level)."""
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        lightness, _ = rgb_to_lab_scaled(rgb)
        return lab_scaled_to_rgb(lightness, self.colorize(lightness))

    def discriminate(self, lightness: Tensor, ab: Tensor):
        """``D(cat(L, ab))``: the discriminator's output on ``(B, 3, H, W)`` pairs."""
        return self.discriminator(torch.cat([lightness, ab], dim=1))

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx: int) -> None:
        lightness, ab = rgb_to_lab_scaled(batch[0])
        players = self.players()
        opt_g, opt_d = players["generator"], players.get("discriminator")
        generator_step = self.count_critic_step()
        with torch.set_grad_enabled(generator_step):
            fake_ab = self.colorize(lightness)

        if opt_d is not None:
            with self.toggled_optimizer(opt_d):
                # the objective's discriminate(images, labels): the ab channels given their lightness L
                self.discriminator_step(opt_d, lambda chroma, light: self.discriminate(light, chroma), ab,
                                        fake_ab.detach(), lightness)

        if generator_step:
            with self.toggled_optimizer(opt_g):
                fake_out = self.discriminate(lightness, fake_ab) if opt_d is not None else None
                loss, logs = self.generator_loss(fake_ab, ab, fake_out)
                self.update(opt_g, loss, "generator")
            self.log("train/g_loss", loss.detach(), prog_bar=True)
            self.log_dict(logs)

    def generator_loss(self, fake_ab: Tensor, ab: Tensor, fake_out=None) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator's loss ``G* = lambda_1 * adversarial + lambda_2 * L1 + lambda_3 * L2`` (Fabbri 2017,
        Sec. 4; the study's code calls the weights ``GAN_WEIGHT``, ``L1_WEIGHT``, ``L2_WEIGHT`` and, when both
        L1 and L2 weights are positive, keeps only the L2 term; here every weighted term counts).

        Args:
            fake_ab, ab: generated and true scaled ab ``(B, 2, H, W)`` (nominally in ``[-1, 1]``).
            fake_out: the discriminator's output on ``cat(L, fake_ab)``, or ``None`` without a
                discriminator (then there is no adversarial term).

        Returns:
            ``(loss, logs)``: the scalar loss and, detached, ``train/l1`` (mean absolute error),
            ``train/l2`` (mean squared error, per element whatever ``l2_reduction``), and with a
            discriminator ``train/g_adversarial`` and the objective's own logs.
        """
        difference = fake_ab - ab
        l1 = difference.abs().mean()
        l2 = l2_term(difference, self.hparams.l2_reduction)
        loss = self.hparams.lambda_2 * l1 + self.hparams.lambda_3 * l2
        logs = {"train/l1": l1.detach(), "train/l2": difference.detach().pow(2).mean()}
        if fake_out is not None:
            adversarial, adv_logs = self.objective.generator_loss(fake_out)
            loss = loss + self.hparams.lambda_1 * adversarial
            logs.update({"train/g_adversarial": adversarial.detach(),
                         **{f"train/{k}": v for k, v in adv_logs.items()}})
        return loss, logs

    # ------------------------------------------------------------------ evaluation
    def _evaluation_step(self, batch, split: str) -> None:
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        real = batch[0]
        lightness, ab = rgb_to_lab_scaled(real)
        fake_ab = self.colorize(lightness)
        logs = {f"{split}/l1": (fake_ab - ab).abs().mean()}
        for prefix, prediction in (("", fake_ab), ("gray_", torch.zeros_like(ab))):
            rgb = lab_scaled_to_rgb(lightness, prediction)
            logs[f"{split}/{prefix}psnr"] = peak_signal_noise_ratio(to_unit(rgb), to_unit(real), data_range=1.0)
            logs[f"{split}/{prefix}ssim"] = structural_similarity_index_measure(to_unit(rgb), to_unit(real),
                                                                                 data_range=1.0)
            logs[f"{split}/{prefix}auc"] = ab_accuracy_auc(prediction * AB_SCALE, ab * AB_SCALE).mean()
            logs[f"{split}/{prefix}colourfulness"] = colourfulness(rgb).mean()
        logs[f"{split}/true_colourfulness"] = colourfulness(real).mean()
        self.log_dict(logs, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")
