"""``digits``: scikit-learn's 1,797 8x8 handwritten digits (embedded, needs no files)."""

from __future__ import annotations

import torch

from datamodules.base import ImageDataModule, fixed_split


class DigitsDataModule(ImageDataModule):
    """scikit-learn's ``load_digits``: 1,797 images of 8x8 with 17 grey levels (0-16), labels 0-9.

    Pixels are scaled ``v * 255 / 16`` to uint8 before the usual ``[-1, 1]`` mapping. Fixed-seed split
    of ``val_size`` and ``test_size`` images, the rest for training.
    """

    def __init__(self, val_size: int = 200, test_size: int = 200, **kwargs) -> None:
        kwargs.setdefault("num_classes", 10)
        kwargs.setdefault("image_size", 8)
        super().__init__(**kwargs)
        self.val_size, self.test_size = val_size, test_size

    def build_splits(self):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.check_num_classes(int(bunch.target.max()) + 1)
        images = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(bunch.target).long()
        train, val, test = fixed_split(len(images), (-1, self.val_size, self.test_size), self.split_seed,
                                       "data.val_size and data.test_size")
        return {name: self.tensor_dataset(images[idx], labels[idx]) for name, idx in
                (("train", train), ("val", val), ("test", test))}
