"""Image datasets: batches ``(images float32 (B, C, H, W) in [-1, 1], labels)`` (the contract of
:mod:`datamodules.base`): embedded (mnist5k, digits, photos) and read from the user's copy in its
standard layout (mnist, cifar10, celeba, lsun, tfd, image_folder).
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "CelebADataModule": ".celeba",
    "CIFAR10DataModule": ".cifar10",
    "DigitsDataModule": ".digits",
    "ImageFolderDataModule": ".image_folder",
    "LMDBImageDataset": ".lsun",
    "LSUNDataModule": ".lsun",
    "MNISTDataModule": ".mnist",
    "MNIST5kDataModule": ".mnist5k",
    "RandomCropDataset": ".photos",
    "FixedCropDataset": ".photos",
    "PhotosDataModule": ".photos",
    "TFDDataModule": ".tfd",
})
