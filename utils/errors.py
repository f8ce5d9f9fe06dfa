"""Errors in what a user gave (a config key, a file, a run folder), reported as one line by the entry points."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("genforge")
F = TypeVar("F", bound=Callable)


class InputError(ValueError):
    """Something a user gave is not what genforge expects: the message names the config key or the file and
    what was expected. ``train.py``, ``evaluate.py`` and ``colorize.py`` print it as one line (no
    traceback) and exit with status 1; ``HYDRA_FULL_ERROR=1`` shows the traceback as well.

    A ``ValueError``, so code that catches those keeps working."""


class MissingFileError(InputError, FileNotFoundError):
    """A file a config key names does not exist (also a ``FileNotFoundError``)."""


class UntrustedConfigError(InputError):
    """A saved run's config names a ``_target_`` outside the allowlist (see :mod:`utils.target_allowlist`)."""


def report_input_errors(main: F) -> F:
    """Decorate a Hydra task function so that an :class:`InputError` is reported as one line: printed to
    stderr as ``Error: <message>`` and written to the run's log file. A single run then exits with status 1
    (no traceback); in a multirun the error goes on to Hydra, which records the job as failed and runs the
    next one.

    Raises:
        SystemExit: status 1 on an :class:`InputError` in a single run.
        InputError: in a multirun, and always when ``HYDRA_FULL_ERROR=1`` (traceback wanted).
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except Exception as caught:  # an InputError, or one that instantiate or a DataLoader worker wrapped
            error = input_error_in(caught)
            if error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            message = " ".join(str(error).split())
            _report(message)
            if in_multirun():
                raise
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message (its type's name when it has none), what a run's
    ``status.json`` and a sweep's summary report; for Hydra's ``InstantiationException`` ("Error in call to
    target '...':"), that of the error it wraps (its ``__cause__``: ``model.n_critic must be >= 1, got 0``)."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return (str(error).strip().splitlines() or [type(error).__name__])[0].strip()


def input_error_in(error: BaseException) -> InputError | None:
    """The :class:`InputError` behind ``error``: itself, or the first one in its ``__cause__`` chain (Hydra's
    ``instantiate`` raises ``InstantiationException(...) from`` what a constructor raised), as one whose
    message is the original's last line when a DataLoader worker re-raised it (PyTorch prefixes the
    worker's traceback); ``None`` when there is none."""
    while error is not None and not isinstance(error, InputError):
        error = error.__cause__
    if error is not None and "Original Traceback" in str(error):
        import re

        raised = re.search(rf"^(?:[\w.]*\.)?{type(error).__name__}: (.*)\Z", str(error), re.M | re.S)
        return type(error)(raised.group(1).strip() if raised else str(error))
    return error


def _report(message: str) -> None:
    """``Error: message`` on stderr, and the message in every log file (the console handlers write stdout)."""
    print(f"Error: {message}", file=sys.stderr, flush=True)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in {*logging.getLogger().handlers, *log.handlers}:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def in_multirun() -> bool:
    """True inside a Hydra ``--multirun`` job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
