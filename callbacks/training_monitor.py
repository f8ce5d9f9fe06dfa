"""Learning rate, momentum and training throughput of every run, once per training epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor

from lightning_modules.optimization import ConfiguredModule

log = logging.getLogger("genforge")


def count_examples(batch) -> int | None:
    """Examples in a training batch: the first dimension of its first tensor, depth first through tuples,
    lists and mappings (images for ``(x, y)``, DC-IGN's ``(images, factors, batch_type)`` and PixelCNN's
    batches, patches for the Deep GMM's ``(x, index)``); ``None`` when it holds no tensor."""
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        return next((n for n in map(count_examples, batch) if n is not None), None)
    return None


class TrainingMonitor(Callback):
    """Logs, at the end of every training epoch, each optimizer's learning rate and momentum and the
    training throughput, for every module (GAN family, colorization, DC-IGN, Deep GMM, PixelCNN, any other).

    * ``train/lr/<optimizer>``: the learning rate of the optimizer's first parameter group, and
      ``train/momentum/<optimizer>``: its ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam-like), where it
      has one. Both are the values the epoch's *last training batch* used (read at each batch start):
      Lightning steps an automatically optimized module's epoch schedulers before that batch's
      ``on_train_batch_end``, while :class:`~lightning_modules.two_player.TwoPlayerModule` steps its own in
      ``on_train_epoch_end``, so values read at the epoch's end would be the next epoch's for some families
      and this one's for others. ``<optimizer>`` is the name
      :meth:`~lightning_modules.optimization.ConfiguredModule.optimizer_plan` gives it (``generator``,
      ``discriminator``, ``model``; read once when training starts), else ``optimizer_<i>``. An optimizer
      whose every learning rate is 0 and that no scheduler drives is a placeholder that steps nothing (the
      Deep GMM's, which trains by EM): nothing is logged for it.
    * ``train/images_per_sec``: training examples per second of training wall time in the epoch (examples:
      the first dimension of each batch's first tensor, so patches/s for the Deep GMM). The time runs from
      the epoch's start through each training batch's end, data loading and the training hooks included,
      and stops from the start to the end of each validation (FID/KID, samples), so validation does not
      count. On CUDA the device is synchronised before validation and at the epoch's end, never per batch.
      Under DDP it is the sum of the processes' rates: the whole run's throughput.

    The values go straight to ``trainer.loggers`` (as Lightning's ``LearningRateMonitor`` does), at the step
    of the epoch's other epoch-end metrics, so they are in every logger but never in
    ``trainer.callback_metrics`` (no checkpoint, sweep or divergence check can pick them up). A run without a
    logger logs nothing. A module whose optimizers or batches cannot be read gets one INFO line naming its
    class and why, and what can be read is still logged.

    :attr:`clock` is the timer (``time.perf_counter``); tests replace it with a fake clock.
    """

    clock = staticmethod(time.perf_counter)

    def __init__(self) -> None:
        super().__init__()
        self._optimizers: list[tuple[str, torch.optim.Optimizer]] = []
        self._rates: dict[str, float] = {}
        self._since: float | None = None  # where the running interval started; None: the clock is stopped
        self._paused = False  # stopped by a validation inside the training epoch
        self._seconds, self._examples, self._countable = 0.0, 0, True

    def _info(self, trainer: Trainer, pl_module: LightningModule, why: str) -> None:
        if trainer.is_global_zero:
            log.info(f"TrainingMonitor: {type(pl_module).__name__}: {why}")

    # --------------------------------------------------------------------------- learning rates, momenta
    def _names(self, trainer: Trainer, pl_module: LightningModule) -> list[str]:
        fallback = [f"optimizer_{i}" for i in range(len(trainer.optimizers))]
        if not isinstance(pl_module, ConfiguredModule):
            return fallback
        try:  # cheap and without side effects in every genforge module: names and lazy parameter iterators
            names = [str(entry[0]) for entry in pl_module.optimizer_plan()]
        except Exception as error:  # noqa: BLE001 (an unreadable plan: fall back, and say why)
            names, why = None, f"optimizer_plan() raised {type(error).__name__}: {error}"
        else:
            why = f"optimizer_plan() names {names}, not one name for each of its {len(fallback)} optimizers"
        if names is None or len(names) != len(fallback):
            self._info(trainer, pl_module, f"{why}: named {fallback} instead")
            return fallback
        return names

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        scheduled = {id(getattr(c.scheduler, "optimizer", None)) for c in trainer.lr_scheduler_configs}
        self._optimizers, self._countable = [], True
        for name, optimizer in zip(self._names(trainer, pl_module), trainer.optimizers):
            if id(optimizer) not in scheduled and all(g.get("lr") == 0 for g in optimizer.param_groups):
                kind = type(optimizer).__name__
                self._info(trainer, pl_module, f"optimizer {name!r} ({kind}) has learning rate 0 and no "
                                               "scheduler, a placeholder: no train/lr, train/momentum for it")
            else:
                self._optimizers.append((name, optimizer))

    def rates(self) -> dict[str, float]:
        """``train/lr/<name>`` and ``train/momentum/<name>`` of the monitored optimizers now."""
        values = {}
        for name, optimizer in self._optimizers:
            group = optimizer.param_groups[0]
            values[f"train/lr/{name}"] = float(group["lr"])
            if "momentum" in group or "betas" in group:
                momentum = group["momentum"] if "momentum" in group else group["betas"][0]
                values[f"train/momentum/{name}"] = float(momentum)
        return values

    # --------------------------------------------------------------------------------------- throughput
    def _stop(self, trainer: Trainer) -> None:
        """Add the running interval to the epoch's seconds (after the device's queued work) and stop."""
        if self._since is not None:
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize(trainer.strategy.root_device)
            self._seconds += self.clock() - self._since
            self._since = None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._seconds, self._examples, self._rates, self._paused = 0.0, 0, {}, False
        self._since = self.clock()

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int):
        self._rates = self.rates()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx):
        if self._since is None:
            return
        now = self.clock()
        self._seconds, self._since = self._seconds + now - self._since, now
        examples = count_examples(batch)
        if examples is None and self._countable:
            self._countable = False
            self._info(trainer, pl_module, f"a training batch ({type(batch).__name__}) holds no tensor to "
                                           "count examples in: no train/images_per_sec")
        self._examples += examples or 0

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._paused = self._since is not None
        self._stop(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._paused:
            self._since, self._paused = self.clock(), False

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop(trainer)
        if not trainer.loggers:  # the same on every process: none skips the collective alone
            return
        rate = self._examples / self._seconds if self._seconds > 0 else 0.0
        device = trainer.strategy.root_device
        total = float(trainer.strategy.reduce(torch.tensor(rate, device=device), reduce_op="sum"))
        metrics = dict(self._rates)
        if self._countable and self._examples > 0:
            metrics["train/images_per_sec"] = total
        if metrics:
            metrics["epoch"] = trainer.current_epoch
            # the step of the epoch's other epoch-end metrics (Lightning's LearningRateMonitor reads it too)
            step = max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
