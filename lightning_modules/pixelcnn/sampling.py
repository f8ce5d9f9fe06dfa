"""Sequential sampling from the PixelCNNs: a full sampler, and cached samplers that reuse activations.

A PixelCNN models an image as a product of conditionals over its sub-pixels in raster order, and within a
pixel in the order R -> G -> B (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 2.1;
"Conditional Image Generation with PixelCNN Decoders", Sec. 2): training evaluates all conditionals in one
pass, but **sampling is sequential**: sub-pixel ``(c, i, j)`` is drawn from the softmax of the logits the
network computes from the sub-pixels already drawn, then fed back in.

Three samplers, all drawing the same sample from the same noise (each conditional is sampled by
:func:`inverse_cdf` of a uniform variate ``z[:, c, i, j]``, so two samplers that compute the same
conditionals return the same image):

* :func:`sample_full`: runs the **whole network on the whole image** once per sub-pixel (``C H W``
  forward passes). Works for any network with ``.channels``, ``.levels`` and ``forward(x, h, s) ->
  (B, L, C, H, W)`` logits; the reference the others are tested against.
* :class:`CachedGatedSampler` for :class:`GatedPixelCNN`: every activation is computed once per image
  (plus ``C - 1`` recomputations of the current pixel's horizontal stack for colour images) and reused.
  The idea of caching the hidden states of a convolutional autoregressive model so that each new output
  costs only the work that depends on it is Ramachandran et al. 2017, "Fast Generation for Convolutional
  Autoregressive Models" (ICLR workshop); the code here is genforge's own, written for the two-stack
  architecture. See the class docstring for the schedule.
* :class:`WindowedPixelCNNSampler` for the original :class:`PixelCNN` (one masked stack): a simpler
  cache-free speed-up, the network's layers run on the window of rows ``i - reach .. i`` and columns
  ``j - reach .. j + reach`` around the current pixel only (all the logits at ``(i, j)`` can see).

:func:`sample` dispatches (cached where available, else full); :func:`sample_images` draws the noise and
returns images in ``[-1, 1]``.

Conventions (those of :mod:`lightning_modules.pixelcnn.networks`): level ``k`` of ``L`` is fed to the
network as ``2 k / (L - 1) - 1`` (:func:`from_levels`); samples are int64 level indices ``(B, C, H, W)``
in ``[0, L)``; sub-pixels not drawn yet are fed as level 0 (``-1.0``) by the full sampler (any value gives
the same logits, by causality).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.pixelcnn.conditioning import check_h, check_s
from lightning_modules.pixelcnn.networks import GatedPixelCNN, PixelCNN, check_pixel_input, from_levels, gate

__all__ = [
    "CachedGatedSampler",
    "WindowedPixelCNNSampler",
    "inverse_cdf",
    "sample",
    "sample_full",
    "sample_images",
]


# ------------------------------------------------------------------------------------------ drawing


def inverse_cdf(logits: Tensor, u: Tensor) -> Tensor:
    """Draw a level from each row of ``logits`` by inverting its CDF at the uniform variate ``u``.

    Returns the smallest level ``k`` with ``CDF(k) = sum_{k' <= k} softmax(logits)_{k'} > u``, so ``u``
    uniform in ``[0, 1)`` gives level ``k`` with probability ``softmax(logits)_k``. Deterministic given
    ``u``: two samplers computing the same conditionals draw the same level. The softmax and CDF are
    computed in float64 and normalised so that the last CDF value is exactly 1; levels of probability 0
    (``-inf`` logits) are never drawn.

    Args:
        logits: float ``(B, L)``, unnormalised log-probabilities (``-inf`` allowed, NaN not).
        u: float ``(B,)`` in ``[0, 1)``.

    Returns:
        int64 ``(B,)`` in ``[0, L)``, on ``logits``' device.

    Raises:
        ValueError: ``logits`` not 2-D, ``u`` not ``(B,)``, ``u`` outside ``[0, 1)``, NaN logits.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits)
        raise ValueError(f"inverse_cdf: expected logits of shape (B, L), got {shape}")
    if not isinstance(u, Tensor) or tuple(u.shape) != (logits.shape[0],):
        shape = tuple(u.shape) if isinstance(u, Tensor) else type(u)
        raise ValueError(f"inverse_cdf: expected u of shape ({logits.shape[0]},) (one variate per row), got {shape}")
    u = u.to(device=logits.device, dtype=torch.float64)
    if torch.any((u < 0) | (u >= 1)):
        raise ValueError("inverse_cdf: u must lie in [0, 1) (uniform noise, e.g. torch.rand)")
    if torch.any(torch.isnan(logits)):
        raise ValueError("inverse_cdf: logits contain NaN")
    cdf = torch.softmax(logits.to(torch.float64), dim=1).cumsum(dim=1)
    cdf = cdf / cdf[:, -1:]
    found = torch.searchsorted(cdf.contiguous(), u.reshape(-1, 1).contiguous(), right=True)[:, 0]
    return found.clamp_(max=logits.shape[1] - 1)


