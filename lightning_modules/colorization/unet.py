"""U-Net generator of pix2pix, used to colorize images (lightness L -> chroma ab).

Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
Sec. 3.2.1 ("Generator with skips") and Appendix 6.1.1 (architecture); used for automatic colorization
by Fabbri 2017, "A Comparative Study of Generative Adversarial Networks Towards Automatic Image
Colorization", Sec. 4 (generator ``L -> ab``, values in [-1, 1]).

Architecture (Appendix 6.1.1, ``Ck`` = 4x4 stride-2 convolution with ``k`` filters + BatchNorm + ReLU,
``CDk`` = the same with 50% dropout)::

    encoder:  C64-C128-C256-C512-C512-C512-C512-C512      (LeakyReLU 0.2, no BatchNorm on C64)
    decoder:  CD512-CD512-CD512-C512-C256-C128-C64 -> conv to out_channels -> tanh
              (ReLU; the input of decoder layer j+1 is its predecessor's output concatenated with the
              mirrored encoder layer's output, so the widths the paper lists, CD512-CD1024-..., are the
              widths after concatenation)

Encoder widths are ``min(base_width * 2**i, max_width)``. As in the reference implementation the
innermost (bottleneck) encoder layer has no BatchNorm: at a 1x1 bottleneck a batch of one has a single
value per channel, which BatchNorm cannot normalise in training. The decoder's last layer is a stride-2
transposed convolution straight to ``out_channels`` followed by tanh (no BatchNorm, no dropout).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int
from lightning_modules.networks.dcgan import KERNEL, LEAKY_SLOPE, PADDING, STRIDE, dcgan_init_

DEFAULT_DEPTH = 5
NUM_DROPOUT_LAYERS = 3  # pix2pix: dropout in the first three decoder layers (CD512-CD1024-CD1024)


def unet_depth(image_size: int, owner: str = "UNetGenerator") -> int:
    """Number of stride-2 halvings a square side ``image_size`` allows: its largest power-of-two factor.

    Down to 1x1 for powers of two: 256 -> 8, 64 -> 6, 32 -> 5; 96 -> 5 (a 3x3 bottleneck).

    Raises:
        ValueError: ``image_size`` is not a positive integer or is odd (no halving possible).
    """
    image_size = as_int(image_size, "image_size", owner)
    depth = 0
    while image_size % 2 == 0:
        image_size //= 2
        depth += 1
    if depth == 0:
        raise ValueError(
            f"{owner}: image_size={image_size} is odd, so no stride-2 layer fits; the U-Net needs an "
            "image side divisible by 2**depth (e.g. 32, 64, 256)"
        )
    return depth


class UNetGenerator(nn.Module):
    """pix2pix U-Net generator (Isola et al. 2017, Sec. 3.2.1 and Appendix 6.1.1).

    ``depth`` encoder layers (4x4 stride-2 convs, LeakyReLU 0.2, BatchNorm except the first and the
    innermost layer) halve the resolution ``depth`` times; ``depth`` decoder layers (4x4 stride-2
    transposed convs, BatchNorm, ReLU, dropout in the first ``min(3, depth - 1)``) double it back. The
    output of encoder layer ``i`` (1-based, ``i < depth``) is concatenated on channels, skip first, to the
    output of decoder layer ``depth - i``, i.e. it enters decoder layer ``depth - i + 1``; the first
    encoder layer's ``base_width`` features thus feed the last decoder layer, which maps to
    ``out_channels`` with tanh. DCGAN init (:func:`~lightning_modules.networks.dcgan.dcgan_init_`).

    Args:
        in_channels: input channels ``C_in`` (1: lightness L in colorization).
        out_channels: output channels ``C_out`` (2: chroma ab in colorization).
        base_width: width of the first encoder layer; doubles per layer up to ``max_width``.
        depth: number of downsamplings ``n``. Default: :func:`unet_depth` of ``image_size`` (down to a
            1x1 bottleneck, 256 -> 8) or ``5`` when ``image_size`` is ``None``.
        max_width: cap of the encoder widths (512 in the paper).
        dropout: dropout probability in the first three decoder layers (0.5 in the paper; 0 disables;
            pix2pix keeps it at test time as its only noise source: call ``train()`` for that).
        image_size: square side ``S`` the network is built for (only sets/validates ``depth``).

    Shapes:
        ``forward(x: (B, C_in, H, W)) -> (B, C_out, H, W)`` with values in [-1, 1]; ``H`` and ``W`` must
        be multiples of ``2**depth`` (non-square inputs are fine).

    Attributes:
        encoder, decoder: ``nn.ModuleList`` of ``depth`` blocks each; ``widths``: encoder widths;
        ``multiple``: ``2**depth``.

    Raises:
        ValueError: invalid arguments at construction (non-integer or non-positive sizes, ``dropout``
            outside [0, 1), ``image_size`` not divisible by ``2**depth``); in ``forward``, ``x`` not
            ``(B, C_in, H, W)`` or an image too small / not divisible by ``2**depth`` (the image is
            smaller than the generator's receptive field stack).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        base_width: int = 64,
        depth: int | None = None,
        max_width: int = 512,
        dropout: float = 0.5,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_channels = as_int(in_channels, "in_channels", owner)
        self.out_channels = as_int(out_channels, "out_channels", owner)
        self.base_width = as_int(base_width, "base_width", owner)
        self.max_width = as_int(max_width, "max_width", owner)
        self.image_size = None if image_size is None else as_int(image_size, "image_size", owner)
        if depth is None:
            depth = DEFAULT_DEPTH if self.image_size is None else unet_depth(self.image_size, owner)
        self.depth = as_int(depth, "depth", owner)
        self.multiple = 2**self.depth
        if self.image_size is not None and self.image_size % self.multiple:
            raise ValueError(
                f"{owner}: image_size={self.image_size} is not divisible by 2**depth={self.multiple} "
                f"(depth={self.depth}); use a smaller depth or an image side that is a multiple of "
                f"{self.multiple}"
            )
        if isinstance(dropout, bool) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{owner}: dropout must be a probability in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.widths = tuple(min(self.base_width * 2**i, self.max_width) for i in range(self.depth))

        self.encoder = nn.ModuleList()
        w_in = self.in_channels
        for i, w_out in enumerate(self.widths):
            use_bn = 0 < i < self.depth - 1  # none on the first (input) and innermost (bottleneck) layer
            block: list[nn.Module] = [nn.Conv2d(w_in, w_out, KERNEL, STRIDE, PADDING, bias=not use_bn)]
            if use_bn:
                block.append(nn.BatchNorm2d(w_out))
            block.append(nn.LeakyReLU(LEAKY_SLOPE))
            self.encoder.append(nn.Sequential(*block))
            w_in = w_out

        self.decoder = nn.ModuleList()
        w_in = self.widths[-1]
        for j in range(self.depth - 1):
            w_out = self.widths[self.depth - 2 - j]  # mirrors the encoder layer it is concatenated with
            block = [
                nn.ConvTranspose2d(w_in, w_out, KERNEL, STRIDE, PADDING, bias=False),
                nn.BatchNorm2d(w_out),
            ]
            if j < NUM_DROPOUT_LAYERS and self.dropout > 0:
                block.append(nn.Dropout(self.dropout))
            block.append(nn.ReLU())
            self.decoder.append(nn.Sequential(*block))
            w_in = 2 * w_out  # decoder output + skip
        self.decoder.append(
            nn.Sequential(nn.ConvTranspose2d(w_in, self.out_channels, KERNEL, STRIDE, PADDING), nn.Tanh())
        )
        dcgan_init_(self)

    def check_input(self, x: Tensor) -> None:
        """Check that ``x`` is ``(B, C_in, H, W)`` with ``H`` and ``W`` multiples of ``2**depth``.

        Raises:
            ValueError: wrong rank or channel count, or an image too small / not divisible.
        """
        owner = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(
                f"{owner}: expected images of shape (B, {self.in_channels}, H, W) "
                f"(in_channels={self.in_channels}), got {shape}"
            )
        height, width = x.shape[2], x.shape[3]
        if height % self.multiple or width % self.multiple or height == 0 or width == 0:
            raise ValueError(
                f"{owner}: image of size {height}x{width} is too small or not divisible for a U-Net of "
                f"depth {self.depth}: height and width must be non-zero multiples of 2**depth="
                f"{self.multiple} (the generator halves the image {self.depth} times); resize/crop the "
                f"images or build the network with a smaller depth"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Translate images: ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)`` in [-1, 1] (e.g. L -> ab).

        Raises:
            ValueError: see :meth:`check_input`.
        """
        self.check_input(x)
        skips: list[Tensor] = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
        skips.pop()  # the bottleneck is not concatenated with itself
        for block in self.decoder:
            h = block(h)
            if skips:
                h = torch.cat([skips.pop(), h], dim=1)
        return h
