"""Lightning's CSVLogger, made safe for a writer that starts on an existing ``metrics.csv``.

Under ``ddp_spawn`` the test stage runs in fresh processes whose CSV writer has not seen the columns the
fit stage wrote; Lightning 2.6 then rewrites the file with only the new columns and fails ("dict contains
fields not in fieldnames"). Here the rewrite keeps the columns already in the file.
"""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class _HeaderKeepingWriter(ExperimentWriter):
    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        self.metrics_keys = sorted(set(fieldnames) | set(header))
        super()._rewrite_with_new_header(self.metrics_keys)


class CSVLogger(_LightningCSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` (same arguments) whose ``metrics.csv`` keeps the columns of
    rows already in the file when a writer in a new process adds columns."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HeaderKeepingWriter(log_dir=self.log_dir)
        return self._experiment
