"""``bsds300``: 8x8 patches of the Berkeley Segmentation Dataset (Martin et al. 2001), the natural-image
patch benchmark of RNADE (Uria et al. 2013, Sec. 4.2) and the Deep GMM (van den Oord & Schrauwen 2014,
Sec. 4).

``data.root`` is one of:

(a) the Berkeley ``BSDS300`` folder (from ``BSDS300-images.tgz``)::

        root/images/train/*.jpg     200 training images (481 x 321 or 321 x 481, colour)
        root/images/test/*.jpg      100 test images

    Images are converted to grayscale with Pillow ``convert("L")`` and patches are drawn by the protocol of
    :mod:`datamodules.patches.protocol` with fixed seeds (:meth:`PatchDataModule.split_rng
    <datamodules.patches.photo_patches.PatchDataModule.split_rng>`): train and val from the training images, split BY
    IMAGE (:func:`~datamodules.base.fixed_split` with ``split_seed``, ``val_images`` of them for val),
    test from the test images. ``train_patches`` / ``val_patches`` / ``test_patches`` (default
    1,000,000 / 50,000 / 250,000, the sizes of the preprocessed set) are spread evenly over each split's
    images.

(b) the preprocessed ``BSDS300.hdf5`` of the density-estimation literature (MAF, Papamakarios et al.
    2017, from its data archive), or a folder holding it; datasets ``train`` (1,000,000 x 63),
    ``validation`` (50,000 x 63) and ``test`` (250,000 x 63), float, already preprocessed by the same
    protocol; they become the train / val / test splits as they are (``*_patches`` do not apply).
    Reading it needs ``h5py`` (``pip install h5py``).

``root`` may also be a folder holding ``BSDS300/`` (the tarball's parent): ``root/BSDS300/images/...`` or
``root/BSDS300/BSDS300.hdf5``. When a folder holds both layouts, set ``data.format`` (``images`` or
``hdf5``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datamodules.base import fixed_split
from datamodules.decoded_cache import CacheSettings, file_signature
from datamodules.image_files import decode_image, image_size_of, is_image_file
from datamodules.patches.photo_patches import PatchDataModule
from datamodules.patches.protocol import PatchDataset, check_patches, patches_from_images, spread_counts
from utils.errors import InputError, MissingFileError

#: The arrays of the preprocessed ``BSDS300.hdf5`` and the splits they become.
HDF5_KEYS = {"train": "train", "validation": "val", "test": "test"}
HDF5_NAME = "BSDS300.hdf5"
FORMATS = ("auto", "images", "hdf5")


def layout(dim: int = 63) -> str:
    """The expected layouts, for error messages."""
    return (f"either the Berkeley BSDS300 folder with images/train/*.jpg (200 images) and images/test/*.jpg "
            f"(100 images), or the preprocessed {HDF5_NAME} holding the float arrays 'train', 'validation' "
            f"and 'test' of shape (N, {dim}) (or a folder holding either, or holding BSDS300/ with either)")


def find_source(root: str | Path, fmt: str = "auto", dim: int = 63) -> tuple[str, Path]:
    """Decide what ``data.root`` points at.

    Args:
        root: a ``BSDS300`` folder, a ``BSDS300.hdf5`` file, or a folder holding one of them or ``BSDS300/``.
        fmt: ``auto`` (by what exists), ``images`` or ``hdf5``.
        dim: the patch dimension, for messages.

    Returns:
        ``("images", folder holding images/)`` or ``("hdf5", file)``.

    Raises:
        MissingFileError: if ``root`` does not exist or holds neither layout; names it and the layouts.
        InputError: on an unknown ``fmt``, or when a folder holds both layouts and ``fmt`` is ``auto``.
    """
    if fmt not in FORMATS:
        raise InputError(f"data.format must be one of {FORMATS}, got {fmt!r}")
    root = Path(root).expanduser()
    if not root.exists():
        raise MissingFileError(f"data.root={root} does not exist; expected {layout(dim)}")
    if root.is_file():
        if fmt == "images":
            raise MissingFileError(f"data.root={root} is a file but data.format=images; expected the BSDS300 "
                                    f"folder with images/train/*.jpg and images/test/*.jpg")
        return "hdf5", root
    for folder in (root, root / "BSDS300"):
        has_images = (folder / "images").is_dir()
        has_hdf5 = (folder / HDF5_NAME).is_file()
        if has_images and has_hdf5 and fmt == "auto":
            raise InputError(f"{folder} holds both images/ and {HDF5_NAME}; set data.format=images (draw patches "
                             f"from the images) or data.format=hdf5 (use the preprocessed arrays)")
        if has_images and fmt in ("auto", "images"):
            return "images", folder
        if has_hdf5 and fmt in ("auto", "hdf5"):
            return "hdf5", folder / HDF5_NAME
    wanted = {"auto": layout(dim), "images": "images/train/*.jpg and images/test/*.jpg below it",
              "hdf5": f"{HDF5_NAME} in it"}[fmt]
    raise MissingFileError(f"data.root={root} holds no BSDS300 data (looked in {root} and {root / 'BSDS300'}); "
                            f"expected {wanted}")


def list_split_images(folder: Path, split: str) -> list[Path]:
    """The sorted image files (``*.jpg`` and other image extensions) of ``folder/images/<split>``.

    Raises:
        MissingFileError: if that folder is missing; ValueError if it holds no image files. Both name it.
    """
    directory = folder / "images" / split
    if not directory.is_dir():
        raise MissingFileError(f"{directory} does not exist; expected the BSDS300 layout "
                                f"images/train/*.jpg (200 images) and images/test/*.jpg (100 images)")
    paths = sorted(p for p in directory.iterdir() if p.is_file() and is_image_file(p))
    if not paths:
        raise InputError(f"no images in {directory}; expected the BSDS300 {split} images as *.jpg files")
    return paths


def read_gray(paths: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    """Decode ``paths`` one at a time as ``(path string, uint8 (H, W))`` grayscale (Pillow ``convert("L")``).

    Raises:
        InputError: if a file cannot be decoded; names it (see :func:`~datamodules.image_files.decode_image`).
    """
    for path in paths:
        yield str(path), decode_image(path, 1)[0].numpy()


class GrayRows:
    """Rows of the BSDS300 images' decoded cache: image ``paths[i]`` in grayscale (Pillow ``convert("L")``),
    flattened row-major and zero-padded to ``width`` pixels, uint8 ``(width,)`` (the images differ in
    orientation, 481x321 or 321x481, so the cache holds pixels plus the shapes from the file headers).

    Raises:
        InputError: if an image cannot be decoded (names it).
    """

    def __init__(self, paths: list[Path], width: int) -> None:
        self.paths, self.width = paths, width

    def __call__(self, index: int) -> np.ndarray:
        pixels = decode_image(self.paths[index], 1)[0].numpy().reshape(-1)
        row = np.zeros(self.width, dtype=np.uint8)
        row[: len(pixels)] = pixels
        return row


def read_bsds300_hdf5(path: str | Path, dim: int = 63) -> dict[str, np.ndarray]:
    """Read the preprocessed ``BSDS300.hdf5`` (datasets ``train``, ``validation``, ``test``).

    Returns:
        ``{"train": ..., "val": ..., "test": ...}`` float64 ``(N, dim)`` arrays.

    Raises:
        ImportError: if ``h5py`` is not installed (``pip install h5py``).
        MissingFileError: if ``path`` does not exist.
        InputError: naming the path (and key): the file is not HDF5; an array is missing (lists the keys
            found); an array is not ``(N, dim)``; an array holds NaN or infinite values.
    """
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"reading {path} needs h5py: pip install h5py") from e
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; expected {HDF5_NAME} with the float arrays 'train', "
                                f"'validation' and 'test' of shape (N, {dim})")
    try:
        file = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"cannot read {path} as an HDF5 file ({e}); expected {HDF5_NAME} with the float "
                         f"arrays 'train', 'validation' and 'test' of shape (N, {dim})") from e
    with file:
        found = sorted(file.keys())
        missing = [k for k in HDF5_KEYS if k not in file]
        if missing:
            raise InputError(f"{path} lacks the array(s) {missing}; found keys {found}; expected 'train', "
                             f"'validation' and 'test' of shape (N, {dim})")
        groups = [k for k in HDF5_KEYS if isinstance(file[k], h5py.Group)]
        if groups:
            raise InputError(f"{path}: {groups} are HDF5 groups, expected arrays of shape (N, {dim})")
        return {split: check_patches(file[key][()], f"{path}['{key}']", dim) for key, split in HDF5_KEYS.items()}


class BSDS300DataModule(CacheSettings, PatchDataModule):
    """``data=bsds300``: BSDS300 8x8 patches, from the Berkeley images or the preprocessed HDF5 file.

    Batches ``(x float64 (B, 63), index int64 (B,))`` (see :mod:`datamodules.patches.photo_patches`); see the module
    docstring for the layouts and the protocol.

    Args:
        root: see the module docstring.
        train_patches, val_patches, test_patches: patches drawn per split (images layout only).
        val_images: training images held out for validation (images layout only).
        format: ``auto``, ``images`` or ``hdf5`` (which layout to read when a folder holds both).
        cache, cache_dir, cache_workers: the decoded-image cache of the grayscale images (images layout; see
            :class:`~datamodules.decoded_cache.CacheSettings`); ``cache=False`` decodes them at every setup.
        **kwargs: :class:`~datamodules.patches.photo_patches.PatchDataModule` (``batch_size``, ``patch_size``, ...).

    Raises:
        InputError: (construction) on non-positive counts or an unknown ``format``; (setup) see
            :func:`find_source`, :func:`list_split_images`, :func:`read_bsds300_hdf5`, or when
            ``val_images`` leaves no training image.
        MissingFileError: (setup) when ``root`` or a part of its layout is missing.
    """

    def __init__(self, root: str | None = None, train_patches: int = 1_000_000, val_patches: int = 50_000,
                 test_patches: int = 250_000, val_images: int = 20, format: str = "auto", cache: bool = True,
                 cache_dir: str | None = None, cache_workers: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_cache(cache, cache_dir, cache_workers)
        self.root = Path(root).expanduser() if root else None
        counts = {"train_patches": train_patches, "val_patches": val_patches, "test_patches": test_patches,
                  "val_images": val_images}
        for key, value in counts.items():
            if value < 1:
                raise InputError(f"data.{key} must be positive, got {value}")
        if format not in FORMATS:
            raise InputError(f"data.format must be one of {FORMATS}, got {format!r}")
        self.counts = {"train": int(train_patches), "val": int(val_patches), "test": int(test_patches)}
        self.val_images, self.format = int(val_images), format
        self.split_images: dict[str, list[str]] = {}

    def build_splits(self) -> dict[str, PatchDataset]:
        """Patches from the BSDS300 folder or HDF5 file (see the class docstring for the errors raised)."""
        if self.root is None:
            raise MissingFileError(f"data.root is not set; expected {layout(self.dim)}")
        kind, source = find_source(self.root, self.format, self.dim)
        if kind == "hdf5":
            arrays = read_bsds300_hdf5(source, self.dim)
            return {split: PatchDataset(arrays[split], f"{source}['{key}']", self.dim)
                    for key, split in HDF5_KEYS.items()}
        train_paths = list_split_images(source, "train")
        test_paths = list_split_images(source, "test")
        if self.val_images >= len(train_paths):
            raise InputError(f"data.val_images={self.val_images} leaves no training image of the "
                             f"{len(train_paths)} in {source / 'images' / 'train'}")
        train_idx, val_idx = fixed_split(len(train_paths), (-1, self.val_images), self.split_seed)
        paths = {"train": [train_paths[i] for i in train_idx.tolist()],
                 "val": [train_paths[i] for i in val_idx.tolist()], "test": test_paths}
        datasets = {}
        for split, split_paths in paths.items():
            counts = spread_counts(self.counts[split], len(split_paths))
            x, owners = patches_from_images(self._gray_images(split_paths, split), counts, self.split_rng(split),
                                            self.patch_size)
            names = [p.name for p in split_paths]
            datasets[split] = PatchDataset(x, f"{source / 'images'} {split} patches", self.dim, owners, names)
            self.split_images[split] = names
        return datasets

    def _gray_images(self, paths: list[Path], split: str) -> Iterator[tuple[str, np.ndarray]]:
        """``(path, uint8 (H, W))`` per image: from the decoded-image cache (built now if missing) or decoded."""
        if not self.cache:
            yield from read_gray(paths)
            return
        sizes = [image_size_of(p) for p in paths]  # (W, H) from the headers
        width = max(w * h for w, h in sizes)
        cached = self.cached_rows(f"bsds300-{split}-gray", {"source": file_signature(paths), "transform": "gray"},
                                  (len(paths), width), GrayRows(paths, width))
        for path, (w, h), row in zip(paths, sizes, cached):
            yield str(path), np.asarray(row[: w * h]).reshape(h, w)
