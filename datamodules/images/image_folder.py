"""``image_folder``: any folder of image files, optionally with one subfolder per class.

Expected layout of ``data.root`` (extensions jpg, jpeg, png, bmp, webp, gif, tif, tiff, any case)::

    root/<class_a>/.../*.jpg          labeled: each immediate subfolder is a class, labels follow the
    root/<class_b>/.../*.png          sorted subfolder names (0, 1, ...); images are found recursively
or
    root/**/*.jpg                     unlabeled: images directly in root (and below)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from datamodules.base import ImageDataModule, fixed_split
from datamodules.image_files import IMAGE_EXTENSIONS, ImageFileDataset, is_image_file, subset
from utils.errors import InputError

LAYOUT = (
    f"a folder of images ({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}): either one subfolder per "
    f"class (data.root/<class>/**/<image>) or images directly in data.root (unlabeled)"
)


def list_images(folder: Path) -> list[Path]:
    """All image files below ``folder`` (recursively, following links, skipping hidden entries), sorted."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(parent) / f for f in files if is_image_file(f))
    return sorted(found)


def scan_image_folder(root: Path, labeled: bool | None = None) -> tuple[list[Path], torch.Tensor | None,
                                                                             list[str]]:
    """Find the images of ``root`` and, when labeled, their classes.

    ``labeled=None`` decides by the layout: labeled when ``root`` holds no image files itself and at
    least one immediate subfolder holds images (below it). Subfolders without images are not classes.

    Returns:
        ``(paths, labels, classes)``: sorted paths; int64 ``(N,)`` labels (index into ``classes``, the
        sorted class folder names) or ``None`` when unlabeled (then ``classes`` is empty).

    Raises:
        InputError: if ``root`` holds no images, or ``labeled=True`` but there are no class subfolders.
    """
    paths = list_images(root)
    if not paths:
        raise InputError(f"no image files found in {root}; expected {LAYOUT}")
    top_level = [p for p in paths if p.parent == root]
    subfolders = sorted({p.relative_to(root).parts[0] for p in paths if p.parent != root})
    if labeled is None:
        labeled = not top_level and bool(subfolders)
    if not labeled:
        return paths, None, []
    if not subfolders:
        raise InputError(f"data.labeled=true but {root} has no subfolders with images; expected {LAYOUT}")
    if top_level:
        raise InputError(
            f"data.labeled=true but {root} holds images outside class subfolders, e.g. {top_level[0]}; move them "
            f"into a class folder or set data.labeled=false"
        )
    index = {name: i for i, name in enumerate(subfolders)}
    labels = torch.tensor([index[p.relative_to(root).parts[0]] for p in paths], dtype=torch.long)
    return paths, labels, subfolders


class ImageFolderDataModule(ImageDataModule):
    """A folder of the user's images, decoded lazily, with a fixed-seed train/val/test split.

    Each image is opened with Pillow on access, centre-cropped to its short side (or ``crop_size``),
    resized to ``image_size`` and converted to ``channels``. Batches: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]``; labels int64 ``(B,)``: the class index
    (sorted subfolder names) or ``-1`` when unlabeled.

    Args:
        root: the folder (see the module docstring).
        val_fraction, test_fraction: fractions of the images (rounded) held out, by a permutation seeded
            with ``split_seed``; the rest trains.
        labeled: ``None`` to decide from the layout, ``True``/``False`` to force.
        crop_size: side of the central square cropped before resizing; ``None`` for the short side.
        **kwargs: :class:`~datamodules.base.ImageDataModule` arguments (``image_size`` = 64,
            ``channels`` = 3, ``num_classes`` = 0: must equal the number of class folders, 0 if unlabeled).

    Raises:
        MissingFileError: (setup) when ``root`` is missing.
        InputError: (setup) when the folder holds no images, ``num_classes`` differs from the class folders
            found, or the fractions are out of range; (on access) on an unreadable image, naming it.
    """

    def __init__(self, val_fraction: float = 0.05, test_fraction: float = 0.05, labeled: bool | None = None,
                 crop_size: int | None = None, **kwargs) -> None:
        kwargs.setdefault("image_size", 64)
        kwargs.setdefault("channels", 3)
        super().__init__(**kwargs)
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise InputError(f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in "
                             f"[0, 1) and sum to less than 1")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.labeled = labeled
        self.crop_size = crop_size
        self.classes: list[str] = []

    def build_splits(self):
        root = self.require_root(LAYOUT)
        paths, labels, self.classes = scan_image_folder(root, self.labeled)
        if len(self.classes) != self.num_classes:
            hint = (f"the class folders are {self.classes}; set data.num_classes={len(self.classes)} or "
                    f"data.labeled=false" if self.classes else "the images are unlabeled; set data.num_classes=0")
            raise InputError(f"data.num_classes={self.num_classes} but {root} has {len(self.classes)} classes: {hint}")
        dataset = self.decoded(ImageFileDataset(paths, labels, image_size=self.decode_size, channels=self.channels,
                                                crop_size=self.crop_size), f"{root.name}-crop{self.crop_size}")
        n = len(paths)
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        if n - n_val - n_test < 1:
            raise InputError(f"{root} has only {n} images: none left for training after the val/test split")
        train, val, test = fixed_split(n, (-1, n_val, n_test), self.split_seed)
        return {"train": subset(dataset, train), "val": subset(dataset, val), "test": subset(dataset, test)}
