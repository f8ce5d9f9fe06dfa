"""A run stopped by a signal (Slurm's SIGTERM, Ctrl-C, the Slurm requeue signal) keeps the step it reached:
``checkpoints/last.ckpt`` of that step, one line saying so, and an exit status that says it was stopped."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import torch

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from utils.job_dirname import override_argument

log = logging.getLogger("genforge")

#: how each signal ends a run: the run status the loggers are closed with
STATUS = {signal.SIGTERM: "preempted", signal.SIGINT: "interrupted"}


def last_checkpoint_path(trainer: Trainer) -> Path:
    """Where the run keeps ``last.ckpt``: the folder of the checkpoint callback that writes it (genforge's
    ``callbacks.last_checkpoint``, ``filename: last``, or one with ``save_last``), else
    ``<trainer.default_root_dir>/checkpoints/last.ckpt``."""
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]
    for callback in sorted(callbacks, key=lambda cb: cb.filename != cb.CHECKPOINT_NAME_LAST):
        if callback.filename == callback.CHECKPOINT_NAME_LAST or callback.save_last:
            return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes for this Slurm job (``<array job>_<task>`` for an array task, as
    Lightning's ``SLURMEnvironment`` builds it), or ``None`` outside Slurm."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


class Interruption(Callback):
    """End a run that a signal stops with a checkpoint of the step it reached, one line, and an exit status.

    Lightning's part: once told of SIGTERM (Slurm's preemption and time-limit signal, ``timeout``,
    ``kill``) the Trainer finishes the current batch and raises ``SIGTERMException`` (a ``SystemExit``
    without a code, so by itself the process would exit 0). This callback adds, while the Trainer fits:

    - **SIGTERM** is handled here instead of by Lightning's handler, which under DDP broadcasts from inside
      the signal handler and deadlocks the ranks: a signal is noted, and at the end of the current training
      batch the ranks agree (one collective per batch under DDP) and all stop after that same batch. A
      signal during validation lets the validation finish; training stops after the next batch. A signal
      before training (the one-time costs of ``on_fit_start``, the sanity check) stops it after its first
      batch. The handlers are those of the fit only: ``setup`` installs them, ``teardown`` restores.
    - **Ctrl-C** (SIGINT) stops the same way, after the current batch (a second Ctrl-C aborts at once,
      without a checkpoint: the state mid-step is not one to resume from).
    - **The Slurm requeue signal** (``requeue_signal``, ``USR2``: the one submitit asks Slurm to send
      ``signal_delay_s`` before the time limit) stops the same way and then requeues the job
      (``scontrol requeue <job id>``, rank 0, only inside a Slurm job); the requeued job runs the same
      command in the same run folder, and ``train.py`` resumes it from ``last.ckpt``.
    - On any of them, when the Trainer was fitting (not in the sanity check nor under ``fast_dev_run``), a
      checkpoint of the current step is written to the run's ``last.ckpt`` (:func:`last_checkpoint_path`)
      by ``trainer.save_checkpoint`` -- a normal save: weights, optimizers, schedulers, loop progress and
      the module's counts (generator iterations, critic count) -- through the run's checkpoint IO (atomic
      in genforge), and one line names the signal, the step and the checkpoint.

    After the run, :attr:`received` is the signal (``None`` if none came), :attr:`status` what the loggers
    should be closed with (``"preempted"`` for SIGTERM and the requeue signal, ``"interrupted"`` for
    Ctrl-C) and :attr:`exit_code` ``128 + signal number`` (143 for SIGTERM, 130 for Ctrl-C, as shells
    report them); ``train.py`` exits with it.

    Args:
        requeue_signal: the signal name (``"USR2"``, ``"SIGUSR1"``) that requeues a Slurm job, or ``None``.

    Raises:
        ValueError: ``requeue_signal`` names no signal (names the config key ``requeue_signal``).
    """

    def __init__(self, requeue_signal: str | None = "USR2") -> None:
        super().__init__()
        self.requeue_signal = None
        if requeue_signal:
            name = str(requeue_signal).upper()
            name = name if name.startswith("SIG") else f"SIG{name}"
            if not isinstance(getattr(signal, name, None), signal.Signals):
                raise ValueError(f"requeue_signal={requeue_signal!r} is not a signal name (e.g. USR2, USR1)")
            self.requeue_signal = signal.Signals[name]
        self.received: signal.Signals | None = None
        self.checkpoint: Path | None = None
        self.requeued = False
        self._pending = False  # a signal noted, not yet acted on
        self._previous: dict = {}  # the handlers found at setup

    # ------------------------------------------------------------------ after the run
    @property
    def status(self) -> str | None:
        """``"preempted"``, ``"interrupted"`` or ``None`` (no signal)."""
        if self.received is None:
            return None
        return STATUS.get(self.received, "preempted")

    @property
    def exit_code(self) -> int | None:
        """``128 + signal number`` of the signal that stopped the run, or ``None``."""
        return None if self.received is None else 128 + int(self.received)

    def record(self, status) -> None:
        """Fill the :class:`utils.run_status.RunStatus` ``status`` with how the signal ended the run (status,
        exit code, signal, checkpoint, requeue); nothing when no signal came."""
        if self.received is None:
            return
        status.status, status.exit_code, status.signal = self.status, self.exit_code, self.received.name
        status.checkpoint = None if self.checkpoint is None else str(self.checkpoint)
        status.requeued = self.requeued

    # ------------------------------------------------------------------ signals
    def _signals(self) -> list[signal.Signals]:
        """The signals handled while fitting: SIGTERM, SIGINT and, inside a Slurm job, the requeue signal."""
        requeue = [self.requeue_signal] if self.requeue_signal is not None and slurm_job_id() is not None else []
        return [signal.SIGTERM, signal.SIGINT, *requeue]

    def _install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in self._signals():
                signal.signal(signum, self._note)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # from the start of fitting (the one-time costs of on_fit_start, the sanity check): a signal is
        # noted and acted on after the first training batch
        if stage == "fit" and threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.getsignal(signum) for signum in self._signals()}
            self._install()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # again, after the Trainer registered its own SIGTERM handler beside this one (it restores what it
        # found at its teardown): Lightning 2.6's handler broadcasts over the process group from inside the
        # signal handler, at whatever collective the rank is in, which deadlocks DDP
        self._install()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._restore()

    def _restore(self) -> None:
        """Put back the handlers found at ``setup`` (after fitting, and after an exception in it)."""
        if threading.current_thread() is threading.main_thread():
            for signum, handler in getattr(self, "_previous", {}).items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _note(self, signum: int, frame) -> None:
        """The signal handler: note the first signal; the run stops at the end of the current training batch
        (:meth:`on_train_batch_end`). A second Ctrl-C raises ``KeyboardInterrupt`` at once."""
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.received, self._pending = signal.Signals(signum), True
        log.warning(f"{self.received.name}: stopping after this batch and saving last.ckpt"
                    + (" (Ctrl-C again to stop at once, without a checkpoint)" if signum == signal.SIGINT else ""))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int):
        """Stop after this batch when a signal came, on every rank at the same batch: under DDP the ranks
        agree first (any rank's signal stops all, a collective per batch), then the Trainer is told as its own
        SIGTERM handler would (``received_sigterm``): it raises ``SIGTERMException`` after the batch."""
        pending = self._pending
        if trainer.world_size > 1:
            pending = trainer.strategy.reduce_boolean_decision(pending, all=False)
            if pending:  # the signal one rank got, for every rank's exit status
                number = torch.tensor(int(self.received or 0), device=trainer.strategy.root_device)
                self.received = signal.Signals(int(trainer.strategy.reduce(number, reduce_op="max")))
        if pending:
            self._pending = False
            trainer._signal_connector.received_sigterm = True  # what Lightning's SIGTERM handler sets

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore()
        if isinstance(exception, KeyboardInterrupt):
            self.received = signal.SIGINT
            log.error(f"SIGINT: stopped at once at {self._where(trainer, pl_module)}; no checkpoint written for "
                      f"it (last.ckpt keeps the previous save)")
            return
        if not isinstance(exception, SIGTERMException):
            return
        self.received = self.received or signal.SIGTERM
        saved = ""
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking and not trainer.fast_dev_run:
            self.checkpoint = last_checkpoint_path(trainer)
            trainer.save_checkpoint(self.checkpoint, weights_only=False)
            saved = f"; saved {self.checkpoint}"
        if self.received == self.requeue_signal and trainer.is_global_zero:
            self.requeued = self._requeue()
        if trainer.is_global_zero:
            what = "requeued the Slurm job, which resumes from it" if self.requeued else (
                f"resume with the same command plus {override_argument('hydra.run.dir', str(trainer.default_root_dir))} "
                "ckpt_path=last"
                if saved else
                "nothing to save (not fitting)")
            log.error(f"{self.received.name}: stopped at {self._where(trainer, pl_module)}{saved}; {what}")

    @staticmethod
    def _where(trainer: Trainer, pl_module: LightningModule) -> str:
        """``generator iteration 37 (global step 74, epoch 0)`` or ``global step 74 (epoch 0)``."""
        generator_steps = getattr(pl_module, "generator_steps", None)
        where = f"global step {trainer.global_step:,}, epoch {trainer.current_epoch}"
        if generator_steps is None:
            return where
        return f"generator iteration {generator_steps:,} ({where})"

    @staticmethod
    def _requeue() -> bool:
        """``scontrol requeue <job id>``; True when it succeeded (a failure is logged)."""
        job = slurm_job_id()
        if job is None:
            return False
        try:
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.error(f"could not requeue Slurm job {job}: {error}")
            return False
        if result.returncode != 0:
            log.error(f"scontrol requeue {job} failed ({result.returncode}): {result.stderr.strip()}")
            return False
        return True
