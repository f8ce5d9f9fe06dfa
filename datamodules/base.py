"""The DataModule every genforge dataset derives from.

Contract (every dataset): batches are tuples ``(images, labels)`` where ``images`` is float32
``(B, C, H, W)`` in ``[-1, 1]`` and ``labels`` is int64 ``(B,)`` with the class index (``-1`` when the
dataset has no labels) or float32 ``(B, K)`` multi-hot attributes (CelebA). ``num_classes`` is the number
of classes or attributes (0 when unlabeled); ``channels`` and ``image_size`` describe the images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.transforms import prepare_uint8, to_signed

SPLITS = ("train", "val", "test")


def dataset_images(dataset, limit: int | None = None, batch_size: int = 512, seed: int = 0) -> torch.Tensor:
    """Stack the images of a genforge dataset (``(image, label)`` items) into float ``(N, C, H, W)`` in
    ``[-1, 1]``; with ``limit``, a fixed-seed random subset of that many (datasets may be ordered by class)."""
    from torch.utils.data import Subset

    if limit is not None and limit < len(dataset):
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:limit]
        dataset = Subset(dataset, chosen.sort().values.tolist())
    return torch.cat([images for images, _ in DataLoader(dataset, batch_size=batch_size)])


class TensorImageDataset(Dataset):
    """In-memory images held as uint8, served as float ``[-1, 1]``.

    Args:
        images: uint8 ``(N, C, H, W)``.
        labels: int64 ``(N,)`` (``-1`` for unlabeled) or float ``(N, K)``; ``None`` means unlabeled.

    Raises:
        ValueError: if the shapes or dtypes do not match that contract.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels is None:
            labels = torch.full((len(images),), -1, dtype=torch.long)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return to_signed(self.images[index]), self.labels[index]


def fixed_split(n: int, sizes: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    """Split ``range(n)`` into disjoint index sets of the given sizes by a seeded permutation.

    The same ``(n, sizes, seed)`` always gives the same split. A size of ``-1`` takes the remainder.

    Raises:
        ValueError: if the sizes add up to more than ``n``.
    """
    sizes = list(sizes)
    if sizes.count(-1) > 1:
        raise ValueError("at most one split size may be -1")
    fixed = sum(s for s in sizes if s != -1)
    if fixed > n:
        raise ValueError(f"split sizes {sizes} add up to more than the {n} examples available")
    sizes = [n - fixed if s == -1 else s for s in sizes]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = [], 0
    for s in sizes:
        out.append(perm[start : start + s].sort().values)
        start += s
    return out


def split_items(names: list[str], val_count: int, test_count: int, seed: int, keys: str = "data.val_photos and "
                "data.test_photos", what: str = "photo") -> dict[str, list[str]]:
    """Split named items (photographs, images) whole into ``{"train", "val", "test"}`` lists by
    :func:`fixed_split` with ``seed``: ``val_count`` and ``test_count`` items, the rest train.

    Raises:
        ValueError: if a count is below 1 or they leave no train item (names the config ``keys``).
    """
    if val_count < 1 or test_count < 1:
        raise ValueError(f"{keys} must be at least 1, got {val_count}, {test_count}")
    if val_count + test_count >= len(names):
        raise ValueError(f"{keys} = {val_count} + {test_count} leaves no train {what} of the {len(names)} "
                         f"embedded ones")
    parts = fixed_split(len(names), (-1, val_count, test_count), seed)
    return {split: [names[i] for i in idx.tolist()] for split, idx in zip(SPLITS, parts)}


class SplitLoaders:
    """The three Lightning loader hooks over a ``_loader(split, shuffle, drop_last)`` method: train shuffled
    (dropping its last incomplete batch when ``self.drop_last``), val and test in order."""

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)


class ImageDataModule(SplitLoaders, LightningDataModule):
    """Base DataModule: subclasses implement :meth:`build_splits`; this class serves the loaders.

    Args:
        root: the dataset's folder on disk (``data.root``), or ``None`` for embedded datasets.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        image_size: images are served ``image_size x image_size``.
        channels: 1 (grayscale) or 3 (RGB); images are converted to it.
        num_classes: classes (or attributes) of the labels; 0 when unlabeled. Checked against the data.
        split_seed: seed of the fixed split where the dataset has none.
        drop_last: drop the last incomplete training batch.
        pin_memory: DataLoader ``pin_memory``.

    Raises:
        ValueError: on an invalid ``channels``, ``image_size`` or ``batch_size``.
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        image_size: int = 28,
        channels: int = 1,
        num_classes: int = 0,
        split_seed: int = 0,
        drop_last: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}")
        if image_size < 1 or batch_size < 1:
            raise ValueError(f"data.image_size and data.batch_size must be positive, got {image_size}, {batch_size}")
        self.root = Path(root).expanduser() if root else None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.split_seed = split_seed
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.datasets: dict[str, Dataset] = {}

    # ----------------------------------------------------------------- to override
    def build_splits(self) -> dict[str, Dataset]:
        """Return ``{"train": ..., "val": ..., "test": ...}`` datasets following the batch contract."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers for subclasses
    def tensor_dataset(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> TensorImageDataset:
        """Crop, resize and convert uint8 ``(N, C, H, W)`` images to this module's size and channels."""
        return TensorImageDataset(prepare_uint8(images, self.image_size, self.channels), labels)

    def require_root(self, layout: str) -> Path:
        """Return ``data.root`` as a Path, or raise a FileNotFoundError that describes ``layout``."""
        if self.root is None:
            raise FileNotFoundError(f"data.root is not set; {type(self).__name__} expects {layout}")
        if not self.root.is_dir():
            raise FileNotFoundError(f"data.root={self.root} is not a directory; {type(self).__name__} expects {layout}")
        return self.root

    # ----------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            datasets = self.build_splits()
            missing = [s for s in SPLITS if s not in datasets]
            if missing:
                raise RuntimeError(f"{type(self).__name__}.build_splits returned no {missing} split")
            self.datasets = datasets

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` ("train", "val" or "test"), set up on first use."""
        self.setup()
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last and len(self.dataset(split)) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def check_num_classes(self, found: int) -> None:
        """Raise a ValueError when ``data.num_classes`` disagrees with the ``found`` in the data."""
        if self.num_classes != found:
            raise ValueError(f"data.num_classes={self.num_classes} but {type(self).__name__} has {found} classes")
