"""One LightningDataModule per dataset, grouped by kind: :mod:`datamodules.images`, :mod:`datamodules.factors`
(DC-IGN's one-factor batches), :mod:`datamodules.patches` (the Deep GMM's). Shared here: the base classes
and split logic (:mod:`datamodules.base`), transforms, image-file readers, the decoded-image cache and its
loader, LAB conversion, the embedded photographs, the restricted unpickler and downloads.
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "TensorImageDataset": ".base",
    "CropFlipDataset": ".base",
    "SplitLoaders": ".base",
    "ImageDataModule": ".base",
    "RingBatch": ".cached_loader",
    "Uint8Batches": ".cached_loader",
    "SignedLoader": ".cached_loader",
    "CacheSettings": ".decoded_cache",
    "CacheUse": ".decoded_cache",
    "ReadThrough": ".image_files",
    "LazyImageDataset": ".image_files",
    "CachedImageDataset": ".image_files",
    "ImageFileDataset": ".image_files",
    "RestrictedUnpickler": ".safe_pickle",
})
