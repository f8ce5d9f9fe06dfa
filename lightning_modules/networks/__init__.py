"""Networks several families use (plain ``nn.Module``s, no training logic): the DCGAN generator,
discriminator and building blocks (also the colorizer's U-Net and PatchGAN's), EBGAN's auto-encoder
discriminator (the GAN family and the EBGAN colorizers) and the conditioning helpers. Networks of one
family live in its package (e.g. :mod:`lightning_modules.gan.mlp`).
"""
