"""Lightning's CSVLogger, made safe for a writer that starts on an existing ``metrics.csv``.

Two cases start a writer on a file that already holds rows:

* Under ``ddp_spawn`` the test stage runs in fresh processes whose CSV writer has not seen the columns
  the fit stage wrote; Lightning 2.6 then rewrites the file with only the new columns and fails ("dict
  contains fields not in fieldnames"). Here the rewrite keeps the columns already in the file.
* A run resumed into its own folder (``ckpt_path=<run>/checkpoints/last.ckpt hydra.run.dir=<run>``, or
  a requeued cluster job) starts a new writer there. Lightning's writer deletes the old ``metrics.csv``
  ("Previous log files in this directory will be deleted"); here the new rows are appended to it, so the
  epochs before the crash stay in the log. Rows logged after the resumed checkpoint was saved appear
  twice, once from each run, with the same ``step``.

A header change rewrites the file through :func:`utils.io.atomic_path` (on a local disk), so a crash
mid-rewrite leaves the old file whole.
"""

from __future__ import annotations

import csv

from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from utils.io import atomic_path


class _HeaderKeepingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an existing ``metrics.csv`` (Lightning deletes it): new rows are appended."""

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows, header = list(reader), reader.fieldnames or []
        self.metrics_keys = sorted(set(fieldnames) | set(header))
        if not isinstance(self._fs, LocalFileSystem):  # a remote file system: Lightning's rewrite in place
            super()._rewrite_with_new_header(self.metrics_keys)
            return
        with atomic_path(self.metrics_file_path) as temporary, open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class CSVLogger(_LightningCSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` (same arguments) whose ``metrics.csv`` survives a new
    writer: a writer in a new process (``ddp_spawn``'s test stage) keeps the columns of the rows already
    in the file, and a run resumed into the same folder appends to the file instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HeaderKeepingWriter(log_dir=self.log_dir)
        return self._experiment
