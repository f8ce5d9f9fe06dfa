"""Sample grids each epoch: fixed-noise samples and latent interpolations, saved as PNG and logged."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities import rank_zero_only

from callbacks.image_logging import log_image
from callbacks.protocols import (
    Embeddings,
    FixedNoise,
    GeneratorSteps,
    LatentPrior,
    applies,
    datamodule_applies,
    offers,
    skip,
)
from utils.images import make_grid, save_png


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016, "Sampling Generative Networks", Sec. 2.2).

    ``z0``, ``z1``: ``(D,)``; ``t``: ``(T,)`` in [0, 1]. Returns ``(T, D)``; falls back to linear
    interpolation when the two vectors are (anti-)parallel.
    """
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t.view(-1, 1)
    if omega.abs() < 1e-4 or (math.pi - omega).abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """``steps`` latents from ``z0`` to ``z1`` (both ``(D,)``), ``(steps, D)``, ``mode`` linear or slerp.

    Raises:
        ValueError: on an unknown ``mode`` or ``steps < 2``.
    """
    if steps < 2:
        raise ValueError(f"interpolation needs at least 2 steps, got {steps}")
    t = torch.linspace(0.0, 1.0, steps, device=z0.device)
    if mode == "linear":
        return (1 - t.view(-1, 1)) * z0 + t.view(-1, 1) * z1
    if mode == "slerp":
        return slerp(z0, z1, t)
    raise ValueError(f"callbacks.interpolation.mode must be 'linear' or 'slerp', got {mode!r}")


def validation_rows(datamodule, rows: int, pick=lambda item: item[0]) -> torch.Tensor:
    """The first ``rows`` (at most all) images of ``datamodule.dataset("val")`` stacked, ``(R, C, H, W)`` in
    ``[-1, 1]``; ``pick(item)`` takes the image out of a dataset item (default: an ``(image, label)`` pair's
    first)."""
    val = datamodule.dataset("val")
    return torch.stack([pick(val[i]) for i in range(min(rows, len(val)))])


