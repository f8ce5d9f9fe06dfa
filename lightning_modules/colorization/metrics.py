"""Colorization metrics beyond PSNR/SSIM (those come from torchmetrics): the area under the curve of
per-pixel ab accuracy (Zhang, Isola, Efros 2016) and colourfulness (Hasler & Suesstrunk 2003)."""

from __future__ import annotations

import torch
from torch import Tensor


def ab_accuracy_auc(ab_pred: Tensor, ab_true: Tensor, max_threshold: float = 150.0, steps: int = 151) -> Tensor:
    """Area under the curve of per-pixel ab accuracy over thresholds ``0..max_threshold``, in [0, 1].

    Zhang et al. 2016 ("Colorful Image Colorization", Sec. 3.1, "raw accuracy (AuC)"): the share of
    pixels whose predicted colour lies within L2 distance ``t`` of the true colour in ab space is swept
    over ``t`` from 0 to 150 and the area under that curve is normalised to [0, 1].

    Args:
        ab_pred, ab_true: ``(B, 2, H, W)`` chroma in CIE ab units (not the networks' scaled range).
        max_threshold: the largest threshold (150 in the paper).
        steps: thresholds on the grid (151: every integer).

    Returns:
        ``(B,)`` AuC per image (1 = every pixel exact).

    Raises:
        ValueError: if the shapes differ or are not ``(B, 2, H, W)``.
    """
    if ab_pred.shape != ab_true.shape or ab_pred.dim() != 4 or ab_pred.shape[1] != 2:
        raise ValueError(f"ab_accuracy_auc expects two (B, 2, H, W) tensors, got {tuple(ab_pred.shape)} "
                         f"and {tuple(ab_true.shape)}")
    distance = (ab_pred.float() - ab_true.float()).pow(2).sum(1).sqrt().flatten(1)  # (B, HW)
    thresholds = torch.linspace(0.0, max_threshold, steps, device=distance.device)
    accuracy = (distance.unsqueeze(1) <= thresholds.view(1, -1, 1)).float().mean(2)  # (B, T)
    return torch.trapezoid(accuracy, thresholds, dim=1) / max_threshold


def colourfulness(rgb: Tensor) -> Tensor:
    """Colourfulness M of Hasler & Suesstrunk 2003 ("Measuring colourfulness in natural images", eq. 3).

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` over the pixels of an image (RGB in [0, 255]):
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)``. 0 for a gray image; the
    paper calls about 33 "moderately", 59 "quite" and 82 "highly" colourful.

    Args:
        rgb: ``(B, 3, H, W)`` in ``[-1, 1]``.

    Returns:
        ``(B,)`` colourfulness, in the paper's 0-255 pixel units.

    Raises:
        ValueError: if ``rgb`` is not ``(B, 3, H, W)``.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"colourfulness expects RGB (B, 3, H, W) in [-1, 1], got {tuple(rgb.shape)}")
    pixels = (rgb.float().clamp(-1, 1) + 1) * 127.5
    r, g, b = pixels.flatten(2).unbind(1)
    rg, yb = r - g, (r + g) / 2 - b
    spread = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    centre = (rg.mean(1).pow(2) + yb.mean(1).pow(2)).sqrt()
    return spread + 0.3 * centre
