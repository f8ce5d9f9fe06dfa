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


def test_a_resumed_run_drops_the_rows_after_its_checkpoint_and_the_old_test_row(tmp_path):
    # the first run: training rows at steps 0-9, a validation row at step 9, its test row at step 10
    first = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    for step in range(10):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.log_metrics({"val/loss": 0.5}, step=9)
    first.log_metrics({"test/loss": 0.25}, step=10)
    first.save()
    # resumed from a checkpoint taken after step 5: its first row is step 6
    resumed = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    resumed.resume()
    for step in range(6, 12):
        resumed.log_metrics({"train/loss": 100.0 + step}, step=step)
    resumed.log_metrics({"test/loss": 0.125}, step=12)
    resumed.save()
    header, rows = _rows(resumed.experiment.metrics_file_path)
    assert [int(row["step"]) for row in rows] == [*range(12), 12]
    assert [float(row["train/loss"]) for row in rows[:12]] == [*map(float, range(6)), *(100.0 + s for s in range(6, 12))]
    assert [row["test/loss"] for row in rows] == [""] * 12 + ["0.125"]  # the old test row is gone
    assert all(row["val/loss"] == "" for row in rows)  # logged after the checkpoint: this run logs it again
    # without resume() a new writer only appends (ddp_spawn's test stage)
    again = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    again.log_metrics({"test/loss": 0.0625}, step=12)
    again.save()
    assert len(_rows(again.experiment.metrics_file_path)[1]) == 14
