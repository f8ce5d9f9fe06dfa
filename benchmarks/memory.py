"""Peak memory of the default run (``python train.py``: DCGAN on mnist5k, W&B offline + CSV, every
callback), measured as the peak resident set size of the ``train.py`` process (target: under 2 GiB).

    python benchmarks/memory.py [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="genforge-memory-"))
    env = dict(os.environ, WANDB_MODE=os.environ.get("WANDB_MODE", "offline"))
    cmd = [sys.executable, "train.py", f"trainer.max_epochs={args.epochs}", f"hydra.run.dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"train.py failed:\n{proc.stderr[-3000:]}")
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    print(markdown_table(["run", "peak RSS (GiB)", "target"],
                         [[" ".join(cmd[1:3]), f"{peak_gib:.2f}", "< 2"]]))


if __name__ == "__main__":
    main()
