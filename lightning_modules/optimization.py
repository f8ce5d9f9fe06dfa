"""What every genforge LightningModule built from config shares: optimizers and LR/momentum schedulers given
as partials (``_partial_: true``), bound to parameters in ``configure_optimizers``, and hyper-parameters
that hold plain values only, so a checkpoint loads with ``torch.load(weights_only=True)``.

A module subclasses :class:`ConfiguredModule`, calls :meth:`ConfiguredModule.save_plain_hyperparameters`
at the end of its ``__init__`` and says in :meth:`ConfiguredModule.optimizer_plan` which parameters each
optimizer steps; the wiring of ``configure_optimizers`` is then the same for all of them.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from pytorch_lightning import LightningModule
from pytorch_lightning.core.mixins import HyperparametersMixin
from pytorch_lightning.utilities.parsing import collect_init_args
from torch import nn


class NotPlain(Exception):
    """Raised by :func:`plain_value` for a value that is not plain data."""


def plain_value(value: Any) -> Any:
    """``value`` as plain data, the only kind a checkpoint's hyper-parameters hold (so that it loads with
    ``torch.load(weights_only=True)``): ``None``, ``bool``, ``int``, ``float``, ``str``, and lists, tuples and
    dicts made only of those, at any depth. OmegaConf containers become plain lists and dicts
    (interpolations resolved), other sequences lists and mappings dicts; integers and reals of other types
    (numpy's) become ``int`` and ``float``.

    Raises:
        NotPlain: anything else anywhere inside: a network (``nn.Module``), a ``functools.partial`` or other
            callable, a tensor, a path, any other object.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None:
        return None
    for kind in (bool, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [plain_value(item) for item in value]
        return tuple(items) if type(value) is tuple else items
    if isinstance(value, Mapping):
        return {plain_value(key): plain_value(item) for key, item in value.items()}
    raise NotPlain(type(value).__name__)


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
        """``save_hyperparameters`` of the calling ``__init__``'s arguments (with those of a subclass's
        ``__init__`` that called it, as Lightning collects them) whose values are plain data
        (:func:`plain_value`: numbers, strings, ``None``, and lists/tuples/dicts of them), converted to plain
        containers. Every other argument is left out, whatever its name: networks, objectives, the
        optimizer and scheduler partials (``optimizer_e``) and any other object are rebuilt from the run's
        config, so a checkpoint holds plain values only and loads with ``torch.load(weights_only=True)``.
        Call it in ``__init__``, after the arguments hold their final values."""
        frame = inspect.currentframe().f_back
        arguments: dict[str, Any] = {}
        for local_args in collect_init_args(frame, [], classes=(HyperparametersMixin,)):
            arguments.update(local_args)
        plain, ignore = {}, []
        for name, value in arguments.items():
            try:
                plain[name] = plain_value(value)
            except NotPlain:
                ignore.append(name)
        self.save_hyperparameters(ignore=ignore, frame=frame, logger=False)
        self._hparams.update({name: value for name, value in plain.items() if name in self._hparams})
        self._hparams_initial = copy.deepcopy(self._hparams)  # as Lightning keeps it

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
