"""``cifar10``: CIFAR-10 (Krizhevsky 2009) from the "python version" download, read without running pickles.

Expected layout of ``data.root`` (the extracted ``cifar-10-python.tar.gz``)::

    root/cifar-10-batches-py/data_batch_1 ... data_batch_5   10,000 training images each
    root/cifar-10-batches-py/test_batch                      10,000 test images

Each batch is a pickled dict (keys byte strings as downloaded, or ``str`` when re-saved by Python 3) with
``b"data"``: uint8 ndarray ``(10000, 3072)`` (each row the 1024 red,
then green, then blue values of a 32x32 image, row-major) and ``b"labels"``: a list of ints 0-9. The
files are loaded with :class:`~datamodules.safe_pickle.RestrictedUnpickler`, which resolves only the
numpy array globals and refuses anything else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.base import ImageDataModule, fixed_split
from datamodules.safe_pickle import load_restricted_pickle
from utils.errors import InputError, MissingFileError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
LAYOUT = (
    f"the extracted CIFAR-10 python version: data.root/{FOLDER}/ with data_batch_1 ... data_batch_5 and "
    f"test_batch (from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz)"
)


def batch_entries(batch: object) -> dict | None:
    """A CIFAR-10 batch dict with its keys as ``str``: the download's keys are Python 2 byte strings
    (``b"data"``, ``b"labels"``), a batch loaded with ``encoding="latin1"`` and re-saved by Python 3 has
    ``str`` keys; both are accepted (bytes decoded as latin-1). ``None`` when ``batch`` is not a dict."""
    if not isinstance(batch, dict):
        return None
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file with the restricted unpickler (``encoding="bytes"``); its keys may be
    bytes (the download) or str (re-saved by Python 3), see :func:`batch_entries`.

    Returns:
        images uint8 ``(N, 3, 32, 32)`` (RGB), labels int64 ``(N,)``.

    Raises:
        utils.errors.MissingFileError: if ``path`` does not exist.
        datamodules.safe_pickle.PickleFileError: (a ``pickle.UnpicklingError`` and an ``InputError``) if the
            pickle names a global other than the numpy array ones, or is corrupt.
        utils.errors.InputError: if the dict lacks ``data``/``labels`` or they have the wrong type, shape or
            length. All messages name ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"CIFAR-10 batch {path} does not exist; expected {LAYOUT}")
    batch = load_restricted_pickle(path, encoding="bytes")
    entries = batch_entries(batch)
    if entries is None or "data" not in entries or "labels" not in entries:
        keys = ", ".join(sorted(map(repr, batch))) if isinstance(batch, dict) else type(batch).__name__
        raise InputError(f"{path}: expected a dict with keys b'data' and b'labels' (or 'data' and "
                         f"'labels', as re-saved by Python 3), got {keys}")
    data, labels = entries["data"], entries["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise InputError(f"{path}: 'data' must be a uint8 array (N, 3072) of 32x32 RGB images, got {desc}")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: 'labels' must hold {len(data)} integers, got {labels.dtype} {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise InputError(f"{path}: negative label {labels.min()}; CIFAR-10 labels are 0-9")
    return np.array(data.reshape(-1, 3, 32, 32)), labels.astype(np.int64)


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 (Krizhevsky 2009): 60,000 32x32 RGB images of 10 classes, from the python pickles.

    Splits: val = a fixed-seed (``split_seed``) ``val_size`` (5,000) of the 50,000 training images,
    train = the other 45,000, test = ``test_batch`` (10,000). Batches: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]`` (default ``(B, 3, 32, 32)``), labels int64
    ``(B,)`` in 0-9.

    Args:
        root: folder holding ``cifar-10-batches-py/`` (see the module docstring).
        val_size: training images held out for validation.
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``num_classes`` = 10, ...).

    Raises:
        utils.errors.MissingFileError: (setup) when the folder or a batch file is missing; lists the layout.
        datamodules.safe_pickle.PickleFileError: (setup) when a batch names a forbidden global (possible code
            execution) or is corrupt.
        utils.errors.InputError: (setup) on malformed batches, ``num_classes`` != 10, ``val_size`` too large.
    """

    def __init__(self, val_size: int = 5000, **kwargs) -> None:
        kwargs.setdefault("num_classes", 10)
        kwargs.setdefault("image_size", 32)
        kwargs.setdefault("channels", 3)
        super().__init__(**kwargs)
        self.val_size = val_size

    def build_splits(self):
        folder = self.require_root(LAYOUT) / FOLDER
        missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / name).is_file()]
        if missing:
            raise MissingFileError(f"CIFAR-10 files missing in {folder}: {', '.join(missing)}; expected {LAYOUT}")
        parts = [read_cifar_batch(folder / name) for name in TRAIN_BATCHES]
        train_x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        train_y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        test_x, test_y = (torch.from_numpy(a) for a in read_cifar_batch(folder / TEST_BATCH))
        self.check_num_classes(int(max(train_y.max(), test_y.max())) + 1)
        if not 0 <= self.val_size < len(train_x):
            raise InputError(f"data.val_size={self.val_size} must be in [0, {len(train_x)}) for {folder}")
        train, val = fixed_split(len(train_x), (-1, self.val_size), self.split_seed)
        return {
            "train": self.tensor_dataset(train_x[train], train_y[train]),
            "val": self.tensor_dataset(train_x[val], train_y[val]),
            "test": self.tensor_dataset(test_x, test_y),
        }
