"""Gated PixelCNN (van den Oord et al. 2016): the masked, gated vertical/horizontal stacks, the
LightningModule (class- or embedding-conditional, auto-encoder), sampling and bits/dim. Presets:
``conf/model/{pixelcnn,gated_pixelcnn,pixelcnn_autoencoder}.yaml``; findings: ``docs/pixelcnn.md``.
"""
