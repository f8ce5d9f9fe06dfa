"""``lsun``: one LSUN scene category (Yu et al. 2015) from the official lmdb exports, decoded lazily.

Expected layout of ``data.root`` (what LSUN's ``download.py`` gives after unzipping, e.g. for bedroom)::

    root/bedroom_train_lmdb/data.mdb      keys: image ids; values: encoded images (WebP/JPEG)
    root/bedroom_val_lmdb/data.mdb        the 300 validation images of the category

Needs the optional ``lmdb`` package (``pip install genforge[lsun]``). The databases are opened
read-only without a lock file, so nothing is written into ``root``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from torch.utils.data import get_worker_info

from datamodules.base import ImageDataModule, fixed_split
from datamodules.image_files import LazyImageDataset, subset
from utils.errors import InputError, MissingFileError


def _import_lmdb():
    try:
        import lmdb
    except ImportError as e:
        raise ImportError(
            "the LSUN reader needs the optional 'lmdb' package: pip install genforge[lsun]  (or: pip install lmdb)"
        ) from e
    return lmdb


def open_lmdb(path: Path):
    """Open the lmdb environment at ``path`` read-only and without a lock file, so nothing is written.

    Raises:
        ImportError: without the ``lmdb`` package.
        InputError: if lmdb cannot open it; names ``path``.
    """
    lmdb = _import_lmdb()
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=126)
    except lmdb.Error as e:
        raise InputError(f"cannot open the lmdb database {path}: {e}") from e


def layout(category: str) -> str:
    """The expected folder layout for ``category``, for error messages."""
    return (f"data.root/{category}_train_lmdb/data.mdb and data.root/{category}_val_lmdb/data.mdb (LSUN's lmdb "
            f"exports of category '{category}', unzipped)")


class LMDBImageDataset(LazyImageDataset):
    """The images of an lmdb database whose values are encoded images (LSUN's format).

    The keys are listed once at construction (``max_images`` stops early); each item reads its value from
    the database (opened read-only without a lock; see :meth:`_environment` for DataLoader workers) and
    decodes it.
    Items: float32 ``(channels, image_size, image_size)`` in ``[-1, 1]`` (centre crop to the short
    side, resize), label int64 ``-1``.

    Args:
        path: the lmdb folder (holding ``data.mdb``).
        image_size, channels: output size and channels.
        max_images: read only the first ``max_images`` keys (key order); ``None`` for all.

    Raises:
        ImportError: without the ``lmdb`` package (says how to install it).
        MissingFileError: if ``path/data.mdb`` is missing.
        InputError: if the database is unreadable or empty; on access, if an image cannot be decoded (names
            the database and key).
    """

    def __init__(self, path: str | os.PathLike, image_size: int = 64, channels: int = 3,
                 max_images: int | None = None, expected: str = "an LSUN lmdb folder") -> None:
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise MissingFileError(f"{self.path / 'data.mdb'} does not exist; expected {expected}")
        self._env, self._pid = None, None
        keys = []
        with self._environment() as env, env.begin(write=False) as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                if max_images is not None and len(keys) >= max_images:
                    break
                keys.append(key)
        if not keys:
            raise InputError(f"the lmdb database {self.path} holds no images; expected {expected}")
        # A numpy array of fixed-width bytes: ~40 bytes per key rather than a Python object each.
        self.keys = np.array(keys, dtype=np.bytes_)
        super().__init__(None, len(self.keys), image_size, channels, crop_size=None)

    @contextmanager
    def _environment(self):
        """The lmdb environment, for one read.

        py-lmdb refuses to open an environment twice in one process, and a forked DataLoader worker inherits
        the parent's open environments as "already open" but may not use them. So the main process opens and
        closes the environment around each read (~50 us), while a worker (which never forks) keeps its own
        open.
        """
        if get_worker_info() is not None:
            if self._env is None or self._pid != os.getpid():
                self._env, self._pid = open_lmdb(self.path), os.getpid()
            yield self._env
            return
        env = open_lmdb(self.path)
        try:
            yield env
        finally:
            env.close()

    def __getstate__(self):  # lmdb environments do not cross process boundaries
        state = dict(self.__dict__)
        state["_env"], state["_pid"] = None, None
        return state

    def source_signature(self) -> list:
        """The database file's size and modification time and the number of keys used: an lmdb is only
        rewritten as a whole, so these change with its content."""
        stat = (self.path / "data.mdb").stat()
        return [str(self.path / "data.mdb"), stat.st_size, stat.st_mtime_ns, len(self.keys)]

    def encoded(self, index: int) -> tuple[bytes, str]:
        key = bytes(self.keys[index])
        name = f"{self.path} key {key.decode(errors='replace')}"
        with self._environment() as env, env.begin(write=False) as txn:
            value = txn.get(key)
        if value is None:
            raise InputError(f"{name}: key vanished from the database")
        return value, name


class LSUNDataModule(ImageDataModule):
    """One LSUN category (Yu et al. 2015), e.g. bedrooms as in DCGAN (Radford et al. 2016, Sec. 4.1).

    Splits: val = ``{category}_val_lmdb`` (the official 300 validation images); test = a fixed-seed
    (``split_seed``) ``test_size`` images held out from ``{category}_train_lmdb``; train = the rest of
    the train lmdb. LSUN publishes no per-category test set, so the test split is carved from the training
    images and is disjoint from both train and val. Images are centre-cropped to the short side and
    resized. Batches: images float32 ``(B, channels, image_size, image_size)`` in ``[-1, 1]`` (default
    ``(B, 3, 64, 64)``), labels int64 ``(B,)`` of ``-1``.

    Args:
        root: folder holding the category's lmdb folders (see the module docstring).
        category: the LSUN category, e.g. ``"bedroom"``, ``"church_outdoor"``.
        test_size: training images held out as the test split.
        max_images: use only the first ``max_images`` images of the train lmdb (before the test split);
            ``None`` for all (listing 3M bedroom keys takes some seconds).
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``image_size`` = 64,
            ``channels`` = 3, ``num_classes`` = 0).

    Raises:
        ImportError: (setup) without the ``lmdb`` package.
        MissingFileError: (setup) when ``root`` or a lmdb folder is missing; names the layout.
        InputError: (setup) on an unreadable/empty database, ``num_classes`` != 0, ``test_size`` too large;
            (on access) on an undecodable image.
    """

    def __init__(self, category: str = "bedroom", test_size: int = 10000, max_images: int | None = None,
                 **kwargs) -> None:
        kwargs.setdefault("image_size", 64)
        kwargs.setdefault("channels", 3)
        super().__init__(**kwargs)
        self.category = category
        self.test_size = test_size
        self.max_images = max_images

    def build_splits(self):
        _import_lmdb()
        expected = layout(self.category)
        root = self.require_root(expected)
        self.check_num_classes(0)
        folders = {split: root / f"{self.category}_{split}_lmdb" for split in ("train", "val")}
        for folder in folders.values():
            if not folder.is_dir():
                raise MissingFileError(f"LSUN folder {folder} does not exist; expected {expected}")
        kw = {"image_size": self.decode_size, "channels": self.channels, "expected": expected}
        full_train = self.decoded(LMDBImageDataset(folders["train"], max_images=self.max_images, **kw),
                                  f"lsun-{self.category}-train")
        val = self.decoded(LMDBImageDataset(folders["val"], **kw), f"lsun-{self.category}-val")
        if not 0 <= self.test_size < len(full_train):
            raise InputError(f"data.test_size={self.test_size} must be in [0, {len(full_train)}): the number of "
                             f"images used from {folders['train']}")
        train, test = fixed_split(len(full_train), (-1, self.test_size), self.split_seed)
        return {"train": subset(full_train, train), "val": val, "test": subset(full_train, test)}
