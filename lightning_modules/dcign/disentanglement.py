"""How well a graphics code is disentangled (Kulkarni et al. 2015, Sec. 4): correlation of a latent with
the true factor (Fig. 6), invariance of the other latents, and the baseline's choice of latent
(Sec. 4.1.1: the one of largest variance over batches in which the factor varies).

All functions take plain tensors: codes ``(N, D)`` are encoder means, factors ``(N,)`` true values
(radians for angles). They have no notion of training and are shared by the module and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef


def correlation_scores(latent: Tensor, truth: Tensor) -> dict[str, float]:
    """Pearson r, Spearman rho and R^2 between one latent and the true factor (Kulkarni et al. 2015, Fig. 6).

    R^2 is that of the least-squares line ``truth ~ a * latent + b``, which for one regressor is r^2.

    Args:
        latent: ``(N,)`` values of the latent (encoder means) on test images.
        truth: ``(N,)`` the true factor values of the same images (radians).

    Returns:
        ``{"pearson": r, "spearman": rho, "r2": R^2}``; r and rho in ``[-1, 1]``, R^2 in ``[0, 1]``. A
        constant latent or factor has no correlation: all three are 0.

    Raises:
        ValueError: if the two are not 1-D of the same length >= 3.
    """
    latent, truth = latent.detach().double().cpu(), truth.detach().double().cpu()
    if latent.dim() != 1 or latent.shape != truth.shape or len(latent) < 3:
        raise ValueError(f"correlation needs two 1-D tensors of the same length >= 3, got "
                         f"{tuple(latent.shape)} and {tuple(truth.shape)}")
    if latent.std() == 0 or truth.std() == 0:
        return {"pearson": 0.0, "spearman": 0.0, "r2": 0.0}
    pearson = float(pearson_corrcoef(latent, truth))
    return {"pearson": pearson, "spearman": float(spearman_corrcoef(latent, truth)), "r2": pearson**2}


def within_batch_variance(batches: Sequence[Tensor], latents: Tensor) -> float:
    """Mean variance of the chosen latents within each batch (Kulkarni et al. 2015, Sec. 3.1: invariance).

    Args:
        batches: codes ``(B_k, D)`` of batches in which one factor varies (``B_k >= 2``).
        latents: bool ``(D,)``, the latents to measure (those *outside* the varied factor's group).

    Returns:
        The average over batches and chosen latents of the (population) variance over the batch; 0 means
        perfectly invariant. In the codes' squared units.

    Raises:
        ValueError: with no batch, no latent chosen, or a batch of fewer than two codes.
    """
    if not batches or not bool(latents.any()):
        raise ValueError("within_batch_variance needs at least one batch and one latent")
    values = []
    for codes in batches:
        if codes.dim() != 2 or len(codes) < 2:
            raise ValueError(f"each batch must be (B >= 2, D) codes, got {tuple(codes.shape)}")
        values.append(codes[:, latents.to(codes.device)].double().var(0, unbiased=False).mean())
    return float(torch.stack(values).mean())


def largest_variance_latent(batches: Sequence[Tensor]) -> int:
    """The latent of largest mean within-batch variance over batches where one factor varies.

    Kulkarni et al. 2015, Sec. 4.1.1: the entangled baseline has no assigned pose latent, so the latent
    that varies most over azimuth-varied batches stands in for it.

    Args:
        batches: codes ``(B_k, D)``, ``B_k >= 2``.

    Returns:
        The latent's index in ``[0, D)``.

    Raises:
        ValueError: with no batch or a batch of fewer than two codes.
    """
    if not batches or any(b.dim() != 2 or len(b) < 2 for b in batches):
        raise ValueError("largest_variance_latent needs batches of (B >= 2, D) codes")
    variance = torch.stack([b.double().var(0, unbiased=False) for b in batches]).mean(0)
    return int(variance.argmax())


def swap_latents(codes: Tensor, latents: Tensor, source: int = 0) -> Tensor:
    """Novel-view codes (Kulkarni et al. 2015, Sec. 4.1.1): the ``source`` code with the chosen latents
    taken from each of the other codes.

    Args:
        codes: ``(B, D)`` codes of one batch in which only the view varies.
        latents: bool ``(D,)``, the view latents (the azimuth group, or the baseline's chosen latent).
        source: the index of the source image.

    Returns:
        ``(B - 1, D)``: for every target ``j != source`` (in order), ``codes[source]`` with the chosen
        latents replaced by ``codes[j]``'s. Decoding row ``k`` should render the source object in the
        target's view.
    """
    targets = torch.cat([codes[:source], codes[source + 1:]])
    mask = latents.to(codes.device)
    return torch.where(mask, targets, codes[source].expand_as(targets))
