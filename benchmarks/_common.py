"""Shared by the benchmarks: compose genforge's config as train.py would, print a table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/<name>.py`: the script's folder is benchmarks/
    sys.path.insert(0, str(ROOT))

from tests.hydra_helpers import compose_train
from utils.bootstrap import bootstrap

bootstrap()


def compose(overrides: list[str], output_dir: Path):
    """The config ``python train.py <overrides>`` runs, writing into ``output_dir``, without the hydra node."""
    from omegaconf import open_dict

    cfg = compose_train(overrides, output_dir)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def last_values(metrics_csv: Path) -> dict[str, float]:
    """The last logged value of every column of a Lightning ``metrics.csv``."""
    import csv

    values: dict[str, float] = {}
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return values


def train_run(overrides: list[str], run_dir: Path) -> tuple[dict[str, float] | None, float]:
    """Run ``python train.py <overrides> logger=csv`` into ``run_dir`` (W&B offline); returns the last value
    of every logged metric (``None`` if the run failed, its stderr printed) and the wall time in seconds."""
    import shutil
    import subprocess
    import time

    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "train.py", *overrides, "logger=csv", f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, WANDB_MODE="offline"))
    seconds = time.perf_counter() - start
    if proc.returncode:
        print(f"{' '.join(overrides)}: train.py failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None, seconds
    return last_values(run_dir / "csv" / "metrics.csv"), seconds


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def batch_timer(warmup: int):
    """A Lightning callback timing training batches after the first ``warmup``: ``.images`` seen and
    ``.start`` / ``.end`` (``time.perf_counter`` seconds) from the start of batch ``warmup`` to the end of
    the last; images/s = ``images / (end - start)``."""
    import time

    import pytorch_lightning as pl

    class Timer(pl.Callback):
        def __init__(self):
            self.start, self.end, self.images = None, None, 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= warmup:
                self.images += batch[0].shape[0]
                self.end = time.perf_counter()

    return Timer()
