"""Deep GMMs of 1, 2 and 3 layers against scikit-learn's GaussianMixture on held-out natural-image patches
(van den Oord & Schrauwen 2014, Sec. 4, Table 1 and Fig. 4), and the E-step's cost.

Every Deep GMM trains with ``python train.py model=deep_gmm data=patches model.components=[...]
trainer.max_epochs=<iterations>`` (hard EM, the path heuristic, L-BFGS-B) and is tested with its best
checkpoint (by validation log-likelihood). The shallow baselines are full-covariance GaussianMixtures
(k-means initialisation, up to ``--gmm-max-iter`` 300 EM iterations) fitted on the same training patches, for a sweep of sizes;
"the best shallow model" is the one of highest validation log-likelihood among those with no more
parameters than the deep model. Log-likelihoods: average ``log p(x)`` on the test patches (photographs
unseen in training), nats per 63-dimensional patch. Target: a deep model beats the best shallow one
(the paper: +2.5 nats on BSDS300).

The second table times one hard E-step on ``--timing-patches`` patches for networks ``[N, N, N]``: the
heuristic (``3 sum_j N_j`` path evaluations per point) against the full search (all ``prod_j N_j``
paths), and the M-step. The Fig. 4-style plot (test log-likelihood against the number of top-layer
components, one line per depth, the best shallow GMM as a dashed line) goes to
``docs/results/deep_gmm/fig4.png``.

    python benchmarks/deep_gmm.py                      # the README's tables (about 1 h on 2 cores)
    python benchmarks/deep_gmm.py --iterations 5 --gmm-components 4 8 --architectures 8 8,2 8,4,2
    python benchmarks/deep_gmm.py --architectures 8,2 --gmm-components --timing-sizes --pictures /tmp/fig
                                                       # some Deep GMM rows only (no GMMs, no timing)

Each Deep GMM's progress line also counts the EM iterations whose M-step had starved nodes (reached by
``0 < n < model.min_points`` patches: not fitted) and emptied ones (no patch: re-initialized), from its
``em/starved_nodes`` and ``em/empty_nodes``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from _common import ROOT, markdown_table, train_run

from datamodules.patches.photo_patches import PatchesDataModule
from lightning_modules.deep_gmm.estep import full_search, hashed_paths, heuristic_search, projection_paths
from lightning_modules.deep_gmm.mstep import m_step
from lightning_modules.deep_gmm.networks import DeepGMM
from lightning_modules.deep_gmm.shallow_gmm import average_log_likelihood, fit_gmm, gmm_parameter_count
from lightning_modules.deep_gmm.stats import EMStatistics
from utils.images import save_png
from utils.plots import line_image

DIM = 63
#: 1 layer: N; 2 layers: [8, N]; 3 layers: [8, 4, N] (N = components of the top layer)
ARCHITECTURES = ["8", "16", "32", "8,2", "8,4", "8,8", "8,4,2", "8,4,4", "8,4,8"]


def shallow_sweep(sizes: list[int], seed: int, max_iter: int) -> list[dict]:
    """Fit a GaussianMixture per size on the train patches; its val/test log-likelihoods and seconds."""
    if not sizes:
        return []
    data = PatchesDataModule()
    data.setup()
    train, val, test = (data.dataset(s).x.numpy() for s in ("train", "val", "test"))
    rows = []
    for k in sizes:
        start = time.perf_counter()
        gmm = fit_gmm(train, k, seed=seed, max_iter=max_iter)
        rows.append({"components": k, "params": gmm_parameter_count(k, DIM), "seconds": time.perf_counter() - start,
                     "val": average_log_likelihood(gmm, val), "test": average_log_likelihood(gmm, test)})
        print(f"GaussianMixture({k}): test {rows[-1]['test']:.2f} nats in {rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def node_events(metrics_csv: Path) -> tuple[int, int]:
    """``(starved, emptied)``: how many EM iterations logged ``em/starved_nodes > 0`` and
    ``em/empty_nodes > 0`` in a run's ``metrics.csv``."""
    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    keys = ("em/starved_nodes", "em/empty_nodes")
    starved, emptied = (sum(float(r.get(key) or 0) > 0 for r in rows) for key in keys)
    return starved, emptied


def deep_runs(architectures: list[str], iterations: int, out: Path, overrides: list[str]) -> list[dict]:
    """Train each architecture with train.py; its test/val log-likelihoods, wall time and node events
    (:func:`node_events`)."""
    rows = []
    for arch in architectures:
        components = [int(n) for n in arch.split(",")]
        run_dir = out / arch.replace(",", "-")
        m, seconds = train_run(["model=deep_gmm", "data=patches", f"model.components=[{arch}]",
                                f"trainer.max_epochs={iterations}", "callbacks.gmm_baseline=null", *overrides],
                               run_dir)
        if m is None:
            print(f"Deep GMM {components}: failed", flush=True)
            continue
        starved, emptied = node_events(run_dir / "csv" / "metrics.csv")
        rows.append({"components": components, "params": DeepGMM(DIM, components).num_parameters(),
                     "seconds": seconds, "test": m["test/log_likelihood"], "val": m.get("val/log_likelihood"),
                     "switch": m.get("em/switch_rate"), "starved": starved, "emptied": emptied})
        print(f"Deep GMM {components}: test {rows[-1]['test']:.2f} nats in {seconds:.0f} s; EM iterations "
              f"with starved nodes: {starved}, with emptied nodes: {emptied}", flush=True)
    return rows


