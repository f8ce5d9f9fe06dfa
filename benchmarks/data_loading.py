"""Data loading: the CelebA loader uncached and from the decoded-image cache, against a DCGAN training step.

On a CelebA-layout folder of ``--images`` real-photo JPEGs (178x218, quality 90, random crops of the
photographs bundled with scikit-image: :func:`make_celeba_folder`), one run measures images/s of

- the uncached loader (every image decoded, cropped to 140 and resized to 64 on access), ``--workers``;
- the cache build (``CelebADataModule(cache=True).setup()`` on an empty cache folder: every split decoded
  once into a memory-mapped uint8 array) and the cache reuse (the same setup when the cache exists);
- the cached loader, ``--workers``;
- a DCGAN training step (``model=dcgan``, batch 128, 64x64 RGB, in Lightning's Trainer) fed from memory,
  i.e. how fast training on this CPU consumes images;

and the anonymous resident memory (``RssAnon``) of the cached loader's main process and of each of its
workers after one epoch, at ``--images`` and at twice as many (in a fresh process each). It prints one
markdown table and PASS/FAIL lines for the targets: cached >= 20x uncached with the same workers; the
cached loader (best workers) >= the DCGAN step; RssAnon not growing with the dataset (growth below half the
cache files' growth, capped at 32 MiB: a private copy of the train split would add about 80% of it). The
exit code is 0 whatever the outcome (a measurement, not a test).

Loader timing: ``iter`` + one warm-up batch (worker start-up and the first batch, not counted), then
``--repeats`` new epochs on the same persistent workers, each timed from its ``iter`` to its last batch (a
full training epoch, 128 images a batch, the last incomplete one dropped, or ``--batches``); images/s =
images in the timed batches / seconds, the median of the epochs. Setup rows: images in all three splits /
seconds of ``setup("fit")`` (the build with ``data.cache_workers`` at its default, the available CPUs).
DCGAN: images of ``--steps`` batches after 2 warm-up batches / seconds, timed by a callback as in
benchmarks/throughput.py. The machine line gives the load average: other processes on the CPUs slow every
row, the 0-worker loaders most (the main process runs torch's intra-op threads, workers run one).

    python benchmarks/data_loading.py [--images 2000] [--root DIR] [--batches N] [--repeats 3]
                                      [--workers 0 1 2] [--steps 8] [--quick] [--accelerator gpu]

The JPEG folders are kept in ``--root`` (default ``<tmp>/genforge-data-loading``: ``celeba-2000/``,
``celeba-4000/``) so reruns skip writing them; the caches go to fresh temporary folders, removed at the end.
``--quick``: 400 images, 3 DCGAN steps (a smoke run; its memory limit is too small to be meaningful).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import batch_timer, compose, markdown_table

#: CelebA's aligned images: 178 wide, 218 high.
WIDTH, HEIGHT = 178, 218
BATCH = 128
IMAGE_SIZE, CROP = 64, 140
#: The target ratio of the cached to the uncached loader (same workers).
TARGET_RATIO = 20.0
#: Upper bound of the allowed RssAnon growth between n and 2n images, MiB.
MAX_GROWTH_MIB = 32.0
DCGAN_WARMUP = 2


# ------------------------------------------------------------------------------------------ the JPEG folder
def source_photos() -> list[np.ndarray]:
    """The photographs bundled with scikit-image (no download), as uint8 ``(H, W, 3)`` RGB arrays: the colour
    ones as they are, the grayscale ones (camera, coins, moon, textures) repeated to three channels.

    Raises:
        RuntimeError: if fewer than 3 of them can be loaded.
    """
    from skimage import data

    colour = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
              "retina"]
    gray = ["camera", "coins", "moon", "grass", "gravel", "brick"]
    photos = []
    for name in colour + gray + ["stereo_motorcycle"]:
        try:
            image = getattr(data, name)()
        except Exception:  # a name this scikit-image lacks, or one it would download
            continue
        if name == "stereo_motorcycle":
            image = image[0]  # the left view
        image = np.asarray(image)
        if image.dtype != np.uint8:
            continue
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        photos.append(np.ascontiguousarray(image[:, :, :3]))
    if len(photos) < 3:
        raise RuntimeError(f"only {len(photos)} of scikit-image's bundled photographs could be loaded")
    return photos


def random_view(photos, rng: np.random.Generator):
    """One 178x218 RGB ``PIL.Image``: a random photo, cropped at the 178:218 aspect with a random scale
    (35-100% of the largest such crop) and position, resized (bicubic), flipped left-right half the time."""
    from PIL import Image

    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    aspect = HEIGHT / WIDTH
    widest = min(w, int(h / aspect))
    cw = max(16, int(round(widest * rng.uniform(0.35, 1.0))))
    ch = min(h, int(round(cw * aspect)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    image = Image.fromarray(photo[y0:y0 + ch, x0:x0 + cw]).resize((WIDTH, HEIGHT), Image.BICUBIC)
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return image


def make_celeba_folder(root: Path, n: int = 2000, seed: int = 0) -> Path:
    """Write a CelebA-layout folder of ``n`` real-photo JPEGs; returns ``root``.

    ``root/img_align_celeba/000001.jpg ... `` (6-digit names, 178 wide x 218 high RGB, JPEG quality 90,
    Pillow), image ``i`` a :func:`random_view` of scikit-image's photographs drawn from a generator seeded
    by ``(seed, i)`` (so a folder of ``2n`` images starts with the ``n`` of a folder of ``n``), and
    ``root/list_eval_partition.txt`` (``000001.jpg 0`` per line): n/10 val (1), n/10 test (2), the rest
    train (0), by a seeded permutation. Images already present are kept (each is written to a temporary
    name and renamed, so an interrupted run leaves no truncated JPEG): a rerun on a full folder writes
    nothing.
    """
    root = Path(root)
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    present = set(os.listdir(images))
    missing = [i for i, name in enumerate(names) if name not in present]
    if missing:
        photos = source_photos()
        start = time.perf_counter()
        for i in missing:
            image = random_view(photos, np.random.default_rng([seed, i]))
            tmp = images / f".{names[i]}.tmp"
            image.save(tmp, format="JPEG", quality=90)
            os.replace(tmp, images / names[i])
        print(f"wrote {len(missing)} JPEGs into {images} in {time.perf_counter() - start:.1f} s")
    splits = np.zeros(n, dtype=int)
    perm = np.random.default_rng(seed).permutation(n)
    splits[perm[: n // 10]] = 1
    splits[perm[n // 10 : 2 * (n // 10)]] = 2
    text = "".join(f"{name} {s}\n" for name, s in zip(names, splits))
    partition = root / "list_eval_partition.txt"
    if not partition.is_file() or partition.read_text() != text:
        partition.write_text(text)
    return root


# ------------------------------------------------------------------------------------------ measurements
def rss_anon_mib(pid: int) -> float:
    """The anonymous resident memory (``RssAnon`` of ``/proc/<pid>/status``) of process ``pid``, MiB: heap
    and private pages, not the file-backed pages of a memory map. NaN where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return float("nan")


