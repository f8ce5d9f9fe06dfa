"""GAN family (Goodfellow et al. 2014; DCGAN, LSGAN, EBGAN, WGAN, conditional GAN): the adversarial
LightningModule (its loop) and the MLP/maxout networks of the 2014 paper. Shared with colorization:
:mod:`lightning_modules.two_player` (the two-network loop), :mod:`lightning_modules.objectives` (every
adversarial objective), :mod:`lightning_modules.networks` (DCGAN, auto-encoder, conditioning). Presets:
``conf/model/{gan,dcgan,lsgan,ebgan,wgan,cgan}.yaml``; findings: ``docs/gan.md``.
"""
