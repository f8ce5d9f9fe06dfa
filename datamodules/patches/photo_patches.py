"""Patch DataModules (Deep GMM, RNADE): the base :class:`PatchDataModule` and ``patches``, the embedded
default of real photographs bundled with scikit-image.

Batch contract of every patch DataModule (different from the image contract of
:mod:`datamodules.base`): tuples ``(x, index)`` with ``x`` float64 ``(B, D)``, ``D = patch_size**2 - 1``
(63 for the default 8x8 patches), values in ``(-1, 1)``, preprocessed by the BSDS300 protocol of
:mod:`datamodules.patches.protocol` (Uria et al. 2013, Sec. 4.2; van den Oord & Schrauwen 2014, Sec. 4), and
``index`` int64 ``(B,)``, the position of each patch in its split's dataset (the Deep GMM keeps per-point
state keyed by it). Patch sets are extracted once, in memory, with seeded generators: the same in every
epoch and every run.

``patches`` uses 18 real photographs from ``skimage.data`` (no files, no network), in this order
(sizes H x W):

========================  ===========  ==========================================================
name                      size         source (``skimage.data``)
========================  ===========  ==========================================================
``camera``                512 x 512    ``camera()`` (grayscale)
``moon``                  512 x 512    ``moon()`` (grayscale)
``coins``                 303 x 384    ``coins()`` (grayscale)
``grass``                 512 x 512    ``grass()`` (grayscale texture)
``gravel``                512 x 512    ``gravel()`` (grayscale texture)
``brick``                 512 x 512    ``brick()`` (grayscale texture)
``text``                  172 x 448    ``text()`` (grayscale)
``page``                  191 x 384    ``page()`` (grayscale, scanned book page)
``clock``                 300 x 400    ``clock()`` (grayscale)
``cell``                  660 x 550    ``cell()`` (grayscale microscopy)
``astronaut``             512 x 512    ``astronaut()``, converted with Pillow ``convert("L")``
``coffee``                400 x 600    ``coffee()``, converted
``chelsea``               300 x 451    ``chelsea()``, converted
``rocket``                427 x 640    ``rocket()``, converted
``hubble_deep_field``     872 x 1000   ``hubble_deep_field()``, converted
``immunohistochemistry``  512 x 512    ``immunohistochemistry()``, converted
``retina``                1411 x 1411  ``retina()``, converted
``motorcycle``            500 x 741    ``stereo_motorcycle()[0]`` (left view), converted
========================  ===========  ==========================================================

Split BY PHOTOGRAPH (:func:`datamodules.base.fixed_split` over the photo indices with ``split_seed``;
``val_photos`` and ``test_photos`` photographs, the rest train), so no scene is in two splits. With the
defaults (``split_seed=0``, 3 val, 4 test):

- train (11): camera, moon, coins, grass, gravel, brick, page, clock, cell, rocket, immunohistochemistry
- val (3):    coffee, chelsea, motorcycle
- test (4):   text, astronaut, hubble_deep_field, retina

(:meth:`PatchesDataModule.split_names` gives the lists for any setting.) Each split's patch count
(``train_patches`` 60000, ``val_patches`` 10000, ``test_patches`` 20000) is spread evenly over its
photographs (:func:`~datamodules.patches.protocol.spread_counts`). Extraction of the defaults takes about a
second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader

from datamodules.base import SPLITS, SplitLoaders, split_items
from datamodules.embedded_photos import PHOTO_SOURCES, skimage_photo
from datamodules.patches.protocol import (
    PATCH_SIZE,
    PatchDataset,
    collate_patches,
    patch_dim,
    patches_from_images,
    spread_counts,
    to_grayscale,
)

log = logging.getLogger(__name__)


class PatchDataModule(SplitLoaders, LightningDataModule):
    """Base DataModule of preprocessed patches: subclasses implement :meth:`build_splits`.

    Batches: ``(x float64 (B, dim), index int64 (B,))`` (see the module docstring). The train loader
    shuffles with a ``torch.Generator`` seeded with ``shuffle_seed`` (a new order every epoch, the same
    sequence in every run); val/test are served in order. Loaders are plain DataLoaders, so under DDP
    Lightning substitutes its ``DistributedSampler``. Data are built once per instance, in memory.

    Args:
        batch_size: patches per batch.
        num_workers: DataLoader worker processes (0 is fastest for in-memory patches).
        patch_size: the patch side ``P``; ``dim = P*P - 1``.
        split_seed: seed of the split and of the patch extraction (:meth:`split_rng`).
        shuffle_seed: seed of the train order; ``None`` uses ``split_seed``.
        dim: optional, the expected ``P*P - 1`` (so configs can write ``${data.dim}``); checked.
        drop_last: drop the last incomplete training batch.
        pin_memory: DataLoader ``pin_memory``.

    Attributes:
        dim: ``patch_size**2 - 1`` (63 for 8x8 patches).
        datasets: ``{"train"|"val"|"test": PatchDataset}`` once set up.

    Raises:
        ValueError: on ``patch_size < 2``, ``batch_size < 1`` or a ``dim`` that disagrees with ``patch_size``.
    """

    def __init__(self, batch_size: int = 10000, num_workers: int = 0, patch_size: int = PATCH_SIZE,
                 split_seed: int = 0, shuffle_seed: int | None = None, dim: int | None = None,
                 drop_last: bool = False, pin_memory: bool = False) -> None:
        super().__init__()
        self.patch_size = int(patch_size)
        self.dim = patch_dim(self.patch_size)
        if dim is not None and dim != self.dim:
            raise ValueError(f"data.dim={dim} but data.patch_size={patch_size} gives patch_size**2 - 1 = {self.dim}; "
                             f"set data.dim={self.dim} (or null) together with data.patch_size")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.split_seed = int(split_seed)
        self.shuffle_seed = self.split_seed if shuffle_seed is None else int(shuffle_seed)
        self.drop_last, self.pin_memory = drop_last, pin_memory
        self.datasets: dict[str, PatchDataset] = {}

    # ----------------------------------------------------------------- to override
    def build_splits(self) -> dict[str, PatchDataset | np.ndarray | torch.Tensor]:
        """Return ``{"train": ..., "val": ..., "test": ...}``: float ``(N, dim)`` arrays/tensors or
        :class:`~datamodules.patches.protocol.PatchDataset` s; arrays are checked with
        :func:`~datamodules.patches.protocol.check_patches` and wrapped."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers for subclasses
    def split_rng(self, split: str) -> np.random.Generator:
        """The generator a split's patches are drawn from: ``numpy.random.default_rng([split_seed, k])`` with
        ``k`` = 0, 1, 2 for train, val, test (independent streams, fixed across runs)."""
        return np.random.default_rng([self.split_seed, SPLITS.index(split)])

    # ----------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Build the three splits once (later calls keep them).

        Raises:
            RuntimeError: if :meth:`build_splits` misses a split.
            ValueError: if a split's patches are malformed (see ``check_patches``).
        """
        if self.datasets:
            return
        built = self.build_splits()
        missing = [s for s in SPLITS if s not in built]
        if missing:
            raise RuntimeError(f"{type(self).__name__}.build_splits returned no {missing} split")
        datasets = {}
        for split in SPLITS:
            data = built[split]
            if not isinstance(data, PatchDataset):
                data = PatchDataset(data, f"{type(self).__name__} {split} split", self.dim)
            if data.dim != self.dim:
                raise ValueError(f"{data.source}: patches of dim {data.dim}, expected {self.dim} "
                                 f"(data.patch_size={self.patch_size})")
            datasets[split] = data
        self.datasets = datasets

    def dataset(self, split: str) -> PatchDataset:
        """The dataset of ``split`` ("train", "val" or "test"), set up on first use."""
        self.setup()
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        dataset = self.dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(self.shuffle_seed) if shuffle else None,
            drop_last=drop_last and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_patches,
        )



# ================================================================================================ patches

_GRAY = ("camera", "moon", "coins", "grass", "gravel", "brick", "text", "page", "clock", "cell")
_COLOUR = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "motorcycle")

#: name -> loader of the photograph (uint8 ``(H, W)`` grayscale or ``(H, W, 3)`` colour), in split order.
PATCH_PHOTO_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    **{name: skimage_photo(name) for name in _GRAY},
    **{name: PHOTO_SOURCES[name] for name in _COLOUR},
}
#: The photographs' names, in the fixed order the split permutes.
PATCH_PHOTO_NAMES: tuple[str, ...] = tuple(PATCH_PHOTO_SOURCES)


def load_gray_photo(name: str) -> np.ndarray:
    """One of :data:`PATCH_PHOTO_NAMES` as uint8 grayscale ``(H, W)`` (colour ones via Pillow ``convert("L")``).

    Raises:
        KeyError: if ``name`` is not one of :data:`PATCH_PHOTO_NAMES`.
        ValueError: if the installed scikit-image gives something other than a uint8 photograph.
    """
    if name not in PATCH_PHOTO_SOURCES:
        raise KeyError(f"unknown photo {name!r}; the embedded photos are {list(PATCH_PHOTO_NAMES)}")
    return to_grayscale(PATCH_PHOTO_SOURCES[name](), f"skimage photo {name!r}")


class PatchesDataModule(PatchDataModule):
    """``data=patches``: 8x8 patches of 18 real photographs (scikit-image), split by photograph.

    Batches ``(x float64 (B, 63), index int64 (B,))``, see the module docstring for the photographs, the
    default split and the protocol.

    Args:
        train_patches, val_patches, test_patches: patches per split, spread evenly over its photographs.
        val_photos, test_photos: photographs in val / test (the rest train).
        **kwargs: :class:`PatchDataModule` (``batch_size``, ``num_workers``, ``patch_size``, ``split_seed``...).

    Raises:
        ValueError: (construction) on negative/zero counts or photo counts that leave a split empty.
    """

    def __init__(self, train_patches: int = 60000, val_patches: int = 10000, test_patches: int = 20000,
                 val_photos: int = 3, test_photos: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        counts = {"train_patches": train_patches, "val_patches": val_patches, "test_patches": test_patches}
        for key, value in counts.items():
            if value < 1:
                raise ValueError(f"data.{key} must be positive, got {value}")
        self.counts = {"train": int(train_patches), "val": int(val_patches), "test": int(test_patches)}
        self.val_photos, self.test_photos = int(val_photos), int(test_photos)
        self.split_names()  # fail early on bad photo counts

    def split_names(self) -> dict[str, list[str]]:
        """``{"train": [...], "val": [...], "test": [...]}``: which photographs go to which split.

        Raises:
            ValueError: if ``val_photos`` or ``test_photos`` < 1, or they leave no train photograph.
        """
        return split_items(list(PATCH_PHOTO_NAMES), self.val_photos, self.test_photos, self.split_seed)

    def build_splits(self) -> dict[str, PatchDataset]:
        """Patches of the embedded photographs, split by photograph (:meth:`split_names`); announced in one
        log line first (seconds, in memory, every run)."""
        log.info(f"patches: extracting {self.counts['train']:,} train, {self.counts['val']:,} val and "
                 f"{self.counts['test']:,} test {self.patch_size}x{self.patch_size} patches from "
                 f"{len(PATCH_PHOTO_NAMES)} embedded photographs, in memory (a few seconds, every run; nothing to "
                 f"prepare ahead; data.train_patches, data.val_patches, data.test_patches set the counts)")
        datasets = {}
        for split, names in self.split_names().items():
            images = ((name, load_gray_photo(name)) for name in names)
            x, owners = patches_from_images(images, spread_counts(self.counts[split], len(names)),
                                            self.split_rng(split), self.patch_size)
            datasets[split] = PatchDataset(x, f"patches {split} split", self.dim, owners, names)
        return datasets
