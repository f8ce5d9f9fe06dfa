"""The decoded-image cache: an on-disk dataset decoded once into a memory-mapped uint8 array.

Decoding, cropping and resizing a JPEG costs a few milliseconds of CPU per image; reading the result from a
uint8 array costs microseconds. So every on-disk image dataset (celeba, lsun, image_folder, chairs,
factor_folder, tfd, tiny_images, bsds300's images) decodes its images once, at the configured size, crop
and channels, into ``<data.cache_dir>/<name>-<key>.npy`` (a plain ``.npy`` file, no pickle), and later runs
and every DDP rank memory-map that file (PyTorch-StudioGAN's HDF5 preprocessing serves the same purpose).

- **Key.** ``key`` is the SHA-256 of the source files' names, sizes and modification times (or a database's
  size and time) and of the transform (size, crop, channels, decoder version); a changed file or transform
  gives another key, so a stale cache is never served. Old files are left in place (delete the folder to
  reclaim the space; ``python -m datamodules.prepare`` prints where it is).
- **Built once.** The first process to need a file builds it under a file lock (``<file>.lock``, the
  ``filelock`` package); every other process (DDP ranks, a second run started meanwhile) waits for the lock
  and then reuses the finished file.
- **Atomic.** The array is written to a temporary file in the same folder, flushed and renamed
  (:func:`utils.io.atomic_path`), so a killed build leaves no half-written cache, only a temporary that the
  next build removes.
- **Parallel, with a progress bar.** Items are decoded by a pool of worker processes writing straight
  into the memory-mapped temporary file (``data.cache_workers``, default: the CPU count, capped).
- **Errors first.** A corrupt image fails the build with the decoder's message naming the file, before any
  training step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from utils.errors import InputError, MissingFileError
from utils.io import atomic_path

log = logging.getLogger(__name__)

#: Bumped when the decoding changes in a way the transform description does not show, so old caches miss.
DECODER_VERSION = 1
#: Items per task of the build's worker pool.
CHUNK = 256
#: Most worker processes a build (and ``num_workers: null`` loaders) use by default.
MAX_WORKERS = 8


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_cache_dir() -> Path:
    """``$GENFORGE_CACHE/decoded``, else ``decoded/`` in the user's cache folder (:func:`utils.config.user_cache_dir`)."""
    from utils.config import user_cache_dir

    return Path(os.environ.get("GENFORGE_CACHE") or user_cache_dir()).expanduser() / "decoded"


class CacheSettings:
    """The ``data.cache``, ``data.cache_dir`` and ``data.cache_workers`` settings of a DataModule, and
    :meth:`cached_rows` to use them (mixed into the image and patch DataModules)."""

    def init_cache(self, cache: bool = True, cache_dir: str | os.PathLike | None = None,
                   cache_workers: int | None = None) -> None:
        """Store the settings: ``cache`` on/off, the folder (``None``: :func:`default_cache_dir`), the build
        processes (``None``: the available CPUs, capped at :data:`MAX_WORKERS`)."""
        if not isinstance(cache, bool):
            raise TypeError(f"data.cache must be true or false, got {cache!r}")
        self.cache, self.cache_workers = cache, cache_workers
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()

    def cached_rows(self, name: str, description: Mapping, shape: Sequence[int],
                    decode: Callable[[int], np.ndarray], in_process: bool = False) -> np.memmap | None:
        """:func:`cached_array` in ``data.cache_dir`` with ``data.cache_workers`` processes (none when
        ``in_process``, for a ``decode`` that holds all rows in memory), or ``None`` when ``data.cache`` is
        false."""
        if not self.cache:
            return None
        return cached_array(self.cache_dir, name, description, shape, decode, 0 if in_process else self.cache_workers)


def file_signature(paths: Sequence[str | os.PathLike], root: str | os.PathLike | None = None) -> list:
    """``[[name, size in bytes, modification time in ns], ...]`` of ``paths`` (names relative to ``root``
    when given), the part of a cache key that changes when a file is replaced, edited or touched.

    Raises:
        FileNotFoundError: if a path does not exist (names it).
    """
    out = []
    for path in paths:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"image file {path} does not exist") from None
        name = os.path.relpath(path, root) if root is not None else str(path)
        out.append([name, stat.st_size, stat.st_mtime_ns])
    return out


