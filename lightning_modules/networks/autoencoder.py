"""Auto-encoder discriminator of the energy-based GAN.

Zhao, Mathieu & LeCun 2017, "Energy-based Generative Adversarial Network", Sec. 2.3 ("Using
auto-encoders"): the discriminator is an auto-encoder whose energy is the reconstruction error,
``D(x) = ||Dec(Enc(x)) - x||``, and the pull-away term (Sec. 2.4) acts on the encoder output ``S``.
Appendix C describes the DCGAN-style convolutional encoder/decoder (stride-2 4x4 convolutions with
BatchNorm and (leaky) ReLUs) used for MNIST, LSUN and CelebA; here both halves are built from the DCGAN
stacks in :mod:`lightning_modules.networks.dcgan`.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_modules.networks.conditioning import (
    append_cond_maps,
    as_int,
    check_cond,
    check_images,
)
from lightning_modules.networks.dcgan import (
    dcgan_geometry,
    dcgan_init_,
    dcgan_widths,
    downsampling_stack,
    project_block,
    upsampling_stack,
)


class AutoEncoderDiscriminator(nn.Module):
    """EBGAN auto-encoder discriminator (Zhao et al. 2017, Sec. 2.3; DCGAN-style stacks of Appendix C).

    Encoder: :func:`~lightning_modules.networks.dcgan.downsampling_stack` from ``(C + K, S, S)`` to
    ``(widths[-1], base, base)`` (as :class:`~lightning_modules.networks.dcgan.DCGANDiscriminator`).
    With ``embedding_dim=None`` the embedding ``S`` is that feature map flattened
    (``E = widths[-1] * base**2``, e.g. 128*7*7 = 6272 for 28x28) and the decoder is the
    :func:`~lightning_modules.networks.dcgan.upsampling_stack` of the DCGAN generator applied to it; with
    an int, a linear ``base x base`` convolution compresses the map to an ``E``-vector and the decoder
    starts with the generator's :func:`~lightning_modules.networks.dcgan.project_block`. The decoder ends
    in tanh, so reconstructions lie in [-1, 1]. A conditional discriminator receives ``cond`` as ``K``
    constant channels appended to the encoder input. DCGAN init.

    The energy is the per-sample mean squared reconstruction error over C, H, W,
    ``mean((Dec(Enc(x)) - x)**2)``, i.e. the paper's squared L2 norm divided by ``C*S*S`` (a scale that
    keeps the hinge margin ``m`` independent of the image size). The pull-away term and the hinge loss
    belong to the objective, not to this network.

    Args:
        channels: image channels ``C``.
        image_size: square image side ``S`` (see :func:`~lightning_modules.networks.dcgan.dcgan_geometry`).
        base_width: width of the first encoder conv / last decoder hidden layer; doubles towards the middle.
        embedding_dim: ``None`` (embedding = flattened encoder map) or the width ``E`` of a bottleneck vector.
        num_classes: conditioning width ``K`` (0 = unconditional).

    Shapes:
        ``forward(x: (B, C, S, S) in [-1, 1], cond: (B, K) | None) -> (energy: (B,) >= 0, embedding: (B, E))``;
        ``reconstruct(x, cond) -> (B, C, S, S)`` in [-1, 1].

    Raises:
        ValueError: unsupported ``data.image_size`` or invalid arguments at construction; ``x`` not
            ``(B, C, S, S)``; ``cond`` given when ``K == 0``, missing when ``K > 0``, or not ``(B, K)``.
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        base_width: int = 64,
        embedding_dim: int | None = None,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.channels = as_int(channels, "channels", owner)
        self.image_size = as_int(image_size, "data.image_size", owner)
        self.base_width = as_int(base_width, "base_width", owner)
        self.num_classes = as_int(num_classes, "num_classes", owner, minimum=0)
        self.base, self.num_scales = dcgan_geometry(self.image_size, owner)
        widths = dcgan_widths(self.base_width, self.num_scales)  # coarse (middle) -> fine (image)
        top = widths[0]

        self.encoder = downsampling_stack(self.channels + self.num_classes, tuple(reversed(widths)))
        if embedding_dim is None:
            self.embedding_dim = top * self.base * self.base
            self.to_embedding: nn.Module = nn.Flatten(1)
            self.from_embedding: nn.Module = nn.Unflatten(1, (top, self.base, self.base))
        else:
            self.embedding_dim = as_int(embedding_dim, "embedding_dim", owner)
            self.to_embedding = nn.Sequential(
                nn.Conv2d(top, self.embedding_dim, kernel_size=self.base, stride=1, padding=0), nn.Flatten(1)
            )
            self.from_embedding = project_block(self.embedding_dim, top, self.base)
        self.decoder = upsampling_stack(widths, self.channels)
        dcgan_init_(self)

    def _check(self, x: Tensor, cond: Tensor | None) -> Tensor | None:
        owner = type(self).__name__
        check_images(x, self.channels, self.image_size, owner)
        return check_cond(cond, self.num_classes, x.shape[0], owner)

    def _autoencode(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        embedding = self.to_embedding(self.encoder(append_cond_maps(x, cond)))
        return self.decoder(self.from_embedding(embedding)), embedding

    def reconstruct(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``Dec(Enc(x))``: ``(B, C, S, S)`` (+ ``(B, K)``) -> ``(B, C, S, S)`` in [-1, 1]."""
        return self._autoencode(x, self._check(x, cond))[0]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(energy (B,), embedding (B, E))``; energy = per-sample MSE of the reconstruction."""
        reconstruction, embedding = self._autoencode(x, self._check(x, cond))
        energy = (reconstruction - x).pow(2).flatten(1).mean(dim=1)
        return energy, embedding
