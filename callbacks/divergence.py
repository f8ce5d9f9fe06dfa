"""Stop a run whose losses are no longer finite, with a message saying where it happened."""

from __future__ import annotations

import logging

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

log = logging.getLogger("genforge")


class DivergenceGuard(Callback):
    """Every ``check_every_n_steps`` batches, look at the logged training losses (keys starting with
    ``train/`` and ending in ``loss``); if one is NaN or infinite, stop training (``trainer.should_stop``)
    so the last good checkpoint stays the last one, and record the event in ``diverged_at``."""

    def __init__(self, check_every_n_steps: int = 50) -> None:
        super().__init__()
        self.check_every_n_steps = max(1, check_every_n_steps)
        self.diverged_at: tuple[int, int, str] | None = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int):
        if batch_idx % self.check_every_n_steps:
            return
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and key.endswith("loss") and not torch.isfinite(value).all():
                self.diverged_at = (trainer.current_epoch, batch_idx, key)
                log.error(f"{key} = {float(value)} at epoch {trainer.current_epoch}, batch {batch_idx}: "
                          "training diverged and is stopped; the last checkpoint is kept")
                trainer.should_stop = True
                return
