"""A resumed run's metric history continues the old one instead of sitting after its stale rows."""

from __future__ import annotations

from pytorch_lightning import Callback, LightningModule, Trainer


class ResumedHistory(Callback):
    """When the Trainer resumes from a checkpoint (``ckpt_path``), tell every logger that keeps a history
    file (:meth:`utils.csv_logger.CSVLogger.resume`) before it logs anything: rows logged after that
    checkpoint was saved, and the old run's test rows, are then dropped, so a run preempted, or stopped by
    its budget, and resumed into its folder reads as one history. Rank 0 only."""

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.ckpt_path or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            resume = getattr(logger, "resume", None)
            if callable(resume):
                resume()
