"""Latent traversals of DC-IGN's graphics code (Kulkarni et al. 2015, Figs. 4, 5 and 8), saved each epoch."""

from __future__ import annotations

import torch
from pytorch_lightning import LightningModule

from callbacks.protocols import SplitDatasets, Traversable
from callbacks.samples import EpochImageCallback, validation_rows
from utils.images import make_grid


class LatentTraversal(EpochImageCallback):
    """For each extrinsic factor, a grid whose rows are validation images and whose columns sweep that
    factor's latent: ``traversal_<factor>_epoch_NNN.png``, logged as ``traversal/<factor>``.

    Each row's first column is the input image itself, the others ``module.traverse(images, factor,
    steps)``: the image's code with the factor's latent set to ``steps`` values over its validation range.
    The rows are the first image of each of the first ``rows`` validation batches (fixed over epochs).
    Applies to modules with ``traverse`` and ``factor_latent`` (:class:`callbacks.protocols.Traversable`, see
    :class:`lightning_modules.dcign.module.DCIGNModule`) and a datamodule with ``dataset("val")`` of one-factor
    batches; others are skipped (said once).

    Args:
        dirpath: folder of the PNG files.
        rows: images (rows) per grid.
        steps: latent values (columns after the input) per row.
        every_n_epochs: how often.
    """

    key = "traversal"
    prefix = "traversal"
    protocol = Traversable
    datamodule_protocol = SplitDatasets

    def __init__(self, dirpath: str, rows: int = 6, steps: int = 8, every_n_epochs: int = 1) -> None:
        super().__init__(dirpath, every_n_epochs)
        if rows < 1 or steps < 2:
            raise ValueError(f"callbacks.traversal needs rows >= 1 and steps >= 2, got {rows}, {steps}")
        self.rows, self.steps = rows, steps
        self.images: torch.Tensor | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        """Keep the fixed rows: the first image of each of the first ``rows`` validation batches,
        ``(R, C, H, W)`` in ``[-1, 1]``."""
        if self.applies(trainer, pl_module):
            self.images = validation_rows(trainer.datamodule, self.rows, pick=lambda batch: batch[0][0])

    def renders(self, pl_module: LightningModule) -> list[tuple[str, str, torch.Tensor]]:
        """One grid per factor of ``factor_latent``: ``(key, file prefix, uint8 (C, H, W))``."""
        images = self.images
        out = []
        for factor in pl_module.factor_latent:
            swept = pl_module.traverse(images, factor, self.steps).cpu().view(len(images), self.steps,
                                                                              *images.shape[1:])
            rows = torch.cat([images.unsqueeze(1), swept], 1).flatten(0, 1)
            out.append((f"{self.key}/{factor}", f"{self.prefix}_{factor}", make_grid(rows, nrow=self.steps + 1)))
        return out