def folder_mib(path: Path) -> float:
    """Total size of the files under ``path``, MiB."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def datamodule(root: Path, workers: int, cache: bool | None, cache_dir: Path | None):
    """``CelebADataModule`` at batch 128, 64x64 RGB, crop 140, ``workers`` loader processes; ``cache=None``
    leaves out the ``cache``/``cache_dir`` arguments (a datamodule that predates them)."""
    from datamodules.images.celeba import CelebADataModule

    kwargs = dict(root=str(root), batch_size=BATCH, num_workers=workers, image_size=IMAGE_SIZE, channels=3,
                  crop_size=CROP)
    if cache is not None:
        kwargs.update(cache=cache, cache_dir=str(cache_dir))
    return CelebADataModule(**kwargs)


def timed_setup(dm) -> float:
    """Seconds of ``dm.setup("fit")``."""
    start = time.perf_counter()
    dm.setup("fit")
    return time.perf_counter() - start


def split_sizes(dm) -> int:
    """Images in the train, val and test splits of a set-up datamodule."""
    return sum(len(dm.dataset(s)) for s in ("train", "val", "test"))


def check_batch(batch, notes: list[str], what: str) -> None:
    """Append to ``notes`` where ``batch`` breaks the contract ``(images float32 (B, 3, 64, 64) in [-1, 1],
    labels int64 (B,) of -1)``."""
    import torch

    images, labels = batch
    if images.dtype != torch.float32 or tuple(images.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
        notes.append(f"{what}: images {images.dtype} {tuple(images.shape)}, expected float32 (B, 3, 64, 64)")
    elif images.min() < -1 or images.max() > 1:
        notes.append(f"{what}: images in [{images.min():.3f}, {images.max():.3f}], expected [-1, 1]")
    if labels.dtype != torch.int64 or labels.shape != (images.shape[0],) or bool((labels != -1).any()):
        notes.append(f"{what}: labels {labels.dtype} {tuple(labels.shape)}, expected int64 (B,) of -1")


def loader_throughput(dm, batches: int | None, notes: list[str], what: str, repeats: int = 1):
    """Images/s of ``dm.train_dataloader()``: one warm-up batch (starting the workers; not counted), then
    ``repeats`` new epochs on the same persistent workers, each timed from its ``iter`` to its last batch (or
    to ``batches``); the median of the epochs' images/s.

    Returns:
        ``(images/s, the loader)``; the loader's persistent workers stay alive
        (``loader._iterator._workers``).
    """
    loader = dm.train_dataloader()
    it = iter(loader)
    check_batch(next(it), notes, what)
    rates = []
    for _ in range(repeats):
        it = iter(loader)  # persistent workers: drains the previous epoch's prefetched batches, then restarts
        images, start = 0, time.perf_counter()
        for i, (x, _) in enumerate(it):
            images += x.shape[0]
            if batches is not None and i + 1 >= batches:
                break
        rates.append(images / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2], loader


def loader_workers(loader) -> list:
    """The worker processes (``multiprocessing.Process``) of a DataLoader with persistent workers."""
    iterator = getattr(loader, "_iterator", None)
    return list(getattr(iterator, "_workers", []) or [])


def memory_probe(root: Path, cache_dir: Path, workers: int, batches: int | None) -> dict:
    """In this (fresh) process: a cached datamodule over ``root`` reusing ``cache_dir``, one epoch of its
    train loader with ``workers`` workers, then ``{"images": N (all splits), "main": RssAnon MiB,
    "workers": [RssAnon MiB, ...]}``."""
    dm = datamodule(root, workers, True, cache_dir)
    dm.setup("fit")
    _, loader = loader_throughput(dm, batches, [], "memory probe")
    return {"images": split_sizes(dm), "main": rss_anon_mib(os.getpid()),
            "workers": [rss_anon_mib(w.pid) for w in loader_workers(loader)]}


def run_probe(root: Path, cache_dir: Path, workers: int, batches: int | None) -> dict | None:
    """:func:`memory_probe` in a fresh Python process (so the main process's history does not count);
    ``None`` (stderr printed) if it failed."""
    cmd = [sys.executable, __file__, "--probe", str(root), str(cache_dir), str(workers)]
    if batches is not None:
        cmd += ["--batches", str(batches)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        print(f"memory probe of {root} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def dcgan_step_throughput(steps: int, out_dir: Path, warmup: int = DCGAN_WARMUP,
                          accelerator: str = "cpu") -> float:
    """Images/s of genforge's DCGAN training step (``model=dcgan data=celeba``: batch 128, 64x64 RGB, one
    discriminator and one generator step per batch) in Lightning's Trainer on this CPU, fed from memory
    (random images float32 ``(128, 3, 64, 64)`` in ``[-1, 1]``, labels int64 ``-1``): images of ``steps``
    batches after ``warmup`` / seconds, timed by a callback from the start of batch ``warmup`` to the end
    of the last one. ``accelerator="gpu"``: the step on the first CUDA GPU (the batches moved there by
    Lightning), to compare the loaders with the GPU's step."""
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, TensorDataset

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # after the import, which sets INFO

    cfg = compose(["model=dcgan", "data=celeba", f"data.batch_size={BATCH}",
                   f"data.image_size={IMAGE_SIZE}", "data.channels=3"], out_dir)
    pl.seed_everything(0, verbose=False)
    model = instantiate(cfg.model)
    n = BATCH * (warmup + steps)
    images = torch.rand(n, 3, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1
    labels = torch.full((n,), -1, dtype=torch.long)
    timer = batch_timer(warmup)
    # batches counted by the Trainer (the GAN's manual optimization advances global_step twice a batch)
    trainer = pl.Trainer(accelerator=accelerator, devices=1, max_epochs=1, limit_train_batches=warmup + steps,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer],
                         default_root_dir=str(out_dir))
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(images, labels), batch_size=BATCH))
    return timer.images / (timer.end - timer.start)


