"""Quality on real data: the GAN family on mnist5k, each preset at its own default budget.

Each preset trains with ``python train.py model=<preset> data=mnist5k`` (its budget in generator iterations
from ``conf/model/budget/``) and is tested with its best checkpoint by ``val/fid``. The table gives test FID
and KID (genforge's mnist5k feature network), the Parzen-window log-likelihood (nats, 10,000 samples, as
Goodfellow et al. 2014) beside the same measure with the 4,000 real training digits as the kernels, the
generator iterations, where the best validation FID was reached, and the wall time. The plots:

* ``docs/results/gan_fid.png``: validation FID against generator iterations, every preset;
* ``docs/results/wgan_wasserstein.png``: WGAN's Wasserstein estimate (the epoch's mean of
  ``train/wasserstein``) and its FID against generator iterations, with their Spearman correlation
  (Arjovsky et al. 2017, Fig. 3; Fabbri 2017, Fig. 8);
* ``docs/results/dcgan_losses.png``: DCGAN's losses and FID the same way, which do not track quality.

The last fixed-noise grid of each preset is copied to ``docs/results/<preset>.png``. ``--ema`` adds a run of
``--ema-preset`` with ``model.ema_decay`` (its test FID with and without the average).

    python benchmarks/quality.py [--presets gan dcgan lsgan ebgan wgan] [--ema 0.99] [--reuse]
        [--variant NAME PRESET OVERRIDE ...]

The toolkit rows (R1, hinge, SN-GAN, WGAN-GP)::

    python benchmarks/quality.py --presets sngan --ema 0 --variant dcgan_hinge dcgan model/objective=hinge \
        --variant dcgan_r1 dcgan model.objective.r1_gamma=10 --variant wgan_gp wgan_gp
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from _common import ROOT, compose, markdown_table, train_run

#: the targets of issue 19: the best epoch in the last fifth, WGAN's Spearman, the best Parzen's share
TARGETS = {"best_fraction": 0.8, "spearman": 0.8, "parzen_share": 0.75}


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def per_epoch(rows: list[dict[str, str]]) -> dict[int, dict[str, float]]:
    """Each validated epoch's generator iterations, validation FID and the epoch's mean training losses."""
    sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    epochs: dict[int, dict[str, float]] = {}
    for row in rows:
        epoch = int(row["epoch"])
        for key in ("train/d_loss", "train/g_loss", "train/wasserstein", "train/generator_steps"):
            if row.get(key):
                sums[epoch][key].append(float(row[key]))
        if row.get("val/fid"):
            epochs[epoch] = {"val/fid": float(row["val/fid"])}
    for epoch, values in epochs.items():
        for key, seen in sums[epoch].items():
            values[key] = max(seen) if key == "train/generator_steps" else sum(seen) / len(seen)
    return dict(sorted(epochs.items()))


def best_of(epochs: dict[int, dict[str, float]]) -> tuple[int, float, float]:
    """``(epoch of the best val/fid, its generator iterations, the run's generator iterations)``."""
    best = min(epochs, key=lambda e: epochs[e]["val/fid"])
    steps = max(e.get("train/generator_steps", 0) for e in epochs.values())
    return best, epochs[best].get("train/generator_steps", 0), steps


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def real_data_parzen() -> tuple[float, float, float]:
    """The Parzen log-likelihood of mnist5k's test digits with the 4,000 training digits as the kernels
    (sigma on the validation digits): ``(mean, standard error, sigma)`` in nats."""
    from hydra.utils import instantiate

    from datamodules.base import dataset_images
    from metrics.parzen import parzen_evaluation

    datamodule = instantiate(compose(["data=mnist5k"], ROOT / "outputs" / "benchmarks" / "compose").data)
    train, val, test = (dataset_images(datamodule.dataset(split)) for split in ("train", "val", "test"))
    result = parzen_evaluation(train, val, test, signed_inputs=True)
    return result.mean, result.std_error, result.sigma


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["gan", "dcgan", "lsgan", "ebgan", "wgan"])
    parser.add_argument("--ema", type=float, default=0.99, help="model.ema_decay of the extra run (0: none)")
    parser.add_argument("--ema-preset", default="dcgan")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "quality")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--reuse", action="store_true", help="read finished runs in --out instead of training")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME PRESET [OVERRIDE]",
                        help="an extra run NAME of PRESET with its own overrides, e.g. "
                             "--variant dcgan_hinge dcgan model/objective=hinge (repeatable; after --presets)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    args.pictures.mkdir(parents=True, exist_ok=True)

    runs = [(preset, preset, []) for preset in args.presets]
    if args.ema:
        runs.append((f"{args.ema_preset}_ema", args.ema_preset, [f"model.ema_decay={args.ema}"]))
    for variant in args.variant:
        if len(variant) < 2:
            parser.error(f"--variant needs a name and a preset, got {variant}")
        runs.append((variant[0], variant[1], variant[2:]))
    reference = real_data_parzen()
    print(f"real training digits as Parzen kernels: {reference[0]:.1f} ± {reference[1]:.1f} nats "
          f"(sigma {reference[2]:.3f})", file=sys.stderr, flush=True)

    rows, histories, parzen = [], {}, {}
    for name, preset, extra in runs:
        run_dir = args.out / name
        overrides = [f"model={preset}", "data=mnist5k", *extra, *args.overrides]
        if args.reuse and (run_dir / "csv" / "metrics.csv").is_file():
            seconds = float((run_dir / "seconds.txt").read_text()) if (run_dir / "seconds.txt").is_file() else 0.0
            ok = True
        else:
            metrics, seconds = train_run(overrides, run_dir)
            ok = metrics is not None
            if ok:
                (run_dir / "seconds.txt").write_text(f"{seconds:.1f}\n")
        if not ok:
            rows.append([f"`{name}`", "failed", "", "", "", "", "", f"{seconds:.0f}"])
            continue
        log = read_rows(run_dir)
        test = {k: float(v) for row in log for k, v in row.items() if k.startswith("test/") and v}
        epochs = per_epoch(log)
        histories[name] = epochs
        best_epoch, best_steps, steps = best_of(epochs)
        grid = max((run_dir / "samples").glob("samples_epoch_*.png"))
        shutil.copyfile(grid, args.pictures / f"{name}.png")
        parzen[name] = test["test/parzen_ll"]
        fid = f"{test['test/fid']:.2f}"
        if "test/fid_no_ema" in test:
            fid += f" (without EMA {test['test/fid_no_ema']:.2f})"
        rows.append([f"`{name}`", f"![{name}](docs/results/{name}.png)", f"{steps:.0f}", fid,
                     f"{test['test/kid_mean']:.3f}", f"{test['test/parzen_ll']:.1f} ± {test['test/parzen_ll_se']:.1f}",
                     f"{epochs[best_epoch]['val/fid']:.2f} at {best_steps:.0f} ({best_steps / steps:.0%})",
                     f"{seconds:.0f}"])
        print(f"{name}: done in {seconds:.0f} s", file=sys.stderr, flush=True)
    rows.append(["real training digits (4,000) as kernels", "", "", "", "",
                 f"{reference[0]:.1f} ± {reference[1]:.1f}", "", ""])

    print("mnist5k (4,000 train / 500 val / 500 test real MNIST digits), each preset at its default budget, CPU")
    print(markdown_table(["preset", "samples", "generator iterations", "test FID", "test KID", "Parzen LL (nats)",
                          "best val FID at iteration (share of budget)", "wall time (s)"], rows))
    print()
    report_targets(histories, parzen, reference[0])
    plot(histories, args.pictures)


