"""Patch datasets for the Deep GMM: BSDS300-style 8x8 patches ``(B, 63)`` preprocessed by the protocol of
:mod:`datamodules.patches.protocol` (embedded photos, BSDS300, tiny images).
"""
