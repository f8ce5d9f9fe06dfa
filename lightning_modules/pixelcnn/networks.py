"""PixelCNN networks: the original masked-convolution PixelCNN and the Gated PixelCNN, with conditioning.

Two papers:

* van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks" (ICML), the original
  **PixelCNN** (Sec. 3.5): a stack of *masked* convolutions (Sec. 3.4) so that the prediction for a pixel
  depends only on the pixels above it and to its left (raster-scan order), with residual blocks
  (Sec. 3.3, Fig. 5) and a 256-way softmax per sub-pixel (Sec. 2.2, "Pixels as discrete variables").
  Colour sub-pixels are generated in the order R -> G -> B: the feature maps of every layer are split in
  three groups, and at the *centre* pixel a group only sees earlier groups (mask A, first layer) or earlier
  groups and itself (mask B, later layers) (Sec. 3.4, Fig. 2 right). Stacked masked ``k x k``
  convolutions leave a **blind spot**: pixels above-right of the current one that lie within the nominal
  receptive field but are never seen (Gated PixelCNN paper, Sec. 2.2 and Fig. 1).
* van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016, "Conditional Image
  Generation with PixelCNN Decoders" (NeurIPS), the **Gated PixelCNN**: gated activations
  ``y = tanh(W_f * x) . sigmoid(W_g * x)`` (Sec. 2.1, eq. 2), two stacks that remove the blind spot
  (Sec. 2.2, Fig. 2): a *vertical* stack conditioned on all rows above and a *horizontal* stack
  conditioned on the current row to the left, the vertical stack feeding the horizontal one; and
  conditioning on a vector ``h`` (Sec. 2.3, eq. 4: ``tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T
  h)``) or on a location-dependent map ``s = m(h)`` (eq. 5: ``V_f * s`` and ``V_g * s`` are 1x1
  convolutions; ``m`` is a deconvolutional network, :class:`ConditionMap`).

Input and output conventions (both networks):

* **Input** ``x``: float ``(B, C, H, W)``, the *quantized* image scaled to ``[-1, 1]`` (genforge's image
  range): level ``k`` of ``L`` intensity levels is fed as ``2 k / (L - 1) - 1``. :func:`from_levels`
  and :func:`to_levels` convert between level indices and this range. The networks accept any real
  values (they are not clamped or checked); the convention only has to match between training and
  sampling.
* **Output**: logits ``(B, L, C, H, W)``, a softmax over the ``L`` intensity levels (dim 1) of every
  sub-pixel, ready for ``F.cross_entropy(logits, targets)`` with ``targets`` int64 ``(B, C, H, W)`` in
  ``[0, L)``; see ``lightning_modules/pixelcnn/likelihood.py`` for NLL and bits/dim. ``L = 256`` for 8-bit images, 2 for
  binarized MNIST, 17 for scikit-learn's 8x8 digits.
* **Causality**: the logits of sub-pixel ``(c, i, j)`` depend only on input sub-pixels ``(c', i', j')``
  with ``(i', j')`` before ``(i, j)`` in raster order, or ``(i', j') == (i, j)`` and ``c' < c``.

Channel groups: a layer with ``n`` feature maps and ``C`` colours assigns map ``k`` to colour group
``k * C // n`` (contiguous blocks; :func:`channel_groups`), so the image's own channels are groups
``0..C-1`` and the final ``C * L`` logits are ``C`` blocks of ``L``. A layer's ``n`` must be divisible by
``C``; the networks round their widths (``hidden``, ``head_hidden``) up to the nearest valid value
(:func:`round_up_to_groups`), so one configured width runs on grey and colour data alike.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int

MASK_TYPES = ("A", "B")


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


# ------------------------------------------------------------------------------------------- masking


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


def gate(x: Tensor, dim: int = 1) -> Tensor:
    """Gated activation ``tanh(f) * sigmoid(g)`` of ``x = [f, g]`` split along ``dim`` (Gated PixelCNN
    paper, Sec. 2.1, eq. 2).

    Shapes:
        ``(B, 2p, H, W) -> (B, p, H, W)`` (``dim=1``; channels-last rows ``(..., 2p) -> (..., p)`` with
        ``dim=-1``), values in (-1, 1).
    """
    f, g = x.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


# ------------------------------------------------------------------------------------- conditioning


def check_h(h: Tensor | None, cond_dim: int, batch_size: int, owner: str) -> Tensor | None:
    """Validate the conditioning vector ``h``: ``(B, cond_dim)`` float, or ``None`` when ``cond_dim == 0``.

    Integer (one-hot) tensors are converted to float. Raises ValueError naming ``h`` on a shape mismatch,
    a missing ``h`` for a conditional network, or an ``h`` given to an unconditional one.
    """
    if cond_dim == 0:
        if h is not None:
            shape = tuple(h.shape) if isinstance(h, Tensor) else type(h)
            raise ValueError(
                f"{owner} has cond_dim=0 (no vector conditioning) but got h of shape {shape}; "
                "pass h=None or build it with cond_dim > 0"
            )
        return None
    if h is None:
        raise ValueError(
            f"{owner} has cond_dim={cond_dim} and needs h of shape (B, {cond_dim}) "
            "(a one-hot class or an embedding vector), got None"
        )
    if not isinstance(h, Tensor) or h.dim() != 2 or tuple(h.shape) != (batch_size, cond_dim):
        shape = tuple(h.shape) if isinstance(h, Tensor) else type(h)
        raise ValueError(
            f"{owner}: expected h of shape ({batch_size}, {cond_dim}) (batch size, cond_dim), got {shape}"
            + ("; one-hot encode class indices first, e.g. F.one_hot(y, K).float()" if _is_1d(h) else "")
        )
    return h if torch.is_floating_point(h) else h.float()


def _is_1d(t: object) -> bool:
    return isinstance(t, Tensor) and t.dim() == 1


def check_s(s: Tensor | None, map_channels: int, x: Tensor, owner: str) -> Tensor | None:
    """Validate the location-dependent conditioning map ``s``: ``(B, map_channels, H, W)`` matching ``x``.

    ``None`` when ``map_channels == 0``. Raises ValueError naming ``s`` on a shape mismatch, a missing
    ``s`` for a network with ``cond_map_channels > 0``, or an ``s`` given to one without.
    """
    if map_channels == 0:
        if s is not None:
            shape = tuple(s.shape) if isinstance(s, Tensor) else type(s)
            raise ValueError(
                f"{owner} has cond_map_channels=0 (no map conditioning) but got s of shape {shape}; "
                "pass s=None or build it with cond_map_channels > 0"
            )
        return None
    expected = (x.shape[0], map_channels, x.shape[2], x.shape[3])
    if s is None:
        raise ValueError(
            f"{owner} has cond_map_channels={map_channels} and needs s of shape {expected} "
            "(e.g. ConditionMap(h)), got None"
        )
    if not isinstance(s, Tensor) or tuple(s.shape) != expected:
        shape = tuple(s.shape) if isinstance(s, Tensor) else type(s)
        raise ValueError(
            f"{owner}: expected s of shape {expected} (batch, cond_map_channels, H, W of x), got {shape}"
        )
    return s if torch.is_floating_point(s) else s.float()


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


def condition_map_geometry(image_size: int) -> tuple[int, int]:
    """``(base, n)`` with ``image_size == base * 2**n``, halving while even and above 4.

    28 -> (7, 2), 32 -> (4, 3), 8 -> (4, 1), 7 -> (7, 0), 5 -> (5, 0).
    """
    base, n = image_size, 0
    while base % 2 == 0 and base > 4:
        base //= 2
        n += 1
    return base, n


class ConditionMap(nn.Module):
    """Deconvolutional network ``s = m(h)``: a vector to a spatial conditioning map (Gated PixelCNN, Sec. 2.3, eq. 5).

    ``h (B, K)`` is viewed as ``(B, K, 1, 1)``; a ``base x base`` transposed convolution projects it to
    ``(B, hidden, base, base)``, ``n`` stride-2 ``4 x 4`` transposed convolutions (padding 1) double the
    size up to ``image_size = base * 2**n`` (:func:`condition_map_geometry`), and a ``1 x 1`` transposed
    convolution gives ``K'`` linear output maps. ReLU between layers. The paper leaves ``m`` unspecified
    beyond "a deconvolutional neural network"; this is a small DCGAN-like one.

    Args:
        cond_dim: ``K``, width of ``h``.
        out_channels: ``K'``, channels of ``s`` (the Gated PixelCNN's ``cond_map_channels``).
        image_size: side ``S`` of the square map.
        hidden: width of the hidden maps.

    Shapes:
        ``forward(h: (B, K)) -> s: (B, K', S, S)``, unbounded real values.

    Raises:
        ValueError: invalid arguments; ``h`` not ``(B, K)`` (naming ``h``).
    """

    def __init__(self, cond_dim: int, out_channels: int, image_size: int, hidden: int = 64) -> None:
        super().__init__()
        owner = type(self).__name__
        self.cond_dim = as_int(cond_dim, "cond_dim", owner)
        self.out_channels = as_int(out_channels, "out_channels", owner)
        self.image_size = as_int(image_size, "image_size", owner)
        hidden = as_int(hidden, "hidden", owner)
        base, n = condition_map_geometry(self.image_size)
        layers: list[nn.Module] = [nn.ConvTranspose2d(self.cond_dim, hidden, base), nn.ReLU()]
        for _ in range(n):
            layers += [nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(hidden, self.out_channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        """``(B, K) -> (B, K', S, S)``."""
        h = check_h(h, self.cond_dim, h.shape[0] if isinstance(h, Tensor) else -1, type(self).__name__)
        assert h is not None
        return self.net(h[:, :, None, None])


class _Conditioning(nn.Module):
    """Per-layer conditioning terms added before a nonlinearity: ``V^T h`` (linear) and ``V * s`` (1x1 conv).

    Gated PixelCNN paper, Sec. 2.3, eqs. 4-5. Neither term depends on ``x``, so causality is untouched.
    ``forward(h (B, K) | None, s (B, K', H, W) | None) -> (B, width, 1 or H, 1 or W)`` or ``None``.
    """

    def __init__(self, cond_dim: int, map_channels: int, width: int) -> None:
        super().__init__()
        self.vector = nn.Linear(cond_dim, width, bias=False) if cond_dim else None
        self.map = nn.Conv2d(map_channels, width, 1, bias=False) if map_channels else None

    def forward(self, h: Tensor | None, s: Tensor | None) -> Tensor | None:
        """``V^T h`` ``(B, width, 1, 1)`` plus ``V * s`` ``(B, width, H, W)`` (eqs. 4-5), or ``None`` if neither."""
        out = None
        if self.vector is not None and h is not None:
            out = self.vector(h)[:, :, None, None]
        if self.map is not None and s is not None:
            term = self.map(s)
            out = term if out is None else out + term
        return out


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
        self.cond_v = _Conditioning(cond_dim, cond_map_channels, 2 * out_channels)
        self.cond_h = _Conditioning(cond_dim, cond_map_channels, 2 * out_channels)

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
            _Conditioning(self.cond_dim, self.cond_map_channels, self.hidden) for _ in range(self.layers + 1)
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
