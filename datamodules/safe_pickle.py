"""A restricted unpickler for dataset files that come as Python pickles (CIFAR-10's batches).

``pickle.load`` runs whatever callable a pickle names, so a doctored dataset file could execute code.
:class:`RestrictedUnpickler` resolves only an explicit allow-list of globals and refuses everything
else *before* anything is called. The default allow-list is exactly what a numpy array needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, and ``_codecs.encode`` by
which Python 3 writes bytes in protocols 0-2); dicts, lists, bytes, str
and ints need no global at all.
"""

from __future__ import annotations

import codecs
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import InputError


def _numpy_reconstruct():
    # numpy >= 2 moved numpy.core to numpy._core; old pickles name the former, new ones the latter.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


#: The globals a pickled numpy array (pickle protocols 0-4) needs, and nothing else. Both spellings of
#: the module are the same function: ``numpy.core`` (the CIFAR-10 files, written by numpy 1.x under
#: Python 2) and ``numpy._core`` (pickles written by numpy >= 2).
NUMPY_ARRAY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # pickle protocols 0-2 written by Python 3 spell every bytes object (an array's buffer) as
    # _codecs.encode(<latin-1 str>, "latin1"): it builds bytes from a str and calls nothing else (torch's
    # weights_only unpickler allows it for the same reason)
    ("_codecs", "encode"): codecs.encode,
}


class PickleFileError(InputError, pickle.UnpicklingError):
    """A dataset pickle that names a forbidden global or is corrupt: an :class:`~utils.errors.InputError`
    (the entry points print it as one line, naming the file) and a ``pickle.UnpicklingError``."""


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` resolves only the ``allowed`` globals.

    Args:
        file: a binary file object to read from.
        allowed: ``{(module, name): object}`` of the only globals the pickle may name; the objects are
            returned directly (no import happens). Default: :data:`NUMPY_ARRAY_GLOBALS`.
        source: the file's path, named in error messages.
        **kwargs: passed on to ``pickle.Unpickler`` (e.g. ``encoding="bytes"`` for Python 2 pickles).

    Raises:
        PickleFileError: (from :meth:`load`; a ``pickle.UnpicklingError`` and an ``InputError``) when the
            pickle names any global outside ``allowed``;
            the message names the global and ``source``. Nothing named by the pickle is called.
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], Any] | None = None, source: str = "<pickle>",
                 **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.allowed = dict(NUMPY_ARRAY_GLOBALS if allowed is None else allowed)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in self.allowed) or "nothing"
            raise PickleFileError(
                f"{self.source}: refusing to load global '{module}.{name}' from this pickle; a dataset pickle "
                f"may only name {allowed}. The file is not a genuine dataset file (or was re-saved with other "
                f"objects in it): replace it with the original download."
            ) from None


def load_restricted_pickle(path: str | os.PathLike, allowed: Mapping[tuple[str, str], Any] | None = None,
                           encoding: str = "bytes") -> Any:
    """Load the pickle at ``path`` with :class:`RestrictedUnpickler`.

    Args:
        path: the pickle file.
        allowed: the permitted globals (default :data:`NUMPY_ARRAY_GLOBALS`).
        encoding: how Python 2 ``str`` objects are decoded; ``"bytes"`` keeps them as ``bytes`` (so the
            CIFAR-10 dict keys are ``b"data"``, ``b"labels"``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        PickleFileError: (a ``pickle.UnpicklingError`` and an ``InputError``) if the pickle names a forbidden
            global, or is truncated/corrupt; the message names ``path``.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, allowed=allowed, source=str(path), encoding=encoding).load()
        except pickle.UnpicklingError as e:
            if str(path) in str(e):
                raise
            raise PickleFileError(f"{path}: corrupt or truncated pickle ({e})") from e
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
            raise PickleFileError(
                f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e}); replace it with the original "
                f"download"
            ) from e
