"""Automatic colorization as a conditional GAN in LAB space (Fabbri et al. 2017, after pix2pix)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from datamodules.lab import AB_SCALE, lab_scaled_to_rgb, rgb_to_lab_scaled
from datamodules.transforms import to_unit
from lightning_modules.colorization.metrics import ab_accuracy_auc, colourfulness
from lightning_modules.objectives import AdversarialObjective
from lightning_modules.two_player import TwoPlayerModule


class ColorizationModule(TwoPlayerModule):
    """Colorization GAN: a generator maps lightness L to chroma ab, a discriminator judges (L, ab) pairs.

    Fabbri, Fontana, Hapfelmeier 2017 ("A Comparative Study of GANs Towards Automatic Image
    Colorization", Sec. 3), building on pix2pix (Isola et al. 2017, eq. 4): the generator minimises
    ``lambda_adv * adversarial + lambda_l1 * |ab - G(L)|_1 + lambda_l2 * |ab - G(L)|_2^2`` (means over
    pixels, on the scaled ab of :mod:`datamodules.lab`), the discriminator sees ``cat(L, ab)``
    ``(B, 3, H, W)`` and is trained by any objective of the GAN family (gan, lsgan, ebgan, wgan with its
    clipping and ``n_critic``). With ``discriminator=None`` it is the regression baseline (no adversary).

    Batches are RGB images ``(B, 3, H, W)`` in ``[-1, 1]`` (labels ignored); they are converted to LAB on
    the fly. Validation and test log ``l1`` (scaled ab), ``psnr`` (dB) and ``ssim`` on RGB in ``[0, 1]``
    (torchmetrics), ``auc`` (Zhang et al. 2016) and ``colourfulness`` (Hasler & Suesstrunk 2003), and the
    same for the grayscale baseline ``ab = 0`` as ``gray_*``.

    Args:
        generator: ``G(L (B, 1, H, W)) -> ab (B, 2, H, W)`` in ``[-1, 1]`` (a U-Net).
        discriminator: ``D(cat(L, ab))`` (a PatchGAN, or the EBGAN auto-encoder), or ``None``.
        objective: the adversarial objective (``None`` without a discriminator).
        optimizer_g, optimizer_d: partial optimizers.
        n_critic: discriminator steps per generator step.
        lambda_adv, lambda_l1, lambda_l2: weights of the generator's loss terms.
        monitor: the metric checkpoints and sweeps rank this method by (``optimized_metric``).
        gradient_clip_val, max_col_norm, scheduler_g, scheduler_d: see :class:`TwoPlayerModule`.

    Raises:
        ValueError: if no loss term is left (no discriminator and both lambdas 0) or a weight is negative.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None = None,
        objective: AdversarialObjective | None = None,
        optimizer_g: Callable | None = None,
        optimizer_d: Callable | None = None,
        n_critic: int = 1,
        lambda_adv: float = 1.0,
        lambda_l1: float = 100.0,
        lambda_l2: float = 0.0,
        monitor: str = "val/l1",
        gradient_clip_val: float | None = None,
        max_col_norm: float | None = None,
        scheduler_g: Callable | None = None,
        scheduler_d: Callable | None = None,
    ) -> None:
        super().__init__(generator, discriminator, objective, optimizer_g, optimizer_d, n_critic,
                         gradient_clip_val, max_col_norm, scheduler_g, scheduler_d)
        if min(lambda_adv, lambda_l1, lambda_l2) < 0:
            raise ValueError(f"model.lambda_* must be >= 0, got {lambda_adv}, {lambda_l1}, {lambda_l2}")
        if discriminator is None and lambda_l1 == 0 and lambda_l2 == 0:
            raise ValueError("without a discriminator model.lambda_l1 or model.lambda_l2 must be positive")
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
        opt_g, opt_d = self.players()
        generator_step = self.count_critic_step()
        with torch.set_grad_enabled(generator_step):
            fake_ab = self.colorize(lightness)

        if opt_d is not None:
            with self.toggled_optimizer(opt_d):
                self.discriminator_step(opt_d, self.discriminate(lightness, ab),
                                        self.discriminate(lightness, fake_ab.detach()))

        if generator_step:
            with self.toggled_optimizer(opt_g):
                l1 = (fake_ab - ab).abs().mean()
                l2 = (fake_ab - ab).pow(2).mean()
                loss = self.hparams.lambda_l1 * l1 + self.hparams.lambda_l2 * l2
                logs = {"train/l1": l1.detach(), "train/l2": l2.detach()}
                if opt_d is not None:
                    adversarial, adv_logs = self.objective.generator_loss(self.discriminate(lightness, fake_ab))
                    loss = loss + self.hparams.lambda_adv * adversarial
                    logs.update({"train/g_adversarial": adversarial.detach(),
                                 **{f"train/{k}": v for k, v in adv_logs.items()}})
                self.update(opt_g, loss, self.generator)
            self.log("train/g_loss", loss.detach(), prog_bar=True)
            self.log_dict(logs)

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
