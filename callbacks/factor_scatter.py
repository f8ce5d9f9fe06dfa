"""Scatter plots of each extrinsic factor's latent against its true value (Kulkarni et al. 2015, Fig. 6)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities import rank_zero_only

from callbacks.image_logging import log_image
from callbacks.protocols import ScatteredFactors, applies
from utils.images import save_png
from utils.plots import scatter_image


class FactorScatter(Callback):
    """After testing, ``<dirpath>/scatter_<factor>.png`` for each extrinsic factor: the true value
    (radians) against the latent that encodes it, on the test images, with Pearson r in the title; logged
    as ``scatter/<factor>``. Applies to modules that fill ``scatter`` (``factor -> (latent (N,), truth
    (N,))``) in their test epoch, as :class:`lightning_modules.dcign.module.DCIGNModule` does
    (:class:`callbacks.protocols.ScatteredFactors`); others are skipped (said once).

    Args:
        dirpath: folder of the PNG files.
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.paths: list[Path] = []

    @rank_zero_only
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not applies(self, pl_module, ScatteredFactors):
            return
        for factor, (latent, truth) in pl_module.scatter.items():
            r = trainer.callback_metrics.get(f"test/pearson/{factor}")
            title = f"{factor}: latent z_{pl_module.factor_latent[factor] + 1} vs truth" + \
                (f" (Pearson r = {float(r):.3f})" if r is not None else "")
            image = scatter_image(truth, latent, title=title, x_label=f"true {factor} (rad)",
                                  y_label="latent (encoder mean)")
            self.paths.append(save_png(image, self.dirpath / f"scatter_{factor}.png"))
            log_image(trainer, f"scatter/{factor}", image)
