"""DC-IGN encoder and decoder (Kulkarni, Whitney, Kohli, Tenenbaum 2015, Sec. 2 and Fig. 1).

Encoder: convolution + ReLU + 2x2 max-pooling blocks (96, 64, 32 filters of 5x5 in the paper), then two
fully connected heads for the mean and the log-variance of the graphics code ``z`` (200 dimensions).
Decoder: a fully connected layer back to the smallest feature map, then blocks of nearest-neighbour
unpooling (upsampling) + 5x5 convolution that mirror the encoder, and a sigmoid output in ``[0, 1]``.

The paper works on 150 x 150 grayscale images; any size works here. Convolutions keep the size
("same" padding) and pooling rounds up (``ceil_mode``), so 150 -> 75 -> 38 -> 19; the decoder unpools
back to exactly the encoder's sizes (19 -> 38 -> 75 -> 150), which ordinary 2x upsampling could not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int, as_int_tuple, check_images, check_latent


def pooled_sizes(image_size: int, num_blocks: int) -> tuple[int, ...]:
    """Feature-map sizes after each ``ceil_mode`` 2x2 pooling: ``(image_size, s1, ..., s_num_blocks)``.

    E.g. ``pooled_sizes(150, 3) == (150, 75, 38, 19)``, ``pooled_sizes(64, 3) == (64, 32, 16, 8)``.
    """
    sizes = [image_size]
    for _ in range(num_blocks):
        sizes.append(math.ceil(sizes[-1] / 2))
    return tuple(sizes)


class _Geometry(nn.Module):
    """What the encoder and the decoder share: checked sizes and the pooled feature-map sizes."""

    def set_geometry(self, image_size: int, channels: int, latent_dim: int, widths: Sequence[int],
                     kernel_size: int) -> tuple[tuple[int, ...], int]:
        """Check and store ``image_size``, ``channels``, ``latent_dim`` and ``sizes``; return the checked
        ``(widths, kernel_size)``.

        Raises:
            ValueError: on a non-positive value, an even kernel or an image too small for the blocks.
        """
        owner = type(self).__name__
        self.image_size = as_int(image_size, "image_size", owner)
        self.channels = as_int(channels, "channels", owner)
        self.latent_dim = as_int(latent_dim, "latent_dim", owner)
        widths = as_int_tuple(widths, "widths", owner)
        kernel_size = as_int(kernel_size, "kernel_size", owner)
        if kernel_size % 2 == 0:
            raise ValueError(f"{owner}: kernel_size must be odd (same padding), got {kernel_size}")
        self.sizes = pooled_sizes(self.image_size, len(widths))
        if self.sizes[-1] < 2:
            raise ValueError(f"{owner}: image_size {image_size} is too small for {len(widths)} pooling blocks")
        return widths, kernel_size


class DCIGNEncoder(_Geometry):
    """Q(z | x): images to the mean and log-variance of the graphics code.

    Args:
        image_size: side of the square input (150 in the paper; 64 by default here).
        channels: image channels (1: grayscale, as the paper).
        latent_dim: graphics code dimensions (200 in the paper).
        widths: filters of each convolution block (paper: 96, 64, 32).
        kernel_size: convolution kernel (paper: 5), odd.

        variational: ``False`` drops the log-variance head: a deterministic encoder to a code
            ``(B, latent_dim)`` (the PixelCNN auto-encoder's, van den Oord et al. 2016, Sec. 2.4).

    Input ``x``: ``(B, channels, image_size, image_size)`` in ``[0, 1]``.
    Output: ``(mu, logvar)``, both ``(B, latent_dim)``; ``logvar`` is the natural log of the variance.
    With ``variational=False``: the code ``(B, latent_dim)`` alone.

    Raises:
        ValueError: on a non-positive size/width, an even kernel, an image too small for the blocks,
            or (in ``forward``) images of another shape.
    """

    def __init__(self, image_size: int = 64, channels: int = 1, latent_dim: int = 200,
                 widths: Sequence[int] = (96, 64, 32), kernel_size: int = 5, variational: bool = True) -> None:
        super().__init__()
        widths, kernel_size = self.set_geometry(image_size, channels, latent_dim, widths, kernel_size)
        blocks: list[nn.Module] = []
        in_ch = self.channels
        for width in widths:
            blocks += [nn.Conv2d(in_ch, width, kernel_size, padding=kernel_size // 2), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            in_ch = width
        self.features = nn.Sequential(*blocks, nn.Flatten())
        flat = in_ch * self.sizes[-1] ** 2
        self.mu = nn.Linear(flat, self.latent_dim)
        self.logvar = nn.Linear(flat, self.latent_dim) if variational else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | Tensor:
        """``x (B, C, S, S)`` in ``[0, 1]`` -> ``(mu, logvar)``, both ``(B, latent_dim)``, or the code
        ``mu`` alone with ``variational=False``. Raises ValueError on a misshapen ``x``."""
        check_images(x, self.channels, self.image_size, type(self).__name__)
        h = self.features(x)
        return self.mu(h) if self.logvar is None else (self.mu(h), self.logvar(h))


class DCIGNDecoder(_Geometry):
    """P(x | z): graphics code to an image, nearest-neighbour unpooling + convolution.

    Args:
        image_size, channels, latent_dim, kernel_size: as :class:`DCIGNEncoder`.
        widths: the encoder's widths (``(96, 64, 32)``); the decoder runs through them in reverse.

    Input ``z``: ``(B, latent_dim)``. Output: ``(B, channels, image_size, image_size)``; with
    ``logits=False`` (default) the sigmoid probabilities in ``[0, 1]``, with ``logits=True`` the
    pre-sigmoid values (for a numerically stable Bernoulli likelihood).

    Raises:
        ValueError: as :class:`DCIGNEncoder`, or on a ``z`` of another shape.
    """

    def __init__(self, image_size: int = 64, channels: int = 1, latent_dim: int = 200,
                 widths: Sequence[int] = (96, 64, 32), kernel_size: int = 5) -> None:
        super().__init__()
        widths, kernel_size = self.set_geometry(image_size, channels, latent_dim, widths, kernel_size)
        self.base = (widths[-1], self.sizes[-1])
        self.project = nn.Sequential(nn.Linear(self.latent_dim, widths[-1] * self.sizes[-1] ** 2),
                                     nn.ReLU(inplace=True))
        outs = list(reversed(widths[:-1])) + [self.channels]
        blocks: list[nn.Module] = []
        in_ch = widths[-1]
        for i, (out_ch, size) in enumerate(zip(outs, reversed(self.sizes[:-1]))):
            blocks += [nn.Upsample(size=(size, size), mode="nearest"),
                       nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)]
            if i < len(outs) - 1:
                blocks.append(nn.ReLU(inplace=True))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: Tensor, logits: bool = False) -> Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        width, size = self.base
        out = self.blocks(self.project(z).view(-1, width, size, size))
        return out if logits else out.sigmoid()
