"""Lightning's rich progress bar, counting against the run's real budget and showing the optimized metric."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import RichProgressBar

from callbacks.protocols import GeneratorSteps, offers


class ProgressBar(RichProgressBar):
    """``pytorch_lightning.callbacks.RichProgressBar`` (same arguments) whose training bar says how far the
    run is through its budget, and which shows the optimized metric.

    The description is ``Epoch 3 · generator iterations 186/1,240`` for a module with a budget in generator
    iterations (:class:`callbacks.protocols.GeneratorSteps` with ``max_generator_steps`` set), ``Epoch 3/19``
    for an epoch budget, ``Epoch 3 · step 120/1,000`` when ``trainer.max_steps`` is the only budget, and
    ``Epoch 3`` without any (never Lightning's ``Epoch 3/-2`` for ``max_epochs=-1``). The count is a Python
    int read after every training batch, and the description is rewritten only when it has changed.

    Args:
        *args, **kwargs: those of ``RichProgressBar`` (``refresh_rate``, ``leave``, ``theme``, ...).
        monitor: a key of ``trainer.callback_metrics`` (e.g. ``val/fid``) shown among the bar's metrics, in
            their format, once it has been logged.
    """

    def __init__(self, *args: Any, monitor: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.monitor = monitor
        self._shown_count: int | None = None  # the budget count in the description on screen
        self._monitored: float | None = None  # the value of ``monitor`` last read

    def _budget(self) -> tuple[int, int, str] | None:
        """``(count, budget, unit)`` of the run's budget other than epochs, or ``None``."""
        trainer, module = self.trainer, self.trainer.lightning_module
        if offers(module, GeneratorSteps) and module.max_generator_steps:
            return module.generator_steps, module.max_generator_steps, "generator iterations"
        if not (trainer.max_epochs or 0) > 0 and trainer.max_steps > 0:
            return trainer.global_step, trainer.max_steps, "step"
        return None

    def _get_train_description(self, current_epoch: int) -> str:
        max_epochs = self.trainer.max_epochs
        text = f"Epoch {current_epoch}"
        if max_epochs is not None and max_epochs > 0:
            text += f"/{max_epochs - 1}"
        budget = self._budget()
        self._shown_count = budget[0] if budget else None
        if budget:
            text += f" · {budget[2]} {budget[0]:,}/{budget[1]:,}"
        return f"{text:{len(self.validation_description)}}"  # padded as in Lightning (no flicker)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Rewrite the description when the budget's count has moved, then Lightning's update."""
        if self.is_enabled and self.progress is not None and self.train_progress_bar_id is not None:
            budget = self._budget()
            if budget and budget[0] != self._shown_count:
                description = self._get_train_description(trainer.current_epoch)
                style = self.theme.description
                self.progress.update(self.train_progress_bar_id,
                                     description=f"[{style}]{description}" if style else description)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _read_monitor(self, trainer: Trainer) -> None:
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if value is not None:
            self._monitored = float(value)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read ``monitor`` (an epoch-level metric is complete here), then Lightning's new bar."""
        self._read_monitor(trainer)
        super().on_train_epoch_start(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read ``monitor`` (validation's metrics are complete here; not the sanity check's), then Lightning's
        update."""
        if not trainer.sanity_checking:
            self._read_monitor(trainer)
        super().on_validation_end(trainer, pl_module)

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """Lightning's metrics, plus ``monitor``'s value once it has been logged (read at validation's end
        and an epoch's start, not at every step: ``trainer.callback_metrics`` would compute all metrics)."""
        items = super().get_metrics(trainer, pl_module)
        if self._monitored is not None and self.monitor not in items:
            items[self.monitor] = self._monitored
        return items
