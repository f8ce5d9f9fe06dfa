"""A package's public names, imported when first used (PEP 562), so that importing one module of a package
does not import its siblings (and their dependencies, e.g. ``lmdb`` for LSUN)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for a package's ``__init__.py`` exporting ``names``
    (``{name: ".module"}``, modules relative to ``package``).

    Use: ``__all__, __getattr__, __dir__ = lazy_exports(__name__, {"AdversarialModule": ".module"})``.
    ``getattr(package, name)`` imports the module and returns its attribute; any other name raises
    AttributeError as usual.
    """
    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name], package), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return sorted(names), __getattr__, __dir__
