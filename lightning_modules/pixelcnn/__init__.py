"""Gated PixelCNN (van den Oord et al. 2016): the masked, gated vertical/horizontal stacks, the
LightningModule (class- or embedding-conditional, auto-encoder), sampling and bits/dim. Presets:
``conf/model/{pixelcnn,gated_pixelcnn,pixelcnn_autoencoder}.yaml``; findings: ``docs/pixelcnn.md``.
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "PixelCNNModule": ".module",
    "MaskedConv2d": ".networks",
    "HorizontalStackConv": ".networks",
    "VerticalStackConv": ".networks",
    "ConditionMap": ".networks",
    "GatedBlock": ".networks",
    "OutputHead": ".networks",
    "GatedPixelCNN": ".networks",
    "PixelCNNResidualBlock": ".networks",
    "PixelCNN": ".networks",
    "CachedGatedSampler": ".sampling",
    "WindowedPixelCNNSampler": ".sampling",
})
