"""Each epoch, a grid of input L | generated colour | true colour on fixed validation images."""

from __future__ import annotations

import torch
from pytorch_lightning import LightningModule

from callbacks.protocols import Colorizer, SplitDatasets
from callbacks.samples import EpochImageCallback, validation_rows
from utils.images import make_grid


class ColorizationGrid(EpochImageCallback):
    """Rows of (input lightness as gray, the module's colorization, the true colour) for the first
    ``rows`` validation images, saved as ``<dirpath>/colorization_epoch_NNN.png`` and logged as
    ``samples/colorization``. Needs the module's ``colorize_rgb`` (:class:`callbacks.protocols.Colorizer`,
    see :class:`lightning_modules.colorization.module.ColorizationModule`) and the datamodule's
    ``dataset("val")``; other methods are skipped (said once)."""

    key = "samples/colorization"
    prefix = "colorization"
    protocol = Colorizer
    datamodule_protocol = SplitDatasets

    def __init__(self, dirpath: str, rows: int = 8, every_n_epochs: int = 1) -> None:
        super().__init__(dirpath, every_n_epochs)
        self.rows = rows
        self._images: torch.Tensor | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        """Keep the first ``rows`` validation images (fixed over epochs)."""
        if self.applies(trainer, pl_module):
            self._images = validation_rows(trainer.datamodule, self.rows)

    def render(self, pl_module: LightningModule) -> torch.Tensor:
        from datamodules.lab import rgb_to_lab_scaled

        real = self._images.to(pl_module.device)
        lightness, _ = rgb_to_lab_scaled(real)
        gray = lightness.expand(-1, 3, -1, -1)  # scaled L in [-1, 1] shown as gray
        rows = torch.stack([gray, pl_module.colorize_rgb(real), real], dim=1).flatten(0, 1)
        return make_grid(rows, nrow=3)