# ------------------------------------------------------------------------------------------ helpers


def _param_dtype(network: nn.Module) -> torch.dtype:
    for p in network.parameters():
        if torch.is_floating_point(p):
            return p.dtype
    return torch.get_default_dtype()


def _param_device(network: nn.Module, fallback: torch.device) -> torch.device:
    for p in network.parameters():
        return p.device
    return fallback


def _check_sampling_inputs(
    network: nn.Module, z: Tensor, h: Tensor | None, s: Tensor | None, owner: str
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Validate ``z`` (``(B, C, H, W)`` float in [0, 1)), ``h`` and ``s``; return them on the network's
    device and dtype (``z`` keeps its floating dtype)."""
    for attr in ("channels", "levels"):
        if not hasattr(network, attr):
            raise TypeError(f"{owner}: the network needs a .{attr} attribute (got {type(network).__name__})")
    if not isinstance(z, Tensor) or not torch.is_floating_point(z):
        raise ValueError(
            f"{owner}: z must be a float tensor of uniform noise (B, {network.channels}, H, W) in [0, 1), "
            f"got {type(z).__name__ if not isinstance(z, Tensor) else z.dtype}"
        )
    check_pixel_input(z, network.channels, getattr(network, "image_size", None), f"{owner} (z)")
    if torch.any((z < 0) | (z >= 1)):
        raise ValueError(f"{owner}: z must lie in [0, 1) (uniform noise, e.g. torch.rand)")
    dtype = _param_dtype(network)
    device = _param_device(network, z.device)
    if hasattr(network, "cond_dim"):
        h = check_h(h, network.cond_dim, z.shape[0], owner)
    if hasattr(network, "cond_map_channels"):
        s = check_s(s, network.cond_map_channels, z, owner)
    h = None if h is None else h.to(device=device, dtype=dtype)
    s = None if s is None else s.to(device=device, dtype=dtype)
    return z.to(device), h, s


def _check_levels_input(network: nn.Module, levels: Tensor, owner: str) -> Tensor:
    if not isinstance(levels, Tensor) or levels.dim() != 4 or levels.shape[1] != network.channels:
        shape = tuple(levels.shape) if isinstance(levels, Tensor) else type(levels)
        raise ValueError(f"{owner}: expected levels of shape (B, {network.channels}, H, W), got {shape}")
    if torch.is_floating_point(levels) or torch.is_complex(levels):
        raise ValueError(f"{owner}: levels must be integer level indices (see to_levels), got {levels.dtype}")
    if torch.any((levels < 0) | (levels >= network.levels)):
        raise ValueError(f"{owner}: levels must lie in [0, {network.levels})")
    return levels.long()


class _Draws:
    """The levels drawn so far, int64 ``(B, C, H, W)`` in ``[0, L)``, and optionally the ``(B, L, C, H, W)``
    conditionals they were drawn from: the bookkeeping every sampler shares.

    :meth:`take` draws sub-pixel ``(c, i, j)`` by :func:`inverse_cdf` of ``z[:, c, i, j]`` or, given
    ``targets`` (teacher forcing, :meth:`_SequentialSampler.conditionals`), copies ``targets[:, c, i, j]``.
    """

    def __init__(self, shape: torch.Size, levels: int, dtype: torch.dtype, device: torch.device,
                 z: Tensor | None = None, targets: Tensor | None = None, keep_logits: bool = False) -> None:
        batch, channels, height, width = shape
        self.idx = torch.zeros(batch, channels, height, width, dtype=torch.long, device=device)
        self.logits = (torch.zeros(batch, levels, channels, height, width, dtype=dtype, device=device)
                       if keep_logits else None)
        self.z, self.targets = z, targets

    def take(self, logits: Tensor, c: int, i: int, j: int) -> Tensor:
        """Record sub-pixel ``(c, i, j)`` from its conditional ``logits`` ``(B, L)``; its levels ``(B,)``."""
        level = inverse_cdf(logits, self.z[:, c, i, j]) if self.targets is None else self.targets[:, c, i, j]
        self.idx[:, c, i, j] = level
        if self.logits is not None:
            self.logits[:, :, c, i, j] = logits
        return level


# ----------------------------------------------------------------------------------------- full sampler


@torch.no_grad()
def sample_full(
    network: nn.Module,
    z: Tensor,
    h: Tensor | None = None,
    s: Tensor | None = None,
    return_logits: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Sample by running the whole network on the whole image once per sub-pixel (the reference sampler).

    Gated PixelCNN paper, Sec. 2: sub-pixels are drawn in raster order over ``(i, j)`` and, within a
    pixel, over channels ``c = 0 .. C-1`` (R -> G -> B); sub-pixel ``(c, i, j)`` is drawn by
    :func:`inverse_cdf` from ``network(x, h, s)[:, :, c, i, j]`` with the uniform variate
    ``z[:, c, i, j]``, where ``x = from_levels(current levels)`` holds the sub-pixels drawn so far and level
    0 (``-1.0``) elsewhere. ``C H W`` forward passes: slow, but correct for any causal network.

    Args:
        network: any module with ``.channels`` (``C``), ``.levels`` (``L``) and ``forward(x, h, s) ->
            (B, L, C, H, W)`` logits (:class:`GatedPixelCNN`, :class:`PixelCNN`).
        z: float ``(B, C, H, W)`` uniform noise in ``[0, 1)`` (``torch.rand``); fixes the sample.
        h: ``(B, K)`` conditioning vector (eq. 4), if the network has ``cond_dim > 0``.
        s: ``(B, K', H, W)`` conditioning map (eq. 5), if the network has ``cond_map_channels > 0``.
        return_logits: also return the conditionals used.

    Returns:
        int64 levels ``(B, C, H, W)`` in ``[0, L)``; with ``return_logits``, also the float
        ``(B, L, C, H, W)`` logits whose slice ``[:, :, c, i, j]`` is the conditional sub-pixel ``(c, i, j)``
        was drawn from (by causality, equal to ``network(from_levels(sample), h, s)``).

    Raises:
        ValueError: ``z`` not ``(B, C, H, W)`` float in [0, 1); ``h``/``s`` missing, unexpected or
            misshapen (as the network's ``forward``).
        TypeError: a network without ``.channels``/``.levels``.
    """
    z, h, s = _check_sampling_inputs(network, z, h, s, "sample_full")
    _, channels, height, width = z.shape
    dtype = _param_dtype(network)
    draws = _Draws(z.shape, network.levels, dtype, z.device, z=z, keep_logits=return_logits)
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                logits = network(from_levels(draws.idx, network.levels, dtype), h, s)[:, :, c, i, j]
                draws.take(logits, c, i, j)
    return (draws.idx, draws.logits) if return_logits else draws.idx


# --------------------------------------------------------------------------------- cached gated sampler


class _GatedLayer(NamedTuple):
    """One :class:`GatedBlock`'s weights, masks applied, arranged for row / position updates."""

    wv: Tensor  # vertical conv weight (2p, in, r + 1, n)
    bv: Tensor | None  # (2p,)
    wh: Tensor  # horizontal weight * mask, (2p, (r + 1) * in), taps j - r .. j, channels fastest
    bh: Tensor | None  # (2p,)
    wl: Tensor  # link 1x1 (2p, 2p)
    bl: Tensor | None  # (2p,)
    wo: Tensor  # out 1x1 masked (p, p)
    bo: Tensor | None  # (p,)
    cond_v: Tensor | None  # V^T h + V * s of the vertical stack, (B, H or 1, W or 1, 2p)
    cond_h: Tensor | None  # same for the horizontal stack
    residual: bool


def _as(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)


def _row(t: Tensor | None, i: int) -> Tensor | None:
    """Row ``i`` of a channels-last conditioning term ``(B, H or 1, W or 1, 2p)`` -> ``(B, W or 1, 2p)``."""
    if t is None:
        return None
    return t[:, i if t.shape[1] > 1 else 0]


class _SequentialSampler:
    """The public interface of the samplers that reuse work (:class:`CachedGatedSampler`,
    :class:`WindowedPixelCNNSampler`): checks, then the subclass's ``_run`` schedule.

    Raises:
        TypeError: ``network`` is not a ``network_class``.
    """

    #: the network class a subclass samples from, and what to use instead (for the TypeError)
    network_class: type = nn.Module
    instead: str = ""

    def __init__(self, network: nn.Module) -> None:
        if not isinstance(network, self.network_class):
            raise TypeError(f"{type(self).__name__} needs a {self.network_class.__name__}, got "
                            f"{type(network).__name__}; {self.instead}")
        self.network = network

    # ------------------------------------------------------------------------------------- public API

    @torch.no_grad()
    def sample(
        self, z: Tensor, h: Tensor | None = None, s: Tensor | None = None, return_logits: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Draw levels ``(B, C, H, W)`` from the uniform noise ``z`` (same contract as :func:`sample_full`).

        Args:
            z: float ``(B, C, H, W)`` in ``[0, 1)``.
            h: ``(B, K)`` if the network has ``cond_dim > 0``.
            s: ``(B, K', H, W)`` if it has ``cond_map_channels > 0``.
            return_logits: also return the ``(B, L, C, H, W)`` conditionals used.

        Returns:
            int64 ``(B, C, H, W)`` in ``[0, L)`` (and the logits).

        Raises:
            ValueError: as :func:`sample_full`.
        """
        z, h, s = _check_sampling_inputs(self.network, z, h, s, type(self).__name__)
        idx, logits = self._run(z.shape, z.device, h, s, z=z, keep_logits=return_logits)
        return (idx, logits) if return_logits else idx

    @torch.no_grad()
    def conditionals(self, levels: Tensor, h: Tensor | None = None, s: Tensor | None = None) -> Tensor:
        """The logits ``(B, L, C, H, W)`` the cached schedule computes when the given image is fed in
        (teacher forcing: sub-pixel ``(c, i, j)`` is set to ``levels[:, c, i, j]`` instead of drawn); equal
        to ``network(from_levels(levels), h, s)`` up to float rounding.

        Args:
            levels: int ``(B, C, H, W)`` in ``[0, L)``.

        Raises:
            ValueError: misshapen or out-of-range ``levels``; ``h``/``s`` as in :meth:`sample`.
        """
        net = self.network
        owner = type(self).__name__
        levels = _check_levels_input(net, levels, owner)
        dummy = torch.zeros(levels.shape, dtype=torch.float32, device=levels.device)
        _, h, s = _check_sampling_inputs(net, dummy, h, s, owner)
        _, logits = self._run(levels.shape, levels.device, h, s, targets=levels, keep_logits=True)
        return logits

    def _run(self, shape, device, h, s, z=None, targets=None, keep_logits=False):
        raise NotImplementedError


class CachedGatedSampler(_SequentialSampler):
    """Sampling from a :class:`GatedPixelCNN` with cached activations (same samples as :func:`sample_full`).

    Ramachandran et al. 2017 ("Fast Generation for Convolutional Autoregressive Models") observed that a
    convolutional autoregressive model recomputes almost all of its activations at every generation step;
    caching them, each step only costs the work that depends on the new output. For the two-stack Gated
    PixelCNN (van den Oord et al. 2016, Sec. 2.1-2.3, Fig. 2), with ``r = kernel_size // 2``:

    * **Vertical stack, one row at a time.** Row ``i`` of layer ``l``'s vertical output needs input rows
      ``i - r .. i`` of the layer below (``VerticalStackConv``): when image row ``i`` is complete, the rows
      ``i`` of all layers are computed bottom-up with ``F.conv2d`` on an ``(r + 1)``-row slice of a cached,
      zero-padded buffer per layer, once per image row. The pre-activation row also gives the horizontal
      stack's link term ``link(shift_down(v_pre))`` for row ``i + 1`` (row 0 gets ``link(0)``, i.e. the
      link bias, as ``shift_down`` zero-fills).
    * **Horizontal stack, one position at a time.** Position ``(i, j)`` of layer ``l`` needs the layer
      below at ``(i, j - r .. j)`` (``HorizontalStackConv``, masked weights ``weight * mask``), the link term
      at ``(i, j)`` and the conditioning terms at ``(i, j)``; it is a matrix product on the cached row
      buffer, then the gate, the masked 1x1 ``out`` convolution and the residual. The layers are run
      bottom-up at ``(i, j)``, then the output head (two masked 1x1 convolutions) gives the ``L`` logits of
      every channel of the pixel. For ``C > 1`` this is repeated ``C`` times per pixel: after sub-pixel
      ``c`` is drawn the centre taps of the later channel groups see it (the masks keep the values of
      groups ``<= c`` unchanged, and no group depends on the last channel, so the cached values are final
      after the ``C``-th pass).
    * **Conditioning** (eq. 4 ``V^T h``, eq. 5 ``V * s``): each block's own ``cond_v``/``cond_h`` modules
      are evaluated once per call on ``h``/``s`` (a per-layer bias, or ``(B, 2p, H, W)`` 1x1-conv maps) and
      the row ``i`` / position ``(i, j)`` slice is added, to both stacks, as in :class:`GatedBlock`.

    Work per image: one vertical row convolution per layer and row, and ``C`` position updates per layer
    and pixel, instead of ``C H W`` full forward passes. The weights are read from the network's own
    modules at every call (so the sampler follows training); the arithmetic is the network's, regrouped,
    so the conditionals equal ``network(x)``'s to float rounding (``~1e-6`` relative in float32, ``1e-12``
    in float64).

    Args:
        network: the :class:`GatedPixelCNN` to sample from (not copied; any device/dtype).

    Raises:
        TypeError: ``network`` is not a :class:`GatedPixelCNN`.
    """

    network_class = GatedPixelCNN
    instead = "use WindowedPixelCNNSampler for PixelCNN or sample_full for any other network"

    # ---------------------------------------------------------------------------------------- internals

    def _layers(self, dtype: torch.dtype, h: Tensor | None, s: Tensor | None) -> list[_GatedLayer]:
        layers = []
        for block in self.network.blocks:
            hor = block.horizontal
            wh = (hor.weight * hor.mask).to(dtype)  # (2p, in, 1, r + 1), as HorizontalStackConv.forward
            wh = wh[:, :, 0, :].transpose(1, 2).reshape(wh.shape[0], -1)  # (2p, (r + 1) * in)
            out = block.out
            cond_v, cond_h = block.cond_v(h, s), block.cond_h(h, s)
            layers.append(
                _GatedLayer(
                    wv=block.vertical.weight.to(dtype),
                    bv=_as(block.vertical.bias, dtype),
                    wh=wh,
                    bh=_as(hor.bias, dtype),
                    wl=block.link.weight[:, :, 0, 0].to(dtype),
                    bl=_as(block.link.bias, dtype),
                    wo=(out.weight * out.mask)[:, :, 0, 0].to(dtype),
                    bo=_as(out.bias, dtype),
                    cond_v=None if cond_v is None else cond_v.permute(0, 2, 3, 1),
                    cond_h=None if cond_h is None else cond_h.permute(0, 2, 3, 1),
                    residual=block.residual,
                )
            )
        return layers

    def _head(self, dtype: torch.dtype) -> list[tuple[Tensor, Tensor | None]]:
        convs = [m for m in self.network.head.net if isinstance(m, nn.Conv2d)]
        return [((m.weight * m.mask)[:, :, 0, 0].to(dtype), _as(m.bias, dtype)) for m in convs]

    def _run(
        self,
        shape: torch.Size,
        device: torch.device,
        h: Tensor | None,
        s: Tensor | None,
        z: Tensor | None = None,
        targets: Tensor | None = None,
        keep_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        net = self.network
        batch, channels, height, width = shape
        levels = net.levels
        r = net.kernel_size // 2
        dtype = _param_dtype(net)
        layers = self._layers(dtype, h, s)
        head = self._head(dtype)
        n_layers = len(layers)
        widths = [channels] + [net.hidden] * n_layers  # input maps of layer l (l = n_layers: the head's)

        draws = _Draws(shape, levels, dtype, device, z=z, targets=targets, keep_logits=keep_logits)
        # vertical inputs of every layer, zero-padded like VerticalStackConv: r rows on top, r columns each side
        vbuf = [torch.zeros(batch, widths[l], height + r, width + 2 * r, dtype=dtype, device=device)
                for l in range(n_layers)]
        # link(shift_down(v_pre)) for the current row, channels last (B, W, 2p); row 0: link(0) = link bias
        link_rows = [
            (torch.zeros(batch, width, layer.wl.shape[0], dtype=dtype, device=device)
             + (0 if layer.bl is None else layer.bl))
            for layer in layers
        ]
        for i in range(height):
            # per-row constant part of each layer's horizontal pre-activation: bias + link + V^T h + V * s
            row_bias = []
            for layer, link in zip(layers, link_rows):
                term = link if layer.bh is None else link + layer.bh
                cond = _row(layer.cond_h, i)
                row_bias.append(term if cond is None else term + cond)
            # horizontal inputs of every layer for row i, channels last, r zero columns on the left
            hrow = [torch.zeros(batch, width + r, widths[l], dtype=dtype, device=device)
                    for l in range(n_layers + 1)]
            for j in range(width):
                for c in range(channels):
                    for l, layer in enumerate(layers):
                        window = hrow[l][:, j : j + r + 1].reshape(batch, -1)  # columns j - r .. j
                        pre = F.linear(window, layer.wh) + row_bias[l][:, j]
                        out = F.linear(gate(pre, dim=-1), layer.wo, layer.bo)
                        if layer.residual:
                            out = out + hrow[l][:, j + r]
                        hrow[l + 1][:, j + r] = out
                    y = hrow[n_layers][:, j + r]
                    for w, b in head:
                        y = F.linear(torch.relu(y), w, b)
                    level = draws.take(y.view(batch, channels, levels)[:, c], c, i, j)
                    hrow[0][:, j + r, c] = from_levels(level, levels, dtype)
            if i + 1 == height:
                break
            # row i is complete: feed it to the vertical stack and compute row i of every layer bottom-up
            vbuf[0][:, :, i + r, r : r + width] = hrow[0][:, r:].transpose(1, 2)
            for l, layer in enumerate(layers):
                v_pre = F.conv2d(vbuf[l][:, :, i : i + r + 1], layer.wv, layer.bv)[:, :, 0]  # (B, 2p, W)
                v_pre = v_pre.transpose(1, 2)  # (B, W, 2p)
                link_rows[l] = F.linear(v_pre, layer.wl, layer.bl)  # shift_down: row i feeds row i + 1
                if l + 1 < n_layers:
                    cond = _row(layer.cond_v, i)
                    v_out = gate(v_pre if cond is None else v_pre + cond, dim=-1)
                    vbuf[l + 1][:, :, i + r, r : r + width] = v_out.transpose(1, 2)
        return draws.idx, draws.logits


# ----------------------------------------------------------------------------- windowed PixelCNN sampler


class WindowedPixelCNNSampler(_SequentialSampler):
    """Sampling from the original :class:`PixelCNN` on a window around the current pixel.

    The baseline's single masked stack has no separate row/position structure to cache, so this sampler
    uses a simpler saving: the logits at ``(i, j)`` only see input pixels in rows ``i - R .. i`` and columns
    ``j - R .. j + R`` with ``R = network.reach`` (``first_kernel_size // 2 + layers * (kernel_size // 2)``;
    every masked ``k x k`` convolution moves at most ``k // 2`` rows up and ``k // 2`` columns sideways), so
    the network's layers are run on that window of the current image (clipped to the image) instead of on
    the whole image. The window's own zero padding only corrupts features outside the receptive field of
    ``(i, j)``, so the result is exact, and the conditionals equal :func:`sample_full`'s to float rounding.
    One windowed pass per sub-pixel: a gain where ``R`` is small next to the image (e.g. ``R = 5`` on
    28x28 is ``6 x 11`` pixels instead of ``28 x 28``); with ``R >= H, W`` it is the full sampler.

    The window pass is :meth:`PixelCNN.forward_window` (``forward`` without its ``image_size`` check).

    Args:
        network: the :class:`PixelCNN`.

    Raises:
        TypeError: ``network`` is not a :class:`PixelCNN`.
    """

    network_class = PixelCNN
    instead = "use CachedGatedSampler for GatedPixelCNN or sample_full for any other network"

    def _window_logits(self, x: Tensor, h: Tensor | None, s: Tensor | None) -> Tensor:
        """:meth:`PixelCNN.forward_window`: ``(B, C, h, w) -> (B, L, C, h, w)`` on a crop."""
        return self.network.forward_window(x, h, s)

    def _run(
        self,
        shape: torch.Size,
        device: torch.device,
        h: Tensor | None,
        s: Tensor | None,
        z: Tensor | None = None,
        targets: Tensor | None = None,
        keep_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        net = self.network
        _, channels, height, width = shape
        levels, reach = net.levels, net.reach
        dtype = _param_dtype(net)
        draws = _Draws(shape, levels, dtype, device, z=z, targets=targets, keep_logits=keep_logits)
        x = from_levels(draws.idx, levels, dtype)
        for i in range(height):
            top = max(0, i - reach)
            for j in range(width):
                left, right = max(0, j - reach), min(width, j + reach + 1)
                s_win = None if s is None else s[:, :, top : i + 1, left:right]
                for c in range(channels):
                    window = x[:, :, top : i + 1, left:right]
                    logits = self._window_logits(window, h, s_win)[:, :, c, i - top, j - left]
                    x[:, c, i, j] = from_levels(draws.take(logits, c, i, j), levels, dtype)
        return draws.idx, draws.logits


# ------------------------------------------------------------------------------------------ dispatch


def sample(
    network: nn.Module, z: Tensor, h: Tensor | None = None, s: Tensor | None = None, cached: bool = True
) -> Tensor:
    """Sample int64 levels ``(B, C, H, W)`` from ``network`` with the uniform noise ``z``.

    With ``cached=True``: :class:`CachedGatedSampler` for a :class:`GatedPixelCNN`,
    :class:`WindowedPixelCNNSampler` for a :class:`PixelCNN`, :func:`sample_full` for any other network.
    With ``cached=False``: always :func:`sample_full`. The same ``z`` gives the same sample either way (up
    to float rounding of the logits at a CDF boundary, which has probability ~0).

    Args:
        network: a PixelCNN-like network (``.channels``, ``.levels``, ``forward(x, h, s)``).
        z: float ``(B, C, H, W)`` in ``[0, 1)``.
        h, s: conditioning, as the network needs (eqs. 4-5).
        cached: use the cached/windowed sampler where there is one.

    Returns:
        int64 ``(B, C, H, W)`` in ``[0, L)``.

    Raises:
        ValueError: as :func:`sample_full`.
    """
    if cached and isinstance(network, GatedPixelCNN):
        return CachedGatedSampler(network).sample(z, h, s)
    if cached and isinstance(network, PixelCNN):
        return WindowedPixelCNNSampler(network).sample(z, h, s)
    return sample_full(network, z, h, s)


def sample_images(
    network: nn.Module,
    n: int,
    generator: torch.Generator | None = None,
    h: Tensor | None = None,
    s: Tensor | None = None,
    cached: bool = True,
    image_size: int | tuple[int, int] | None = None,
) -> Tensor:
    """``n`` images sampled from ``network``, float32 ``(n, C, H, W)`` in ``[-1, 1]`` (on the level grid).

    Draws ``z = torch.rand(n, C, H, W, generator=generator)`` (on the generator's device, CPU by default;
    moved to the network's) and returns ``from_levels(sample(network, z, h, s, cached), L)``; a seeded
    generator makes the images reproducible.

    Args:
        network: a PixelCNN-like network.
        n: number of images (>= 1).
        generator: random generator for the noise.
        h: ``(n, K)`` / s: ``(n, K', H, W)`` conditioning, as the network needs.
        cached: see :func:`sample`.
        image_size: ``S`` or ``(H, W)``; defaults to ``network.image_size``.

    Raises:
        ValueError: ``n < 1``; no ``image_size`` given and none on the network; as :func:`sample`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sample_images: n must be a positive int, got {n!r}")
    size = getattr(network, "image_size", None) if image_size is None else image_size
    if size is None:
        raise ValueError(
            "sample_images: pass image_size (S or (H, W)); the network has no image_size (fully convolutional)"
        )
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    noise_device = generator.device if generator is not None else torch.device("cpu")
    z = torch.rand(n, network.channels, height, width, generator=generator, device=noise_device)
    z = z.to(_param_device(network, noise_device))
    return from_levels(sample(network, z, h, s, cached=cached), network.levels)
