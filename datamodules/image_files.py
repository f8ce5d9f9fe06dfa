"""Lazy image datasets shared by the readers of encoded images (CelebA, LSUN, image folders).

Images are decoded with Pillow only when an item is accessed, so a dataset of 200k+ files costs a list
of names in memory, not the pixels. Each item is cropped (centre, ``crop_size`` or the short side),
resized to ``image_size`` and converted to ``channels`` with :mod:`datamodules.transforms`, then mapped
to ``[-1, 1]``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.transforms import center_crop, prepare_uint8, to_signed
from utils.errors import InputError, MissingFileError

#: File extensions (lower case) read as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


#: Pillow modes that carry an alpha channel.
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _unreadable(name: str, error: Exception) -> InputError:
    """The error for an image Pillow cannot read: names it and says what to do."""
    return InputError(f"cannot read image {name}: {type(error).__name__}: {error}. The file is corrupt, truncated "
                      f"or not an image; delete or replace it.")


class ReadThrough:
    """Attributes a wrapper lacks are read from the object in its attribute named ``read_through`` (the
    dataset it wraps or was decoded from), so ``wrapper.paths`` works as on the original dataset."""

    read_through: str = "source"

    def __getattr__(self, name: str):
        inner = self.__dict__.get(type(self).read_through)
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)


def _draft_scale(img, out_size: int, crop_size: int | None) -> None:
    """Let Pillow decode a JPEG at 1/2, 1/4 or 1/8 scale (DCT scaling, ``Image.draft``) when the square that
    is cropped (``crop_size``, else the short side) still covers ``out_size`` pixels at that scale."""
    if img.format != "JPEG" or out_size is None:
        return
    width, height = img.size
    side = min(crop_size or min(width, height), width, height)
    if side < 2 * out_size:
        return
    # draft picks the largest reduction whose result is at least the requested size
    scale = out_size / side
    img.draft(img.mode, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def decode_image(source: bytes | str | os.PathLike, channels: int, name: str | None = None,
                 background: int | None = None, out_size: int | None = None,
                 crop_size: int | None = None) -> torch.Tensor:
    """Decode an image file (a path, or its encoded bytes) with Pillow.

    Args:
        source: a file path, or the encoded bytes (JPEG/PNG/WebP/... as stored in an lmdb).
        channels: 1 (Pillow mode ``L``) or 3 (``RGB``); palette, alpha, CMYK are converted.
        name: what to call the image in errors (default: the path).
        background: gray level ``[0, 255]`` to composite a transparent image over (e.g. 255: white, for
            renders such as Aubry et al.'s chairs); ``None`` drops the alpha channel.
        out_size, crop_size: when given, a JPEG whose cropped square (``crop_size`` pixels, else the short
            side) is at least twice ``out_size`` is decoded at a reduced scale (``Image.draft``: 1/2, 1/4 or
            1/8, never below ``out_size``), several times faster; the result is then smaller than the file.

    Returns:
        uint8 ``(channels, H, W)`` in ``[0, 255]``. Animated images give their first frame.

    Raises:
        utils.errors.MissingFileError: if a path does not exist.
        utils.errors.InputError: if the file cannot be decoded (not an image, truncated, corrupt); names it.
    """
    return _decode(source, channels, name, background, out_size, crop_size)[0]


def _decode(source, channels: int, name: str | None, background: int | None, out_size: int | None,
            crop_size: int | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`decode_image`, also returning the file's full ``(H, W)`` (before any reduced-scale decoding)."""
    name = name or str(source)
    if not isinstance(source, (bytes, bytearray, memoryview)) and not os.path.isfile(source):
        raise MissingFileError(f"image file {name} does not exist")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source) as img:
            full_size = (img.size[1], img.size[0])
            _draft_scale(img, out_size, crop_size)
            img.load()
            if background is not None and (img.mode in ALPHA_MODES or "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (background,) * 3 + (255,)), rgba)
            array = np.array(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except Exception as e:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ValueError...
        raise _unreadable(name, e) from e
    tensor = torch.from_numpy(array)
    return (tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()), full_size


def decode_square(source: bytes | str | os.PathLike, image_size: int, channels: int, crop_size: int | None = None,
                  name: str | None = None, background: int | None = None) -> torch.Tensor:
    """Decode an image file and centre-crop, resize and convert it (:func:`decode_image` at a reduced scale
    where that still covers ``image_size``, then :func:`square_image`).

    Returns:
        uint8 ``(channels, image_size, image_size)`` in ``[0, 255]``.

    Raises:
        MissingFileError / InputError: as :func:`decode_image` and :func:`square_image`; they name the image.
    """
    name = name or str(source)
    image, full_size = _decode(source, channels, name, background, image_size, crop_size)
    return square_image(image, image_size, channels, crop_size, name, full_size)


def image_size_of(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (no decoding).

    Raises:
        utils.errors.InputError: if Pillow cannot identify the file; names it.
    """
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as e:
        raise _unreadable(str(path), e) from e


def square_image(image: torch.Tensor, image_size: int, channels: int, crop_size: int | None = None,
                 name: str = "image", full_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Centre-crop, resize and convert one uint8 ``(C, H, W)`` image.

    Crops the central ``crop_size`` square (default: the short side), resizes to ``image_size`` and
    converts to ``channels``. Returns uint8 ``(channels, image_size, image_size)``.

    Args:
        full_size: ``(H, W)`` of the file when ``image`` was decoded at a reduced scale
            (:func:`decode_image` with ``out_size``): ``crop_size`` is then scaled by the same factor.

    Raises:
        utils.errors.InputError: if the image is smaller than ``crop_size`` (``data.crop_size``); names it.
    """
    if crop_size is not None:
        h, w = full_size or image.shape[-2:]
        if crop_size > h or crop_size > w:
            raise InputError(f"{name} is {h}x{w}, smaller than the crop of {crop_size}x{crop_size} (data.crop_size)")
        if full_size is not None and tuple(full_size) != tuple(image.shape[-2:]):
            crop_size = min(round(crop_size * image.shape[-1] / w), *image.shape[-2:])
        image = center_crop(image, crop_size)
    return prepare_uint8(image.unsqueeze(0), image_size, channels)[0]


class LazyImageDataset(Dataset):
    """Base of the lazily decoded datasets: subclasses say where item ``i``'s encoded image is.

    Items are ``(image, label)``: image float32 ``(channels, image_size, image_size)`` in ``[-1, 1]``;
    label int64 ``()`` (``-1`` when unlabeled) or float32 ``(K,)`` multi-hot, from ``labels``.
    :meth:`cached` turns the dataset into a :class:`CachedImageDataset` with the same items, decoded once.

    Args:
        labels: int64 ``(N,)`` or float ``(N, K)``; ``None`` for unlabeled (every label ``-1``).
        length: N, the number of items.
        image_size, channels, crop_size: see :func:`square_image`.
        background: see :func:`decode_image` (transparent images composited over it; ``None``: alpha dropped).

    Raises:
        ValueError: if ``labels`` does not have ``length`` rows.
    """

    def __init__(self, labels: torch.Tensor | None, length: int, image_size: int, channels: int,
                 crop_size: int | None = None, background: int | None = None) -> None:
        if labels is None:
            labels = torch.full((length,), -1, dtype=torch.long)
        if len(labels) != length:
            raise ValueError(f"{length} images but {len(labels)} labels")
        self.labels = labels
        self.image_size, self.channels, self.crop_size = image_size, channels, crop_size
        self.background = background

    def __len__(self) -> int:
        return len(self.labels)

    def encoded(self, index: int) -> tuple[bytes | Path, str]:
        """Return ``(source, name)``: the image's path or encoded bytes, and its name for errors."""
        raise NotImplementedError

    def source_signature(self) -> object:
        """What identifies the encoded images (JSON-serializable; e.g. names, sizes, modification times):
        part of the cache key, so a changed source never serves a stale cache."""
        raise NotImplementedError

    def transform(self) -> dict:
        """The decoding settings (size, channels, crop, background): the other part of the cache key."""
        return {"image_size": self.image_size, "channels": self.channels, "crop_size": self.crop_size,
                "background": self.background}

    def pixels(self, index: int) -> torch.Tensor:
        """Item ``index`` decoded: uint8 ``(channels, image_size, image_size)``.

        Raises:
            FileNotFoundError / ValueError: when the image is missing / unreadable / smaller than the crop.
        """
        source, name = self.encoded(index)
        return decode_square(source, self.image_size, self.channels, self.crop_size, name, self.background)

    def pixels_numpy(self, index: int) -> np.ndarray:
        """:meth:`pixels` as a numpy array (a row of the cache)."""
        return self.pixels(index).numpy()

    def __getitem__(self, index: int):
        return to_signed(self.pixels(index)), self.labels[index]

    def cached(self, cache_dir: str | os.PathLike, name: str, workers: int | None = None) -> CachedImageDataset:
        """The same items served from the decoded-image cache in ``cache_dir`` (built now if missing, see
        :func:`datamodules.decoded_cache.cached_array`).

        Raises:
            utils.errors.MissingFileError / InputError: while building, for the first missing or unreadable
                image (named); nothing is cached.
        """
        from datamodules.decoded_cache import cached_array

        shape = (len(self), self.channels, self.image_size, self.image_size)
        description = {"source": self.source_signature(), "transform": self.transform()}
        array = cached_array(cache_dir, name, description, shape, self.pixels_numpy, workers,
                             what=f"decoding {len(self)} images ({name})")
        return CachedImageDataset(array, self.labels, self)


class CachedImageDataset(ReadThrough, Dataset):
    """Decoded images served from a memory-mapped uint8 array (the decoded-image cache).

    Items ``(image float32 (C, H, W) in [-1, 1], label)`` as the lazy dataset they were decoded from. The
    array is a read-only ``np.memmap``: DataLoader workers share its pages (forked workers inherit the map,
    spawned ones reopen the file), so memory does not grow with workers or with the dataset.

    Attributes the source dataset has (``paths``, ``image_size``, ...) are read through from ``source``.

    Args:
        array: uint8 ``(N, C, H, W)`` memory-mapped from a ``.npy`` file.
        labels: int64 ``(N,)`` or float ``(N, K)``.
        source: the lazy dataset the array was decoded from (for its paths and settings), if any.

    Raises:
        ValueError: if the array is not uint8 ``(N, C, H, W)`` or ``labels`` has another length.
    """

    def __init__(self, array: np.ndarray, labels: torch.Tensor, source: LazyImageDataset | None = None) -> None:
        if array.dtype != np.uint8 or array.ndim != 4:
            raise ValueError(f"a cached image array must be uint8 (N, C, H, W), got {array.dtype} {array.shape}")
        if len(labels) != len(array):
            raise ValueError(f"{len(array)} cached images but {len(labels)} labels")
        self.array, self.labels, self.source = array, labels, source
        self.filename = getattr(array, "filename", None)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return to_signed(torch.from_numpy(np.array(self.array[index]))), self.labels[index]

    def rows(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` in one read of the array: ``(images uint8 (B, C, H, W) in [0, 255], labels)``."""
        rows = np.asarray(indices, dtype=np.int64)
        return torch.from_numpy(self.array[rows]), self.labels[torch.from_numpy(rows)]

    def __getitems__(self, indices: list[int]) -> list:
        """A DataLoader batch's items in one read of the array (what ``DataLoader`` calls when present)."""
        images, labels = self.rows(indices)
        return list(zip(to_signed(images).unbind(0), labels.unbind(0)))

    def __getstate__(self):  # a spawned worker maps the file itself instead of receiving a copy of the pixels
        state = dict(self.__dict__)
        if self.filename is not None:
            state["array"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.array is None:
            self.array = np.load(self.filename, mmap_mode="r", allow_pickle=False)


class ImageFileDataset(LazyImageDataset):
    """Images read from files, one path per item (CelebA, image folders).

    Args:
        paths: the image files, N of them.
        labels, image_size, channels, crop_size, background: see :class:`LazyImageDataset`.

    Raises:
        FileNotFoundError / ValueError: on access, when a file is missing / unreadable; names the file.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels: torch.Tensor | None = None,
                 image_size: int = 64, channels: int = 3, crop_size: int | None = None,
                 background: int | None = None) -> None:
        super().__init__(labels, len(paths), image_size, channels, crop_size, background)
        self.paths = [Path(p) for p in paths]

    def encoded(self, index: int) -> tuple[Path, str]:
        return self.paths[index], str(self.paths[index])

    def source_signature(self) -> list:
        """``[[path, size, mtime_ns], ...]`` of the files (see :func:`datamodules.decoded_cache.file_signature`)."""
        from datamodules.decoded_cache import file_signature

        return file_signature(self.paths)


def subset(dataset: Dataset, indices: torch.Tensor) -> torch.utils.data.Subset:
    """``torch.utils.data.Subset`` of ``dataset`` at the int64 ``indices`` (kept as one numpy array, not
    a list of Python ints, so millions of indices stay compact)."""
    return torch.utils.data.Subset(dataset, indices.numpy())
