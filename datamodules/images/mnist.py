"""``mnist``: the 70,000 MNIST digits read from the original idx files (LeCun et al. 1998).

Expected layout of ``data.root`` (each file raw or gzipped, ``.gz``; the folder ``root/MNIST/raw/``
that torchvision writes is searched as well)::

    root/train-images-idx3-ubyte[.gz]    60,000 training images
    root/train-labels-idx1-ubyte[.gz]    their labels
    root/t10k-images-idx3-ubyte[.gz]     10,000 test images
    root/t10k-labels-idx1-ubyte[.gz]     their labels

Any dataset in the same idx format (Fashion-MNIST, KMNIST) is read the same way.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from datamodules.base import ImageDataModule
from datamodules.download import download_from_mirrors
from utils.errors import InputError, MissingFileError

#: The four MNIST files (without ``.gz``) and the MD5 of their ``.gz`` downloads.
MNIST_FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f6629c0",
}
#: Mirrors tried in order by ``download=true``.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

LAYOUT = (
    "the four MNIST idx files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte (each raw or .gz) directly in data.root or in data.root/MNIST/raw/"
)


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(
            f"{path}: cannot decompress ({type(e).__name__}: {e}); the file is truncated or not gzip. "
            f"Replace it with the original download (or its uncompressed idx file)."
        ) from e


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an idx file of unsigned bytes (LeCun et al. 1998: http://yann.lecun.com/exdb/mnist/).

    The header is a big-endian int32 magic number (``0x0000 08 D``: type ubyte, ``D`` dimensions), then
    ``D`` big-endian int32 sizes, then the data.

    Args:
        path: the file, raw or ``.gz``.
        magic: the expected magic number: 2051 for images ``(N, rows, cols)``, 2049 for labels ``(N,)``.

    Returns:
        uint8 array of the header's shape: ``(N, rows, cols)`` for images, ``(N,)`` for labels.

    Raises:
        InputError: on a wrong magic number, a header that does not fit, or a file whose length is not
            header + product of the sizes (truncated or padded); the message names ``path``.
    """
    path = Path(path)
    data = _read_bytes(path)
    kind = {IDX_IMAGES_MAGIC: "images (idx3-ubyte)", IDX_LABELS_MAGIC: "labels (idx1-ubyte)"}.get(magic, "idx")
    if len(data) < 4:
        raise InputError(f"{path}: {len(data)} bytes, too short for an idx header; expected MNIST {kind}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise InputError(
            f"{path}: magic number {found}, expected {magic} for MNIST {kind}; the file is not in idx format "
            f"or is the wrong file (images are *-images-idx3-ubyte, labels *-labels-idx1-ubyte)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated: {len(data)} bytes, shorter than the {header}-byte idx header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise InputError(
            f"{path}: {what}: {len(data)} bytes, but its header {shape} needs {expected}; "
            f"replace it with the original download"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_mnist_file(root: Path, name: str) -> Path | None:
    """The first of ``root/name``, ``root/name.gz``, ``root/MNIST/raw/name``, ``root/MNIST/raw/name.gz``
    that exists (also accepting ``train-images.idx3-ubyte``, the spelling of some re-distributions)."""
    spellings = (name, name.replace("-idx", ".idx"))
    for folder in (root, root / "MNIST" / "raw"):
        for spelling in spellings:
            for candidate in (folder / spelling, folder / f"{spelling}.gz"):
                if candidate.is_file():
                    return candidate
    return None


class MNISTDataModule(ImageDataModule):
    """MNIST from its idx files (LeCun et al. 1998), split as in Goodfellow et al. 2014 (Sec. 5).

    Splits: train = the first ``60,000 - val_size`` training images (50,000), val = the LAST
    ``val_size`` (10,000) training images, test = the 10,000 ``t10k`` images. Batches: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]`` (pixel 0 -> -1, 255 -> 1; default
    ``(B, 1, 28, 28)``), labels int64 ``(B,)`` in 0-9.

    Args:
        root: folder with the idx files (see the module docstring for the layout).
        val_size: training images held out (from the end) for validation; default 10,000.
        download: when files are missing, download the ``.gz`` files from :data:`MNIST_MIRRORS` into
            ``root`` (MD5-checked, written atomically). Default False: nothing is ever written.
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``batch_size``, ``image_size``,
            ``channels``, ``num_classes`` = 10, ...).

    Raises:
        MissingFileError: (setup) when ``root`` or one of the four files is missing; lists them and where.
        InputError: (setup) on a wrong magic number, truncated file, mismatched label/image counts or
            image sizes, labels outside ``num_classes``, or ``val_size`` not below the training count.
        OSError: (setup, ``download=True``) when the download fails; says which files to put where.
    """

    def __init__(self, val_size: int = 10000, download: bool = False, **kwargs) -> None:
        kwargs.setdefault("num_classes", 10)
        kwargs.setdefault("image_size", 28)
        super().__init__(**kwargs)
        if val_size < 0:
            raise InputError(f"data.val_size must be >= 0, got {val_size}")
        self.val_size = val_size
        self.download = download

    def locate_files(self) -> dict[str, Path]:
        """``{name: path}`` of the four idx files (downloading the missing ones if ``download``).

        Raises:
            MissingFileError: a file is missing (and ``download`` is off); lists the expected files.
            OSError: the download failed.
        """
        if self.download and self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
        root = self.require_root(LAYOUT)
        found = {name: find_mnist_file(root, name) for name in MNIST_FILES}
        missing = [name for name, path in found.items() if path is None]
        if missing and self.download:
            errors = {}
            for name in missing:
                try:
                    found[name] = download_from_mirrors(f"{name}.gz", MNIST_MIRRORS, root / f"{name}.gz",
                                                        md5=MNIST_FILES[name])
                except OSError as e:
                    errors[name] = str(e)
            if errors:
                raise OSError(
                    "MNIST download failed:\n" + "\n".join(errors.values()) + f"\nDownload these files yourself "
                    f"(e.g. from {MNIST_MIRRORS[0]}) and put them (raw or .gz) in {root}/: "
                    + ", ".join(f"{n}.gz" for n in errors)
                )
            missing = []
        if missing:
            raise MissingFileError(
                f"MNIST files missing in {root}: {', '.join(missing)}. Expected {LAYOUT}. Get them from "
                f"{MNIST_MIRRORS[0]} or set data.download=true."
            )
        return found

    def _read_pair(self, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise InputError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
        return images, labels

    def build_splits(self):
        files = self.locate_files()
        train_x, train_y = self._read_pair(files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"])
        test_x, test_y = self._read_pair(files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"])
        if train_x.shape[1:] != test_x.shape[1:]:
            raise InputError(
                f"{files['train-images-idx3-ubyte']} holds {train_x.shape[1:]} images but "
                f"{files['t10k-images-idx3-ubyte']} holds {test_x.shape[1:]}; they must have the same size"
            )
        if self.val_size >= len(train_x):
            raise InputError(
                f"data.val_size={self.val_size} leaves no training images: "
                f"{files['train-images-idx3-ubyte']} has {len(train_x)}"
            )
        self.check_num_classes(int(max(train_y.max(), test_y.max())) + 1)
        x = torch.from_numpy(train_x.copy()).unsqueeze(1)
        y = torch.from_numpy(train_y.astype(np.int64))
        n_train = len(x) - self.val_size
        return {
            "train": self.tensor_dataset(x[:n_train], y[:n_train]),
            "val": self.tensor_dataset(x[n_train:], y[n_train:]),
            "test": self.tensor_dataset(torch.from_numpy(test_x.copy()).unsqueeze(1),
                                        torch.from_numpy(test_y.astype(np.int64))),
        }
