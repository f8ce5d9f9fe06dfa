"""``tfd``: the Toronto Face Database (Susskind et al. 2010) as used by Goodfellow et al. 2014 (Sec. 5).

Expected layout of ``data.root``::

    root/TFD_48x48.mat    (data.resolution=48) or root/TFD_96x96.mat (data.resolution=96), MATLAB v5
                          files with the arrays
        images   uint8 (N, R, R)   the faces, R = 48 or 96
        folds    (N, 5)            per official fold: 0 unlabeled, 1 train, 2 valid, 3 test
        labs_ex  (N, 1)            expression 1-7, -1 for unlabeled images

Split semantics follow pylearn2's ``TFD`` wrapper (``mapper = {'unlabeled': 0, 'train': 1, 'valid': 2,
'test': 3}``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.base import ImageDataModule, TensorImageDataset
from datamodules.decoded_cache import file_signature
from datamodules.transforms import prepare_uint8
from utils.errors import InputError, MissingFileError

UNLABELED, TRAIN, VALID, TEST = 0, 1, 2, 3
NUM_EXPRESSIONS = 7


def layout(resolution: int) -> str:
    """The expected file and arrays, for error messages."""
    return (f"data.root/TFD_{resolution}x{resolution}.mat holding 'images' uint8 (N, {resolution}, {resolution}), "
            f"'folds' (N, 5) with 0/1/2/3 = unlabeled/train/valid/test and 'labs_ex' (N, 1) expressions 1-7 or -1")


def read_tfd(path: Path, resolution: int, images: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Load and check a TFD ``.mat`` file with ``scipy.io.loadmat``.

    Args:
        images: read the images too; ``False`` reads only ``folds`` and ``labs_ex`` (the images come from
            the decoded-image cache), returning ``None`` for them.

    Returns:
        images uint8 ``(N, R, R)`` (or ``None``), folds int64 ``(N, 5)`` in 0-3, expressions int64 ``(N,)``
        in 0-6 or -1.

    Raises:
        MissingFileError: if ``path`` is missing.
        InputError: if the file cannot be read as a MATLAB file, lacks an array, or an array has the wrong
            shape or values; the message names ``path`` and the expected arrays.
    """
    from scipy.io import loadmat

    expected = layout(resolution)
    if not path.is_file():
        raise MissingFileError(f"TFD file {path} does not exist; expected {expected}")
    try:
        wanted = ["images", "folds", "labs_ex"] if images else ["folds", "labs_ex"]
        mat = loadmat(str(path), variable_names=wanted)
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise InputError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it as "
                         f"v5 ('save -v7') or use the original TFD release. Expected {expected}") from e
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, MatReadError on corrupt files
        raise InputError(f"{path}: cannot read it as a MATLAB file ({type(e).__name__}: {e}); expected {expected}") from e
    missing = [k for k in wanted if k not in mat]
    if missing:
        raise InputError(f"{path} lacks the arrays {missing}; expected {expected}")
    folds, labels = mat["folds"], mat["labs_ex"]
    n = len(folds)
    images = mat["images"] if images else None
    if images is not None and images.shape != (n, resolution, resolution):
        raise InputError(f"{path}: 'images' has shape {images.shape}; expected {expected}")
    if images is not None and images.dtype != np.uint8:
        if images.min() < 0 or images.max() > 255:
            raise InputError(f"{path}: 'images' values span [{images.min()}, {images.max()}], not [0, 255]")
        images = images.round().astype(np.uint8)
    if folds.shape != (n, 5) or not np.isin(folds, (UNLABELED, TRAIN, VALID, TEST)).all():
        raise InputError(f"{path}: 'folds' must be (N, 5) = ({n}, 5) with values 0-3, got {folds.shape}; "
                         f"expected {expected}")
    labels = labels.reshape(-1)
    if labels.shape != (n,) or not np.isin(labels, (-1, *range(1, NUM_EXPRESSIONS + 1))).all():
        raise InputError(f"{path}: 'labs_ex' must hold {n} values in 1-7 or -1; expected {expected}")
    expressions = np.where(labels > 0, labels - 1, -1).astype(np.int64)
    return images, folds.astype(np.int64), expressions


