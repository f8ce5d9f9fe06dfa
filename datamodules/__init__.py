"""One LightningDataModule per dataset, grouped by kind: :mod:`datamodules.images`, :mod:`datamodules.factors`
(DC-IGN's one-factor batches), :mod:`datamodules.patches` (the Deep GMM's). Shared here: the base classes
and split logic (:mod:`datamodules.base`), transforms, image-file readers, the decoded-image cache and its
loader, LAB conversion, the embedded photographs, the restricted unpickler and downloads.
"""
