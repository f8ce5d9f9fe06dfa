"""Before training: is the metric the run monitors (``optimized_metric``) logged by anything in this run?

Checkpoints rank by ``optimized_metric`` (conf/callbacks/default.yaml's ``model_checkpoint.monitor``), and
Lightning's ``ModelCheckpoint`` raises ``MisconfigurationException`` after the first validation epoch when
nothing logged it -- e.g. ``val/fid`` with ``callbacks.evaluation=null``. :func:`check_monitored_metric`
stops such a run before training, in one line.

Who logs what is declared, not guessed:

* a callback class lists the metrics it may log in a ``LOGGED_METRICS`` class attribute (e.g.
  :class:`callbacks.evaluation.FeatureDistanceEvaluation`), and may name the modules it applies to with an
  ``applies_to(pl_module) -> bool`` function;
* a LightningModule logs what it lists in an optional ``LOGGED_METRICS`` attribute and its ``monitor``
  hyper-parameter (the families whose ``model.monitor`` names their own metric log it themselves).

A metric that no callback config of ``conf/callbacks/`` declares is left alone (a module may log it without
declaring it, e.g. a GAN's ``val/d_loss``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from omegaconf import OmegaConf

from utils.errors import InputError, in_multirun

#: the callback configs whose classes say who logs a metric
CALLBACK_CONFIGS = Path(os.environ.get("GENFORGE_ROOT", Path(__file__).resolve().parents[1])) / "conf" / \
    "callbacks"


def declared_metrics(obj) -> tuple[str, ...]:
    """The metrics ``obj`` (a callback or a LightningModule, instance or class) declares it logs: its
    ``LOGGED_METRICS``, plus a module's ``monitor`` hyper-parameter."""
    names = tuple(getattr(obj, "LOGGED_METRICS", ()) or ())
    hparams = getattr(obj, "hparams", None)
    monitor = hparams.get("monitor") if hasattr(hparams, "get") else None
    return names + ((str(monitor),) if monitor else ())


def _applies(callback, module) -> bool:
    applies_to = getattr(callback, "applies_to", None)
    return applies_to is None or bool(applies_to(module))


def configured_loggers(metric: str, folder: Path = CALLBACK_CONFIGS) -> list[str]:
    """``callbacks.<name> (<target>)`` for every callback config in ``folder`` (conf/callbacks/*.yaml) whose
    ``_target_`` class declares ``metric`` in ``LOGGED_METRICS``; classes that cannot be imported are
    skipped."""
    from hydra.utils import get_class

    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        for name, node in (cfg.items() if OmegaConf.is_dict(cfg) else []):
            target = node.get("_target_") if OmegaConf.is_dict(node) else None
            if not target or name in found:
                continue
            try:
                cls = get_class(target)
            except Exception:  # noqa: BLE001 - a config this check cannot import is not its concern
                continue
            if metric in declared_metrics(cls):
                found[name] = f"callbacks.{name} ({target})"
    return list(found.values())


def check_monitored_metric(metric: str | None, callbacks: Iterable, module) -> None:
    """Stop a run whose ``optimized_metric`` nothing in it logs, before training.

    Args:
        metric: ``optimized_metric`` (``None`` or empty: nothing is monitored, nothing to check).
        callbacks: the run's instantiated callbacks.
        module: the run's LightningModule.

    Nothing is checked when no callback of this run ranks by ``metric`` (its ``monitor``: the checkpoints, the
    progress bar) outside a multirun, e.g. under ``callbacks=none``.

    Raises:
        InputError: ``metric`` is declared by a callback config of conf/callbacks/ (named in the message)
            but by no callback of this run that applies to ``module``, nor by ``module``; the message says
            what to type instead (``optimized_metric=null``: checkpoints keep the latest epoch, unranked).
    """
    if not metric:
        return
    callbacks = list(callbacks)
    if not any(getattr(cb, "monitor", None) == metric for cb in callbacks) and not in_multirun():
        return  # nothing ranks by it (callbacks=none) and no sweeper waits for it
    if metric in declared_metrics(module):
        return
    present = [cb for cb in callbacks if metric in declared_metrics(cb)]
    if any(_applies(cb, module) for cb in present):
        return
    loggers = configured_loggers(metric)
    if not loggers:
        return  # nothing declares it: the module may log it undeclared
    module_name = type(module).__name__
    if present:
        why = f"{', '.join(type(cb).__name__ for cb in present)} does not apply to {module_name}"
    else:
        why = f"it is logged by {' or '.join(loggers)}, which this run does not have"
    split = metric.split("/", 1)[0]  # suggest metrics of the same split (val/ for checkpoints)
    logged = {m for cb in callbacks if _applies(cb, module) for m in declared_metrics(cb)}
    others = sorted(m for m in logged | set(declared_metrics(module)) if m.split("/", 1)[0] == split)
    instead = f"optimized_metric=<one of {', '.join(others)}>, or " if others else ""
    raise InputError(f"optimized_metric={metric} is never logged in this run ({why}), so the checkpoints "
                     f"could not be ranked by it; keep that callback, or type {instead}optimized_metric=null "
                     f"(checkpoints keep the latest epoch, unranked)")
