"""Evaluation measures several families share: FID/KID (torchmetrics) on genforge's feature networks and
Parzen-window log-likelihood (Goodfellow et al. 2014). A family's own measures live in its package
(bits/dim: :mod:`lightning_modules.pixelcnn.likelihood`).
"""
