"""The loader of a cached split: uint8 batches from the workers, mapped to ``[-1, 1]`` in the main process.

A DataLoader worker normally hands every batch to the main process in a new shared-memory segment; for
64x64 RGB images in float32 that is a fresh 6 MB mapping a batch, and on a small CPU this hand-over, not the
reading of the memory-mapped cache, bounds the loader (measured here: about 12,000 images/s with one or two
workers, against 200,000/s for the reads themselves). So a split served from the decoded-image cache is
loaded by :class:`SignedLoader`:

- without workers, each batch is one fancy-indexing read of the memory map, mapped to ``[-1, 1]``;
- with workers, each worker copies its batches (uint8, a quarter of the float bytes) into its own slots of
  a shared ring allocated once before the workers start (``(workers, prefetch_factor + 2, B, C, H, W)``)
  and sends only ``(worker, slot, size, labels)``; the main process maps the slot to float ``[-1, 1]``
  before it asks for the next batch. A slot is written again only ``prefetch_factor + 2`` batches of that
  worker later, and the DataLoader keeps at most ``prefetch_factor`` batches a worker in flight (in order),
  so no slot is overwritten before the main process has read it. This needs persistent workers (one
  iterator over the same workers, as :meth:`datamodules.base.ImageDataModule.loader_options` sets) and
  in-order batches; otherwise the batches take the DataLoader's own hand-over.

The mapping is :func:`datamodules.transforms.to_signed` (NumPy on one thread on the CPU).
The batches are exactly those of the float dataset either way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, get_worker_info

from datamodules.image_files import CachedImageDataset
from datamodules.transforms import to_signed

#: Ring slots a worker has beyond the DataLoader's ``prefetch_factor`` batches in flight.
SPARE_SLOTS = 2


def cached_source(dataset: Dataset) -> tuple[CachedImageDataset, np.ndarray | None] | None:
    """``(cached dataset, indices into it or None)`` when ``dataset`` is a :class:`CachedImageDataset` or a
    ``Subset`` of one; ``None`` for anything else (which is loaded item by item as it is)."""
    if isinstance(dataset, CachedImageDataset):
        return dataset, None
    if isinstance(dataset, Subset) and isinstance(dataset.dataset, CachedImageDataset):
        return dataset.dataset, np.asarray(dataset.indices, dtype=np.int64)
    return None


class RingBatch(NamedTuple):
    """What a worker sends for a batch it wrote into the shared ring: ``ring[worker, slot, :size]`` holds its
    uint8 images; ``labels`` (a NumPy array, pickled by value) are those of the float dataset."""

    worker: int
    slot: int
    size: int
    labels: np.ndarray


class Uint8Batches(Dataset):
    """A cached split as uint8 batches: ``__getitems__(indices)`` gives one element, for :func:`first` as the
    collate function: ``(images uint8 (B, C, H, W) in [0, 255], labels (B,) or (B, K))`` in the main
    process, a :class:`RingBatch` in a worker once :meth:`attach_ring` has given it a shared ring.

    Args:
        cached: the cached dataset; indices: the split's rows of it (``None``: all rows).
    """

    def __init__(self, cached: CachedImageDataset, indices: np.ndarray | None = None) -> None:
        self.cached, self.indices = cached, indices
        self.ring: torch.Tensor | None = None
        self.written = 0  # batches this worker has written into its slots

    def __len__(self) -> int:
        return len(self.cached) if self.indices is None else len(self.indices)

    def attach_ring(self, workers: int, slots: int, batch_size: int) -> torch.Tensor:
        """Allocate the shared ring ``uint8 (workers, slots, batch_size, C, H, W)`` (before the workers start,
        so they share it) and return it."""
        shape = (workers, slots, batch_size, *self.cached.array.shape[1:])
        if self.ring is None or tuple(self.ring.shape) != shape:
            self.ring = torch.empty(shape, dtype=torch.uint8).share_memory_()
        return self.ring

    def _rows(self, positions: list[int]) -> np.ndarray:
        rows = np.asarray(positions, dtype=np.int64)
        return rows if self.indices is None else self.indices[rows]

    def __getitems__(self, positions: list[int]) -> list:
        rows = self._rows(positions)
        info = get_worker_info()
        if info is None or self.ring is None or len(rows) > self.ring.shape[2]:
            return [self.cached.rows(rows)]
        slot = self.written % self.ring.shape[1]
        self.written += 1
        out = self.ring[info.id, slot, : len(rows)].numpy()
        if len(rows) and (rows.min() < -len(self.cached) or rows.max() >= len(self.cached)):
            raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for {len(self.cached)} cached images")
        np.take(self.cached.array, rows, axis=0, out=out, mode="wrap")  # in range: "wrap" only skips a buffer
        return [RingBatch(info.id, slot, len(rows), self.cached.labels[torch.from_numpy(rows)].numpy())]

    def __getitem__(self, position: int):
        images, labels = self.cached.rows(self._rows([position]))
        return images[0], labels[0]


def first(batch: list):
    """The collate function of :class:`Uint8Batches`: its one pre-collated element."""
    return batch[0]


class SignedLoader(DataLoader):
    """A DataLoader over :class:`Uint8Batches` that yields ``(images float32 (B, C, H, W) in [-1, 1],
    labels)``, the batches of the float dataset; with workers, through a shared ring (see the module's
    docstring). Batches are pinned when ``pin_memory``."""

    def __iter__(self):
        ring = None
        # the ring needs one iterator over the same workers (persistent) that returns batches in order
        if (self.num_workers > 0 and self.persistent_workers and getattr(self, "in_order", True)
                and self.batch_size is not None and isinstance(self.dataset, Uint8Batches)):
            factor = self.prefetch_factor or 2
            ring = self.dataset.attach_ring(self.num_workers, factor + SPARE_SLOTS, self.batch_size)
        for item in super().__iter__():  # in order: at most prefetch_factor batches a worker in flight
            if isinstance(item, RingBatch):
                images = to_signed(ring[item.worker, item.slot, : item.size])
                labels = torch.from_numpy(item.labels)
            else:
                images, labels = item
                images = to_signed(images)
            yield (images.pin_memory() if self.pin_memory else images), labels
