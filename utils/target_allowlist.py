"""Which ``_target_``s a saved run's config may name: a run folder from elsewhere must not run code.

``evaluate.py`` and ``colorize.py`` rebuild a model from ``<run>/.hydra/config.yaml``, and Hydra's
``instantiate`` calls whatever ``_target_`` names (``torch.load`` with ``weights_only: false`` would
unpickle a payload). Before anything is instantiated, every ``_target_`` of such a config must name a
*class* defined in genforge's packages, ``torch.optim``, ``torch.nn`` or Lightning's callbacks, loggers,
strategies, profilers and ``Trainer``; ``trust_run_config=true`` skips the check for runs one trusts.
"""

from __future__ import annotations

import inspect
import re

from omegaconf import DictConfig, ListConfig, OmegaConf

from utils.errors import UntrustedConfigError

#: genforge's own top-level packages
GENFORGE_PACKAGES = ("lightning_modules", "datamodules", "callbacks", "metrics", "utils")
_LIGHTNING = ("callbacks", "loggers", "strategies", "profilers", "trainer")
#: modules (and their submodules) whose classes a saved run's config may instantiate
ALLOWED_MODULES = (*GENFORGE_PACKAGES, "torch.optim", "torch.nn",
                   *(f"{package}.{part}" for package in ("pytorch_lightning", "lightning.pytorch")
                     for part in _LIGHTNING))
#: names a target may be spelled with besides ``<allowed module>.<...>`` (re-exports)
ALLOWED_NAMES = ("pytorch_lightning.Trainer", "lightning.pytorch.Trainer")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def check_target(target, key: str, source: str) -> None:
    """Refuse ``target`` (the value of config key ``key`` in the file ``source``) unless it names a class
    defined in an allowed module (:data:`ALLOWED_MODULES`).

    Both the name and the object it resolves to are checked: ``torch.nn.functional.torch.load`` starts
    like an allowed name but resolves to ``torch.load``, defined in ``torch.serialization``.

    Raises:
        UntrustedConfigError: naming ``key``, the target and ``source``.
    """
    def refuse(why: str):
        raise UntrustedConfigError(
            f"{source}: {key}={target!r} {why}; a saved run may only instantiate classes of genforge, "
            "torch.optim, torch.nn and Lightning's callbacks, loggers, strategies, profilers and Trainer "
            "(if you trust this run folder: trust_run_config=true)")

    if not isinstance(target, str) or not _DOTTED.match(target):
        refuse("is not a dotted class name")
    if not (_within(target, ALLOWED_MODULES) or target in ALLOWED_NAMES):
        refuse("is outside the allowlist")
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception as error:  # noqa: BLE001 - any failure to locate is a refusal, with its reason
        refuse(f"cannot be located ({type(error).__name__})")
    if not inspect.isclass(obj):
        refuse(f"is a {type(obj).__name__}, not a class")
    if not _within(obj.__module__, ALLOWED_MODULES):
        refuse(f"resolves to {obj.__module__}.{obj.__qualname__}")


def check_targets(cfg: DictConfig | ListConfig, source: str, prefix: str = "") -> int:
    """Check every ``_target_`` in ``cfg`` (at any depth) with :func:`check_target`; ``prefix`` is the key
    path of ``cfg`` in messages. Returns how many targets were checked.

    An interpolated value is resolved, and walked too when it resolves to a config (``${oc.create:...}``
    could otherwise hide a target); one that does not resolve cannot be instantiated and is skipped,
    except a ``_target_``.

    Raises:
        UntrustedConfigError: for the first target refused, or a ``_target_`` that does not resolve.
    """
    count = 0
    names = list(cfg.keys()) if isinstance(cfg, DictConfig) else range(len(cfg))
    for name in names:
        key = (f"{prefix}.{name}" if prefix else str(name)) if isinstance(cfg, DictConfig) else f"{prefix}[{name}]"
        if OmegaConf.is_missing(cfg, name):
            continue
        if OmegaConf.is_interpolation(cfg, name) or name == "_target_":
            try:
                value = cfg[name]
            except Exception as error:  # noqa: BLE001 - an unresolvable value instantiates nothing
                if name == "_target_":
                    raise UntrustedConfigError(f"{source}: {key} does not resolve ({error})") from error
                continue
        else:
            value = cfg._get_node(name)
        if name == "_target_":
            check_target(value, key, source)
            count += 1
        elif isinstance(value, (DictConfig, ListConfig)) and not value._is_none():
            count += check_targets(value, source, key)
    return count