def estep_timing(sizes: list[int], patches: int, seed: int) -> list[list[object]]:
    """Seconds of one heuristic and one full-search E-step on ``[N, N, N]``, after two EM iterations."""
    data = PatchesDataModule(train_patches=patches)
    data.setup()
    x = data.dataset("train").x
    index = torch.arange(len(x))
    rows = []
    for n in sizes:
        model = DeepGMM(DIM, (n, n, n))
        paths = projection_paths(model, x, seed)
        for it in range(3):
            stats = EMStatistics(model)
            stats.add_hard(model, x, paths)
            start = time.perf_counter()
            m_step(model, stats)
            mstep = time.perf_counter() - start
            if it < 2:
                paths = heuristic_search(model, x, paths, hashed_paths(model, index, it))[0]
        start = time.perf_counter()
        heuristic_search(model, x, paths, hashed_paths(model, index, 9))
        heuristic = time.perf_counter() - start
        start = time.perf_counter()
        full_search(model, x)
        full = time.perf_counter() - start
        rows.append([f"[{n}, {n}, {n}]", 3 * n, n**3, f"{heuristic:.2f}", f"{full:.2f}", f"{mstep:.2f}"])
        print(f"E-step [{n}]*3: heuristic {heuristic:.2f} s, full {full:.2f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="EM iterations (epochs) per Deep GMM")
    parser.add_argument("--architectures", nargs="+", default=ARCHITECTURES)
    parser.add_argument("--gmm-components", nargs="*", type=int, default=[4, 8, 16, 24, 32],
                        help="GaussianMixture sizes; none: no shallow rows (and no gains)")
    parser.add_argument("--gmm-max-iter", type=int, default=300, help="scikit-learn EM iterations")
    parser.add_argument("--timing-sizes", nargs="*", type=int, default=[2, 3, 4, 6, 8],
                        help="N of the [N, N, N] timing networks; none: no timing table")
    parser.add_argument("--timing-patches", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "deep_gmm")
    parser.add_argument("--pictures", type=Path, default=ROOT / "docs" / "results" / "deep_gmm")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every Deep GMM run")
    args = parser.parse_args()

    shallow = shallow_sweep(args.gmm_components, args.seed, args.gmm_max_iter)
    deep = deep_runs(args.architectures, args.iterations, args.out, args.overrides)
    timing = estep_timing(args.timing_sizes, args.timing_patches, args.seed)

    rows = [[f"GaussianMixture({r['components']})", 1, r["components"], f"{r['params']:,}", f"{r['val']:.2f}",
             f"{r['test']:.2f}", "", f"{r['seconds']:.0f}"] for r in shallow]
    for r in deep:
        fair = [s for s in shallow if s["params"] <= r["params"]]
        best = max(fair, key=lambda s: s["val"]) if fair else None
        gain = f"{r['test'] - best['test']:+.2f} (vs {best['components']})" if best else "n/a"
        rows.append([f"Deep GMM {r['components']}", len(r["components"]), int(torch.tensor(r["components"]).prod()),
                     f"{r['params']:,}", f"{r['val']:.2f}", f"{r['test']:.2f}", gain, f"{r['seconds']:.0f}"])
    print(f"\nembedded patches (8x8, 63 dims; 60,000 train / 10,000 val / 20,000 test from disjoint photographs), "
          f"{args.iterations} EM iterations per Deep GMM, CPU")
    print(markdown_table(["model", "layers", "components (paths)", "parameters", "val nats", "test nats",
                          "test gain over the best GMM with no more parameters", "wall s"], rows))
    if timing:
        print(f"\none hard E-step on {args.timing_patches:,} patches, networks [N, N, N]")
        print(markdown_table(["network", "sum_j N_j", "prod_j N_j", "heuristic E-step s",
                              "full-search E-step s", "M-step s"], timing))

    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in deep:
        key = f"{len(r['components'])} layer" + ("s" if len(r["components"]) > 1 else "")
        series.setdefault(key, ([], []))
        series[key][0].append(r["components"][-1])
        series[key][1].append(r["test"])
    best_shallow = max(shallow, key=lambda s: s["val"]) if shallow else None
    levels = {f"best GaussianMixture ({best_shallow['components']})": best_shallow["test"]} if best_shallow else {}
    image = line_image(series, levels, title="Deep GMM on held-out patches (cf. Fig. 4)",
                       x_label="components in the top layer", y_label="test log-likelihood (nats)", log_x=True)
    print(f"\nplot: {save_png(image, args.pictures / 'fig4.png')}")


if __name__ == "__main__":
    main()
