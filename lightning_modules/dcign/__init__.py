"""DC-IGN (Kulkarni et al. 2015): the convolutional VAE with graphics codes, its invariance targeting
(inactive latents clamped, their gradients replaced: the paper's rule, the reference code's and a
first-sample variant), encoder/decoder networks and the disentanglement measures. Presets:
``conf/model/dcign{,_baseline}.yaml``; data: :mod:`datamodules.factors`; findings: ``docs/dcign.md``.
"""
