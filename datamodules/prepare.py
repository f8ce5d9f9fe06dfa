"""Build a dataset's decoded-image cache ahead of training: ``python -m datamodules.prepare data=celeba
data.root=/data/celeba`` (any ``data=`` group and overrides the training run will use).

Composes ``conf/prepare.yaml`` (the ``paths`` and ``data`` groups of ``conf/train.yaml``), instantiates the
DataModule and sets it up, which builds every split's cache file (:mod:`datamodules.decoded_cache`) or finds
it built, and prints a table: file, images, size in MB, built or reused, seconds. A later ``train.py`` with
the same ``data`` settings memory-maps those files without decoding an image.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from utils.bootstrap import bootstrap
from utils.errors import InputError, report_input_errors

bootstrap()


def prepare(cfg: DictConfig) -> tuple[list, float]:
    """Instantiate ``cfg.data`` and set it up, building its decoded-image caches.

    Returns:
        ``(uses, seconds)``: the :class:`~datamodules.decoded_cache.CacheUse` records of this setup (one per
        cache file) and the seconds the setup took (listing and checking the files, building the caches).

    Raises:
        InputError: when the dataset has no decoded-image cache (embedded, in-memory datasets: no
            ``data.cache`` key, or one whose setup wrote no cache file, as faces3d's in-memory renders) or
            ``data.cache`` is false; the dataset's own errors for a missing or corrupt file.
    """
    from hydra.utils import instantiate

    from datamodules import decoded_cache

    if "cache" not in cfg.data:
        raise InputError(f"data={cfg.data._target_.rsplit('.', 1)[-1]} is held in memory and has no decoded-image "
                         f"cache (no data.cache key); nothing to prepare")
    if not cfg.data.cache:
        raise InputError("data.cache=false: nothing to prepare (set data.cache=true to build the cache)")
    datamodule = instantiate(cfg.data)
    first = len(decoded_cache.USED)
    start = time.perf_counter()
    datamodule.setup("fit")
    uses = decoded_cache.USED[first:]
    if not uses:
        raise InputError(f"data={cfg.data._target_.rsplit('.', 1)[-1]} keeps no decoded-image cache on disk "
                         f"(data.cache keeps what it renders or reads in memory, per run); nothing to prepare")
    return uses, time.perf_counter() - start


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare")
@report_input_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point: build the caches and print what was built or reused."""
    from rich.console import Console
    from rich.table import Table

    uses, seconds = prepare(cfg)
    table = Table(title=f"decoded-image cache of data.root={cfg.data.get('root')}")
    for column in ("file", "images", "MB", "", "seconds"):
        table.add_column(column, justify="left" if column in ("file", "") else "right", overflow="fold")
    for use in uses:
        table.add_row(use.path.name, str(use.images), f"{use.bytes / 1e6:.1f}", "built" if use.built else "reused",
                      f"{use.seconds:.1f}")
    console = Console(width=max(120, Console().width))
    console.print(table)
    total = sum(u.bytes for u in uses)
    console.print(f"{len(uses)} files, {sum(u.images for u in uses)} images, {total / 1e6:.1f} MB in "
                  f"{Path(cfg.data.cache_dir)}; setup took {seconds:.1f} s")


if __name__ == "__main__":
    main()
