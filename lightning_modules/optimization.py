"""What every genforge LightningModule built from config shares: optimizers and LR/momentum schedulers given
as partials (``_partial_: true``), bound to parameters in ``configure_optimizers``, and hyper-parameters
that keep them out of the checkpoint.

A module subclasses :class:`ConfiguredModule`, calls :meth:`ConfiguredModule.save_plain_hyperparameters`
at the end of its ``__init__`` and says in :meth:`ConfiguredModule.optimizer_plan` which parameters each
optimizer steps; the wiring of ``configure_optimizers`` is then the same for all of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping

from pytorch_lightning import LightningModule
from torch import nn

#: constructor arguments kept out of the checkpoint's hyper-parameters: networks, objectives and the
#: optimizer/scheduler factories are rebuilt from the run's config, so a checkpoint holds plain values only
#: and loads with ``weights_only=True``
NOT_HYPERPARAMETERS = ("generator", "discriminator", "objective", "encoder", "decoder", "network",
                       "optimizer", "scheduler", "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d")

#: a scheduler argument: ``None`` (none), a partial scheduler, or ``{name: partial scheduler or None}``
SchedulerFactories = Callable | Mapping[str, Callable | None] | None


def named_factories(factories: SchedulerFactories) -> list[tuple[str, Callable]]:
    """A scheduler argument as ``(name, factory)`` pairs: ``None`` -> none, one factory ->
    ``[("scheduler", f)]``, a mapping -> its non-null entries, in order."""
    if factories is None:
        return []
    if isinstance(factories, Mapping):
        return [(str(name), make) for name, make in factories.items() if make is not None]
    return [("scheduler", factories)]


class ConfiguredModule(LightningModule):
    """A LightningModule whose optimizers and schedulers come from config as partials.

    ``configure_optimizers`` binds each optimizer of :meth:`optimizer_plan` to its parameters
    (``make(params=...)``) and each of its schedulers to it (``make(optimizer=...)``). A scheduler whose
    class has ``interval = "step"`` (:mod:`lightning_modules.schedules`) is stepped after every optimizer
    step, any other (torch's LR schedulers) after every training epoch; each is named
    ``<optimizer name>/<scheduler name>`` (what Lightning's LearningRateMonitor logs).
    :attr:`schedule_plan` lists ``(optimizer index, interval)`` per scheduler, for modules that step them
    by hand (manual optimization).
    """

    schedule_plan: list[tuple[int, str]]

    def save_plain_hyperparameters(self) -> None:
        """``save_hyperparameters`` of the calling ``__init__``'s arguments less :data:`NOT_HYPERPARAMETERS`."""
        frame = inspect.currentframe().f_back
        self.save_hyperparameters(ignore=list(NOT_HYPERPARAMETERS), frame=frame, logger=False)

    def optimizer_plan(self) -> list[tuple[str, Iterable[nn.Parameter], Callable, SchedulerFactories]]:
        """``[(name, parameters, partial optimizer, scheduler argument), ...]``, one per optimizer."""
        raise NotImplementedError

    def configure_optimizers(self):
        optimizers, schedulers, self.schedule_plan = [], [], []
        for index, (name, parameters, make, factories) in enumerate(self.optimizer_plan()):
            optimizer = make(params=parameters)
            optimizers.append(optimizer)
            for label, make_scheduler in named_factories(factories):
                scheduler = make_scheduler(optimizer=optimizer)
                interval = getattr(scheduler, "interval", "epoch")
                schedulers.append({"scheduler": scheduler, "interval": interval, "name": f"{name}/{label}"})
                self.schedule_plan.append((index, interval))
        if schedulers:
            return optimizers, schedulers
        return optimizers[0] if len(optimizers) == 1 else optimizers
