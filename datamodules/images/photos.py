"""``photos``: real colour photographs bundled with scikit-image and scikit-learn (embedded, no files).

Meant for colorization (see :mod:`datamodules.lab`): ten real colour photographs, split BY PHOTOGRAPH so
no scene is seen in two splits, served as square random crops.

The photographs (:data:`PHOTO_NAMES`, in this order; sizes H x W):

==========================  ==========  =====================================================
name                        size        source
==========================  ==========  =====================================================
``astronaut``               512 x 512   ``skimage.data.astronaut()`` (Eileen Collins, NASA)
``coffee``                  400 x 600   ``skimage.data.coffee()``
``chelsea``                 300 x 451   ``skimage.data.chelsea()`` (a cat)
``rocket``                  427 x 640   ``skimage.data.rocket()`` (SpaceX launch)
``hubble_deep_field``       872 x 1000  ``skimage.data.hubble_deep_field()`` (NASA)
``immunohistochemistry``    512 x 512   ``skimage.data.immunohistochemistry()`` (microscopy)
``retina``                  1411 x 1411 ``skimage.data.retina()`` (fundus photograph)
``motorcycle``              500 x 741   ``skimage.data.stereo_motorcycle()[0]`` (left view)
``china``                   427 x 640   ``sklearn.datasets.load_sample_image("china.jpg")``
``flower``                  427 x 640   ``sklearn.datasets.load_sample_image("flower.jpg")``
==========================  ==========  =====================================================

Left out on purpose: ``colorwheel`` and ``logo`` (synthetic), ``cat`` (the same photo as ``chelsea``),
the stereo motorcycle's right view (a near-duplicate of the left), and the images scikit-image only
downloads with ``pooch`` (``lily``, ``skin``, ``kidney``...), so nothing here needs a network.

Split (:func:`datamodules.base.fixed_split` over the photo indices with ``split_seed``; ``val_photos``
and ``test_photos`` photos, the rest train). With the defaults (``split_seed=0``, 2 + 2):

- train: coffee, rocket, hubble_deep_field, immunohistochemistry, motorcycle, flower
- val:   astronaut, china
- test:  chelsea, retina

(:meth:`PhotosDataModule.split_names` gives the lists for any setting.)

Crops: a crop of side ``s`` is drawn with ``s`` log-uniform in ``[image_size, max_scale * image_size]``
(capped at the photo's short side), at a uniform position, then resized to ``image_size`` (bilinear,
antialiased), so a crop shows objects rather than a few flat pixels. Train items are drawn afresh at every
access (``crops_per_image`` per train photo per epoch, plus a random horizontal flip when ``hflip``);
val/test hold ``eval_crops_per_image`` crops per photo drawn ONCE from a generator seeded with
``split_seed``, the same in every run.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from datamodules.base import ImageDataModule, TensorImageDataset, split_items
from datamodules.embedded_photos import PHOTO_NAMES, load_photos
from datamodules.transforms import resize, to_signed
from utils.errors import InputError


def check_crop_fits(photo: torch.Tensor, image_size: int, name: str) -> None:
    """Raise a ValueError naming the photo when it is smaller than an ``image_size`` crop."""
    h, w = photo.shape[-2:]
    if image_size > h or image_size > w:
        raise InputError(f"photo {name!r} is {h}x{w}, smaller than the {image_size}x{image_size} crop "
                         f"(data.image_size); use a smaller data.image_size")


def random_crop(photo: torch.Tensor, image_size: int, max_scale: float = 1.0,
                generator: torch.Generator | None = None, name: str = "photo") -> torch.Tensor:
    """A random square crop of a uint8 ``(C, H, W)`` photo, resized to ``image_size``.

    The crop side is log-uniform in ``[image_size, max_scale * image_size]``, capped at the short side;
    its position is uniform. Draws from ``generator`` (the global torch RNG when ``None``).

    Returns:
        uint8 ``(C, image_size, image_size)``.

    Raises:
        InputError: if the photo is smaller than ``image_size`` (names it) or ``max_scale < 1``.
    """
    check_crop_fits(photo, image_size, name)
    if max_scale < 1.0:
        raise InputError(f"data.max_scale must be >= 1, got {max_scale}")
    h, w = photo.shape[-2:]
    largest = min(h, w, int(max_scale * image_size))
    u = torch.rand((), generator=generator).item()
    side = min(largest, max(image_size, round(image_size * math.exp(u * math.log(largest / image_size)))))
    top = int(torch.randint(0, h - side + 1, (), generator=generator))
    left = int(torch.randint(0, w - side + 1, (), generator=generator))
    crop = photo[:, top : top + side, left : left + side]
    return resize(crop.unsqueeze(0), image_size)[0]


class RandomCropDataset(Dataset):
    """Random crops of photographs, drawn afresh at every access (training).

    ``len`` is ``len(photos) * crops_per_image``; item ``i`` is a random crop of photo
    ``i // crops_per_image``: ``(image float32 (3, image_size, image_size) in [-1, 1], label -1)``.
    Uses the global torch RNG, so ``seed_everything`` and DataLoader worker seeding apply.

    Attributes:
        photo_names: the photographs' names, in order.

    Raises:
        InputError: if a photo is smaller than ``image_size`` (names it), or ``crops_per_image < 1``.
    """

    def __init__(self, photos: dict[str, torch.Tensor], image_size: int, crops_per_image: int,
                 max_scale: float = 1.0, hflip: bool = False) -> None:
        if crops_per_image < 1:
            raise InputError(f"data.crops_per_image must be positive, got {crops_per_image}")
        for name, photo in photos.items():
            check_crop_fits(photo, image_size, name)
        self.photo_names = list(photos)
        self.photos = list(photos.values())
        self.image_size, self.crops_per_image = image_size, crops_per_image
        self.max_scale, self.hflip = max_scale, hflip

    def __len__(self) -> int:
        return len(self.photos) * self.crops_per_image

    def photo_of(self, index: int) -> str:
        """The name of the photograph item ``index`` is cropped from."""
        return self.photo_names[index // self.crops_per_image]

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crops")
        p = index // self.crops_per_image
        crop = random_crop(self.photos[p], self.image_size, self.max_scale, name=self.photo_names[p])
        if self.hflip and torch.rand(()).item() < 0.5:
            crop = crop.flip(-1)
        return to_signed(crop), torch.tensor(-1, dtype=torch.long)


class FixedCropDataset(TensorImageDataset):
    """A fixed set of crops (validation/test): ``crops_per_image`` per photo, drawn once from ``seed``.

    Attributes:
        photo_names: the photographs' names, in order.
        item_photos: the photograph's name of every item.
    """

    def __init__(self, photos: dict[str, torch.Tensor], image_size: int, crops_per_image: int,
                 max_scale: float = 1.0, seed: int = 0) -> None:
        if crops_per_image < 1:
            raise InputError(f"data.eval_crops_per_image must be positive, got {crops_per_image}")
        generator = torch.Generator().manual_seed(seed)
        crops, self.item_photos = [], []
        for name, photo in photos.items():
            check_crop_fits(photo, image_size, name)
            for _ in range(crops_per_image):
                crops.append(random_crop(photo, image_size, max_scale, generator, name))
                self.item_photos.append(name)
        self.photo_names = list(photos)
        super().__init__(torch.stack(crops))

    def photo_of(self, index: int) -> str:
        """The name of the photograph item ``index`` is cropped from."""
        return self.item_photos[index]


class PhotosDataModule(ImageDataModule):
    """Ten real colour photographs (scikit-image, scikit-learn), split by photograph, served as crops.

    Images ``(B, 3, image_size, image_size)`` in ``[-1, 1]``; labels ``-1`` (``num_classes`` 0). See the
    module docstring for the photographs, the default split and how crops are drawn.

    Args:
        crops_per_image: random crops per train photograph per epoch (train ``len`` = photos x this).
        eval_crops_per_image: fixed crops per val/test photograph.
        val_photos, test_photos: how many photographs go to val / test (the rest train).
        max_scale: crop sides are drawn in ``[image_size, max_scale * image_size]`` before resizing.
        hflip: randomly mirror train crops.
        **kwargs: :class:`~datamodules.base.ImageDataModule` (``channels`` must be 3, ``num_classes`` 0).

    Raises:
        InputError: if ``data.channels != 3`` or ``data.num_classes != 0``; in ``setup`` if a photograph is
            smaller than ``data.image_size`` (names it) or the photo counts do not fit.
    """

    def __init__(self, crops_per_image: int = 64, eval_crops_per_image: int = 16, val_photos: int = 2,
                 test_photos: int = 2, max_scale: float = 4.0, hflip: bool = True, **kwargs) -> None:
        kwargs.setdefault("channels", 3)
        kwargs.setdefault("image_size", 64)
        channels = kwargs["channels"]
        if channels != 3:
            raise InputError(f"data.channels={channels}, but PhotosDataModule serves RGB colour photographs: "
                             f"data.channels must be 3 (colorizers take the grayscale L from the RGB images)")
        super().__init__(**kwargs)
        self.check_num_classes(0)
        if max_scale < 1.0:
            raise InputError(f"data.max_scale must be >= 1, got {max_scale}")
        self.crops_per_image, self.eval_crops_per_image = crops_per_image, eval_crops_per_image
        self.val_photos, self.test_photos = val_photos, test_photos
        self.max_scale, self.hflip = max_scale, hflip

    def split_names(self) -> dict[str, list[str]]:
        """``{"train": [...], "val": [...], "test": [...]}``: which photograph goes to which split."""
        return split_items(list(PHOTO_NAMES), self.val_photos, self.test_photos, self.split_seed)

    def build_splits(self) -> dict[str, Dataset]:
        names = self.split_names()
        photos = load_photos(PHOTO_NAMES)
        for name, photo in photos.items():  # fail early, whichever split the small photo is in
            check_crop_fits(photo, self.image_size, name)
        pick = {split: {n: photos[n] for n in split_names} for split, split_names in names.items()}
        return {
            "train": RandomCropDataset(pick["train"], self.image_size, self.crops_per_image, self.max_scale,
                                       self.hflip),
            "val": FixedCropDataset(pick["val"], self.image_size, self.eval_crops_per_image, self.max_scale,
                                    seed=self.split_seed),
            "test": FixedCropDataset(pick["test"], self.image_size, self.eval_crops_per_image, self.max_scale,
                                     seed=self.split_seed + 1),
        }