class EpochImageCallback(Callback):
    """Shared mechanics: once per ``every_n_epochs`` training epochs, render an image in eval mode,
    save it as ``<dirpath>/<prefix>_epoch_NNN.png`` and log it as ``<key>``, captioned with the epoch (and
    the generator iteration, for modules that count them).

    It applies to modules that offer :attr:`protocol` (and whose datamodule offers
    :attr:`datamodule_protocol`, when set); others are skipped, which is said once
    (:func:`callbacks.protocols.applies`). :meth:`render` reads nothing else off the module.
    """

    key = "samples"
    prefix = "samples"
    #: what the module must offer (:mod:`callbacks.protocols`)
    protocol: type = FixedNoise
    #: what the trainer's datamodule must offer too (``None``: nothing)
    datamodule_protocol: type | None = None

    def __init__(self, dirpath: str, every_n_epochs: int = 1) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.last_path: Path | None = None

    def applies(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        """Whether the module offers :attr:`protocol` and the datamodule :attr:`datamodule_protocol` (what
        :meth:`render` needs); a skip is said once."""
        return applies(self, pl_module, self.protocol) and (
            self.datamodule_protocol is None or datamodule_applies(self, trainer, pl_module, self.datamodule_protocol))

    def render(self, pl_module: LightningModule) -> torch.Tensor:
        """Return a uint8 ``(C, H, W)`` grid."""
        raise NotImplementedError

    def renders(self, pl_module: LightningModule) -> list[tuple[str, str, torch.Tensor]]:
        """``(key, file prefix, uint8 (C, H, W) grid)`` of each image of this epoch (default: one,
        :meth:`render`'s, under :attr:`key` and :attr:`prefix`)."""
        return [(self.key, self.prefix, self.render(pl_module))]

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs or not self.applies(trainer, pl_module):
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                images = self.renders(pl_module)
        finally:
            pl_module.train(was_training)
        caption = f"epoch {trainer.current_epoch}"
        if offers(pl_module, GeneratorSteps):  # the GAN family's unit (Arjovsky et al. 2017, Fig. 3)
            caption += f", generator iteration {pl_module.generator_steps}"
        for key, prefix, grid in images:
            self.last_path = save_png(grid, self.dirpath / f"{prefix}_epoch_{trainer.current_epoch:03d}.png")
            log_image(trainer, key, grid, caption)


class SampleGrid(EpochImageCallback):
    """Images ``G(fixed_z | fixed_labels)`` of the module's fixed noise, one grid per epoch.

    Conditional models get one column per class. Needs :class:`callbacks.protocols.FixedNoise`: the module's
    ``fixed_z``, ``fixed_labels``, ``generate(z, labels)`` and ``label_classes`` (see
    :class:`lightning_modules.gan.module.AdversarialModule`).

    Args:
        dirpath, every_n_epochs: see :class:`EpochImageCallback`.
        max_images: draw only the first ``max_images`` fixed samples (``None``: all of them); a cap for
            sequential samplers (a PixelCNN draws one sub-pixel per network pass) in smoke tests.

    Raises:
        ValueError: ``max_images < 1`` (names ``callbacks.samples.max_images``).
    """

    key = "samples/fixed_noise"
    prefix = "samples"

    def __init__(self, dirpath: str, every_n_epochs: int = 1, max_images: int | None = None) -> None:
        super().__init__(dirpath, every_n_epochs)
        if max_images is not None and max_images < 1:
            raise ValueError(f"callbacks.samples.max_images must be at least 1 (or null), got {max_images}")
        self.max_images = max_images

    def render(self, pl_module: LightningModule) -> torch.Tensor:
        """The uint8 grid ``(C, H', W')`` of ``generate(fixed_z, fixed_labels)``, at most ``max_images``; one
        column per class (``label_classes``) for a conditional model, :func:`make_grid`'s default otherwise."""
        count = len(pl_module.fixed_z) if self.max_images is None else min(self.max_images, len(pl_module.fixed_z))
        images = pl_module.generate(pl_module.fixed_z[:count], pl_module.fixed_labels[:count])
        nrow = min(pl_module.label_classes, count) if pl_module.label_classes else None
        return make_grid(images, nrow=nrow)


class LatentInterpolation(EpochImageCallback):
    """A grid whose rows interpolate between two fixed latents ``z`` (``steps`` columns, ``rows`` rows).

    ``mode``: ``"slerp"`` (default, for Gaussian ``z``) or ``"linear"`` (Radford et al. 2016, Sec. 6.1).
    A conditional model keeps one class per row.
    """

    key = "samples/interpolation"
    prefix = "interpolation"
    protocol = LatentPrior  # a latent prior to interpolate in

    def __init__(self, dirpath: str, rows: int = 8, steps: int = 10, mode: str = "slerp",
                 every_n_epochs: int = 1, seed: int = 4321) -> None:
        super().__init__(dirpath, every_n_epochs)
        interpolate_latents(torch.zeros(2), torch.ones(2), steps, mode)  # validates steps and mode now
        self.rows, self.steps, self.mode, self.seed = rows, steps, mode, seed

    def render(self, pl_module: LightningModule) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        ends = pl_module.noise(2 * self.rows, generator).to(pl_module.device)
        z = torch.cat([interpolate_latents(ends[2 * r], ends[2 * r + 1], self.steps, self.mode)
                       for r in range(self.rows)])
        labels = pl_module.random_labels(self.rows, generator)
        if labels is not None:
            labels = labels.repeat_interleave(self.steps)
        return make_grid(pl_module.generate(z, labels), nrow=self.steps)


class EmbeddingInterpolation(EpochImageCallback):
    """A grid whose rows interpolate linearly between two embeddings ``h`` of a conditional autoregressive
    model (``steps`` columns, ``rows`` rows), each row sampled from one fixed noise: between two classes'
    one-hot vectors, or two images' auto-encoder codes (van den Oord et al. 2016, Sec. 2.3-2.4). Needs the
    module's ``embedding_pairs(rows, generator)`` and ``generate_from_embeddings(z, h)`` (see
    :class:`lightning_modules.pixelcnn.module.PixelCNNModule`); skipped while it has no embeddings.
    """

    key = "samples/embedding_interpolation"
    prefix = "embedding_interpolation"
    protocol = Embeddings

    def __init__(self, dirpath: str, rows: int = 4, steps: int = 8, every_n_epochs: int = 1,
                 seed: int = 4321) -> None:
        super().__init__(dirpath, every_n_epochs)
        interpolate_latents(torch.zeros(2), torch.ones(2), steps, "linear")  # validates steps now
        self.rows, self.steps, self.seed = rows, steps, seed

    def applies(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        """Modules with embeddings to interpolate between (a module that has none yet is skipped, said once)."""
        if not super().applies(trainer, pl_module):
            return False
        if pl_module.embedding_pairs(1, torch.Generator().manual_seed(self.seed)) is None:
            skip(self, pl_module, "embedding_pairs() gives no embeddings (an unconditional model without an "
                                  "encoder, or one before its first validation)")
            return False
        return True

    def render(self, pl_module: LightningModule) -> torch.Tensor:
        """The uint8 grid ``(C, H', W')`` (:func:`make_grid`): ``rows`` rows of ``steps`` images, ``h``
        moving linearly from the row's start embedding to its end one, the noise fixed per row (``fixed_z``)."""
        generator = torch.Generator().manual_seed(self.seed)
        start, end = pl_module.embedding_pairs(self.rows, generator)
        h = torch.cat([interpolate_latents(start[r], end[r], self.steps, "linear") for r in range(self.rows)])
        z = pl_module.fixed_z[torch.arange(self.rows) % len(pl_module.fixed_z)]
        z = z.repeat_interleave(self.steps, dim=0)
        return make_grid(pl_module.generate_from_embeddings(z, h), nrow=self.steps)
