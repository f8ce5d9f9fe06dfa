"""What a multirun leaves: ``summary.csv`` and ``summary.md`` in the sweep folder, one row per job.

:class:`SweepSummary` is a Hydra callback (registered in conf/hydra/default.yaml, so every multirun has it,
the basic sweeper's and Optuna's alike; a single run it leaves alone). Each job writes ``sweep_job.json`` in
its folder when it starts and when it ends (how it ended, its return value, its wall time): a record that
survives launchers which run jobs in other processes (submitit). At the end of the multirun -- also when a
failed job makes the sweeper raise, or a signal stops it -- the callback reads every job folder and writes
and prints the table:

- ``overrides``: the job's command-line overrides (``.hydra/overrides.yaml``);
- ``metric``, ``best``, ``step``: the job's ``optimized_metric``, its best value (``optimized_mode``: min
  or max) among the rows of the job's CSV log (``csv/metrics.csv``, :mod:`utils.csv_logger`) and the
  Lightning step it was logged at; without a CSV log (``debug=fdr`` logs nothing), the value the job
  returned (``train.py``'s ``optimized_metric`` at its end) and the step it ended at (``status.json``);
- ``status``: ``finished``, ``failed`` (``error``: the first line of the error), ``preempted`` or
  ``interrupted`` (the run's ``status.json``, :mod:`utils.run_status`), ``running`` (started, never ended:
  a killed process) or ``unknown``;
- ``wall_s``: seconds from the job's start to its end.
"""

from __future__ import annotations

import atexit
import csv
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from utils.errors import first_line
from utils.job_dirname import fixed_keys, register_resolver

log = logging.getLogger("genforge")

#: each job's record, in its folder
JOB_RECORD = "sweep_job.json"
#: the summary's file names, in the sweep folder
SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"


