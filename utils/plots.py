"""Plots written as PNG with matplotlib (headless, ``Agg`` backend), atomically."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from utils.io import atomic_path


def scatter_png(x: torch.Tensor, y: torch.Tensor, path: str | os.PathLike, title: str = "",
                x_label: str = "", y_label: str = "", size: tuple[float, float] = (4.0, 4.0)) -> Path:
    """Write a scatter plot of ``y`` against ``x`` (both ``(N,)``) to ``path`` (PNG, 100 dpi). Returns the path.

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D of the same length.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = torch.as_tensor(x).detach().cpu().flatten(), torch.as_tensor(y).detach().cpu().flatten()
    if x.shape != y.shape:
        raise ValueError(f"scatter_png needs x and y of the same length, got {len(x)} and {len(y)}")
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        axes.scatter(x.numpy(), y.numpy(), s=6, alpha=0.6)
        axes.set(title=title, xlabel=x_label, ylabel=y_label)
        axes.title.set_fontsize(9)
        figure.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png")
    finally:
        plt.close(figure)
    return path
