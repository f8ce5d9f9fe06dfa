"""PixelCNN against Gated PixelCNN, unconditional against class-conditional, for one fixed budget (van den
Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders", Sec. 3.1-3.2).

Each model trains with ``python train.py model=<preset> data=<data> trainer.max_epochs=<E>`` and is tested
with its best checkpoint by ``val/bits_per_dim``: binarized ``mnist5k`` (2 levels, dynamic binarization;
test on a fixed binarization) and scikit-learn's ``digits`` (8 x 8, 17 levels). The table gives test NLL
(nats per image) and bits/dim; the conditional Gated PixelCNN's last sample grid (a column per class) is
copied to ``docs/results/pixelcnn/``.

    python benchmarks/pixelcnn.py [--mnist-epochs 10] [--digits-epochs 20] [extra overrides ...]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import ROOT, markdown_table, train_run

DATASETS = {
    "mnist5k": ["data=mnist5k"],
    "digits": ["data=digits", "model.levels=17", "model.binarize=none"],
}
MODELS = [("pixelcnn", False), ("gated_pixelcnn", False), ("pixelcnn", True), ("gated_pixelcnn", True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-epochs", type=int, default=10)
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "pixelcnn")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results" / "pixelcnn")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    args.pictures.mkdir(parents=True, exist_ok=True)
    epochs = {"mnist5k": args.mnist_epochs, "digits": args.digits_epochs}
    rows = []
    for data in args.datasets:
        for preset, conditional in MODELS:
            name = f"{preset}{'_conditional' if conditional else ''}"
            run_dir = args.out / data / name
            m, seconds = train_run([f"model={preset}", *DATASETS[data], f"model.conditional={str(conditional).lower()}",
                                    f"trainer.max_epochs={epochs[data]}", *args.overrides], run_dir)
            if m is None:
                rows.append([data, name, "failed", "", "", ""])
                continue
            if preset == "gated_pixelcnn" and conditional:
                grid = run_dir / "samples" / f"samples_epoch_{epochs[data] - 1:03d}.png"
                shutil.copyfile(grid, args.pictures / f"{data}_conditional_samples.png")
            rows.append([data, name, epochs[data], f"{m['test/nll']:.2f}", f"{m['test/bits_per_dim']:.4f}",
                         f"{seconds:.0f}"])
            print(f"{data} {name}: {m['test/bits_per_dim']:.4f} bits/dim in {seconds:.0f} s", flush=True)
    print(markdown_table(["data", "model", "epochs", "test NLL (nats / image)", "test bits/dim", "wall s"], rows))


if __name__ == "__main__":
    main()
