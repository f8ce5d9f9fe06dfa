"""PixelCNN networks: the original masked-convolution PixelCNN and the Gated PixelCNN.

Two papers:

* van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks" (ICML), the original
  **PixelCNN** (Sec. 3.5): a stack of masked convolutions (Sec. 3.4; :mod:`lightning_modules.pixelcnn.masks`)
  so that the prediction for a pixel depends only on the pixels above it and to its left (raster-scan
  order, sub-pixels R -> G -> B), with residual blocks (Sec. 3.3, Fig. 5) and a 256-way softmax per
  sub-pixel (Sec. 2.2, "Pixels as discrete variables"). It has the **blind spot** of stacked masked
  convolutions (Gated PixelCNN paper, Sec. 2.2 and Fig. 1).
* van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016, "Conditional Image
  Generation with PixelCNN Decoders" (NeurIPS), the **Gated PixelCNN**: gated activations
  ``y = tanh(W_f * x) . sigmoid(W_g * x)`` (Sec. 2.1, eq. 2), two stacks that remove the blind spot
  (Sec. 2.2, Fig. 2): a *vertical* stack conditioned on all rows above and a *horizontal* stack
  conditioned on the current row to the left, the vertical stack feeding the horizontal one.

Both networks can be conditioned on a vector ``h`` (Sec. 2.3, eq. 4) and on a location-dependent map
``s = m(h)`` (eq. 5): :mod:`lightning_modules.pixelcnn.conditioning`. The PixelCNN auto-encoder (Sec. 2.4)
is a Gated PixelCNN conditioned on an encoder's code, assembled by
:class:`~lightning_modules.pixelcnn.module.PixelCNNModule`.

Input and output conventions (both networks):

* **Input** ``x``: float ``(B, C, H, W)``, the *quantized* image scaled to ``[-1, 1]`` (genforge's image
  range): level ``k`` of ``L`` intensity levels is fed as ``2 k / (L - 1) - 1``. :func:`from_levels`
  and :func:`to_levels` convert between level indices and this range. The networks accept any real
  values (they are not clamped or checked); the convention only has to match between training and
  sampling.
* **Output**: logits ``(B, L, C, H, W)``, a softmax over the ``L`` intensity levels (dim 1) of every
  sub-pixel, ready for ``F.cross_entropy(logits, targets)`` with ``targets`` int64 ``(B, C, H, W)`` in
  ``[0, L)``; see ``lightning_modules/pixelcnn/likelihood.py`` for NLL and bits/dim. ``L = 256`` for 8-bit
  images, 2 for binarized MNIST, 17 for scikit-learn's 8x8 digits.
* **Causality**: the logits of sub-pixel ``(c, i, j)`` depend only on input sub-pixels ``(c', i', j')``
  with ``(i', j')`` before ``(i, j)`` in raster order, or ``(i', j') == (i, j)`` and ``c' < c``.
* **Widths**: ``hidden`` and ``head_hidden`` are rounded up so that every layer's maps split into ``C``
  equal colour groups (:func:`~lightning_modules.pixelcnn.masks.round_up_to_groups`), so one configured
  width runs on grey and colour data alike.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int
from lightning_modules.pixelcnn.conditioning import LayerConditioning, check_h, check_s
from lightning_modules.pixelcnn.masks import (
    HorizontalStackConv,
    MaskedConv2d,
    VerticalStackConv,
    check_divisible,
    odd_kernel,
    round_up_to_groups,
    shift_down,
)

# ------------------------------------------------------------------------------------- level helpers


def to_levels(x: Tensor, levels: int) -> Tensor:
    """Quantize images in ``[-1, 1]`` to int64 level indices in ``[0, levels)`` (nearest level).

    ``round((x + 1) / 2 * (levels - 1))``, clamped; the inverse of :func:`from_levels` on its outputs.

    Raises:
        ValueError: ``levels < 2``.
    """
    levels = as_int(levels, "levels", "to_levels", minimum=2)
    return torch.round((x.float() + 1) * 0.5 * (levels - 1)).clamp_(0, levels - 1).long()


def from_levels(idx: Tensor, levels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Map level indices in ``[0, levels)`` to the networks' input range: ``2 k / (levels - 1) - 1`` in [-1, 1].

    Raises:
        ValueError: ``levels < 2``.
    """
    levels = as_int(levels, "levels", "from_levels", minimum=2)
    return idx.to(dtype) * (2.0 / (levels - 1)) - 1.0


