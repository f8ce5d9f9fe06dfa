"""Discrete log-likelihood of images under an autoregressive model with a softmax per sub-pixel.

PixelRNN/PixelCNN models (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 2.2 and
Sec. 5.1 "Evaluation") output a distribution over ``L`` intensity levels for every sub-pixel; the
negative log-likelihood of an image is the sum over its ``D = C * H * W`` sub-pixels of
``-log p(x_d | x_<d)``. Results are reported in **nats per image** (MNIST) or **bits per dimension**
(CIFAR-10, ImageNet)::

    bits/dim = NLL_nats / (D * ln 2)

For 8-bit data (``L = 256``) the discrete NLL equals the continuous NLL of uniformly dequantized data on
the ``[0, 256)`` scale, which is the number papers compare against; with other ``L`` (2 for binarized
MNIST, 17 for scikit-learn's digits) the numbers are only comparable between models at the same ``L``.
A model that predicts the uniform distribution scores exactly ``log2(L)`` bits/dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LN2 = math.log(2.0)


def _check(logits: Tensor, targets: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.dim() < 3:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits)
        raise ValueError(f"nll_nats: expected logits of shape (B, L, C, H, W) (levels on dim 1), got {shape}")
    expected = (logits.shape[0], *logits.shape[2:])
    if not isinstance(targets, Tensor) or tuple(targets.shape) != expected:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets)
        raise ValueError(
            f"nll_nats: expected targets of shape {expected} (logits' shape without the levels dim), got {shape}"
        )
    if torch.is_floating_point(targets) or targets.dtype == torch.bool:
        raise ValueError(
            f"nll_nats: targets must be integer level indices (int64), got dtype {targets.dtype}"
        )
    levels = logits.shape[1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= levels):
        raise ValueError(
            f"nll_nats: targets must lie in [0, {levels}) (levels = logits.shape[1]), "
            f"got values in [{int(targets.min())}, {int(targets.max())}]"
        )


def nll_nats(logits: Tensor, targets: Tensor) -> Tensor:
    """Negative log-likelihood of each image in **nats**, summed over its sub-pixels.

    Args:
        logits: ``(B, L, C, H, W)`` (any ``(B, L, *dims)``), unnormalized log-probabilities over ``L``
            levels on dim 1.
        targets: int64 ``(B, C, H, W)`` (``(B, *dims)``), level indices in ``[0, L)``.

    Returns:
        ``(B,)`` float (at least float32): ``-sum_d log softmax(logits)[b, targets[b, d], d]`` in nats.

    Raises:
        ValueError: shapes that do not match, non-integer targets, or targets outside ``[0, L)``
            (the message names ``logits`` or ``targets``).
    """
    _check(logits, targets)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    per_subpixel = F.cross_entropy(logits, targets.long(), reduction="none")
    return per_subpixel.reshape(per_subpixel.shape[0], -1).sum(dim=1)


def nats_to_bits_per_dim(nats_per_image: Tensor | float, dims: int) -> Tensor | float:
    """Convert an NLL in nats per image to **bits per dimension**: ``nats / (dims * ln 2)``.

    Args:
        nats_per_image: a tensor (any shape) or a float, in nats per image.
        dims: sub-pixels per image ``D = C * H * W`` (784 for MNIST, 3072 for CIFAR-10).

    Returns:
        Same type and shape as ``nats_per_image``, in bits/dim.

    Raises:
        ValueError: ``dims < 1``.
    """
    if isinstance(dims, bool) or int(dims) != dims or dims < 1:
        raise ValueError(f"nats_to_bits_per_dim: dims must be a positive integer (C * H * W), got {dims!r}")
    return nats_per_image / (int(dims) * LN2)


def bits_per_dim(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Bits per dimension of images under per-sub-pixel softmax logits.

    Args:
        logits: ``(B, L, C, H, W)``; targets: int64 ``(B, C, H, W)`` in ``[0, L)`` (see :func:`nll_nats`).
        reduction: ``"mean"`` (scalar, the batch mean) or ``"none"`` (``(B,)``, per image).

    Returns:
        bits/dim with ``D = C * H * W`` = ``targets[0].numel()``.

    Raises:
        ValueError: as :func:`nll_nats`, or an unknown ``reduction``.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"bits_per_dim: reduction must be 'mean' or 'none', got {reduction!r}")
    nats = nll_nats(logits, targets)
    bpd = nats_to_bits_per_dim(nats, max(1, targets[0].numel()))
    assert isinstance(bpd, Tensor)
    return bpd.mean() if reduction == "mean" else bpd