def report_targets(histories: dict, parzen: dict, reference: float) -> None:
    """Print each target of the benchmark with what was reached."""
    for name, epochs in histories.items():
        _, best_steps, steps = best_of(epochs)
        share = best_steps / steps
        print(f"- {name}: best validation FID at {share:.0%} of the budget "
              f"({'meets' if share >= TARGETS['best_fraction'] else 'misses'} the last fifth)")
    for name, key in (("wgan", "train/wasserstein"), ("dcgan", "train/d_loss"), ("dcgan", "train/g_loss")):
        if name in histories:
            rho = spearman(*series(histories[name], key))
            print(f"- {name}: Spearman({key}, val/fid) = {rho:+.2f} over {len(histories[name])} epochs"
                  + (f" (target >= {TARGETS['spearman']})" if name == "wgan" else ""))
    if parzen:
        best = max(parzen, key=parzen.get)
        print(f"- best Parzen: {best} {parzen[best]:.1f} nats = {parzen[best] / reference:.2f} of the real digits' "
              f"{reference:.1f} (target >= {TARGETS['parzen_share']})")


def series(epochs: dict, key: str) -> tuple[list[float], list[float]]:
    """``(key's epoch values, val/fid)`` over the epochs that have both."""
    chosen = [e for e in epochs.values() if key in e]
    return [e[key] for e in chosen], [e["val/fid"] for e in chosen]


def plot(histories: dict, pictures: Path) -> None:
    from utils.images import save_png
    from utils.plots import line_image, twin_line_image

    def curve(epochs, key):
        chosen = [e for e in epochs.values() if key in e and "train/generator_steps" in e]
        return [e["train/generator_steps"] for e in chosen], [e[key] for e in chosen]

    save_png(line_image({name: curve(e, "val/fid") for name, e in histories.items()},
                        title="mnist5k: validation FID", x_label="generator iterations", y_label="FID",
                        size=(6.0, 4.0), log_y=True, markers=False), pictures / "gan_fid.png")
    if "wgan" in histories:
        rho = spearman(*series(histories["wgan"], "train/wasserstein"))
        save_png(twin_line_image({"Wasserstein estimate": curve(histories["wgan"], "train/wasserstein")},
                                 {"val FID": curve(histories["wgan"], "val/fid")}, log_right=True,
                                 title=f"WGAN: critic's estimate and FID (Spearman {rho:+.2f})",
                                 x_label="generator iterations", left_label="E[f(x)] - E[f(G(z))]",
                                 right_label="FID"), pictures / "wgan_wasserstein.png")
    if "dcgan" in histories:
        d_rho = spearman(*series(histories["dcgan"], "train/d_loss"))
        g_rho = spearman(*series(histories["dcgan"], "train/g_loss"))
        save_png(twin_line_image({"d_loss": curve(histories["dcgan"], "train/d_loss"),
                                  "g_loss": curve(histories["dcgan"], "train/g_loss")},
                                 {"val FID": curve(histories["dcgan"], "val/fid")}, log_right=True,
                                 title=f"DCGAN: losses and FID (Spearman {d_rho:+.2f}, {g_rho:+.2f})",
                                 x_label="generator iterations", left_label="loss (nats)", right_label="FID"),
                 pictures / "dcgan_losses.png")


if __name__ == "__main__":
    main()
