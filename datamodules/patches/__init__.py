"""Patch datasets for the Deep GMM: BSDS300-style 8x8 patches ``(B, 63)`` preprocessed by the protocol of
:mod:`datamodules.patches.protocol` (embedded photos, BSDS300, tiny images).
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "GrayRows": ".bsds300",
    "BSDS300DataModule": ".bsds300",
    "PatchDataModule": ".photo_patches",
    "PatchesDataModule": ".photo_patches",
    "PatchBatch": ".protocol",
    "PatchDataset": ".protocol",
    "Downsampled": ".tiny_images",
    "TinyImagesDataModule": ".tiny_images",
})
