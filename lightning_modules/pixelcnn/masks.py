"""Masked convolutions of the PixelCNNs: which inputs each output may see (raster-scan order, R -> G -> B).

* van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks" (ICML), Sec. 3.4 and
  Fig. 2 right: a *masked* convolution (:class:`MaskedConv2d`) keeps the kernel taps above the current
  pixel and left of it in its row, so the prediction for a pixel depends only on the pixels before it in
  raster-scan order. Colour sub-pixels are generated in the order R -> G -> B: the feature maps of every
  layer are split in three groups, and at the *centre* tap a group only sees earlier groups (mask A, first
  layer) or earlier groups and itself (mask B, later layers). Stacked masked ``k x k`` convolutions leave
  a **blind spot**: pixels above-right of the current one that lie within the nominal receptive field
  but are never seen (Gated PixelCNN paper, Sec. 2.2 and Fig. 1).
* van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders" (NeurIPS), Sec. 2.2 and
  Fig. 2: the Gated PixelCNN removes the blind spot with two stacks, a *vertical* one over all rows above
  (:class:`VerticalStackConv`, moved one row down by :func:`shift_down` before it reaches the other
  stack) and a *horizontal* one over the current row up to the current pixel (:class:`HorizontalStackConv`).

Channel groups: a layer with ``n`` feature maps and ``C`` colours assigns map ``k`` to colour group
``k * C // n`` (contiguous blocks; :func:`channel_groups`), so the image's own channels are groups
``0..C-1`` and the final ``C * L`` logits are ``C`` blocks of ``L``. A layer's ``n`` must be divisible by
``C``; the networks (:mod:`lightning_modules.pixelcnn.networks`) round their widths up to the nearest valid
value (:func:`round_up_to_groups`), so one configured width runs on grey and colour data alike.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int

#: ``"A"``: the first layer (the centre tap sees earlier colours only); ``"B"``: later layers (and its own)
MASK_TYPES = ("A", "B")


def channel_groups(num_channels: int, color_channels: int) -> Tensor:
    """Colour group of each of ``num_channels`` feature maps: ``k * C // num_channels`` (int64 ``(n,)``).

    With ``num_channels == C`` this is ``0..C-1`` (the image's R, G, B); with ``C == 1`` all zeros.
    """
    return torch.arange(num_channels) * color_channels // num_channels


def centre_mask(out_groups: Tensor, in_groups: Tensor, mask_type: str) -> Tensor:
    """Connectivity of the centre tap between channel groups, float ``(out, in)`` of 0/1.

    Type ``"A"``: output group ``g`` sees input groups ``< g`` (so with one colour, nothing); type ``"B"``:
    groups ``<= g`` (PixelRNN paper, Sec. 3.4 and Fig. 2 right).
    """
    if mask_type == "A":
        return (in_groups[None, :] < out_groups[:, None]).float()
    return (in_groups[None, :] <= out_groups[:, None]).float()


def check_mask_type(mask_type: object, owner: str) -> str:
    """Return ``"A"`` or ``"B"`` (case-insensitive).

    Raises:
        ValueError: any other value, naming ``mask_type``.
    """
    if not isinstance(mask_type, str) or mask_type.upper() not in MASK_TYPES:
        raise ValueError(
            f"{owner}: mask_type must be 'A' (first layer) or 'B' (later layers), got {mask_type!r}"
        )
    return mask_type.upper()


def check_divisible(value: int, name: str, color_channels: int, owner: str) -> None:
    """Require ``value % color_channels == 0`` when ``color_channels > 1`` (channel groups of equal size).

    Raises:
        ValueError: naming ``name``, with the nearest valid values.
    """
    if color_channels > 1 and value % color_channels:
        below = value - value % color_channels
        raise ValueError(
            f"{owner}: {name}={value} must be divisible by the number of colour channels {color_channels} "
            f"(feature maps are split in {color_channels} groups for the R->G->B sub-pixel ordering); "
            f"e.g. {below or color_channels} or {below + color_channels}"
        )


def round_up_to_groups(value: int, multiple: int, name: str, owner: str) -> int:
    """``value`` rounded up to the nearest multiple of ``multiple`` (the colour groups' common width).

    A network's width must split into ``C`` equal colour groups (PixelRNN paper, Sec. 3.4, Fig. 2 right):
    ``multiple`` is ``C`` for the Gated PixelCNN's stacks and ``2 C`` for the original PixelCNN's residual
    stream (its blocks narrow ``2h -> h``). So ``hidden=32`` gives 32 maps on grey data, 33 (Gated) or 36
    (PixelCNN) on RGB; a width that is already valid (e.g. the paper's 384) is kept. A change is logged
    (INFO, logger ``lightning_modules.pixelcnn``) naming ``name``.

    Raises:
        ValueError: ``value`` or ``multiple`` not a positive integer (names ``name``).
    """
    value = as_int(value, name, owner)
    multiple = as_int(multiple, "multiple", owner)
    rounded = -(-value // multiple) * multiple
    if rounded != value:
        logging.getLogger("lightning_modules.pixelcnn").info(
            "%s: %s=%d rounded up to %d, a multiple of %d (equal colour groups for the R->G->B ordering)",
            owner, name, value, rounded, multiple)
    return rounded


def odd_kernel(value: object, name: str, owner: str, minimum: int = 1) -> int:
    """``value`` as an odd ``int >= minimum`` (a masked kernel's centre tap is the current pixel).

    Raises:
        ValueError: if it is not an integer, below ``minimum``, or even (names ``owner`` and ``name``).
    """
    value = as_int(value, name, owner, minimum=minimum)
    if value % 2 == 0:
        raise ValueError(f"{owner}: {name} must be odd (the centre tap is the current pixel), got {value}")
    return value


def _kernel_pair(kernel_size: object, owner: str) -> tuple[int, int]:
    """``(kh, kw)``, both odd, from an int or a pair; ValueError (naming ``kernel_size``) otherwise."""
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2:
            raise ValueError(f"{owner}: kernel_size must be an int or a pair (kh, kw), got {kernel_size!r}")
        return (odd_kernel(kernel_size[0], "kernel_size[0]", owner),
                odd_kernel(kernel_size[1], "kernel_size[1]", owner))
    kh = kw = odd_kernel(kernel_size, "kernel_size", owner)
    return kh, kw


class MaskedConv2d(nn.Conv2d):
    """Convolution whose kernel is masked to the raster-scan past (PixelRNN paper, Sec. 3.4, Fig. 2 right).

    For a ``kh x kw`` kernel centred on the output pixel: taps in rows above the centre are kept, taps left
    of the centre in the centre row are kept, taps right of it and in rows below are zeroed. At the centre
    tap, input and output feature maps are split in ``C = color_channels`` groups (:func:`channel_groups`)
    and output group ``g`` sees input groups ``< g`` (``mask_type="A"``, the first layer, whose input is the
    image itself) or ``<= g`` (``"B"``, later layers). With ``C = 1``, type A drops the centre tap and type B
    keeps it. A ``1 x 1`` type-B masked convolution is a per-pixel linear map restricted to the R->G->B
    ordering.

    The mask is a non-persistent buffer; the weight is multiplied by it in every forward, so masked taps
    stay exactly zero and get zero gradient. Padding is ``(kh // 2, kw // 2)`` (output size = input size).

    Args:
        in_channels, out_channels: feature maps; divisible by ``C`` when ``C > 1``.
        kernel_size: odd int or odd pair ``(kh, kw)``.
        mask_type: ``"A"`` or ``"B"``.
        color_channels: ``C`` (1 grey, 3 RGB).
        bias: add a bias (not masked: it depends on no input).
        out_chunks: the output is ``out_chunks`` equal chunks along channels, each grouped as a layer of
            ``out_channels / out_chunks`` maps (2 for a gated convolution's ``[f, g]`` halves, which are
            multiplied channel by channel).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Raises:
        ValueError: non-odd kernel, unknown ``mask_type``, channels not divisible by ``C`` (or by
            ``out_chunks``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str = "B",
        color_channels: int = 1,
        bias: bool = True,
        out_chunks: int = 1,
    ) -> None:
        owner = type(self).__name__
        in_channels = as_int(in_channels, "in_channels", owner)
        out_channels = as_int(out_channels, "out_channels", owner)
        kh, kw = _kernel_pair(kernel_size, owner)
        mask_type = check_mask_type(mask_type, owner)
        color_channels = as_int(color_channels, "color_channels", owner)
        out_chunks = as_int(out_chunks, "out_chunks", owner)
        if out_channels % out_chunks:
            raise ValueError(
                f"{owner}: out_channels={out_channels} must be divisible by out_chunks={out_chunks}"
            )
        check_divisible(in_channels, "in_channels", color_channels, owner)
        check_divisible(out_channels // out_chunks, "out_channels / out_chunks", color_channels, owner)
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        self.mask_type = mask_type
        self.color_channels = color_channels
        out_groups = channel_groups(out_channels // out_chunks, color_channels).repeat(out_chunks)
        mask = torch.zeros(out_channels, in_channels, kh, kw)
        mask[:, :, : kh // 2, :] = 1.0
        mask[:, :, kh // 2, : kw // 2] = 1.0
        mask[:, :, kh // 2, kw // 2] = centre_mask(
            out_groups, channel_groups(in_channels, color_channels), mask_type
        )
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W) -> (B, out_channels, H, W)`` with the masked kernel."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_type={self.mask_type}, color_channels={self.color_channels}"


class HorizontalStackConv(nn.Conv2d):
    """The horizontal stack's ``1 x (n//2 + 1)`` convolution over the current row, up to the current pixel.

    Gated PixelCNN paper, Sec. 2.2 and Fig. 2: the output at ``(i, j)`` sees input columns ``j - n//2 .. j``
    of row ``i`` (left zero padding of ``n//2``). The columns left of ``j`` are unmasked; the last tap (the
    current pixel) has the colour-group mask of :func:`centre_mask` (type A in the first layer, B after),
    which keeps the R->G->B ordering inside the pixel. The output is ``2 * out_channels`` maps ``[f, g]``
    (one convolution for both gate halves, Sec. 2.1), each half grouped like ``out_channels`` maps.

    Shapes:
        ``(B, in_channels, H, W) -> (B, 2 * out_channels, H, W)``.

    Raises:
        ValueError: ``kernel_size`` not odd ``>= 3``; unknown ``mask_type``; channels not divisible by ``C``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str, color_channels: int = 1
    ) -> None:
        owner = type(self).__name__
        in_channels = as_int(in_channels, "in_channels", owner)
        out_channels = as_int(out_channels, "out_channels", owner)
        kernel_size = odd_kernel(kernel_size, "kernel_size", owner, minimum=3)
        mask_type = check_mask_type(mask_type, owner)
        color_channels = as_int(color_channels, "color_channels", owner)
        check_divisible(in_channels, "in_channels", color_channels, owner)
        check_divisible(out_channels, "out_channels", color_channels, owner)
        self.reach = kernel_size // 2
        super().__init__(in_channels, 2 * out_channels, (1, self.reach + 1))
        self.mask_type = mask_type
        mask = torch.ones(2 * out_channels, in_channels, 1, self.reach + 1)
        out_groups = channel_groups(out_channels, color_channels).repeat(2)
        mask[:, :, 0, -1] = centre_mask(out_groups, channel_groups(in_channels, color_channels), mask_type)
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W) -> (B, 2 out, H, W)``: row-causal masked convolution."""
        return self._conv_forward(F.pad(x, (self.reach, 0, 0, 0)), self.weight * self.mask, self.bias)


class VerticalStackConv(nn.Conv2d):
    """The vertical stack's ``n x n`` convolution restricted to the rows up to the current one.

    Gated PixelCNN paper, Sec. 2.2 and Fig. 2: implemented as a ``(n//2 + 1) x n`` convolution with top
    padding ``n//2`` and side padding ``n//2``: the output at ``(i, j)`` sees input rows ``i - n//2 .. i``
    and columns ``j - n//2 .. j + n//2`` (no mask). The current row *is* in the window, so these features
    never reach the horizontal stack directly: :func:`shift_down` moves them one row down first, after
    which row ``i`` only carries information from rows ``< i``. The output is ``2 * out_channels`` maps
    ``[f, g]`` (Sec. 2.1).

    Shapes:
        ``(B, in_channels, H, W) -> (B, 2 * out_channels, H, W)``.

    Raises:
        ValueError: ``kernel_size`` not odd ``>= 3``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        owner = type(self).__name__
        in_channels = as_int(in_channels, "in_channels", owner)
        out_channels = as_int(out_channels, "out_channels", owner)
        kernel_size = odd_kernel(kernel_size, "kernel_size", owner, minimum=3)
        self.reach = kernel_size // 2
        super().__init__(in_channels, 2 * out_channels, (self.reach + 1, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W) -> (B, 2 out, H, W)``; row ``i`` of the output sees input rows ``<= i``."""
        r = self.reach
        return super().forward(F.pad(x, (r, r, r, 0)))


def shift_down(x: Tensor) -> Tensor:
    """Shift feature maps one row down, zero-filling the top row: ``out[..., i, :] = x[..., i - 1, :]``."""
    return F.pad(x, (0, 0, 1, 0))[..., : x.shape[-2], :]
