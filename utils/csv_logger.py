"""Lightning's CSVLogger, made safe for a writer that starts on an existing ``metrics.csv``.

Two cases start a writer on a file that already holds rows:

* Under ``ddp_spawn`` the test stage runs in fresh processes whose CSV writer has not seen the columns
  the fit stage wrote; Lightning 2.6 then rewrites the file with only the new columns and fails ("dict
  contains fields not in fieldnames"). Here the rewrite keeps the columns already in the file.
* A run resumed into its own folder (``ckpt_path=<run>/checkpoints/last.ckpt hydra.run.dir=<run>``, or
  a requeued cluster job) starts a new writer there. Lightning's writer deletes the old ``metrics.csv``
  ("Previous log files in this directory will be deleted"); here the new rows are appended to it, so the
  epochs before the crash stay in the log. After :meth:`CSVLogger.resume` (called by
  :class:`callbacks.resumed_history.ResumedHistory` when the Trainer resumes), the resumed run's first row
  first drops the rows logged after the checkpoint was saved and the old run's test rows, so the file
  reads as one history.

A header change rewrites the file through :func:`utils.io.atomic_path` (on a local disk), so a crash
mid-rewrite leaves the old file whole.
"""

from __future__ import annotations

import csv
import logging

from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.loggers.logger import rank_zero_experiment
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from utils.io import atomic_path

log = logging.getLogger("genforge")


def read_rows(path: str) -> tuple[list[str], list[dict]]:
    """The header and the rows of the CSV file ``path``."""
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames or [], list(reader)


def write_rows(path: str, header: list[str], rows: list[dict]) -> None:
    """Replace the CSV file ``path`` by ``header`` and ``rows``, atomically (:func:`utils.io.atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


class _HeaderKeepingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an existing ``metrics.csv`` (Lightning deletes it): new rows are appended."""

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = csv.DictReader(file).fieldnames or []
        self.metrics_keys = sorted(set(fieldnames) | set(header))
        if not isinstance(self._fs, LocalFileSystem):  # a remote file system: Lightning's rewrite in place
            super()._rewrite_with_new_header(self.metrics_keys)
            return
        write_rows(self.metrics_file_path, self.metrics_keys, read_rows(self.metrics_file_path)[1])


class CSVLogger(_LightningCSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` (same arguments) whose ``metrics.csv`` survives a new
    writer: a writer in a new process (``ddp_spawn``'s test stage) keeps the columns of the rows already
    in the file, and a run resumed into the same folder appends to the file instead of deleting it."""

    _resumed = False  # set by resume(): the next row first drops the rows it supersedes

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HeaderKeepingWriter(log_dir=self.log_dir)
        return self._experiment

    def resume(self) -> None:
        """The Trainer resumed from a checkpoint: before the first row this run logs, at step ``S``, drop
        the old rows at step ``S`` or later (logged after the checkpoint was saved; this run logs them again)
        and the old run's test rows (a ``test/`` value: this run tests again at its end). Lightning's
        ``step`` is its count of training batches, which the checkpoint restores."""
        self._resumed = True

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if self._resumed and step is not None:
            self._resumed = False
            self.drop_rows_from(step)
        super().log_metrics(metrics, step)

    def drop_rows_from(self, step: int) -> int:
        """Drop from ``metrics.csv`` the rows at logging step ``step`` or later and every test row (see
        :meth:`resume`). A remote or missing file is left as it is. Returns the number of rows dropped.

        Raises:
            OSError: the file cannot be rewritten (the old file stays whole: the rewrite is atomic).
        """
        path = self.experiment.metrics_file_path
        if not isinstance(self._fs, LocalFileSystem) or not self._fs.isfile(path):
            return 0
        header, rows = read_rows(path)

        def kept(row: dict) -> bool:
            stale = row.get("step") not in (None, "") and float(row["step"]) >= step
            tested = any(value not in (None, "") for key, value in row.items() if key and key.startswith("test/"))
            return not stale and not tested

        keep = [row for row in rows if kept(row)]
        if len(keep) < len(rows):
            write_rows(path, header, keep)
            log.info(f"{path}: resumed at step {step}: dropped {len(rows) - len(keep)} rows logged after the "
                     "checkpoint or by the old run's test (this run logs them again)")
        return len(rows) - len(keep)
