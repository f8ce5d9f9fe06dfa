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
    x, y = torch.as_tensor(x).detach().cpu().flatten(), torch.as_tensor(y).detach().cpu().flatten()
    if x.shape != y.shape:
        raise ValueError(f"scatter_image needs x and y of the same length, got {len(x)} and {len(y)}")
    figure, axes = _figure(size)
    axes.scatter(x.numpy(), y.numpy(), s=6, alpha=0.6)
    return _render(figure, axes, title, x_label, y_label)


def line_image(series: dict[str, tuple[list[float], list[float]]], levels: dict[str, float] | None = None,
               title: str = "", x_label: str = "", y_label: str = "", log_x: bool = False,
               size: tuple[float, float] = (5.0, 4.0), log_y: bool = False, markers: bool = True) -> torch.Tensor:
    """Lines (with markers unless ``markers=False``), one per ``label -> (x, y)`` of ``series``, plus a
    dashed horizontal line per ``label -> y`` of ``levels``, as a uint8 RGB image ``(3, H, W)`` at 100 dpi
    (``size`` in inches); ``log_x`` puts x on a base-2 log scale, ``log_y`` y on a base-10 one.

    Raises:
        ValueError: if a series' ``x`` and ``y`` differ in length.
    """
    for label, (xs, ys) in series.items():
        if len(xs) != len(ys):
            raise ValueError(f"line_image: series {label!r} has {len(xs)} x but {len(ys)} y values")
    figure, axes = _figure(size)
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o" if markers else None, label=label)
    for label, level in (levels or {}).items():
        axes.axhline(level, linestyle="--", color="gray", label=label)
    if log_x:
        axes.set_xscale("log", base=2)
    if log_y:
        axes.set_yscale("log")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return _render(figure, axes, title, x_label, y_label)


def _figure(size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, dpi=100)


def _render(figure, axes, title: str, x_label: str, y_label: str) -> torch.Tensor:
    try:
        axes.set(title=title, xlabel=x_label, ylabel=y_label)
        axes.title.set_fontsize(9)
        figure.tight_layout()
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).contiguous()


def twin_line_image(left: dict[str, tuple[list[float], list[float]]],
                    right: dict[str, tuple[list[float], list[float]]], title: str = "", x_label: str = "",
                    left_label: str = "", right_label: str = "", log_right: bool = False,
                    size: tuple[float, float] = (6.0, 4.0)) -> torch.Tensor:
    """Lines of two quantities on one x axis: each ``label -> (x, y)`` of ``left`` against the left y axis,
    of ``right`` (dashed) against the right one (log scale with ``log_right``), as a uint8 RGB image
    ``(3, H, W)`` at 100 dpi (``size`` in inches); e.g. a critic's loss and the FID against generator
    iterations (Arjovsky et al. 2017, Fig. 3).

    Raises:
        ValueError: if a series' ``x`` and ``y`` differ in length.
    """
    for label, (xs, ys) in {**left, **right}.items():
        if len(xs) != len(ys):
            raise ValueError(f"twin_line_image: series {label!r} has {len(xs)} x but {len(ys)} y values")
    figure, axes = _figure(size)
    other = axes.twinx()
    colors = iter(["C0", "C1", "C2", "C3", "C4", "C5", "C6"])
    handles = []
    for label, (xs, ys) in left.items():
        handles += axes.plot(xs, ys, color=next(colors), label=label)
    for label, (xs, ys) in right.items():
        handles += other.plot(xs, ys, color=next(colors), linestyle="--", label=label)
    if log_right:
        other.set_yscale("log")
    other.set_ylabel(right_label)
    axes.legend(handles=handles, labels=[h.get_label() for h in handles], fontsize=8)
    axes.grid(alpha=0.3)
    return _render(figure, axes, title, x_label, left_label)
