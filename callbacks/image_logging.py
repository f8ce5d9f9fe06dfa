"""Send an image to every active logger of a Trainer (W&B, TensorBoard; CSV keeps the PNG file)."""

from __future__ import annotations

import torch


def log_image(trainer, key: str, image: torch.Tensor, caption: str | None = None) -> None:
    """Log a uint8 ``(C, H, W)`` image under ``key`` to each logger that takes images, at the current step.

    W&B gets a ``wandb.Image`` (with ``caption``, e.g. the epoch and generator iteration), TensorBoard an
    ``add_image``; loggers that take no images (CSV) are skipped: the PNG written beside the run is their
    record.
    """
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    from utils.images import to_pil

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[to_pil(image)], step=trainer.global_step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=trainer.global_step, dataformats="CHW")
