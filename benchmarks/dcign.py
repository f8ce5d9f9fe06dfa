"""DC-IGN against its entangled baseline on the rendered faces for one fixed budget (Kulkarni et al. 2015).

Both presets train with ``python train.py model=<preset> data=faces3d trainer.max_epochs=<E>`` (64 x 64,
the paper's network, the paper's rmsprop with momentum (``model/optimizer=dcign_reference``) at 5e-4,
batches varied in the ratio 1:1:1:10) and are tested with their best checkpoint on the disjoint test
heads. The table gives, per extrinsic factor, Pearson's r between the factor's latent and the true value
(DC-IGN: its assigned latent; baseline: the latent of largest variance over batches where that factor
varies, Sec. 4.1.1), the invariance ratio (within-batch variance of the other latents / their variance
over the test set, on batches where the factor varies), the novel-view MSE beside the unswapped one (the
first view's own reconstruction against the other views: what turning the face must beat) and the
reconstruction MSE (pixels in [0, 1]). Targets: |r| >= 0.9 for azimuth, elevation and light, and DC-IGN's
novel-view MSE below the baseline's. Each preset's last traversal grids and test scatter plots are
copied to ``docs/results/dcign/``.

    python benchmarks/dcign.py [--epochs 8] [--presets dcign dcign_baseline] [extra overrides ...]
    python benchmarks/dcign.py --epochs 20 model.encoder.widths=[32,32,32]     # the README's table
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import ROOT, markdown_table, train_run

FACTORS = ("azimuth", "elevation", "light")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--presets", nargs="+", default=["dcign", "dcign_baseline"])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "dcign")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results" / "dcign")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    # argparse gives --presets every word after it: a Hydra override there (it has "=") goes back to overrides
    args.overrides += [p for p in args.presets if "=" in p]
    args.presets = [p for p in args.presets if "=" not in p]
    args.pictures.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in args.presets:
        run_dir = args.out / preset
        m, seconds = train_run([f"model={preset}", "data=faces3d", f"trainer.max_epochs={args.epochs}",
                                *args.overrides], run_dir)
        if m is None:
            rows.append([preset, "failed"])
            continue
        for factor in FACTORS:
            shutil.copyfile(run_dir / "samples" / f"traversal_{factor}_epoch_{args.epochs - 1:03d}.png",
                            args.pictures / f"{preset}_traversal_{factor}.png")
            shutil.copyfile(run_dir / "plots" / f"scatter_{factor}.png", args.pictures / f"{preset}_scatter_{factor}.png")
        rows.append([preset, *(f"{m[f'test/pearson/{f}']:+.3f}" for f in FACTORS),
                     *(f"{m[f'test/invariance_ratio/{f}']:.3f}" for f in FACTORS),
                     f"{m['test/novel_view_mse']:.5f}", f"{m['test/novel_view_unswapped_mse']:.5f}",
                     f"{m['test/recon_mse']:.5f}", f"{seconds / args.epochs:.0f}"])
        print(f"{preset}: done in {seconds:.0f} s", flush=True)
    print(f"faces3d 64x64 (400 train / 40 val / 100 test heads), {args.epochs} epochs each, CPU")
    print(markdown_table(["preset", *(f"r {f}" for f in FACTORS), *(f"invariance {f}" for f in FACTORS),
                          "novel-view MSE", "unswapped MSE", "recon MSE", "s / epoch"], rows))


if __name__ == "__main__":
    main()