@dataclass
class JobRow:
    """One job of a sweep, as the summary shows it.

    Attributes:
        job: the job number (``hydra.job.num``), or ``None`` for a folder whose name does not start with one.
        folder: the job folder's name, relative to the sweep folder.
        overrides: the job's overrides (``.hydra/overrides.yaml``; in ``summary.csv`` space-separated).
        metric: the optimized metric's name (``optimized_metric``), or ``""`` when unknown.
        mode: ``"min"`` or ``"max"`` (``optimized_mode``).
        best: its best value, or ``None`` when the job logged and returned none.
        step: the Lightning step of the best value (its ``global_step``), or ``None``.
        status: ``finished``, ``failed``, ``preempted``, ``interrupted``, ``running`` or ``unknown``.
        error: the first line of the error that failed the job, or ``""``.
        wall_s: seconds from the job's start to its end, or ``None`` when unknown.
    """

    job: int | None
    folder: str
    overrides: list[str]
    metric: str = ""
    mode: str = "min"
    best: float | None = None
    step: int | None = None
    status: str = "unknown"
    error: str = ""
    wall_s: float | None = None


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` when it is missing or unreadable (a job killed while writing)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update_record(job_dir: Path, **fields_: Any) -> None:
    """Add ``fields_`` to ``job_dir``'s :data:`JOB_RECORD`, written atomically."""
    from utils.io import atomic_path

    record = {**_read_json(job_dir / JOB_RECORD), **fields_}
    with atomic_path(job_dir / JOB_RECORD) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, else ``None``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_logged(job_dir: Path, metric: str, mode: str) -> tuple[float, int | None] | None:
    """The best finite value of column ``metric`` in the job's CSV log (``job_dir/**/metrics.csv``, the first
    in sorted order) and the ``step`` of its row: the smallest for ``mode="min"``, the largest for ``"max"``
    (the first row on ties). ``None`` when there is no log or the column has no finite value."""
    from utils.csv_logger import read_rows

    for path in sorted(job_dir.rglob("metrics.csv")):
        _, rows = read_rows(str(path))
        logged = [(value, row.get("step")) for row in rows if (value := _finite(row.get(metric))) is not None]
        if logged:
            value, step = (max if mode == "max" else min)(logged, key=lambda pair: pair[0])
            return value, int(float(step)) if _finite(step) is not None else None
    return None


def job_row(job_dir: Path) -> JobRow:
    """The summary row of the job whose folder is ``job_dir`` (see the module's docstring for each field)."""
    import yaml

    record, status = _read_json(job_dir / JOB_RECORD), _read_json(job_dir / "status.json")
    try:
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        overrides = record.get("overrides", [])
    number = re.match(r"\d+", job_dir.name)
    row = JobRow(job=int(number.group()) if number else record.get("num"), folder=job_dir.name,
                 overrides=[str(o) for o in overrides], metric=str(record.get("metric") or ""),
                 mode=str(record.get("mode") or "min"))
    # how it ended: Hydra's account of the job when it reached on_job_end, else the run's own status.json
    # (a signal ends a job with SystemExit, which Hydra does not catch)
    row.status = record.get("status") or status.get("status") or ("running" if record else "unknown")
    if row.status == "failed":
        row.error = record.get("error") or status.get("error") or ""
    best = best_logged(job_dir, row.metric, row.mode) if row.metric else None
    if best is None and _finite(record.get("return_value")) is not None:
        best = _finite(record["return_value"]), status.get("global_step")
    if best is not None:
        row.best, row.step = best
    started, ended = _finite(record.get("started")), _finite(record.get("ended"))
    if started is not None and ended is None and (job_dir / "status.json").is_file():
        ended = (job_dir / "status.json").stat().st_mtime
    if started is not None and ended is not None:
        row.wall_s = round(ended - started, 3)
    return row


def collect_rows(sweep_dir: Path) -> list[JobRow]:
    """The rows of every job folder in ``sweep_dir`` (an immediate sub-folder holding a job record or
    Hydra's ``.hydra/overrides.yaml``), in job-number order."""
    folders = [p for p in Path(sweep_dir).iterdir() if p.is_dir() and not p.name.startswith(".")
               and ((p / JOB_RECORD).is_file() or (p / ".hydra" / "overrides.yaml").is_file())]
    rows = [job_row(folder) for folder in folders]
    return sorted(rows, key=lambda row: (row.job is None, row.job if row.job is not None else 0, row.folder))


def _cell(value: Any, digits: str = ".6g") -> str:
    """A table cell: ``""`` for ``None``, floats in ``digits`` format."""
    if value is None:
        return ""
    return format(value, digits) if isinstance(value, float) else str(value)


def _key(override: str) -> str:
    """The key of override ``override`` without its ``+``/``~`` prefix (``+trainer.x=1`` -> ``trainer.x``)."""
    return override.partition("=")[0].lstrip("+~")


def markdown_table(rows: list[JobRow], fixed: list[str] = ()) -> str:
    """The rows as a Markdown table: job, overrides, metric (mode), best, step, status (with the error's
    first line), wall time in seconds; ``|`` in a cell is escaped. The overrides of the keys in ``fixed``
    (those every job shares, :func:`utils.job_dirname.fixed_keys`) are left out of the rows and listed
    once above the table."""
    shared = [o for o in (rows[0].overrides if rows else []) if _key(o) in set(fixed)]
    lines = [f"Every job: `{' '.join(shared)}`", ""] if shared else []
    lines += ["| job | overrides | metric | best | step | status | wall (s) |",
              "|---:|---|---|---:|---:|---|---:|"]
    for row in rows:
        status = f"{row.status}: {row.error}" if row.error else row.status
        metric = f"{row.metric} ({row.mode})" if row.metric else ""
        varied = " ".join(o for o in row.overrides if _key(o) not in set(fixed))
        cells = [_cell(row.job), f"`{varied}`" if varied else "", metric, _cell(row.best),
                 _cell(row.step), status, _cell(row.wall_s, ".1f")]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: Path, rows: list[JobRow], fixed: list[str] = ()) -> tuple[Path, Path]:
    """Write ``rows`` as :data:`SUMMARY_CSV` (the fields of :class:`JobRow`, all overrides) and
    :data:`SUMMARY_MD` (:func:`markdown_table` with ``fixed``) in ``sweep_dir``, each atomically; returns
    their paths."""
    from utils.io import atomic_path

    csv_path, md_path = Path(sweep_dir) / SUMMARY_CSV, Path(sweep_dir) / SUMMARY_MD
    with atomic_path(csv_path) as temporary, open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[f.name for f in fields(JobRow)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(v) if isinstance(v, list) else "" if v is None else v
                             for k, v in asdict(row).items()})
    with atomic_path(md_path) as temporary:
        temporary.write_text(f"# Sweep {Path(sweep_dir).name}\n\n{markdown_table(rows, fixed)}")
    return csv_path, md_path


def _multirun(config: DictConfig) -> bool:
    """Whether ``config`` is a multirun job's (``hydra.mode``)."""
    from hydra.types import RunMode

    return OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN


class SweepSummary(Callback):
    """Hydra callback: a record per multirun job (:data:`JOB_RECORD`) and, at the end of the multirun, the
    summary table of every job (:func:`write_summary`), printed too. A single run it leaves alone.

    The summary is written by ``on_multirun_end`` or, when the sweep stops before it (a failed job makes
    Hydra's sweepers raise; a signal ends the process), at the interpreter's exit. Installs the
    ``gf.job_dirname`` resolver the job folders are named with (:mod:`utils.job_dirname`).
    """

    def __init__(self) -> None:
        register_resolver()
        self._sweep_dir: Path | None = None
        self._fixed: list[str] = []  # the keys every job of this multirun shares

    def __setstate__(self, state: dict) -> None:
        """Unpickled in a launcher's remote process: the job folder's resolver is needed there too."""
        self.__dict__.update(state)
        register_resolver(self._fixed)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember the sweep folder and the overrides every job shares (left out of the job folders' names);
        make sure the summary is written even if the sweep raises."""
        self._sweep_dir = Path(str(config.hydra.sweep.dir))
        self._fixed = fixed_keys(config.hydra.overrides.task)
        register_resolver(self._fixed)
        atexit.register(self.summarize)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Record the job's start time, number, overrides and optimized metric in its folder."""
        if not _multirun(config):
            return
        metric, mode = (OmegaConf.select(config, key, throw_on_resolution_failure=False)
                        for key in ("optimized_metric", "optimized_mode"))
        _update_record(Path(config.hydra.runtime.output_dir), started=time.time(), num=config.hydra.job.num,
                       overrides=list(config.hydra.overrides.task), metric=metric, mode=mode or "min")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Record how the job ended: ``finished`` with its return value, or ``failed`` with its error's first
        line, and the end time."""
        from hydra.core.utils import JobStatus

        if not _multirun(config):
            return
        fields_: dict[str, Any] = {"ended": time.time()}
        if job_return.status == JobStatus.COMPLETED:
            fields_.update(status="finished", return_value=_finite(job_return.return_value))
        else:  # _return_value: the public property re-raises the job's error
            fields_.update(status="failed", error=first_line(job_return._return_value))
        _update_record(Path(config.hydra.runtime.output_dir), **fields_)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write and print the summary."""
        self.summarize()

    def summarize(self) -> list[JobRow]:
        """Write ``summary.csv`` and ``summary.md`` in the sweep folder and print the table; once per multirun
        (a second call does nothing). Returns the rows."""
        if self._sweep_dir is None or not self._sweep_dir.is_dir():
            return []
        sweep_dir, self._sweep_dir = self._sweep_dir, None
        atexit.unregister(self.summarize)
        rows = collect_rows(sweep_dir)
        csv_path, md_path = write_summary(sweep_dir, rows, self._fixed)
        table = markdown_table(rows, self._fixed)
        print(f"\nSweep summary ({len(rows)} jobs): {csv_path}, {md_path}\n{table}", flush=True)
        return rows
