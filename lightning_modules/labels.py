"""What a class-conditional generative module tells the sample grids about its labels."""

from __future__ import annotations


class LabelClasses:
    """Mixin of a LightningModule whose hyper-parameters hold ``conditional`` (bool) and ``num_classes``
    (``model.num_classes``): the GAN family (Mirza & Osindero 2014's conditional GAN) and the Gated PixelCNN
    (van den Oord et al. 2016, Sec. 2.3, conditioned on a class)."""

    @property
    def label_classes(self) -> int:
        """Classes ``generate`` is conditioned on (``model.num_classes``, >= 1), 0 when unconditional; the
        sample grid's columns (:class:`callbacks.protocols.FixedNoise`). Raises nothing."""
        return int(self.hparams.num_classes) if self.hparams.conditional else 0