class TFDDataModule(ImageDataModule):
    """Toronto Face Database, one of its 5 official folds (Goodfellow et al. 2014, Sec. 5; pylearn2 TFD).

    Splits of fold ``fold``: train = the images marked 1 (train), plus those marked 0 (unlabeled) when
    ``include_unlabeled``; val = marked 2 (valid); test = marked 3 (test). Batches: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]`` (default ``(B, 1, 48, 48)``); labels int64
    ``(B,)``: with ``num_classes`` = 7 the expression 0-6 (``-1`` for unlabeled images), with
    ``num_classes`` = 0 all ``-1``.

    Args:
        root: folder holding ``TFD_48x48.mat`` / ``TFD_96x96.mat``.
        resolution: 48 or 96, which file to read.
        fold: the official fold, 0-4.
        include_unlabeled: add the fold's unlabeled images to the training split.
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``image_size`` = 48,
            ``channels`` = 1, ``num_classes`` = 0 or 7).

    Raises:
        InputError: (construction) on a bad ``resolution``, ``fold`` or ``num_classes``;
            (setup) on a malformed file (see :func:`read_tfd`).
        MissingFileError: (setup) when ``root`` or the ``.mat`` file is missing.
    """

    def __init__(self, resolution: int = 48, fold: int = 0, include_unlabeled: bool = True, **kwargs) -> None:
        kwargs.setdefault("image_size", 48)
        kwargs.setdefault("channels", 1)
        super().__init__(**kwargs)
        if resolution not in (48, 96):
            raise InputError(f"data.resolution must be 48 or 96 (TFD_48x48.mat / TFD_96x96.mat), got {resolution}")
        if fold not in range(5):
            raise InputError(f"data.fold must be 0-4 (TFD's 5 official folds), got {fold}")
        if self.num_classes not in (0, NUM_EXPRESSIONS):
            raise InputError(f"data.num_classes must be 0 (unlabeled) or 7 (TFD expressions), got {self.num_classes}")
        self.resolution, self.fold, self.include_unlabeled = resolution, fold, include_unlabeled

    def build_splits(self):
        root = self.require_root(layout(self.resolution))
        path = root / f"TFD_{self.resolution}x{self.resolution}.mat"
        images, folds, expressions = read_tfd(path, self.resolution, images=not self.cache)
        column = folds[:, self.fold]
        train_codes = (TRAIN, UNLABELED) if self.include_unlabeled else (TRAIN,)
        n = len(folds)
        x = self._images(path, n, images)
        y = torch.from_numpy(expressions) if self.num_classes else torch.full((n,), -1, dtype=torch.long)
        splits = {}
        for split, codes in (("train", train_codes), ("val", (VALID,)), ("test", (TEST,))):
            rows = torch.from_numpy(np.flatnonzero(np.isin(column, codes)))
            if len(rows) == 0:
                raise InputError(f"{path}: fold {self.fold} has no images marked {codes} for the {split} split")
            splits[split] = TensorImageDataset(torch.from_numpy(x[rows.numpy()]), y[rows])
        return splits

    def _images(self, path: Path, n: int, images: np.ndarray | None) -> np.ndarray:
        """All N images prepared (resized to ``image_size``, converted to ``channels``): uint8
        ``(N, channels, image_size, image_size)``, from the decoded-image cache when ``data.cache`` (built
        from the file when missing) or from ``images`` (read from the file)."""
        def prepared() -> np.ndarray:
            pixels = images if images is not None else read_tfd(path, self.resolution)[0]
            return prepare_uint8(torch.from_numpy(pixels).unsqueeze(1), self.decode_size, self.channels).numpy()

        if not self.cache:
            return prepared()
        rows = _Rows(prepared)
        cached = self.cached_rows(
            f"tfd-{self.resolution}-{self.decode_size}px-{self.channels}ch",
            {"source": file_signature([path]), "transform": {"image_size": self.decode_size, "channels": self.channels,
                                                            "resolution": self.resolution}},
            (n, self.channels, self.decode_size, self.decode_size), rows, in_process=True)
        return cached


class _Rows:
    """Row ``i`` of an array computed by ``make()`` on first use (the TFD cache is built in one process)."""

    def __init__(self, make) -> None:
        self.make, self.array = make, None

    def __call__(self, index: int) -> np.ndarray:
        if self.array is None:
            self.array = self.make()
        return self.array[index]
