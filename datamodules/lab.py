"""RGB <-> CIE 1976 L*a*b* in the networks' ``[-1, 1]`` range, for automatic colorization.

Colorization models (Zhang et al. 2016, "Colorful Image Colorization"; Fabbri 2017, "A Comparative Study
of Generative Adversarial Networks Towards Automatic Image Colorization", Sec. 4) take the lightness ``L`` of an image and predict its two
chroma channels ``ab``. The conversion is kornia's (:func:`kornia.color.rgb_to_lab`,
:func:`kornia.color.lab_to_rgb`): sRGB primaries and transfer curve, D65 reference white, 2 degree observer.

The one scaling used everywhere in genforge (and nowhere else defined):

- ``L`` (CIE lightness, ``[0, 100]``) -> ``L_scaled = (L - 50) / 50 = L / 50 - 1`` in ``[-1, 1]``
  (black -> -1, white -> +1); constants :data:`L_SCALE` = 50, :data:`L_OFFSET` = 50.
- ``a``, ``b`` (CIE chroma, unbounded in theory) -> ``ab_scaled = ab / 110``; constant :data:`AB_SCALE`.
  Every sRGB colour has ``a`` in about ``[-86.2, 98.2]`` and ``b`` in about ``[-107.9, 94.5]``
  (measured over all 256^3 8-bit sRGB colours with kornia: :data:`AB_GAMUT`), so
  ``|ab_scaled| <= 0.981 < 1`` for any image that came from RGB.

:func:`lab_scaled_to_rgb` is the exact inverse of :func:`rgb_to_lab_scaled` up to float error (below
``1e-4`` in ``[-1, 1]`` RGB units on real photographs). A network's ``ab`` may of course fall outside the
sRGB gamut; the inverse then clamps the RGB result to ``[-1, 1]`` (the nearest displayable value per
channel), which is the only place it differs from an exact inverse.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab

#: ``L_scaled = L / L_SCALE - 1``: CIE lightness ``[0, 100]`` -> ``[-1, 1]``.
L_SCALE = 50.0
#: ``L_scaled = (L - L_OFFSET) / L_SCALE``, ``L = L_scaled * L_SCALE + L_OFFSET`` (CIE units).
L_OFFSET = 50.0
#: ``ab_scaled = ab / AB_SCALE``; chosen just above the sRGB gamut's largest ``|a|``, ``|b|`` (~107.9).
AB_SCALE = 110.0
#: ``((a_min, a_max), (b_min, b_max))`` over all 8-bit sRGB colours, D65, kornia 0.9 (CIE units).
AB_GAMUT = ((-86.19, 98.24), (-107.86, 94.48))


def _check_image(x: torch.Tensor, channels: int, what: str) -> None:
    """Raise a ValueError unless ``x`` is a floating ``(B, channels, H, W)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{what} must be a batch (B, {channels}, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be a float tensor in [-1, 1], got dtype {x.dtype}")
    have = x.shape[1]
    if have == channels:
        return
    if channels == 3 and have == 1:
        raise ValueError(f"{what} has 1 channel (a grayscale image) where a 3-channel RGB colour image is "
                         f"expected; got shape {tuple(x.shape)}")
    if channels == 1 and have == 3:
        raise ValueError(f"{what} has 3 channels (a colour image) where the 1-channel grayscale lightness L "
                         f"is expected; got shape {tuple(x.shape)}")
    raise ValueError(f"{what} must have {channels} channel(s) (B, {channels}, H, W), got shape {tuple(x.shape)}")


def rgb_to_lab_scaled(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sRGB images into scaled CIE L*a*b* lightness and chroma.

    Args:
        rgb: float ``(B, 3, H, W)`` sRGB in ``[-1, 1]`` (genforge's image range; values outside are clamped).

    Returns:
        ``(L, ab)``: ``L`` float ``(B, 1, H, W)`` = ``L* / 50 - 1`` in ``[-1, 1]``; ``ab`` float
        ``(B, 2, H, W)`` = ``(a*, b*) / 110``, within about ``[-0.784, 0.893] x [-0.981, 0.859]`` for sRGB
        input (see the module docstring).

    Raises:
        ValueError: if ``rgb`` is not a float ``(B, 3, H, W)`` tensor (the message says when a 1-channel
            grayscale image was given instead of a colour one).
    """
    _check_image(rgb, 3, "rgb")
    lab = rgb_to_lab(rgb.add(1.0).div(2.0).clamp(0.0, 1.0))
    light = lab[:, :1].sub(L_OFFSET).div(L_SCALE)
    ab = lab[:, 1:].div(AB_SCALE)
    return light, ab


def lab_scaled_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Join scaled lightness and chroma back into sRGB: the inverse of :func:`rgb_to_lab_scaled`.

    Args:
        L: float ``(B, 1, H, W)``, ``L* / 50 - 1`` in ``[-1, 1]`` (the grayscale input of a colorizer).
        ab: float ``(B, 2, H, W)``, ``(a*, b*) / 110`` (a colorizer's output, nominally in ``[-1, 1]``).

    Returns:
        float ``(B, 3, H, W)`` sRGB in ``[-1, 1]``. Colours outside the sRGB gamut are clamped per channel
        to ``[-1, 1]`` at the end (kornia's ``clip=True``); in-gamut colours round-trip to float error.

    Raises:
        ValueError: if ``L`` is not ``(B, 1, H, W)`` (the message says when a 3-channel colour image was
            given instead of the grayscale lightness), ``ab`` is not ``(B, 2, H, W)``, or their batch or
            spatial sizes differ.
    """
    _check_image(L, 1, "L")
    _check_image(ab, 2, "ab")
    if L.shape[0] != ab.shape[0] or L.shape[-2:] != ab.shape[-2:]:
        raise ValueError(f"L {tuple(L.shape)} and ab {tuple(ab.shape)} must share batch size and height x width")
    lab = torch.cat([L.mul(L_SCALE).add(L_OFFSET), ab.mul(AB_SCALE)], dim=1)
    return lab_to_rgb(lab, clip=True).mul(2.0).sub(1.0)