def gate(x: Tensor, dim: int = 1) -> Tensor:
    """Gated activation ``tanh(f) * sigmoid(g)`` of ``x = [f, g]`` split along ``dim`` (Gated PixelCNN
    paper, Sec. 2.1, eq. 2).

    Shapes:
        ``(B, 2p, H, W) -> (B, p, H, W)`` (``dim=1``; channels-last rows ``(..., 2p) -> (..., p)`` with
        ``dim=-1``), values in (-1, 1).
    """
    f, g = x.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


def check_pixel_input(x: Tensor, channels: int, image_size: int | None, owner: str) -> None:
    """Check that ``x`` is a floating ``(B, channels, H, W)`` tensor (``H = W = image_size`` if given).

    Raises:
        ValueError: naming ``x``, with the expected shape and the input convention.
    """
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
        raise ValueError(
            f"{owner}: expected x of shape (B, {channels}, H, W) (channels={channels}), got {shape}"
        )
    if image_size is not None and tuple(x.shape[2:]) != (image_size, image_size):
        raise ValueError(
            f"{owner}: expected x of shape (B, {channels}, {image_size}, {image_size}) "
            f"(image_size={image_size}), got {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x):
        raise ValueError(
            f"{owner}: x must be a floating tensor (levels scaled to [-1, 1], see from_levels), got {x.dtype}"
        )


# --------------------------------------------------------------------------------------- gated block


class GatedBlock(nn.Module):
    """One Gated PixelCNN layer with a vertical and a horizontal stack (Gated PixelCNN paper, Sec. 2.1-2.3, Fig. 2).

    With ``p = out_channels``, ``n = kernel_size``::

        v_pre = VerticalStackConv(v)                         (B, 2p, H, W)  rows <= i
        h_pre = HorizontalStackConv(h) + link(shift_down(v_pre))            row i, columns <= j
        v_pre, h_pre += V^T cond + V * s                     (eqs. 4-5, separate maps per stack)
        v_out = tanh(v_f) * sigmoid(v_g)                     (B, p, H, W)
        h_out = h + conv1x1(tanh(h_f) * sigmoid(h_g))        (no residual when ``residual=False``)

    ``link`` is an unmasked ``1 x 1`` convolution ``2p -> 2p`` (its input comes from rows above only);
    ``conv1x1`` is a ``1 x 1`` type-B :class:`MaskedConv2d` with colour groups. The horizontal convolution
    is type ``mask_type`` (``"A"`` in the first layer, whose input is the image, ``"B"`` after).

    Args:
        in_channels: maps of both inputs ``v`` and ``h`` (the image's ``C`` in the first layer).
        out_channels: ``p``; divisible by ``color_channels``.
        kernel_size: ``n``, odd ``>= 3``.
        mask_type: ``"A"`` or ``"B"``.
        color_channels: ``C``.
        residual: add ``h`` to the horizontal output (needs ``in_channels == out_channels``).
        cond_dim, cond_map_channels: widths of ``cond`` ``(B, K)`` and ``s`` ``(B, K', H, W)``; 0 = none.

    Shapes:
        ``forward(v, h, cond=None, s=None)``: ``v, h (B, in, H, W) -> (v_out, h_out)``, both
        ``(B, p, H, W)``; ``v_out`` in (-1, 1).

    Raises:
        ValueError: invalid arguments, or ``residual`` with ``in_channels != out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mask_type: str = "B",
        color_channels: int = 1,
        residual: bool = True,
        cond_dim: int = 0,
        cond_map_channels: int = 0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if residual and in_channels != out_channels:
            raise ValueError(
                f"{owner}: a residual block needs in_channels == out_channels, got {in_channels} != {out_channels}"
            )
        self.residual = residual
        self.vertical = VerticalStackConv(in_channels, out_channels, kernel_size)
        self.horizontal = HorizontalStackConv(
            in_channels, out_channels, kernel_size, mask_type, color_channels
        )
        self.link = nn.Conv2d(2 * out_channels, 2 * out_channels, 1)
        self.out = MaskedConv2d(out_channels, out_channels, 1, "B", color_channels)
        self.cond_v = LayerConditioning(cond_dim, cond_map_channels, 2 * out_channels)
        self.cond_h = LayerConditioning(cond_dim, cond_map_channels, 2 * out_channels)

    def forward(
        self, v: Tensor, h: Tensor, cond: Tensor | None = None, s: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(v, h) -> (v_out, h_out)``, all ``(B, ., H, W)``; ``cond`` ``(B, K)``, ``s`` ``(B, K', H, W)``."""
        v_pre = self.vertical(v)
        h_pre = self.horizontal(h) + self.link(shift_down(v_pre))
        extra_v, extra_h = self.cond_v(cond, s), self.cond_h(cond, s)
        if extra_v is not None:
            v_pre = v_pre + extra_v
        if extra_h is not None:
            h_pre = h_pre + extra_h
        h_out = self.out(gate(h_pre))
        if self.residual:
            h_out = h_out + h
        return gate(v_pre), h_out


class OutputHead(nn.Module):
    """Per-pixel output: ``ReLU -> 1x1 masked conv (B) -> ReLU -> 1x1 masked conv (B) -> C * L logits``.

    PixelRNN paper, Sec. 3.5 (two ReLU + 1x1 masked convolution layers before the softmax) and Sec. 2.2
    (a ``L``-way softmax per sub-pixel); both convolutions keep the colour groups, the last one's ``C * L``
    outputs are ``C`` blocks of ``L`` logits (block ``c`` = sub-pixel ``c``).

    Shapes:
        ``(B, in_channels, H, W) -> (B, L, C, H, W)`` logits.

    Raises:
        ValueError: ``in_channels`` or ``hidden`` not divisible by ``C``; ``levels < 2``.
    """

    def __init__(self, in_channels: int, hidden: int, channels: int, levels: int) -> None:
        super().__init__()
        self.channels = channels
        self.levels = as_int(levels, "levels", type(self).__name__, minimum=2)
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(in_channels, hidden, 1, "B", channels),
            nn.ReLU(),
            MaskedConv2d(hidden, channels * self.levels, 1, "B", channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W) -> (B, L, C, H, W)``."""
        out = self.net(x)
        b, _, height, width = out.shape
        return out.view(b, self.channels, self.levels, height, width).transpose(1, 2)


# -------------------------------------------------------------------------------------------- networks


class _PixelNetwork(nn.Module):
    """Argument checks shared by :class:`GatedPixelCNN` and :class:`PixelCNN`: widths rounded up to equal
    colour groups (:func:`round_up_to_groups`), conditioning widths, and the inputs of ``forward``."""

    #: ``hidden`` is rounded up to a multiple of ``hidden_groups * C`` (:func:`round_up_to_groups`)
    hidden_groups = 1

    def _init_common(
        self,
        channels: int,
        levels: int,
        hidden: int,
        cond_dim: int,
        cond_map_channels: int,
        image_size: int | None,
        head_hidden: int | None,
    ) -> None:
        owner = type(self).__name__
        self.channels = as_int(channels, "channels", owner)
        self.levels = as_int(levels, "levels", owner, minimum=2)
        self.hidden = round_up_to_groups(hidden, self.hidden_groups * self.channels, "hidden", owner)
        self.cond_dim = as_int(cond_dim, "cond_dim", owner, minimum=0)
        self.cond_map_channels = as_int(cond_map_channels, "cond_map_channels", owner, minimum=0)
        self.image_size = None if image_size is None else as_int(image_size, "image_size", owner)
        self.head_hidden = (self.hidden if head_hidden is None
                            else round_up_to_groups(head_hidden, self.channels, "head_hidden", owner))

    def _check_inputs(
        self, x: Tensor, h: Tensor | None, s: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        owner = type(self).__name__
        check_pixel_input(x, self.channels, self.image_size, owner)
        h = check_h(h, self.cond_dim, x.shape[0], owner)
        s = check_s(s, self.cond_map_channels, x, owner)
        return (None if h is None else h.to(x.dtype)), (None if s is None else s.to(x.dtype))


class GatedPixelCNN(_PixelNetwork):
    """Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

    ``layers`` :class:`GatedBlock` s (Sec. 2.1-2.2, Fig. 2) of ``hidden`` maps each: the first one reads
    the image with a type-A horizontal convolution and has no residual connection, the others are type B
    with residual connections in the horizontal stack. Then :class:`OutputHead` on the horizontal stack.
    Conditioning (Sec. 2.3): ``h (B, cond_dim)`` through ``V^T h`` in every layer (eq. 4) and
    ``s (B, cond_map_channels, H, W)`` through 1x1 convolutions (eq. 5; build ``s`` with
    :class:`ConditionMap`). The network is fully convolutional (any ``H x W`` unless ``image_size`` is set).

    Receptive field (no blind spot): with ``r = kernel_size // 2`` and ``R = layers * r`` (attribute
    ``reach``), the logits at ``(i, j)`` see every pixel ``(i, j')`` with ``j - R <= j' < j`` and every pixel
    of rows ``i - 1 - R .. i - 1`` with ``|j' - j| <= R``, plus the earlier colours of pixel ``(i, j)``.
    To cover a whole ``S x S`` image choose ``R >= S - 1`` (28x28: ``kernel_size=5, layers=14``).

    Paper settings for reference: 20 layers of 384 maps with 5x5 filters (its ImageNet models, Sec. 3); the
    defaults here are smaller.

    Args:
        channels: ``C`` (1 grey, 3 RGB).
        levels: ``L`` intensity levels per sub-pixel (256, 2 for binarized MNIST, 17 for sklearn digits).
        hidden: ``p``, maps per stack; rounded up to a multiple of ``C`` (:func:`round_up_to_groups`: 32 -> 33
            on RGB), the width used is the attribute ``hidden``.
        layers: number of gated blocks (>= 1).
        kernel_size: ``n``, odd >= 3.
        cond_dim: ``K`` of ``h`` (0 = no vector conditioning).
        cond_map_channels: ``K'`` of ``s`` (0 = no map conditioning).
        image_size: if given, ``x`` must be ``(B, C, image_size, image_size)``.
        head_hidden: width of the output head's hidden layer (default ``hidden``); rounded up to a multiple
            of ``C``.

    Shapes:
        ``forward(x: (B, C, H, W) float, h: (B, K) | None, s: (B, K', H, W) | None) -> (B, L, C, H, W)``
        logits. ``x`` holds level ``k`` as ``2 k / (L - 1) - 1`` in [-1, 1] (:func:`from_levels`).

    Raises:
        ValueError: invalid arguments (named) at construction; in ``forward``, ``x`` not
            ``(B, C, H, W)`` float, ``h``/``s`` missing, unexpected or of the wrong shape (named).
    """

    def __init__(
        self,
        channels: int = 1,
        levels: int = 256,
        hidden: int = 64,
        layers: int = 15,
        kernel_size: int = 5,
        cond_dim: int = 0,
        cond_map_channels: int = 0,
        image_size: int | None = None,
        head_hidden: int | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self._init_common(channels, levels, hidden, cond_dim, cond_map_channels, image_size, head_hidden)
        self.layers = as_int(layers, "layers", owner)
        self.kernel_size = odd_kernel(kernel_size, "kernel_size", owner, minimum=3)
        self.reach = self.layers * (self.kernel_size // 2)
        self.blocks = nn.ModuleList(
            GatedBlock(
                self.channels if i == 0 else self.hidden,
                self.hidden,
                self.kernel_size,
                mask_type="A" if i == 0 else "B",
                color_channels=self.channels,
                residual=i > 0,
                cond_dim=self.cond_dim,
                cond_map_channels=self.cond_map_channels,
            )
            for i in range(self.layers)
        )
        self.head = OutputHead(self.hidden, self.head_hidden, self.channels, self.levels)

    def forward(self, x: Tensor, h: Tensor | None = None, s: Tensor | None = None) -> Tensor:
        """``(B, C, H, W)`` in [-1, 1] (+ ``h (B, K)``, ``s (B, K', H, W)``) -> logits ``(B, L, C, H, W)``."""
        h, s = self._check_inputs(x, h, s)
        v = hor = x
        for block in self.blocks:
            v, hor = block(v, hor, h, s)
        return self.head(hor)


class PixelCNNResidualBlock(nn.Module):
    """PixelCNN residual block (PixelRNN paper, Sec. 3.3 and Fig. 5, left).

    ``x + conv1x1_B(ReLU(conv3x3_B(ReLU(conv1x1_B(ReLU(x))))))`` with ``2h -> h -> h -> 2h`` maps, all
    :class:`MaskedConv2d` type B with colour groups, plus optional conditioning terms added to the output.

    Shapes:
        ``(B, 2h, H, W) -> (B, 2h, H, W)``.

    Raises:
        ValueError: ``channels`` odd, or ``channels / 2`` not divisible by ``color_channels``.
    """

    def __init__(self, channels: int, kernel_size: int = 3, color_channels: int = 1) -> None:
        super().__init__()
        owner = type(self).__name__
        if channels % 2:
            raise ValueError(f"{owner}: hidden={channels} must be even (blocks narrow 2h -> h -> 2h)")
        inner = channels // 2
        check_divisible(inner, "hidden / 2", color_channels, owner)
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, inner, 1, "B", color_channels),
            nn.ReLU(),
            MaskedConv2d(inner, inner, kernel_size, "B", color_channels),
            nn.ReLU(),
            MaskedConv2d(inner, channels, 1, "B", color_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 2h, H, W) -> (B, 2h, H, W)``."""
        return x + self.net(x)


class PixelCNN(_PixelNetwork):
    """The original PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 3.4-3.5).

    A ``first_kernel_size x first_kernel_size`` (7x7) type-A :class:`MaskedConv2d` from the image to
    ``hidden`` maps, ``layers`` :class:`PixelCNNResidualBlock` s with ``kernel_size`` (3x3) type-B masked
    convolutions, then :class:`OutputHead` (Sec. 3.5; the paper reports a 15-layer PixelCNN on CIFAR-10).
    One masked stack, so it **has the blind spot** of the Gated PixelCNN paper (Sec. 2.2, Fig. 1): with
    ``r1 = first_kernel_size // 2`` and ``r = kernel_size // 2`` the nominal reach is
    ``r1 + layers * r`` in every direction above/left, but e.g. the pixel ``(i - 1, j + r1 + 1)`` is never
    seen from ``(i, j)`` (a path can only climb one row once, by at most ``r1`` columns to the right).

    Conditioning (same interface as :class:`GatedPixelCNN`, simpler form): ``V^T h`` (a per-layer bias) and
    ``V * s`` (1x1 convolutions) added to the residual stream after the first layer and after every block.

    Args:
        channels: ``C`` (1 or 3).
        levels: ``L`` (256, 2, 17, ...).
        hidden: ``2h``, maps of the residual stream; rounded up to a multiple of ``2 C`` (even, with
            ``hidden / 2`` divisible by ``C``: 32 -> 36 on RGB), the width used is the attribute ``hidden``.
        layers: number of residual blocks (>= 0).
        kernel_size: odd kernel of the blocks' masked convolutions (3 in the paper).
        first_kernel_size: odd kernel of the first, type-A, convolution (7 in the paper).
        cond_dim, cond_map_channels, image_size, head_hidden: as in :class:`GatedPixelCNN`.

    Shapes:
        ``forward(x: (B, C, H, W) float in [-1, 1], h: (B, K) | None, s: (B, K', H, W) | None)
        -> (B, L, C, H, W)`` logits.

    Raises:
        ValueError: invalid arguments (named); in ``forward`` as :class:`GatedPixelCNN`.
    """

    #: the residual stream narrows ``2h -> h``: ``hidden`` is a multiple of ``2 C``
    hidden_groups = 2

    def __init__(
        self,
        channels: int = 1,
        levels: int = 256,
        hidden: int = 64,
        layers: int = 15,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        cond_dim: int = 0,
        cond_map_channels: int = 0,
        image_size: int | None = None,
        head_hidden: int | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self._init_common(channels, levels, hidden, cond_dim, cond_map_channels, image_size, head_hidden)
        self.layers = as_int(layers, "layers", owner, minimum=0)
        self.kernel_size = odd_kernel(kernel_size, "kernel_size", owner)
        self.first_kernel_size = odd_kernel(first_kernel_size, "first_kernel_size", owner)
        self.reach = self.first_kernel_size // 2 + self.layers * (self.kernel_size // 2)
        self.first = MaskedConv2d(self.channels, self.hidden, self.first_kernel_size, "A", self.channels)
        self.blocks = nn.ModuleList(
            PixelCNNResidualBlock(self.hidden, self.kernel_size, self.channels) for _ in range(self.layers)
        )
        self.conds = nn.ModuleList(
            LayerConditioning(self.cond_dim, self.cond_map_channels, self.hidden) for _ in range(self.layers + 1)
        )
        self.head = OutputHead(self.hidden, self.head_hidden, self.channels, self.levels)

    def forward(self, x: Tensor, h: Tensor | None = None, s: Tensor | None = None) -> Tensor:
        """``(B, C, H, W)`` in [-1, 1] (+ ``h (B, K)``, ``s (B, K', H, W)``) -> logits ``(B, L, C, H, W)``."""
        h, s = self._check_inputs(x, h, s)
        return self.forward_window(x, h, s)

    def forward_window(self, x: Tensor, h: Tensor | None = None, s: Tensor | None = None) -> Tensor:
        """:meth:`forward` without the input checks, for a crop of the image of any size (the windowed
        sampler): ``x`` ``(B, C, h, w)``, ``h`` ``(B, K)``, ``s`` ``(B, K', h, w)`` of the same crop, already
        checked and of ``x``'s dtype. Returns logits ``(B, L, C, h, w)``."""
        out = self.first(x)
        for i, cond in enumerate(self.conds):
            if i > 0:
                out = self.blocks[i - 1](out)
            extra = cond(h, s)
            if extra is not None:
                out = out + extra
        return self.head(out)
