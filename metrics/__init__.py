"""Evaluation measures several families share: FID/KID (torchmetrics) on genforge's feature networks and
Parzen-window log-likelihood (Goodfellow et al. 2014). A family's own measures live in its package
(bits/dim: :mod:`lightning_modules.pixelcnn.likelihood`).
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "FeatureNet": ".feature_net",
    "InceptionFeature": ".feature_net",
    "ClampedKID": ".fid",
    "FeatureDistances": ".fid",
    "ParzenResult": ".parzen",
})
