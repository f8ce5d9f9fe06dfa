"""Lightning's ModelCheckpoint, which writes nothing once the run has diverged."""

from __future__ import annotations

import logging
import os
import re
import warnings

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from callbacks.divergence import has_diverged

log = logging.getLogger("genforge")

#: Lightning's warning (ModelCheckpoint.setup, on rank 0 when fitting) about a non-empty ``dirpath``
NOT_EMPTY = re.compile(r"Checkpoint directory .* exists and is not empty\.")


def resumes_inside(ckpt_path, dirpath) -> bool:
    """Whether the checkpoint ``ckpt_path`` (or ``None``) lies inside the folder ``dirpath``."""
    if not ckpt_path or not dirpath:
        return False
    ckpt, folder = os.path.realpath(ckpt_path), os.path.realpath(dirpath)
    return os.path.commonpath([ckpt, folder]) == folder


class ModelCheckpoint(LightningModelCheckpoint):
    """``pytorch_lightning.callbacks.ModelCheckpoint`` (same arguments) that saves nothing after a
    :class:`callbacks.divergence.DivergenceGuard` of the trainer has found diverged losses: the epoch-end,
    validation-end, step, exception and train-end saves are skipped, so ``last.ckpt`` and the best
    checkpoint stay those of the last good state (and the best is not replaced or removed).

    Lightning's "Checkpoint directory ... exists and is not empty." is held back from ``setup`` (where the
    checkpoint to resume from is not known yet) to ``on_train_start``, and dropped when the run resumes from
    a checkpoint inside that directory (``trainer.ckpt_path`` under ``dirpath``, e.g. ``ckpt_path=last``):
    the folder is the run's own. A fresh run into a non-empty folder still gets it."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=NOT_EMPTY.pattern, category=UserWarning)
            super().setup(trainer, pl_module, stage)
        self._not_empty = (trainer.is_global_zero and stage == "fit" and self.save_top_k != 0
                           and self._fs.isdir(self.dirpath) and len(self._fs.ls(self.dirpath)) > 0)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if getattr(self, "_not_empty", False) and not resumes_inside(trainer.ckpt_path, self.dirpath):
            rank_zero_warn(f"Checkpoint directory {self.dirpath} exists and is not empty.")
        self._not_empty = False

    @property
    def state_key(self) -> str:
        """Lightning's key, plus the file name when nothing is monitored: ``last.ckpt``'s callback and, with
        ``optimized_metric=null``, the unranked ``epoch_NNN.ckpt`` one would otherwise share a key, which
        Lightning refuses."""
        if self.monitor is not None:
            return super().state_key
        return self._generate_state_key(monitor=None, mode=self.mode,
                                        every_n_train_steps=self._every_n_train_steps,
                                        every_n_epochs=self._every_n_epochs,
                                        train_time_interval=self._train_time_interval, filename=self.filename)

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
