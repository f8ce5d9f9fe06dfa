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

from datamodules.decoded_cache import CacheSettings
from datamodules.image_files import LazyImageDataset, ReadThrough
from datamodules.transforms import prepare_uint8, to_signed
from utils.errors import InputError

SPLITS = ("train", "val", "test")


def default_workers() -> int:
    """DataLoader workers for ``data.num_workers: null``: the CPUs this process may use less one (the
    training loop's), at least 1, at most :data:`datamodules.decoded_cache.MAX_WORKERS`."""
    from datamodules.decoded_cache import MAX_WORKERS, available_cpus

    return max(1, min(MAX_WORKERS, available_cpus() - 1))


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


def fixed_split(n: int, sizes: tuple[int, ...], seed: int, keys: str | None = None) -> list[torch.Tensor]:
    """Split ``range(n)`` into disjoint index sets of the given sizes by a seeded permutation.

    The same ``(n, sizes, seed)`` always gives the same split. A size of ``-1`` takes the remainder.

    Args:
        keys: the config keys the sizes other than ``-1`` come from (``"data.val_size and data.test_size"``):
            then a size must also be ``>= 0`` and leave at least one example to the remainder, and errors
            name them.

    Raises:
        utils.errors.InputError: if the sizes add up to more than ``n`` (with ``keys``: a size is negative
            or the remainder is empty), naming ``keys``.
    """
    sizes = list(sizes)
    if sizes.count(-1) > 1:
        raise ValueError("at most one split size may be -1")
    fixed = sum(s for s in sizes if s != -1)
    given = [s for s in sizes if s != -1]
    if keys is not None and (min(given, default=0) < 0 or (-1 in sizes and fixed >= n)):
        raise InputError(f"{keys} = {' + '.join(map(str, given))} must be >= 0 and leave at least one of the "
                         f"{n} examples for training")
    if fixed > n:
        raise InputError(f"split sizes {sizes} add up to more than the {n} examples available")
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
        utils.errors.InputError: if a count is below 1 or they leave no train item (names the config
            ``keys``).
    """
    if val_count < 1 or test_count < 1:
        raise InputError(f"{keys} must be at least 1, got {val_count}, {test_count}")
    if val_count + test_count >= len(names):
        raise InputError(f"{keys} = {val_count} + {test_count} leaves no train {what} of the {len(names)} "
                         f"embedded ones")
    parts = fixed_split(len(names), (-1, val_count, test_count), seed)
    return {split: [names[i] for i in idx.tolist()] for split, idx in zip(SPLITS, parts)}


class CropFlipDataset(ReadThrough, Dataset):
    """Per-item augmentation of images served at ``load_size``: pix2pix's ``resize_and_crop`` + flip
    (Isola et al. 2017, Sec. 6.2: load 286, random crop 256, random mirror), drawn afresh at every access.

    Training items are a random ``image_size`` square of the ``(C, L, L)`` image (uniform position, the
    global torch RNG, so ``seed_everything`` and DataLoader worker seeding apply) mirrored left-right with
    probability 1/2 when ``hflip``; evaluation items are the central square, never mirrored.

    Args:
        dataset: items ``(image float (C, L, L) in [-1, 1], label)``, e.g. from the decoded-image cache.
        image_size: the side of the squares served (``data.image_size``), at most L.
        train: random crops (and flips) rather than the centre.
        hflip: mirror training items at random.
    """

    read_through = "dataset"

    def __init__(self, dataset: Dataset, image_size: int, train: bool, hflip: bool) -> None:
        self.dataset, self.image_size, self.train, self.hflip = dataset, image_size, train, hflip

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        size, (h, w) = self.image_size, image.shape[-2:]
        if not self.train:
            top, left = (h - size) // 2, (w - size) // 2
        else:
            top, left = int(torch.randint(0, h - size + 1, ())), int(torch.randint(0, w - size + 1, ()))
        image = image[..., top : top + size, left : left + size]
        if self.train and self.hflip and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        return image.contiguous(), label


class SplitLoaders:
    """The three Lightning loader hooks over a ``_loader(split, shuffle, drop_last)`` method: train shuffled
    (dropping its last incomplete batch when ``self.drop_last``), val and test in order."""

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)


class ImageDataModule(SplitLoaders, CacheSettings, LightningDataModule):
    """Base DataModule: subclasses implement :meth:`build_splits`; this class serves the loaders.

    Args:
        root: the dataset's folder on disk (``data.root``), or ``None`` for embedded datasets.
        batch_size: images per batch.
        image_size: images are served ``image_size x image_size``.
        channels: 1 (grayscale) or 3 (RGB); images are converted to it.
        num_classes: classes (or attributes) of the labels; 0 when unlabeled. Checked against the data.
        split_seed: seed of the fixed split where the dataset has none.
        num_workers: DataLoader worker processes; ``None``: chosen per split (:meth:`loader_options`): 0 for
            a split served from the decoded-image cache (reading the memory map costs microseconds an image
            and workers only add the hand-over of every batch), else the available CPUs less one, capped at
            8 (:func:`default_workers`). Workers persist across epochs.
        drop_last: drop the last incomplete training batch.
        pin_memory: DataLoader ``pin_memory``; ``None``: when the trainer runs on a CUDA GPU.
        cache: serve on-disk images from the decoded-image cache (:mod:`datamodules.decoded_cache`):
            decoded once at this size, crop and channels, memory-mapped by later runs and every rank.
            ``False`` decodes every image at every access.
        cache_dir: the cache's folder (``data.cache_dir``); ``None``: ``$GENFORGE_CACHE/decoded``, else the
            user's cache folder (``~/.cache/genforge/decoded``).
        cache_workers: processes that build the cache; ``None``: the available CPUs, capped at 8.
        load_size: decode (and cache) images at this side, then serve ``image_size`` crops of them: random
            for training, central for val/test (:class:`CropFlipDataset`); ``None``: decode at ``image_size``.
        hflip: mirror training images at random (per item, also from the cache).

    Raises:
        utils.errors.InputError: on an invalid ``channels``, ``image_size``, ``batch_size``, ``num_workers``
            or a ``load_size`` below ``image_size`` (naming the ``data.`` key).
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 128,
        num_workers: int | None = 0,
        image_size: int = 28,
        channels: int = 1,
        num_classes: int = 0,
        split_seed: int = 0,
        drop_last: bool = True,
        pin_memory: bool | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        cache_workers: int | None = None,
        load_size: int | None = None,
        hflip: bool = False,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise InputError(f"data.channels must be 1 or 3, got {channels}")
        if image_size < 1 or batch_size < 1:
            raise InputError(f"data.image_size and data.batch_size must be positive, got {image_size}, {batch_size}")
        self.root = Path(root).expanduser() if root else None
        self.batch_size = batch_size
        if num_workers is not None and num_workers < 0:
            raise InputError(f"data.num_workers must be >= 0 or null (from the CPU count), got {num_workers}")
        self.num_workers = None if num_workers is None else int(num_workers)
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.split_seed = split_seed
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.init_cache(cache, cache_dir, cache_workers)
        if load_size is not None and load_size < image_size:
            raise InputError(f"data.load_size={load_size} must be at least data.image_size={image_size} (or null)")
        self.load_size, self.hflip = load_size, bool(hflip)
        self.datasets: dict[str, Dataset] = {}

    # ----------------------------------------------------------------- to override
    def build_splits(self) -> dict[str, Dataset]:
        """Return ``{"train": ..., "val": ..., "test": ...}`` datasets following the batch contract."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers for subclasses
    @property
    def decode_size(self) -> int:
        """The side images are decoded and cached at: ``load_size`` when set, else ``image_size``."""
        return self.load_size or self.image_size

    def tensor_dataset(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> TensorImageDataset:
        """Crop, resize and convert uint8 ``(N, C, H, W)`` images to this module's decode size and channels."""
        return TensorImageDataset(prepare_uint8(images, self.decode_size, self.channels), labels)

    def decoded(self, dataset: LazyImageDataset, name: str) -> Dataset:
        """``dataset`` served from the decoded-image cache (built now when missing) when ``data.cache``, else
        as it is (decoded at every access). ``name`` prefixes the cache file (with the size and channels).

        Raises:
            utils.errors.MissingFileError / InputError: while building the cache, for the first missing or
                unreadable image (named), before any training step; nothing is cached.
        """
        if not self.cache:
            return dataset
        label = f"{name}-{dataset.image_size}px-{dataset.channels}ch"
        return dataset.cached(self.cache_dir, label, self.cache_workers)

    def require_root(self, layout: str) -> Path:
        """Return ``data.root`` as a Path, or raise a :class:`~utils.errors.MissingFileError` (a
        FileNotFoundError the entry points print as one line) that describes ``layout``."""
        from utils.errors import MissingFileError

        if self.root is None:
            raise MissingFileError(f"data.root is not set; {type(self).__name__} expects {layout}")
        if not self.root.is_dir():
            raise MissingFileError(f"data.root={self.root} is not a directory; {type(self).__name__} expects {layout}")
        return self.root

    # ----------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            datasets = self.build_splits()
            missing = [s for s in SPLITS if s not in datasets]
            if missing:
                raise RuntimeError(f"{type(self).__name__}.build_splits returned no {missing} split")
            if self.load_size is not None or self.hflip:
                datasets = {split: CropFlipDataset(d, self.image_size, split == "train", self.hflip)
                            for split, d in datasets.items()}
            self.datasets = datasets

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` ("train", "val" or "test"), set up on first use."""
        self.setup()
        return self.datasets[split]

    def loader_options(self, dataset: Dataset | None = None) -> dict:
        """The DataLoader arguments of a split's ``dataset``: ``num_workers`` (``None``: 0 when ``dataset``
        is served from the decoded-image cache, else :func:`default_workers`), ``pin_memory`` (``None``: on
        when the trainer runs on a CUDA GPU) and ``persistent_workers`` (with workers)."""
        from datamodules.cached_loader import cached_source

        workers = self.num_workers
        if workers is None:
            workers = 0 if dataset is not None and cached_source(dataset) is not None else default_workers()
        pin = self.pin_memory
        if pin is None:
            from pytorch_lightning.accelerators import CUDAAccelerator

            trainer = getattr(self, "_trainer", None)
            pin = trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)
        return {"num_workers": workers, "pin_memory": bool(pin), "persistent_workers": workers > 0}

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        from datamodules.cached_loader import SignedLoader, Uint8Batches, cached_source, first

        dataset = self.dataset(split)
        options = {"batch_size": self.batch_size, "shuffle": shuffle,
                   "drop_last": drop_last and len(dataset) > self.batch_size, **self.loader_options(dataset)}
        source = cached_source(dataset)
        if source is not None:  # uint8 batches from the workers, [-1, 1] in this process
            return SignedLoader(Uint8Batches(*source), collate_fn=first, **options)
        return DataLoader(dataset, **options)

    def check_num_classes(self, found: int) -> None:
        """Raise an :class:`~utils.errors.InputError` when ``data.num_classes`` disagrees with the ``found``
        in the data."""
        if self.num_classes != found:
            raise InputError(f"data.num_classes={self.num_classes} but {type(self).__name__} has {found} classes")
