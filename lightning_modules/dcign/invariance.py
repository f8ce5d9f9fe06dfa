"""DC-IGN's clamping and invariance targeting (Kulkarni et al. 2015, Sec. 3.1, Fig. 3), as an autograd
Function: the forward pass clamps the inactive latents, the backward pass replaces their gradient.

In a mini-batch where only one factor varies, the graphics code's *active* group (the latents meant to
encode that factor) passes through unchanged, and every other latent ``z_i`` is replaced by its batch mean
``mean_i`` — the decoder must explain the batch's variation with the active group alone. In the backward
pass the active group's gradient passes unchanged, and each clamped latent receives, instead of the
gradient from the reconstruction, ``lambda * (z_i - mean_i)`` (``lambda = 1/100``, relative to the
objective summed over the batch as in the reference code; DC-IGN's module, whose loss is the batch mean,
passes ``lambda / B``): a push of each sample's inactive latents towards their common value, i.e.
invariance to the varied factor. That is the clamped latent's whole gradient:
:meth:`lightning_modules.dcign.module.DCIGNModule.kl_divergence` lets their KL term pass none either (unless
``model.clamped_kl``).

The reference implementation (Whitney's ``dc-ign`` Torch code) instead clamps to the batch's first sample
and zeroes the inactive gradient: ``mode="first"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: ``mode`` values: the paper's batch mean + replaced gradient, or the reference code's first sample + zero.
CLAMP_MODES = ("mean", "first")


class ClampInactive(torch.autograd.Function):
    """``forward(z, active, lam, mode)``: see :func:`clamp_inactive`."""

    @staticmethod
    def forward(ctx, z: Tensor, active: Tensor, lam: float, mode: str) -> Tensor:  # type: ignore[override]
        reference = z.mean(0, keepdim=True) if mode == "mean" else z[:1]
        ctx.save_for_backward(z, reference, active)
        ctx.lam, ctx.mode = lam, mode
        return torch.where(active, z, reference.expand_as(z))

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        z, reference, active = ctx.saved_tensors
        if ctx.mode == "mean":
            replaced = ctx.lam * (z - reference)
        else:
            replaced = torch.zeros_like(z)
        return torch.where(active, grad, replaced), None, None, None


def clamp_inactive(z: Tensor, active: Tensor, lam: float = 0.01, mode: str = "mean") -> Tensor:
    """Clamp the latents outside the active group; replace their gradient (Kulkarni et al. 2015, Sec. 3.1).

    Args:
        z: the graphics code ``(B, D)`` of one mini-batch in which one factor varies.
        active: bool ``(D,)``, True for the latents of the group that encodes the varied factor.
        lam: ``lambda`` of the replaced gradient ``lambda * (z_i - mean_i)``, >= 0, relative to the
            objective being differentiated. The paper's 1/100 is relative to an objective summed over the
            batch (the reference code); for a per-image mean objective pass ``lambda / B``.
        mode: ``"mean"`` (paper: clamp to the batch mean, gradient ``lambda * (z_i - mean_i)``) or
            ``"first"`` (reference code: clamp to the batch's first sample, gradient 0).

    Returns:
        ``(B, D)``: ``z`` in the active columns, the clamped value in the others.

    Raises:
        ValueError: on a ``z`` that is not ``(B, D)``, an ``active`` mask of another length or dtype, a
            negative ``lam`` or an unknown ``mode`` (names ``model.clamp``).
    """
    if z.dim() != 2:
        raise ValueError(f"clamp_inactive expects a graphics code (B, D), got {tuple(z.shape)}")
    if active.dtype != torch.bool or active.shape != (z.shape[1],):
        raise ValueError(f"active must be a bool mask of shape ({z.shape[1]},), got {active.dtype} "
                         f"{tuple(active.shape)}")
    if mode not in CLAMP_MODES:
        raise ValueError(f"model.clamp must be one of {CLAMP_MODES}, got {mode!r}")
    if lam < 0:
        raise ValueError(f"model.invariance_lambda must be >= 0, got {lam}")
    return ClampInactive.apply(z, active.to(z.device), float(lam), mode)
