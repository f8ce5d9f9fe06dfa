"""Lazy image datasets shared by the readers of encoded images (CelebA, LSUN, image folders).

Images are decoded with Pillow only when an item is accessed, so a dataset of 200k+ files costs a list
of names in memory, not the pixels. Each item is cropped (centre, ``crop_size`` or the short side),
resized to ``image_size`` and converted to ``channels`` with :mod:`datamodules.transforms`, then mapped
to ``[-1, 1]``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.transforms import center_crop, prepare_uint8, to_signed

#: File extensions (lower case) read as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


#: Pillow modes that carry an alpha channel.
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def decode_image(source: bytes | str | os.PathLike, channels: int, name: str | None = None,
                 background: int | None = None) -> torch.Tensor:
    """Decode an image file (a path, or its encoded bytes) with Pillow.

    Args:
        source: a file path, or the encoded bytes (JPEG/PNG/WebP/... as stored in an lmdb).
        channels: 1 (Pillow mode ``L``) or 3 (``RGB``); palette, alpha, CMYK are converted.
        name: what to call the image in errors (default: the path).
        background: gray level ``[0, 255]`` to composite a transparent image over (e.g. 255: white, for
            renders such as Aubry et al.'s chairs); ``None`` drops the alpha channel.

    Returns:
        uint8 ``(channels, H, W)`` in ``[0, 255]``. Animated images give their first frame.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: if the file cannot be decoded (not an image, truncated, corrupt); names the image.
    """
    name = name or str(source)
    if not isinstance(source, (bytes, bytearray, memoryview)) and not os.path.isfile(source):
        raise FileNotFoundError(f"image file {name} does not exist")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source) as img:
            img.load()
            if background is not None and (img.mode in ALPHA_MODES or "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (background,) * 3 + (255,)), rgba)
            array = np.array(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except Exception as e:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ValueError...
        raise ValueError(
            f"cannot read image {name}: {type(e).__name__}: {e}. The file is corrupt, truncated or not an "
            f"image; delete or replace it."
        ) from e
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def square_image(image: torch.Tensor, image_size: int, channels: int, crop_size: int | None = None,
                 name: str = "image") -> torch.Tensor:
    """Centre-crop, resize and convert one uint8 ``(C, H, W)`` image.

    Crops the central ``crop_size`` square (default: the short side), resizes to ``image_size`` and
    converts to ``channels``. Returns uint8 ``(channels, image_size, image_size)``.

    Raises:
        ValueError: if the image is smaller than ``crop_size``; names the image.
    """
    if crop_size is not None:
        h, w = image.shape[-2:]
        if crop_size > h or crop_size > w:
            raise ValueError(f"{name} is {h}x{w}, smaller than the crop of {crop_size}x{crop_size} (data.crop_size)")
        image = center_crop(image, crop_size)
    return prepare_uint8(image.unsqueeze(0), image_size, channels)[0]


class LazyImageDataset(Dataset):
    """Base of the lazily decoded datasets: subclasses say where item ``i``'s encoded image is.

    Items are ``(image, label)``: image float32 ``(channels, image_size, image_size)`` in ``[-1, 1]``;
    label int64 ``()`` (``-1`` when unlabeled) or float32 ``(K,)`` multi-hot, from ``labels``.

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

    def __getitem__(self, index: int):
        source, name = self.encoded(index)
        image = decode_image(source, self.channels, name, self.background)
        image = square_image(image, self.image_size, self.channels, self.crop_size, name)
        return to_signed(image), self.labels[index]


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


def subset(dataset: Dataset, indices: torch.Tensor) -> torch.utils.data.Subset:
    """``torch.utils.data.Subset`` of ``dataset`` at the int64 ``indices`` (kept as one numpy array, not
    a list of Python ints, so millions of indices stay compact)."""
    return torch.utils.data.Subset(dataset, indices.numpy())