def machine() -> str:
    """The CPU model, its counts and torch's threads, in one line."""
    import torch

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}; {os.cpu_count()} CPUs ({usable} usable), load average {load}; torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads; Python {platform.python_version()}")


# ------------------------------------------------------------------------------------------ the run
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def workers_label(k: int) -> str:
    return f"{k} worker" if k == 1 else f"{k} workers"


def measure(args, tmp: Path) -> dict:
    """Every measurement of the run (folders in ``args.root``, caches and the DCGAN's run folder in
    ``tmp``): ``{"uncached": {workers: images/s}, "cached": {...}, "build", "reuse", "dcgan": images/s
    (None where not measured), "memory": {images: probe result or None}, "cache_api": bool, "notes": [...]}``.
    """
    n = args.images
    root = make_celeba_folder(args.root / f"celeba-{n}", n)
    out = {"uncached": {}, "cached": {}, "build": None, "reuse": None, "memory": {}, "notes": []}
    notes = out["notes"]
    try:  # does the datamodule take the cache arguments yet?
        datamodule(root, 0, False, tmp / "unused")
        out["cache_api"] = True
    except TypeError as e:
        if "cache" not in str(e):
            raise
        out["cache_api"] = False
        notes.append(f"CelebADataModule does not accept cache/cache_dir ({e}): cached rows skipped")
    cache_api = out["cache_api"]

    for k in args.workers:
        dm = datamodule(root, k, False if cache_api else None, tmp / "unused")
        dm.setup("fit")
        out["uncached"][k], _ = loader_throughput(dm, args.batches, notes, f"uncached, {workers_label(k)}",
                                                  args.repeats)
        del dm, _  # ends the persistent workers

    cache_dir = tmp / f"cache-{n}"
    if cache_api:
        dm = datamodule(root, max(args.workers), True, cache_dir)
        seconds = timed_setup(dm)  # before split_sizes, which would set up the datamodule itself
        out["build"] = split_sizes(dm) / seconds
        if not any(cache_dir.rglob("*.npy")):
            notes.append(f"cache build: setup(cache=True) wrote no .npy file into {cache_dir}")
        decoded = datamodule(root, 0, False, tmp / "unused")
        decoded.setup("fit")
        train, plain = dm.dataset("train"), decoded.dataset("train")
        diff = max(float((train[i][0] - plain[i][0]).abs().max()) for i in range(min(16, len(train))))
        if diff > 1e-6:
            notes.append(f"cached images differ from the decoded ones: max |diff| {diff:.4f} (first 16)")
        del dm, decoded, train, plain
        dm = datamodule(root, 0, True, cache_dir)
        seconds = timed_setup(dm)
        out["reuse"] = split_sizes(dm) / seconds
        del dm
        for k in args.workers:
            dm = datamodule(root, k, True, cache_dir)
            dm.setup("fit")
            out["cached"][k], _ = loader_throughput(dm, args.batches, notes, f"cached, {workers_label(k)}",
                                                    args.repeats)
            del dm, _

    out["dcgan"] = dcgan_step_throughput(args.steps, tmp / "dcgan", accelerator=args.accelerator)

    if cache_api:  # memory: a fresh process at n and at 2n images, the most workers asked for
        k = max(args.workers)
        root2 = make_celeba_folder(args.root / f"celeba-{2 * n}", 2 * n)
        cache_dir2 = tmp / f"cache-{2 * n}"
        datamodule(root2, k, True, cache_dir2).setup("fit")  # built here, so both probes reuse a cache
        for size, folder, folder_cache in ((n, root, cache_dir), (2 * n, root2, cache_dir2)):
            probe = run_probe(folder, folder_cache, k, args.batches)
            if probe is not None:
                probe["cache_mib"] = folder_mib(folder_cache)
            out["memory"][size] = probe
    return out


