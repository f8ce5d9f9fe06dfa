"""``celeba``: CelebA aligned faces (Liu et al. 2015), read lazily from the official file layout.

Expected layout of ``data.root``::

    root/img_align_celeba/000001.jpg ... 202599.jpg   the aligned and cropped 178x218 JPEGs
    root/list_eval_partition.txt                       "000001.jpg 0" per line; 0 train, 1 val, 2 test
    root/list_attr_celeba.txt                          optional (needed for data.attributes):
                                                         line 1: the image count
                                                         line 2: the 40 attribute names
                                                         then "000001.jpg -1  1 ..." per image
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from datamodules.base import ImageDataModule
from datamodules.image_files import ImageFileDataset
from utils.errors import InputError, MissingFileError

IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
LAYOUT = (
    f"data.root/{IMAGES}/*.jpg (the aligned 178x218 JPEGs), data.root/{PARTITION} (lines '000001.jpg 0', "
    f"0/1/2 = train/val/test) and, for data.attributes, data.root/{ATTRIBUTES}"
)


def read_partition(path: Path) -> list[tuple[str, int]]:
    """Parse ``list_eval_partition.txt``: ``[(file name, split 0/1/2), ...]`` in file order.

    Raises:
        MissingFileError: if ``path`` is missing (the message gives the whole layout).
        InputError: on a line that is not ``<name> <0|1|2>``; names the file and line.
    """
    if not path.is_file():
        raise MissingFileError(f"CelebA partition file {path} does not exist; expected {LAYOUT}")
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise InputError(f"{path}, line {number}: expected '<image>.jpg <0|1|2>', got {line.strip()!r}")
            entries.append((fields[0], int(fields[1])))
    if not entries:
        raise InputError(f"{path} lists no images; expected lines '000001.jpg 0'")
    return entries


def read_attributes(path: Path, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """Parse ``list_attr_celeba.txt``, keeping the ``wanted`` attribute columns.

    Returns:
        ``{file name: float32 (K,) in {0, 1}}`` (the file's -1/1 mapped to 0/1), K = ``len(wanted)``.

    Raises:
        MissingFileError: if ``path`` is missing.
        InputError: on an unknown attribute name (lists the available ones), a bad header, a row with the
            wrong number of values or a value other than -1/1, or a count that disagrees with line 1.
    """
    if not path.is_file():
        raise MissingFileError(f"CelebA attribute file {path} does not exist (needed by data.attributes); "
                                f"expected {LAYOUT}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise InputError(f"{path}: line 1 must be the image count and line 2 the attribute names")
    names = lines[1].split()
    unknown = [a for a in wanted if a not in names]
    if unknown:
        raise InputError(f"unknown CelebA attributes {unknown} in data.attributes; {path} has: {', '.join(names)}")
    columns = [names.index(a) for a in wanted]
    out = {}
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise InputError(f"{path}, line {number}: expected a file name and {len(names)} values, "
                             f"got {len(fields)} fields")
        values = [fields[1 + c] for c in columns]
        if any(v not in ("1", "-1") for v in values):
            raise InputError(f"{path}, line {number}: attribute values must be -1 or 1, got {values}")
        out[fields[0]] = np.array([v == "1" for v in values], dtype=np.float32)
    if len(out) != int(lines[0]):
        raise InputError(f"{path}: line 1 says {int(lines[0])} images but {len(out)} rows follow")
    return out


class CelebADataModule(ImageDataModule):
    """CelebA (Liu et al. 2015) aligned faces with the official train/val/test partition, decoded lazily.

    Each image is opened with Pillow on access, centre-cropped to ``crop_size`` (140, common DCGAN
    CelebA practice; ``None`` = the short side), resized to ``image_size`` and converted to
    ``channels``. Batches: images float32 ``(B, channels, image_size, image_size)`` in ``[-1, 1]``
    (default ``(B, 3, 64, 64)``); labels float32 ``(B, K)`` multi-hot in {0, 1} of ``attributes``, or
    int64 ``(B,)`` of ``-1`` when ``attributes`` is None.

    Args:
        root: the CelebA folder (see the module docstring for the layout).
        attributes: names of attributes from ``list_attr_celeba.txt`` to serve as labels (e.g.
            ``["Male", "Smiling"]``), K of them; then ``num_classes`` must be K. None: unlabeled,
            ``num_classes`` 0.
        crop_size: side of the central square cropped before resizing; None for the short side.
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``image_size`` = 64,
            ``channels`` = 3, ``num_classes`` = 0, ...).

    Raises:
        MissingFileError: (setup) when ``root``, ``img_align_celeba/``, the partition file, the attribute
            file (with ``attributes``) or listed images are missing; names the path and the layout.
        InputError: (setup) on malformed list files, unknown attribute names, ``num_classes`` != K;
            (on access) on an unreadable image or one smaller than ``crop_size``, naming the file.
    """

    def __init__(self, attributes: Sequence[str] | None = None, crop_size: int | None = 140, **kwargs) -> None:
        kwargs.setdefault("image_size", 64)
        kwargs.setdefault("channels", 3)
        super().__init__(**kwargs)
        self.attributes = list(attributes) if attributes is not None else None
        self.crop_size = crop_size

    def build_splits(self):
        root = self.require_root(LAYOUT)
        images = root / IMAGES
        if not images.is_dir():
            raise MissingFileError(f"CelebA image folder {images} does not exist; expected {LAYOUT}")
        entries = read_partition(root / PARTITION)
        present = set(os.listdir(images))
        missing = [name for name, _ in entries if name not in present]
        if missing:
            raise MissingFileError(
                f"{len(missing)} images listed in {root / PARTITION} are missing from {images}, e.g. "
                f"{', '.join(missing[:5])}; expected {LAYOUT}"
            )
        if self.attributes is None:
            self.check_num_classes(0)
            labels = None
        else:
            self.check_num_classes(len(self.attributes))
            table = read_attributes(root / ATTRIBUTES, self.attributes)
            absent = [name for name, _ in entries if name not in table]
            if absent:
                raise InputError(f"{len(absent)} images of {root / PARTITION} have no row in "
                                 f"{root / ATTRIBUTES}, e.g. {', '.join(absent[:5])}")
            labels = torch.from_numpy(np.stack([table[name] for name, _ in entries]))
        splits = {}
        for split, code in (("train", 0), ("val", 1), ("test", 2)):
            rows = [i for i, (_, c) in enumerate(entries) if c == code]
            lazy = ImageFileDataset(
                [images / entries[i][0] for i in rows],
                None if labels is None else labels[rows],
                image_size=self.decode_size, channels=self.channels, crop_size=self.crop_size,
            )
            splits[split] = self.decoded(lazy, f"celeba-{split}-crop{self.crop_size}")
        return splits
