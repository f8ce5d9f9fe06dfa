"""The loader of a cached split: uint8 batches from the workers, mapped to ``[-1, 1]`` in the main process.

A DataLoader worker hands every batch to the main process through shared memory; for 64x64 RGB images in
float32 that is 6 MB a batch, and on a small CPU this hand-over, not the reading of the memory-mapped
cache, bounds the loader (measured here: about 12,000 images/s with one or two workers, against 45,000+
for the same batches in uint8). So a split served from the decoded-image cache is loaded as uint8 batches,
read from the memory map in one fancy-indexing read per batch, and :class:`SignedLoader` maps them to float
``[-1, 1]`` as it yields them: the batches are exactly those of the float dataset.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from datamodules.image_files import CachedImageDataset
from datamodules.transforms import to_signed


def cached_source(dataset: Dataset) -> tuple[CachedImageDataset, np.ndarray | None] | None:
    """``(cached dataset, indices into it or None)`` when ``dataset`` is a :class:`CachedImageDataset` or a
    ``Subset`` of one; ``None`` for anything else (which is loaded item by item as it is)."""
    if isinstance(dataset, CachedImageDataset):
        return dataset, None
    if isinstance(dataset, Subset) and isinstance(dataset.dataset, CachedImageDataset):
        return dataset.dataset, np.asarray(dataset.indices, dtype=np.int64)
    return None


class Uint8Batches(Dataset):
    """A cached split as uint8 batches: ``__getitems__(indices)`` gives one element, ``(images uint8
    (B, C, H, W) in [0, 255], labels (B,) or (B, K))``, for :func:`first` as the collate function.

    Args:
        cached: the cached dataset; indices: the split's rows of it (``None``: all rows).
    """

    def __init__(self, cached: CachedImageDataset, indices: np.ndarray | None = None) -> None:
        self.cached, self.indices = cached, indices

    def __len__(self) -> int:
        return len(self.cached) if self.indices is None else len(self.indices)

    def __getitems__(self, positions: list[int]) -> list:
        rows = np.asarray(positions, dtype=np.int64)
        return [self.cached.rows(rows if self.indices is None else self.indices[rows])]

    def __getitem__(self, position: int):
        images, labels = self.__getitems__([position])[0]
        return images[0], labels[0]


def first(batch: list):
    """The collate function of :class:`Uint8Batches`: its one pre-collated element."""
    return batch[0]


class SignedLoader(DataLoader):
    """A DataLoader over :class:`Uint8Batches` that yields ``(images float32 (B, C, H, W) in [-1, 1],
    labels)``, mapping the uint8 images in the main process (pinned again when ``pin_memory``)."""

    def __iter__(self):
        for images, labels in super().__iter__():
            images = to_signed(images)
            yield (images.pin_memory() if self.pin_memory else images), labels
