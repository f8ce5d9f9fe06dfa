"""utils.csv_logger.CSVLogger: a second writer on the same folder keeps the first one's rows and columns."""

from __future__ import annotations

import csv

from utils.csv_logger import CSVLogger


def _rows(path):
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def _log(tmp_path, steps, metrics):
    logger = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    for step in steps:
        logger.log_metrics({key: value * step for key, value in metrics.items()}, step=step)
    logger.save()
    return logger.experiment.metrics_file_path


def test_a_run_resumed_into_its_folder_appends_to_metrics_csv(tmp_path):
    # the crashed run: epochs 0 and 1 logged val/loss at steps 10 and 20
    path = _log(tmp_path, [10, 20], {"epoch": 0.05, "val/loss": 1.5})
    # the resumed run's new writer on the same folder logs steps 30 and 40 and a new column
    assert _log(tmp_path, [30, 40], {"epoch": 0.05, "val/loss": 1.5, "test/loss": 2.0}) == path
    header, rows = _rows(path)
    assert header == ["epoch", "step", "test/loss", "val/loss"]
    assert [int(row["step"]) for row in rows] == [10, 20, 30, 40]
    assert [float(row["val/loss"]) for row in rows] == [15.0, 30.0, 45.0, 60.0]
    # the old rows have no value in the new column; the new rows do
    assert [row["test/loss"] for row in rows] == ["", "", "60.0", "80.0"]
    # the header change went through a temporary file, renamed onto metrics.csv: none is left behind
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["metrics.csv"]
