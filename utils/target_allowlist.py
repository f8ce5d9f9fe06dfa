"""Which ``_target_``s a saved run's config may name: a run folder from elsewhere must not run code.

``evaluate.py`` and ``colorize.py`` rebuild a model from ``<run>/.hydra/config.yaml``, and Hydra's
``instantiate`` calls whatever ``_target_`` names (``torch.load`` with ``weights_only: false`` would
unpickle a payload). Before anything is instantiated, every ``_target_`` of such a config must name a
*class* defined in genforge's packages, ``torch.optim``, ``torch.nn``, Lightning's callbacks, loggers,
strategies, profilers and ``Trainer``, or a package the evaluating command trusts (``trusted_packages``
of ``conf/trust.yaml``: the user's own methods); ``trust_run_config=true`` skips the check for runs one
trusts. The trusted packages are read from the command's own config, never from the run folder's, which
could list anything.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable

from omegaconf import DictConfig, ListConfig

from utils.config_targets import UnresolvedTargetError, iter_targets, target_key
from utils.errors import InputError, UntrustedConfigError

#: genforge's own top-level packages
GENFORGE_PACKAGES = ("lightning_modules", "datamodules", "callbacks", "metrics", "utils")
_LIGHTNING = ("callbacks", "loggers", "strategies", "profilers", "trainer")
#: modules (and their submodules) whose classes a saved run's config may instantiate
ALLOWED_MODULES = (*GENFORGE_PACKAGES, "torch.optim", "torch.nn",
                   *(f"{package}.{part}" for package in ("pytorch_lightning", "lightning.pytorch")
                     for part in _LIGHTNING))
#: top-level packages no one's own code is in: never suggested for, nor accepted in, ``trusted_packages``
NOT_OWN_CODE = frozenset(sys.stdlib_module_names) | {"torch", "lightning", "pytorch_lightning", "hydra",
                                                      "omegaconf"}
#: names a target may be spelled with besides ``<allowed module>.<...>`` (re-exports)
ALLOWED_NAMES = ("pytorch_lightning.Trainer", "lightning.pytorch.Trainer")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def trusted(packages: Iterable[str] | None, key: str = "trusted_packages") -> tuple[str, ...]:
    """``packages`` (the config key ``key``, e.g. ``["mylab", "otherlab.models"]``) checked: each a dotted
    package name, trusted with its subpackages (``mylab`` covers ``mylab.models``, not ``mylabx``).

    Raises:
        InputError: ``packages`` is a single string instead of a list, an entry is not a dotted name, or
            is in Python's standard library, torch, Lightning, Hydra or OmegaConf (:data:`NOT_OWN_CODE`:
            for those, ``trust_run_config=true``), naming ``key`` and the entry.
    """
    if packages is None:
        return ()
    if isinstance(packages, str):
        raise InputError(f"{key}={packages!r} must be a list of package names, e.g. {key}=[{packages}]")
    names = tuple(packages)
    for name in names:
        if not isinstance(name, str) or not _DOTTED.match(name):
            raise InputError(f"{key}: {name!r} is not a package name (dotted Python identifiers, e.g. mylab "
                             "or mylab.models)")
        if name.split(".")[0] in NOT_OWN_CODE:
            raise InputError(f"{key}: {name!r} is not your own code ({name.split('.')[0]} is Python's or a "
                             "dependency's); to run a saved config naming it, trust the run folder: "
                             "trust_run_config=true")
    return names


def check_target(target, key: str, source: str, trusted_packages: Iterable[str] | None = ()) -> None:
    """Refuse ``target`` (the value of config key ``key`` in the file ``source``) unless it names a class
    defined in an allowed module (:data:`ALLOWED_MODULES`) or in one of ``trusted_packages`` (package
    names, the config key ``trusted_packages``; a package covers its subpackages).

    Both the name and the object it resolves to are checked: ``torch.nn.functional.torch.load`` starts
    like an allowed name but resolves to ``torch.load``, defined in ``torch.serialization``.

    Raises:
        InputError: ``trusted_packages`` is not a list of own package names (see :func:`trusted`).
        UntrustedConfigError: naming ``key``, the target and ``source``, and the settings that would
            accept it (``trusted_packages=[<package>]``, ``trust_run_config=true``).
    """
    allowed = (*ALLOWED_MODULES, *trusted(trusted_packages))

    def refuse(why: str, package: str | None = None):
        fix = f"if {package} is your own code, trust it: trusted_packages=[{package}]; " if package else ""
        raise UntrustedConfigError(
            f"{source}: {key}={target!r} {why}; a saved run may only instantiate classes of genforge, "
            "torch.optim, torch.nn, Lightning's callbacks, loggers, strategies, profilers and Trainer, and "
            f"of the packages in trusted_packages ({fix}if you trust this run folder: trust_run_config=true)")

    if not isinstance(target, str) or not _DOTTED.match(target):
        refuse("is not a dotted class name")
    if not (_within(target, allowed) or target in ALLOWED_NAMES):
        top = target.split(".")[0]
        refuse("is outside the allowlist", None if top in NOT_OWN_CODE else top)
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception as error:  # noqa: BLE001 - any failure to locate is a refusal, with its reason
        refuse(f"cannot be located ({type(error).__name__})")
    if not inspect.isclass(obj):
        refuse(f"is a {type(obj).__name__}, not a class")
    if not _within(obj.__module__, allowed):
        refuse(f"resolves to {obj.__module__}.{obj.__qualname__}")


def check_targets(cfg: DictConfig | ListConfig, source: str, prefix: str = "",
                  trusted_packages: Iterable[str] | None = ()) -> int:
    """Check every ``_target_`` in ``cfg`` (at any depth, found by :func:`utils.config_targets.iter_targets`:
    interpolations resolved and walked, missing values skipped) with :func:`check_target`; ``prefix`` is
    the key path of ``cfg`` in messages, ``trusted_packages`` the packages trusted besides the allowlist
    (the config key ``trusted_packages``). Returns how many targets were checked.

    Raises:
        InputError: ``trusted_packages`` is not a list of package names (see :func:`trusted`).
        UntrustedConfigError: for the first target refused, or a ``_target_`` that does not resolve.
    """
    packages = trusted(trusted_packages)
    count = 0
    try:
        for path, _, target in iter_targets(cfg, prefix):
            check_target(target, target_key(path), source, packages)
            count += 1
    except UnresolvedTargetError as error:
        raise UntrustedConfigError(f"{source}: {error}") from error
    return count
