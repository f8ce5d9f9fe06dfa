"""Colorization: a conditional GAN in LAB space (Isola et al. 2017; Fabbri 2017, Sec. 4): the LightningModule,
the U-Net generator on L, the PatchGAN discriminator and the colour metrics. Presets:
``conf/model/colorizer_*.yaml``; data: ``data=photos`` (:mod:`datamodules.images.photos`); findings:
``docs/colorization.md``.
"""
