"""Lightning's ModelCheckpoint, which writes nothing once the run has diverged."""

from __future__ import annotations

import logging

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint

from callbacks.divergence import has_diverged

log = logging.getLogger("genforge")


class ModelCheckpoint(LightningModelCheckpoint):
    """``pytorch_lightning.callbacks.ModelCheckpoint`` (same arguments) that saves nothing after a
    :class:`callbacks.divergence.DivergenceGuard` of the trainer has found diverged losses: the epoch-end,
    validation-end, step, exception and train-end saves are skipped, so ``last.ckpt`` and the best
    checkpoint stay those of the last good state (and the best is not replaced or removed)."""

    def _diverged(self, trainer: Trainer) -> bool:
        return has_diverged(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args, **kwargs) -> None:
        if not self._diverged(trainer):
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._diverged(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._diverged(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not self._diverged(trainer):
            super().on_exception(trainer, pl_module, exception)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._diverged(trainer):
            super().on_train_end(trainer, pl_module)
