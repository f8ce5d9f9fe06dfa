"""Plots rendered with matplotlib (headless, ``Agg`` backend) into image tensors, to save with
:func:`utils.images.save_png` and log with :func:`callbacks.image_logging.log_image` like any grid."""

from __future__ import annotations

import numpy as np
import torch


def scatter_image(x: torch.Tensor, y: torch.Tensor, title: str = "", x_label: str = "", y_label: str = "",
                  size: tuple[float, float] = (4.0, 4.0)) -> torch.Tensor:
    """A scatter plot of ``y`` against ``x`` (both ``(N,)``) as a uint8 RGB image ``(3, H, W)`` at 100 dpi
    (``size`` in inches: 400 x 400 pixels by default).

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D of the same length.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = torch.as_tensor(x).detach().cpu().flatten(), torch.as_tensor(y).detach().cpu().flatten()
    if x.shape != y.shape:
        raise ValueError(f"scatter_image needs x and y of the same length, got {len(x)} and {len(y)}")
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        axes.scatter(x.numpy(), y.numpy(), s=6, alpha=0.6)
        axes.set(title=title, xlabel=x_label, ylabel=y_label)
        axes.title.set_fontsize(9)
        figure.tight_layout()
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
    finally:
        plt.close(figure)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).contiguous()
