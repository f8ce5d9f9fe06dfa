"""Colorization presets on the embedded photos for one fixed budget (Fabbri 2017's comparison, Sec. 4).

Every preset (objective gan/lsgan/ebgan/wgan x (lambda_1, lambda_2, lambda_3) in {(1, 100, 0), (1, 0, 1)},
the ``_l2`` ones with the study's L2 term, plus the L1-only baseline) trains with
``python train.py model=<preset> data=photos trainer.max_epochs=<E>`` and is tested with its best checkpoint
by ``val/l1`` on the test photos' fixed crops. The table gives PSNR and SSIM on RGB, the AuC of ab accuracy
over 0-150 and colourfulness, next to the grayscale baseline (ab = 0) and the true colours, and the time per
epoch. The last L | colour | truth grid of each preset is copied to
``docs/results/colorization/<preset>.png``.

    python benchmarks/colorization.py [--epochs 6] [--presets colorizer_lsgan ...]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import ROOT, markdown_table, train_run

PRESETS = [f"colorizer_{o}{v}" for o in ("gan", "lsgan", "ebgan", "wgan") for v in ("", "_l2")] + ["colorizer_l1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "colorization")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results" / "colorization")
    args = parser.parse_args()
    args.pictures.mkdir(parents=True, exist_ok=True)
    rows, gray, truth = [], None, None
    for preset in args.presets:
        run_dir = args.out / preset
        m, seconds = train_run([f"model={preset}", "data=photos", f"trainer.max_epochs={args.epochs}"], run_dir)
        if m is None:
            rows.append([preset, "failed", "", "", "", ""])
            continue
        shutil.copyfile(run_dir / "samples" / f"colorization_epoch_{args.epochs - 1:03d}.png",
                        args.pictures / f"{preset}.png")
        rows.append([preset, f"{m['test/psnr']:.2f}", f"{m['test/ssim']:.4f}", f"{m['test/auc']:.4f}",
                     f"{m['test/colourfulness']:.1f}", f"{seconds / args.epochs:.1f}"])
        gray = [f"{m['test/gray_psnr']:.2f}", f"{m['test/gray_ssim']:.4f}", f"{m['test/gray_auc']:.4f}",
                f"{m['test/gray_colourfulness']:.1f}", "-"]
        truth = ["-", "-", "-", f"{m['test/true_colourfulness']:.1f}", "-"]
        print(f"{preset}: done in {seconds:.0f} s", flush=True)
    if gray is not None:
        rows += [["grayscale (ab = 0)", *gray], ["true colours", *truth]]
    print(f"photos (6 train / 2 val / 2 test photographs, 64x64 crops), {args.epochs} epochs each, CPU")
    print(markdown_table(["preset", "test PSNR (dB)", "test SSIM", "AuC (0-150)", "colourfulness",
                          "s / epoch"], rows))


if __name__ == "__main__":
    main()
