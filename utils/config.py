"""Hydra/OmegaConf glue: custom resolvers, building objects from config groups, printing the config."""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("genforge")

_REGISTERED = False


def wandb_offline() -> bool:
    """True unless W&B can log online: ``WANDB_MODE=online``, ``WANDB_API_KEY`` set, or a ``~/.netrc``
    entry for ``api.wandb.ai`` (what ``wandb login`` writes). ``WANDB_MODE=offline`` always wins."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (OSError, netrc.NetrcParseError):
        return True


def user_cache_dir() -> str:
    """genforge's folder in the user's cache: ``$XDG_CACHE_HOME/genforge``, else ``~/.cache/genforge``
    (where torch keeps its hub cache too); the default of ``paths.cache_dir`` when ``GENFORGE_CACHE`` is
    unset, so no run writes caches into the source checkout."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "genforge")


def register_resolvers() -> None:
    """Register genforge's OmegaConf resolvers (idempotent).

    - ``${gf.if:cond,a,b}``: ``a`` if ``cond`` else ``b`` (e.g. classes only for a conditional model).
    - ``${gf.wandb_offline:}``: see :func:`wandb_offline`.
    - ``${gf.user_cache:}``: see :func:`user_cache_dir`.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    OmegaConf.register_new_resolver("gf.if", lambda cond, a, b: a if cond else b, replace=True)
    OmegaConf.register_new_resolver("gf.wandb_offline", wandb_offline, replace=True)
    OmegaConf.register_new_resolver("gf.user_cache", user_cache_dir, replace=True)
    _REGISTERED = True


def instantiate_group(cfg: DictConfig | None, group: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (``callbacks``, ``logger``).

    Entries set to ``null`` are skipped, so ``callbacks.parzen=null`` removes one callback. An entry of
    settings without a ``_target_`` (``debug=fdr`` caps ``callbacks.parzen.num_samples``, which
    ``callbacks=none`` does not have) is skipped too, named in one log line.

    Raises:
        TypeError: if the group is not a mapping, or one of its entries is neither a config nor ``null``.
    """
    from hydra.utils import instantiate

    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"config group '{group}' must be a mapping of name -> config, got {type(cfg).__name__}")
    objects, settings_only = [], []
    for name, entry in cfg.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig):
            raise TypeError(f"{group}.{name} must be a config with a _target_, got {entry!r}")
        if "_target_" not in entry:
            settings_only.append(f"{group}.{name}")
            continue
        objects.append(instantiate(entry))
    if settings_only:
        log.info(f"{', '.join(settings_only)}: settings without a _target_ (not in this {group}= choice), skipped")
    return objects


def print_config_tree(cfg: DictConfig, save_dir: str | Path | None = None,
                      order: Sequence[str] = ("data", "model", "callbacks", "logger", "trainer", "paths")) -> str:
    """Print the resolved config as a rich tree (top-level groups in ``order`` first) and save it as
    ``config_tree.log`` in ``save_dir``. Returns the printed text."""
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), guide_style="dim")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    console = rich.console.Console(record=True)
    console.print(tree)
    text = console.export_text()
    if save_dir is not None:
        from utils.io import atomic_path

        with atomic_path(Path(save_dir) / "config_tree.log") as tmp:
            tmp.write_text(text)
    return text


def metric_value(metrics: dict, name: str | None) -> float | None:
    """The value of ``optimized_metric`` ``name`` in ``metrics`` (for sweepers); ``None`` with a warning
    naming the metrics that were logged when ``name`` never was (e.g. ``callbacks=none``)."""
    if not name:
        return None
    if name not in metrics:
        import logging

        logging.getLogger("genforge").warning(
            f"optimized_metric={name!r} was not logged; logged metrics: {sorted(metrics)}")
        return None
    value = metrics[name]
    return float(value.item() if hasattr(value, "item") else value)


def _accepts(annotation, value) -> bool | None:
    """Whether ``value`` (a plain config value) fits the type ``annotation``: True, False, or None when the
    annotation is one this check does not judge (classes other than the plain types, ``Any``)."""
    import collections.abc
    import types
    import typing

    from omegaconf import ListConfig

    origin = typing.get_origin(annotation)
    if annotation is typing.Any:
        return None
    if origin in (typing.Union, types.UnionType):
        verdicts = [_accepts(member, value) for member in typing.get_args(annotation)]
        return True if True in verdicts else (None if None in verdicts else False)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int)
    if annotation is float:
        return isinstance(value, (int, float))
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if container in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple, ListConfig))
    if container in (dict, collections.abc.Mapping):
        return isinstance(value, (dict, DictConfig))
    return None


def _describe_type(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "").replace("NoneType", "None")


def check_argument_types(cfg: DictConfig, key: str) -> None:
    """Check the plain values (numbers, strings, booleans, null, lists) of the config ``cfg`` at config key
    ``key`` against the type annotations of its ``_target_``'s constructor, before it is instantiated:
    ``trainer.max_epochs=abc`` is refused here instead of failing an assertion deep in Lightning. Values
    whose annotation is a class other than the plain types are not judged.

    Raises:
        InputError: naming ``<key>.<argument>``, the value and the expected type.
    """
    import inspect
    import typing

    from hydra.utils import get_object

    from utils.errors import InputError

    if not isinstance(cfg, DictConfig) or "_target_" not in cfg:
        return
    try:
        target = get_object(cfg._target_)
        function = target.__init__ if inspect.isclass(target) else target
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - annotations that do not resolve are simply not checked
        return
    for name in cfg:
        if name.startswith("_") or name not in hints or isinstance(cfg._get_node(name), DictConfig):
            continue
        try:
            value = cfg[name]
        except Exception:  # noqa: BLE001 - unresolvable values fail at instantiation with their own error
            continue
        if _accepts(hints[name], value) is False:
            raise InputError(f"{key}.{name}={value!r}: expected {_describe_type(hints[name])} "
                             f"(the {name} argument of {cfg._target_})")
