"""Image grids and PNG files with Pillow (genforge does not depend on torchvision)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datamodules.transforms import to_uint8
from utils.io import atomic_path


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile float images ``(B, C, H, W)`` in ``[-1, 1]`` into one uint8 grid ``(C, H', W')``.

    ``nrow`` images per row (default: ``ceil(sqrt(B))``); ``padding`` pixels of ``pad_value`` (in
    ``[-1, 1]``) between and around tiles.

    Raises:
        ValueError: if ``images`` is not 4-D or has no images.
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"make_grid expects (B, C, H, W) with B > 0, got {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    ncol = math.ceil(b / nrow)
    grid = torch.full((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding), float(pad_value))
    images = images.detach().float().cpu()
    for i in range(b):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    return to_uint8(grid)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A uint8 ``(C, H, W)`` tensor (C = 1 or 3) as a Pillow image ("L" or "RGB")."""
    array = image.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a uint8 ``(C, H, W)`` image to ``path`` as PNG, atomically. Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        to_pil(image).save(tmp, format="PNG")
    return path


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Save float images ``(B, C, H, W)`` in ``[-1, 1]`` as one PNG grid at ``path``."""
    return save_png(make_grid(images, nrow=nrow), path)