def cache_key(description: Mapping) -> str:
    """The hex SHA-256 of ``description`` (JSON-serializable: the source signature and the transform) with
    :data:`DECODER_VERSION`; first 20 hex digits."""
    text = json.dumps({"decoder": DECODER_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80] or "images"


def cache_path(cache_dir: str | os.PathLike, name: str, description: Mapping) -> Path:
    """``<cache_dir>/<name>-<key>.npy``: where the array described by ``description`` is cached."""
    return Path(cache_dir).expanduser() / f"{_slug(name)}-{cache_key(description)}.npy"


def open_cached(path: Path, shape: tuple[int, ...]) -> np.memmap | None:
    """The finished cache at ``path`` memory-mapped read-only, or ``None`` when it is absent, unreadable
    (truncated by something other than our atomic writer) or of another shape than ``shape``."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        log.warning("decoded-image cache %s is unreadable; rebuilding it", path)
        return None
    if array.dtype != np.uint8 or tuple(array.shape) != tuple(shape):
        log.warning("decoded-image cache %s holds %s %s, expected uint8 %s; rebuilding it", path, array.dtype,
                    tuple(array.shape), tuple(shape))
        return None
    return array


@dataclass
class CacheUse:
    """One use of the cache by this process: the file, its images and bytes, whether it was built now and
    the seconds the build took (0 when reused)."""

    path: Path
    images: int
    bytes: int
    built: bool
    seconds: float


#: Every cache file this process built or reused, in order (``python -m datamodules.prepare`` reports them).
USED: list[CacheUse] = []


# ------------------------------------------------------------------------------------------- the worker pool
_DECODE: Callable[[int], np.ndarray] | None = None


def _init_worker(decode: Callable[[int], np.ndarray]) -> None:
    global _DECODE
    _DECODE = decode
    torch.set_num_threads(1)


def _fill_chunk(path: str, start: int, stop: int) -> int:
    out = np.load(path, mmap_mode="r+")
    for i in range(start, stop):
        out[i] = _DECODE(i)
    out.flush()
    del out
    return stop - start


def _progress(total: int, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = progress.add_task(what, total=total)
    return progress, task


def fill_in_parallel(out_path: Path, n: int, decode: Callable[[int], np.ndarray], workers: int,
                     what: str) -> None:
    """Write ``decode(i)`` into row ``i`` of the ``.npy`` file ``out_path`` (already allocated, ``n`` rows)
    for every ``i``, with ``workers`` processes (0: in this process), showing a progress bar.

    ``decode`` must be picklable where processes are spawned rather than forked.

    Raises:
        whatever ``decode`` raises (e.g. ValueError naming a corrupt file); the other workers are stopped.
    """
    progress, task = _progress(n, what)
    with progress:
        if workers <= 0:
            out = np.load(out_path, mmap_mode="r+")
            for i in range(n):
                out[i] = decode(i)
                if i % 64 == 63:
                    progress.update(task, completed=i + 1)
            out.flush()
            del out
            progress.update(task, completed=n)
            return
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                 initargs=(decode,)) as pool:
            futures = [pool.submit(_fill_chunk, str(out_path), s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()
                    progress.advance(task, future.result())


def duration_text(seconds: float) -> str:
    """``"about 40 s"``, ``"about 3 min"``, ``"about 1.5 h"``: a rough duration for a log line."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def prepare_command() -> str:
    """The command that builds this run's caches ahead: ``python -m datamodules.prepare data=<the run's data
    choice> <its data.* overrides>`` when Hydra runs this process, else a template."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            config = HydraConfig.get()
            data = config.runtime.choices.get("data")
            overrides = [o for o in config.overrides.task if o.split("=", 1)[0].lstrip("+~").startswith("data.")]
            if data:
                return " ".join(["python -m datamodules.prepare", f"data={data}", *overrides])
    except (ImportError, ValueError):
        pass
    return "python -m datamodules.prepare data=<name> <the run's data.* overrides>"


def build_announcement(path: Path, shape: Sequence[int], decode: Callable[[int], np.ndarray], workers: int,
                       probe: int = 4) -> str:
    """The one line logged before a cache is built: what (file, images, MB), roughly how long (``decode``
    timed on the first ``probe`` rows, scaled to all of them and divided among ``workers`` processes), that it
    happens once per data settings, and the command that builds it ahead (:func:`prepare_command`).

    Raises:
        whatever ``decode`` raises on one of the first rows (the build would raise it too).
    """
    n = int(shape[0])
    probe = max(1, min(probe, n))
    start = time.perf_counter()
    for i in range(probe):
        decode(i)
    seconds = (time.perf_counter() - start) / probe * n / max(1, workers)
    megabytes = float(np.prod([int(s) for s in shape], dtype=np.float64)) / 1e6
    return (f"decoded-image cache: building {path} once for these data settings ({n} images, {megabytes:.1f} MB, "
            f"{duration_text(seconds)} with {max(1, workers)} process(es)); later runs reuse it. "
            f"To build it ahead: {prepare_command()}")


def cached_array(cache_dir: str | os.PathLike, name: str, description: Mapping, shape: Sequence[int],
                 decode: Callable[[int], np.ndarray], workers: int | None = None,
                 what: str | None = None) -> np.memmap:
    """The uint8 array ``shape = (N, ...)`` whose row ``i`` is ``decode(i)``, from the cache or built now.

    Args:
        cache_dir: the cache folder (``data.cache_dir``); created if missing.
        name: a readable prefix of the file name (e.g. ``celeba-train-64px``).
        description: what the rows are (source signature, transform); its hash is the key.
        shape: ``(N, *item_shape)``; every ``decode(i)`` returns uint8 ``item_shape``.
        decode: row ``i``'s pixels, uint8.
        workers: build processes; ``None``: the available CPUs capped at :data:`MAX_WORKERS`; 0: in this
            process.
        what: the progress bar's text.

    Returns:
        The array memory-mapped read-only (``np.memmap``): pages are shared by every process that maps it.

    Raises:
        utils.errors.MissingFileError / InputError: when ``decode`` raises FileNotFoundError / ValueError while
            building (its message, naming the file, plus the cache's name); the partial file is removed.
    """
    from filelock import FileLock

    shape = tuple(int(s) for s in shape)
    path = cache_path(cache_dir, name, description)
    def reused(array: np.memmap | None) -> np.memmap | None:
        if array is not None:
            log.info("decoded-image cache: reusing %s (%d images)", path, shape[0])
            USED.append(CacheUse(path, shape[0], path.stat().st_size, False, 0.0))
        return array

    array = reused(open_cached(path, shape))
    if array is not None:
        return array
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        array = reused(open_cached(path, shape))  # another process built it while we waited
        if array is not None:
            return array
        workers = min(available_cpus(), MAX_WORKERS) if workers is None else int(workers)
        if shape[0] <= CHUNK:
            workers = 0
        start = time.perf_counter()
        try:
            log.info(build_announcement(path, shape, decode, workers))
            with atomic_path(path) as tmp:
                np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
                fill_in_parallel(tmp, shape[0], decode, workers, what or f"decoding {shape[0]} images")
        except FileNotFoundError as e:
            raise MissingFileError(f"{e} (while building the decoded-image cache {path.name}; nothing was "
                                   f"cached)") from e
        except ValueError as e:
            raise InputError(f"{e} (while building the decoded-image cache {path.name}; nothing was cached)") from e
        seconds = time.perf_counter() - start
        size = path.stat().st_size
        USED.append(CacheUse(path, shape[0], size, True, seconds))
        log.info("decoded-image cache: built %s (%d images, %.1f MB) in %.1f s with %d worker processes", path,
                 shape[0], size / 1e6, seconds, workers)
    return open_cached(path, shape)
