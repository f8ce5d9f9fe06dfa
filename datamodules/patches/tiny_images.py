"""``tiny_images``: whole small images downsampled to one ``patch_size x patch_size`` patch each (the
tiny-images experiment of van den Oord & Schrauwen 2014, Sec. 4, on 80 Million Tiny Images-style 32x32
pictures, Torralba et al. 2008), preprocessed by the BSDS300 patch protocol.

Expected layout of ``data.root``: a folder of image files, any format Pillow reads (extensions
:data:`~datamodules.image_files.IMAGE_EXTENSIONS`), found recursively (hidden entries skipped) and
sorted by path::

    root/**/*.png|jpg|...

Each image is decoded with Pillow, converted to grayscale (``convert("L")``), centre-cropped to a square
of its short side, and resized to ``patch_size x patch_size`` with Pillow's ``BOX`` filter (default: every
output pixel is the plain average of the input pixels it covers, e.g. of a 4x4 block for 32x32 -> 8x8;
``resample: lanczos`` uses ``LANCZOS`` instead), giving uint8 ``(P, P)``. That one "patch" per image then
goes through :func:`~datamodules.patches.protocol.extract_patches` (dequantization noise drawn once with the
seed, /256, mean subtraction, last pixel dropped): ``x`` float64 ``(P*P - 1,)`` in ``(-1, 1)``.

Split BY FILE with :func:`~datamodules.base.fixed_split` (``split_seed``): ``val_images`` and
``test_images`` files go to val / test, the rest to train. Each is a count (an int >= 1) or a fraction of
the files (a float in ``(0, 1)``, rounded, at least one file); defaults 0.05 / 0.05.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.base import fixed_split
from datamodules.decoded_cache import CacheSettings, file_signature
from datamodules.image_files import IMAGE_EXTENSIONS, decode_image
from datamodules.images.image_folder import list_images
from datamodules.patches.photo_patches import PatchDataModule
from datamodules.patches.protocol import PatchDataset, patches_from_images
from utils.errors import InputError, MissingFileError

#: ``data.resample`` -> Pillow filter used to downsample images to ``patch_size``.
RESAMPLE = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
LAYOUT = (f"a folder of image files ({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}), searched "
          f"recursively; each image becomes one patch")


def downsample(image: np.ndarray, patch_size: int, resample: str = "box") -> np.ndarray:
    """A uint8 grayscale ``(H, W)`` image, centre-cropped to its short side and resized to
    ``(patch_size, patch_size)`` with Pillow (``box`` or ``lanczos``, see :data:`RESAMPLE`).

    Returns:
        uint8 ``(patch_size, patch_size)``.

    Raises:
        InputError: on an unknown ``resample``.
    """
    if resample not in RESAMPLE:
        raise InputError(f"data.resample must be one of {list(RESAMPLE)}, got {resample!r}")
    h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(np.ascontiguousarray(image[top : top + side, left : left + side]), "L")
    return np.asarray(square.resize((patch_size, patch_size), RESAMPLE[resample]), dtype=np.uint8)


def split_size(value: float, n: int, key: str) -> int:
    """A split size from a count (int >= 1) or a fraction of ``n`` (float in ``(0, 1)``, rounded, >= 1).

    Raises:
        InputError: naming ``data.<key>`` on anything else.
    """
    if isinstance(value, float) and not value.is_integer():
        if not 0 < value < 1:
            raise InputError(f"data.{key} must be a count >= 1 or a fraction in (0, 1), got {value}")
        return max(1, round(value * n))
    if int(value) < 1:
        raise InputError(f"data.{key} must be a count >= 1 or a fraction in (0, 1), got {value}")
    return int(value)


class Downsampled:
    """Row ``i`` of the tiny images' decoded cache: image ``paths[i]`` in grayscale, downsampled by
    :func:`downsample`, as uint8 ``(1, patch_size, patch_size)`` (a picklable callable for the build's
    workers).

    Raises:
        InputError: if the image cannot be decoded; names it.
    """

    def __init__(self, paths: list[Path], patch_size: int, resample: str) -> None:
        self.paths, self.patch_size, self.resample = paths, patch_size, resample

    def __call__(self, index: int) -> np.ndarray:
        gray = decode_image(self.paths[index], 1)[0].numpy()
        return downsample(gray, self.patch_size, self.resample)[None]


class TinyImagesDataModule(CacheSettings, PatchDataModule):
    """``data=tiny_images``: a folder of small images, one downsampled patch per image, split by file.

    Batches ``(x float64 (B, P*P - 1), index int64 (B,))`` (see :mod:`datamodules.patches.photo_patches`); see the
    module docstring for the layout, the downsampling and the split.

    Args:
        root: the folder of images.
        val_images, test_images: files in val / test: a count (int) or a fraction (float in (0, 1)).
        resample: ``box`` (area average) or ``lanczos``, the Pillow filter of the downsampling.
        cache, cache_dir, cache_workers: the decoded-image cache of the downsampled images (see
            :class:`~datamodules.decoded_cache.CacheSettings`); ``cache=False`` decodes every file at setup.
        **kwargs: :class:`~datamodules.patches.photo_patches.PatchDataModule` (``batch_size``, ``patch_size``, ...).

    Raises:
        InputError: (construction) on a bad ``resample``; (setup) when the folder holds no images (names
            it), a file cannot be decoded (names the file), or the split sizes leave no training file.
        MissingFileError: (setup) when ``root`` is not set or is not a folder.
    """

    def __init__(self, root: str | None = None, val_images: float = 0.05, test_images: float = 0.05,
                 resample: str = "box", cache: bool = True, cache_dir: str | None = None,
                 cache_workers: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_cache(cache, cache_dir, cache_workers)
        if resample not in RESAMPLE:
            raise InputError(f"data.resample must be one of {list(RESAMPLE)}, got {resample!r}")
        self.root = Path(root).expanduser() if root else None
        self.val_images, self.test_images, self.resample = val_images, test_images, resample
        self.split_files: dict[str, list[str]] = {}

    def list_files(self) -> list[Path]:
        """The image files of ``root``, sorted.

        Raises:
            MissingFileError: if ``root`` is unset or not a folder; ValueError if it holds no images.
        """
        if self.root is None:
            raise MissingFileError(f"data.root is not set; TinyImagesDataModule expects {LAYOUT}")
        if not self.root.is_dir():
            raise MissingFileError(f"data.root={self.root} is not a directory; expected {LAYOUT}")
        paths = list_images(self.root)
        if not paths:
            raise InputError(f"no image files found in {self.root}; expected {LAYOUT}")
        return paths

    def _patches(self, paths: list[Path], split: str) -> Iterator[tuple[str, np.ndarray]]:
        """``(path, uint8 (P, P))`` per file: from the decoded-image cache (built now if missing) or decoded."""
        rows = Downsampled(paths, self.patch_size, self.resample)
        cached = self.cached_rows(
            f"tiny_images-{split}-{self.patch_size}px-{self.resample}",
            {"source": file_signature(paths, self.root), "root": str(self.root),
             "transform": {"patch_size": self.patch_size, "resample": self.resample, "channels": 1}},
            (len(paths), 1, self.patch_size, self.patch_size), rows)
        for i, path in enumerate(paths):
            yield str(path), (np.asarray(cached[i]) if cached is not None else rows(i))[0]

    def build_splits(self) -> dict[str, PatchDataset]:
        """One 8x8 patch per image file, split by file (see the class docstring for the errors raised)."""
        paths = self.list_files()
        n = len(paths)
        n_val = split_size(self.val_images, n, "val_images")
        n_test = split_size(self.test_images, n, "test_images")
        if n_val + n_test >= n:
            raise InputError(f"data.val_images={self.val_images} ({n_val}) + data.test_images={self.test_images} "
                             f"({n_test}) leave no training file of the {n} in {self.root}")
        parts = dict(zip(("train", "val", "test"), fixed_split(n, (-1, n_val, n_test), self.split_seed)))
        datasets = {}
        for split, idx in parts.items():
            split_paths = [paths[i] for i in idx.tolist()]
            x, owners = patches_from_images(self._patches(split_paths, split), [1] * len(split_paths),
                                            self.split_rng(split), self.patch_size)
            names = [str(p.relative_to(self.root)) for p in split_paths]
            datasets[split] = PatchDataset(x, f"{self.root} {split} images", self.dim, owners, names)
            self.split_files[split] = names
        return datasets
