"""How a run ended, told truthfully to every logger and written into the run folder."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("genforge")

#: the statuses a run ends with
STATUSES = ("finished", "failed", "preempted", "interrupted")


@dataclass
class RunStatus:
    """How a run ended.

    Attributes:
        status: ``"finished"`` (exit 0), ``"failed"`` (an error, exit 1), ``"preempted"`` (SIGTERM or the
            Slurm requeue signal, exit 143 / 140) or ``"interrupted"`` (Ctrl-C, exit 130).
        exit_code: the process's exit status.
        signal: the signal's name (``"SIGTERM"``), or ``None``.
        error: the first line of the error that failed the run, or ``None``.
        checkpoint: the checkpoint written for the step the signal came at, or ``None``.
        requeued: the Slurm job was requeued (it resumes from ``checkpoint``).
        global_step, generator_steps, epoch: where the run stood (``generator_steps`` for the GAN family).
        ended: when it ended (ISO 8601 with the time zone), set by :func:`end_run`.
    """

    status: str = "failed"
    exit_code: int = 1
    signal: str | None = None
    error: str | None = None
    checkpoint: str | None = None
    requeued: bool = False
    global_step: int | None = None
    generator_steps: int | None = None
    epoch: int | None = None
    ended: str | None = None


def finish_wandb(status: RunStatus) -> None:
    """Close the W&B run, if one is open, with the run's exit status, so that W&B shows it as finished,
    failed or (after ``mark_preempting``) preempted, and the next job of a multirun starts a fresh run."""
    wandb = sys.modules.get("wandb")
    if wandb is None or getattr(wandb, "run", None) is None:
        return
    if status.status == "preempted":
        wandb.run.mark_preempting()
    wandb.finish(exit_code=status.exit_code)


def end_run(status: RunStatus, loggers: list, output_dir: str | Path | None, rank: int = 0) -> None:
    """Tell every logger how the run ended and record it in ``<output_dir>/status.json``.

    - W&B: :func:`finish_wandb` (exit code, preempting mark);
    - loggers with an ``end_session(status)`` method (genforge's TensorBoard logger: the HPARAMS session
      status) get ``status.status``;
    - rank 0 writes ``status.json`` (the fields of :class:`RunStatus`) atomically in the run folder, beside
      the CSV logger's ``csv/metrics.csv``: the status a sweep's summary and a person read.

    A logger that fails here is reported in one warning; the others are still told.

    Raises:
        ValueError: an unknown ``status.status``.
    """
    from utils.io import atomic_path

    if status.status not in STATUSES:
        raise ValueError(f"unknown run status {status.status!r}; expected one of {STATUSES}")
    status.ended = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    for logger in loggers:
        end_session = getattr(logger, "end_session", None)
        if callable(end_session):
            try:
                end_session(status.status)
            except Exception as error:  # noqa: BLE001 - one logger must not keep the others from the truth
                log.warning(f"{type(logger).__name__}: could not record the run's status: {error}")
    finish_wandb(status)
    if rank == 0 and output_dir is not None and Path(output_dir).is_dir():
        with atomic_path(Path(output_dir) / "status.json") as temporary:
            temporary.write_text(json.dumps(asdict(status), indent=2) + "\n")
