"""Conditioning of the PixelCNNs on a vector ``h`` and on a spatial map ``s = m(h)``.

van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders" (NeurIPS), Sec. 2.3: every
layer adds ``V^T h`` before its nonlinearity, ``tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T h)``
(eq. 4), and/or ``V * s`` with ``V_f * s`` and ``V_g * s`` 1x1 convolutions of a location-dependent map
``s = m(h)`` (eq. 5), where ``m`` is a deconvolutional network (:class:`ConditionMap`). ``h`` is a one-hot
class (the module's ``model.conditional``) or the auto-encoder's code (Sec. 2.4). The per-layer terms are
:class:`LayerConditioning`; :func:`check_h` and :func:`check_s` validate the inputs (``h`` with the shared
:func:`~lightning_modules.networks.conditioning.check_cond` of the GAN-family networks).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.networks.conditioning import as_int, check_cond


def check_h(h: Tensor | None, cond_dim: int, batch_size: int, owner: str) -> Tensor | None:
    """Validate the conditioning vector ``h`` of eq. 4: ``(B, cond_dim)``, or ``None`` when ``cond_dim == 0``.

    :func:`~lightning_modules.networks.conditioning.check_cond` with the PixelCNNs' names (``h``,
    ``cond_dim``). Returns ``h`` as a floating tensor (an integer one-hot tensor becomes ``float32``).

    Raises:
        TypeError: ``h`` is neither ``None`` nor a tensor (``cond_dim > 0``).
        ValueError: naming ``h`` and ``cond_dim``: a shape other than ``(batch_size, cond_dim)`` (1-D class
            indices: with a ``F.one_hot`` hint), ``h`` missing for ``cond_dim > 0``, or given for
            ``cond_dim == 0``.
    """
    return check_cond(h, cond_dim, batch_size, owner, name="h", key="cond_dim",
                      meaning="a one-hot class or an embedding vector")


def check_s(s: Tensor | None, map_channels: int, x: Tensor, owner: str) -> Tensor | None:
    """Validate the location-dependent conditioning map ``s``: ``(B, map_channels, H, W)`` matching ``x``.

    Returns ``None`` when ``map_channels == 0``, else ``s`` as a floating tensor.

    Raises:
        ValueError: naming ``s`` and ``cond_map_channels``: a shape other than ``(B, map_channels, H, W)``
            of ``x``, ``s`` missing for ``map_channels > 0``, or given for ``map_channels == 0``.
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
    """Deconvolutional network ``s = m(h)``: a vector to a spatial conditioning map (Gated PixelCNN, eq. 5).

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


class LayerConditioning(nn.Module):
    """Per-layer conditioning terms added before a nonlinearity: ``V^T h`` (linear) and ``V * s`` (1x1 conv).

    Gated PixelCNN paper, Sec. 2.3, eqs. 4-5. Neither term depends on ``x``, so causality is untouched.
    Both maps have no bias (the layer they are added to has its own). A width of 0 (``cond_dim`` or
    ``map_channels``) leaves that term out.

    Args:
        cond_dim: ``K``, width of ``h`` (0: no ``V^T h``).
        map_channels: ``K'``, channels of ``s`` (0: no ``V * s``).
        width: channels of the layer's pre-activation the terms are added to.

    Shapes:
        ``forward(h (B, K) | None, s (B, K', H, W) | None) -> (B, width, 1, 1)`` (``h`` only),
        ``(B, width, H, W)`` (with ``s``), or ``None`` (neither term, or neither input given). The inputs
        are not checked here: the networks check them once per forward (:func:`check_h`, :func:`check_s`).
    """

    def __init__(self, cond_dim: int, map_channels: int, width: int) -> None:
        super().__init__()
        self.vector = nn.Linear(cond_dim, width, bias=False) if cond_dim else None
        self.map = nn.Conv2d(map_channels, width, 1, bias=False) if map_channels else None

    def forward(self, h: Tensor | None, s: Tensor | None) -> Tensor | None:
        """``V^T h`` ``(B, width, 1, 1)`` plus ``V * s`` ``(B, width, H, W)`` (eqs. 4-5), or ``None``."""
        out = None
        if self.vector is not None and h is not None:
            out = self.vector(h)[:, :, None, None]
        if self.map is not None and s is not None:
            term = self.map(s)
            out = term if out is None else out + term
        return out
