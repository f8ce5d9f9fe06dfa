"""Quality on real data: the GAN family on mnist5k for one fixed budget.

Each method trains with ``python train.py model=<method> data=mnist5k trainer.max_epochs=<E>`` (its
paper's settings from ``conf/model/``), is tested with its best checkpoint by ``val/fid``, and the table
gives test FID and KID (genforge's mnist5k feature network), the Parzen-window log-likelihood (nats,
10,000 samples, as Goodfellow et al. 2014) and the wall time; the last fixed-noise grid of each is copied
to ``docs/results/<method>.png`` for the README.

    python benchmarks/quality.py [--epochs 10] [--methods gan dcgan lsgan ebgan wgan]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from _common import ROOT, markdown_table, train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=["gan", "dcgan", "lsgan", "ebgan", "wgan"])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "quality")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args()
    args.pictures.mkdir(parents=True, exist_ok=True)
    rows = []
    for method in args.methods:
        run_dir = args.out / method
        m, seconds = train_run([f"model={method}", "data=mnist5k", f"trainer.max_epochs={args.epochs}"], run_dir)
        if m is None:
            rows.append([method, "failed", "", "", "", f"{seconds:.0f}"])
            continue
        grid = run_dir / "samples" / f"samples_epoch_{args.epochs - 1:03d}.png"
        shutil.copyfile(grid, args.pictures / f"{method}.png")
        best = sorted((run_dir / "checkpoints").glob("epoch_*.ckpt"))
        best_epoch = int(best[-1].stem.split("_")[1]) + 1 if best else "-"  # counted from 1
        rows.append([method, f"{m['test/fid']:.2f}", f"{m['test/kid_mean']:.3f}",
                     f"{m['test/parzen_ll']:.1f} ± {m['test/parzen_ll_se']:.1f}", best_epoch, f"{seconds:.0f}"])
        print(f"{method}: done in {seconds:.0f} s", file=sys.stderr, flush=True)
    print(f"mnist5k (4,000 train / 500 val / 500 test real MNIST digits), {args.epochs} epochs each, CPU")
    print(markdown_table(["method", "test FID", "test KID", "Parzen LL (nats)", f"best epoch (of {args.epochs})",
                          "wall time (s)"],
                         rows))


if __name__ == "__main__":
    main()