def report(args, r: dict) -> None:
    """Print the table, the memory rows, the PASS/FAIL lines and the notes of :func:`measure`'s ``r``."""
    n, dcgan, uncached, cached = args.images, r["dcgan"], r["uncached"], r["cached"]
    rows = [[f"uncached loader, {workers_label(k)}", fmt(v), "—", ratio(v, dcgan)]
            for k, v in uncached.items()]
    if r["cache_api"]:
        rows.append(["cache build (setup, empty cache, all splits)", fmt(r["build"]), "—",
                     ratio(r["build"], dcgan)])
        rows.append(["cache reuse (setup, cache present, all splits)", fmt(r["reuse"]), "—",
                     ratio(r["reuse"], dcgan)])
        rows += [[f"cached loader, {workers_label(k)}", fmt(v), ratio(v, uncached.get(k)), ratio(v, dcgan)]
                 for k, v in cached.items()]
    rows.append([f"DCGAN training step (batch {BATCH}, from memory, {args.accelerator})", fmt(dcgan), "—",
                 "1.00x"])
    timed = "a full epoch" if args.batches is None else f"{args.batches} batches"
    print()
    print(f"CelebA layout, {n} JPEGs 178x218 (train {n - 2 * (n // 10)}), batch {BATCH}, 64x64 RGB, crop "
          f"{CROP}; loaders: median of {args.repeats} x {timed} after 1 warm-up batch; DCGAN: {args.steps} "
          f"batches after {DCGAN_WARMUP}")
    print(markdown_table(["", "images/s", "vs uncached, same workers", "vs DCGAN step"], rows))

    memory, limit = r["memory"], None
    if memory:
        mem_rows = []
        for size, m in memory.items():
            if m is None:
                mem_rows.append([f"{size} images", "failed", "—", "—"])
                continue
            workers = " / ".join(f"{w:.1f}" for w in m["workers"]) or "— (no workers)"
            mem_rows.append([f"{m['images']} images", f"{m['cache_mib']:.1f}", f"{m['main']:.1f}", workers])
        print()
        print(f"RssAnon after one cached epoch, {workers_label(max(args.workers))}, each size in a fresh "
              f"process (MiB)")
        print(markdown_table(["dataset", "cache files", "main process", "each worker"], mem_rows))
        if all(m is not None for m in memory.values()):
            limit = min(MAX_GROWTH_MIB, 0.5 * (memory[2 * n]["cache_mib"] - memory[n]["cache_mib"]))

    print()
    for k, v in cached.items():
        if k in uncached:
            print(f"{verdict(v >= TARGET_RATIO * uncached[k])}: cached loader, {workers_label(k)}, "
                  f"{v / uncached[k]:.1f}x the uncached loader (target >= {TARGET_RATIO:.0f}x)")
    if cached:
        best = max(cached, key=cached.get)
        print(f"{verdict(cached[best] >= dcgan)}: cached loader ({workers_label(best)}) {cached[best]:,.0f} "
              f"images/s, {cached[best] / dcgan:.1f}x the DCGAN step's {dcgan:,.0f} (target >= 1x)")
    else:
        print("FAIL: no cached loader measured")
    if limit is not None:
        small, large = memory[n], memory[2 * n]
        growth = {"main process": large["main"] - small["main"]}
        pairs = zip(small["workers"], large["workers"])
        growth.update({f"worker {i}": b - a for i, (a, b) in enumerate(pairs)})
        worst = max(growth, key=growth.get)
        each = ", ".join(f"{name} {g:+.1f}" for name, g in growth.items())
        print(f"{verdict(growth[worst] < limit)}: RssAnon growth from {small['images']} to {large['images']} "
              f"images at most {growth[worst]:+.1f} MiB ({each}); limit {limit:.1f} MiB (half the cache "
              f"files' growth, at most {MAX_GROWTH_MIB:.0f})")
    elif r["cache_api"]:
        print("FAIL: the memory probes did not run")
    for note in r["notes"]:
        print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEGs in the folder (default 2000)")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "genforge-data-loading",
                        help="where the JPEG folders are kept (default <tmp>/genforge-data-loading)")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per epoch (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loader, the median shown")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader workers")
    parser.add_argument("--steps", type=int, default=8, help="timed DCGAN batches (after 2 warm-up)")
    parser.add_argument("--quick", action="store_true", help="400 images, 3 DCGAN steps: a smoke run")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu",
                        help="where the DCGAN step runs (default cpu)")
    parser.add_argument("--probe", nargs=3, metavar=("ROOT", "CACHE_DIR", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`training_step` returns `None`.*")
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    if args.probe:
        root, cache_dir, workers = args.probe
        print(json.dumps(memory_probe(Path(root), Path(cache_dir), int(workers), args.batches)))
        return
    if args.quick:
        args.images, args.steps = 400, 3
    print("command: python " + " ".join([os.path.relpath(__file__), *sys.argv[1:]]))
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="genforge-data-loading-"))
    try:
        results = measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, results)


if __name__ == "__main__":
    main()
