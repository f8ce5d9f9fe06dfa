"""``debug=fdr`` wall time of every model preset: the smoke test a user runs first must take seconds.

Runs ``python train.py model=<preset> data=<its data> debug=fdr`` as a subprocess, twice per preset: cold (the
first run of this benchmark on that preset: one-time costs such as the FID feature network of an empty cache)
and warm (the same command again). Every preset in ``conf/model/`` is found by listing the folder; its data is
its family's (the package of its ``_target_``, :data:`FAMILY_DATA`; the PixelCNN family is also run on
``photos``). Prints a table: preset, data, cold s, warm s, pass/fail of the warm time against the target
(30 s), with the exit status of failed runs; each run's output is kept in ``--logs``.

    python benchmarks/fdr.py                                  # every preset, a fresh cache (cold = first use)
    python benchmarks/fdr.py --presets dcgan deep_gmm         # a subset (names or shell patterns: 'colorizer_*')
    python benchmarks/fdr.py --families pixelcnn --data photos --warm-only --cache user

The cache (``GENFORGE_CACHE``: FID feature networks, decoded-image caches) is a new temporary folder by
default, so the cold column includes building what a new user's first run builds; ``--cache user`` uses
the user's (whatever it holds), ``--cache DIR`` a given folder. The runs' folders and a fresh cache are
removed at the end; the logs stay. Timings depend on the machine's load: the table says the load average
before and after.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, markdown_table

from tests.hydra_helpers import CONF, preset_target

#: the data each method family is smoke-tested on (the family: the package of the preset's ``_target_``,
#: ``lightning_modules.<family>.``); the first is the one its presets' comments name, the others are extra rows
FAMILY_DATA = {"gan": ("mnist5k",), "colorization": ("photos",), "dcign": ("faces3d",),
               "deep_gmm": ("patches",), "pixelcnn": ("mnist5k", "photos")}
#: the wall-time target of a warm ``debug=fdr`` run (issue 31), seconds
TARGET_S = 30.0


def family(preset: str) -> str:
    """The method family of ``conf/model/<preset>.yaml``: ``lightning_modules.<family>.…`` of its target."""
    target = preset_target(preset) or ""
    parts = target.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "lightning_modules" else "?"


def default_data() -> str:
    """The ``data`` choice of ``conf/train.yaml``'s defaults list (what a run without ``data=`` gets)."""
    from omegaconf import OmegaConf

    for entry in OmegaConf.load(CONF / "train.yaml").defaults:
        if isinstance(entry, dict) and "data" in entry:
            return str(entry["data"])
    return "mnist5k"


def runs(presets: list[str], families: list[str] | None, data: list[str] | None) -> list[tuple[str, str, str]]:
    """``(preset, family, data)`` for every preset matching ``presets`` (shell patterns; empty: all) and
    ``families``, each on its family's data (or on ``data`` when given)."""
    found = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    chosen = [p for p in found if not presets or any(fnmatch.fnmatch(p, pattern) for pattern in presets)]
    missing = [p for p in presets if not any(fnmatch.fnmatch(f, p) for f in found)]
    if missing:
        raise SystemExit(f"no preset conf/model/<name>.yaml matches {missing}; presets: {found}")
    out = []
    for preset in chosen:
        fam = family(preset)
        if families and fam not in families:
            continue
        for d in data or FAMILY_DATA.get(fam, (default_data(),)):
            out.append((preset, fam, d))
    return out


def timed_run(preset: str, data: str, run_dir: Path, log: Path, env: dict, timeout: float,
              extra: list[str]) -> tuple[float, int | str]:
    """One ``train.py model=<preset> data=<data> debug=fdr`` in ``run_dir``, its output into ``log``;
    returns ``(wall seconds, exit status or "timeout")``. A run past ``timeout`` gets SIGTERM, then SIGKILL
    10 s later."""
    cmd = [sys.executable, "train.py", f"model={preset}", f"data={data}", "debug=fdr",
           f"hydra.run.dir={run_dir}", *extra]
    start = time.perf_counter()
    with open(log, "w") as out:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            code: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = "timeout"
    return time.perf_counter() - start, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=[], help="preset names or patterns (default: all)")
    parser.add_argument("--families", nargs="*", default=None, help=f"only these families ({sorted(FAMILY_DATA)})")
    parser.add_argument("--data", nargs="*", default=None, help="run on these data instead of each family's")
    parser.add_argument("--warm-only", action="store_true", help="one untimed warm-up, then the warm run only")
    parser.add_argument("--cache", default="fresh", help="GENFORGE_CACHE: fresh (a new temporary folder), user, "
                                                         "or a folder")
    parser.add_argument("--target", type=float, default=TARGET_S, help="warm wall-time target, seconds")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is stopped")
    parser.add_argument("--logs", type=Path, default=None, help="folder for each run's output "
                                                                "(default: a temporary folder, printed)")
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("overrides", nargs="*", help="extra overrides for every run (after --)")
    args = parser.parse_args()

    todo = runs(args.presets, args.families, args.data)
    work = Path(tempfile.mkdtemp(prefix="genforge-fdr-"))
    logs = args.logs or work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, WANDB_MODE="offline", PYTHONUNBUFFERED="1")
    if args.cache == "fresh":
        env["GENFORGE_CACHE"] = str(work / "cache")
    elif args.cache != "user":
        env["GENFORGE_CACHE"] = str(Path(args.cache).expanduser().resolve())
    print(f"{len(todo)} runs; logs in {logs}; GENFORGE_CACHE={env.get('GENFORGE_CACHE', '(the user cache)')}",
          flush=True)
    load_before = os.getloadavg()
    rows, failed = [], 0
    for preset, fam, data in todo:
        times: list[tuple[float, int | str]] = []
        for attempt in ("cold", "warm"):
            times.append(timed_run(preset, data, work / "runs" / f"{preset}-{data}-{attempt}",
                                   logs / f"{preset}-{data}-{attempt}.log", env, args.timeout, args.overrides))
        (cold, cold_code), (warm, warm_code) = times
        ok = warm_code == 0 and warm <= args.target
        failed += not ok
        verdict = "pass" if ok else ("fail" if warm_code == 0 else f"fail (exit {warm_code})")
        cold_cell = "" if args.warm_only else f"{cold:.1f}" + ("" if cold_code == 0 else f" (exit {cold_code})")
        rows.append([preset, fam, data, cold_cell, f"{warm:.1f}", verdict])
        print(f"{preset} on {data}: cold {cold:.1f} s ({cold_code}), warm {warm:.1f} s ({warm_code}): {verdict}",
              flush=True)
    for scratch in (work / "runs", work / "cache"):  # the runs' folders and the fresh cache; the logs stay
        shutil.rmtree(scratch, ignore_errors=True)
    table = markdown_table(["preset", "family", "data", "cold s", "warm s", f"warm <= {args.target:.0f} s"], rows)
    load_after = os.getloadavg()
    note = (f"`python train.py model=<preset> data=<data> debug=fdr`, wall time of the subprocess; "
            f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
            f"{len(rows) - failed}/{len(rows)} pass")
    print(f"\n{note}\n{table}")
    if args.output:
        args.output.write_text(f"{note}\n\n{table}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
