"""Parzen-window log-likelihood of held-out images under a generator's samples.

The estimate Goodfellow et al. (2014), "Generative Adversarial Nets", Sec. 5 and Table 1 report for
MNIST and TFD, following Breuleux, Bengio & Vincent (2011), "Quickly generating representative samples
from an RBM-derived process", Neural Computation 23(8). An isotropic Gaussian kernel density is fitted on
``M`` generated samples ``s_i`` (10,000 in the paper), and a test image ``x`` (flattened to ``D`` values)
gets

    log p(x) = logsumexp_i( -||x - s_i||^2 / (2 sigma^2) ) - log M - (D / 2) log(2 pi sigma^2)      [nats]

The bandwidth ``sigma`` is chosen on a validation set over a log-spaced grid (the paper's code used
``numpy.logspace(-1, 0, 10)``), and the test-set mean log-likelihood is reported with its standard error
``std / sqrt(n)`` (numpy's ``std``, ``ddof=0``, as the paper's ``parzen_ll.py`` computed it).

Pixel scale: the paper evaluated MNIST in ``[0, 1]``; the number depends on the scale (rescaling the data
by ``a`` shifts every log-likelihood by ``-D log a``). :func:`parzen_log_likelihood` and
:func:`select_sigma` take the data as given; :func:`parzen_evaluation` maps genforge's ``[-1, 1]`` images
to ``[0, 1]`` when ``signed_inputs=True`` (its default).

The estimate is known to be poor in high dimension (Theis et al. 2016, "A note on the evaluation of
generative models"); it is here to reproduce the papers' tables, not as an endorsement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | Sequence

#: The sigma grid of Goodfellow et al.'s ``parzen_ll.py`` (``--sigma_start -1 --sigma_end 0 --cross_val 10``).
DEFAULT_SIGMAS: tuple[float, ...] = tuple(float(s) for s in np.logspace(-1, 0, 10))


@dataclass
class ParzenResult:
    """Outcome of :func:`parzen_evaluation`.

    Attributes:
        sigma: the kernel bandwidth chosen on the validation set (pixel units of the evaluated scale).
        mean: mean test-set log-likelihood in nats per image.
        std_error: its standard error ``std(ll) / sqrt(n_test)`` (``ddof=0``), nats.
        per_sigma: ``{sigma: mean validation log-likelihood (nats)}`` for every grid point.
    """

    sigma: float
    mean: float
    std_error: float
    per_sigma: dict[float, float] = field(default_factory=dict)


def _as_matrix(a: ArrayLike, name: str) -> torch.Tensor:
    """Convert ``a`` (tensor, array, or a sequence of equally shaped points) to a float64 ``(N, D)`` tensor.

    Points of any shape ``(N, ...)`` are flattened to ``D = prod(...)`` values.
    """
    if isinstance(a, (list, tuple)):
        if len(a) == 0:
            raise ValueError(f"{name} is empty; expected at least one point")
        a = torch.stack([torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v) for v in a])
    t = a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a))
    t = t.detach().to("cpu", torch.float64)
    if t.dim() < 2:
        raise ValueError(
            f"{name} must have shape (N, D) or (N, C, H, W), got {tuple(t.shape)}; "
            f"use x[None] for a single point or x[:, None] for one-dimensional data"
        )
    t = t.reshape(t.shape[0], math.prod(t.shape[1:]))
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)} after flattening to (N, D)")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _as_sigmas(sigmas: float | ArrayLike) -> list[float]:
    values = [float(s) for s in np.atleast_1d(np.asarray(sigmas, dtype=np.float64))]
    if not values:
        raise ValueError("the sigma grid is empty")
    bad = [s for s in values if not (s > 0 and math.isfinite(s))]
    if bad:
        raise ValueError(f"sigma must be positive and finite, got {bad}")
    return values


def _check_dims(x: torch.Tensor, samples: torch.Tensor, name: str) -> None:
    if x.shape[1] != samples.shape[1]:
        raise ValueError(
            f"{name} has {x.shape[1]} dimensions per point but the samples have {samples.shape[1]}; "
            f"both must be the same images (flattened)"
        )


def _check_batch(batch_size: int | None, name: str) -> None:
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {batch_size}")


def _log_density(
    x: torch.Tensor,
    samples: torch.Tensor,
    sigmas: list[float],
    batch_size: int | None,
    sample_batch_size: int | None,
) -> torch.Tensor:
    """``(len(sigmas), N)`` float64 Parzen log-densities; distances are computed once for every sigma.

    Memory is ``O(batch_size * sample_batch_size)`` float64 values; the log-sum-exp over sample chunks is
    combined exactly (a log-sum-exp of the chunks' log-sum-exps).
    """
    n, d = x.shape
    m = samples.shape[0]
    bx = n if batch_size is None else batch_size
    bs = m if sample_batch_size is None else sample_batch_size
    sig = torch.tensor(sigmas, dtype=torch.float64)
    inv_two_var = 1.0 / (2.0 * sig**2)  # (S,)
    const = -math.log(m) - 0.5 * d * torch.log(2.0 * math.pi * sig**2)  # (S,)
    s_sq = samples.square().sum(1)  # (M,)
    out = torch.empty(len(sigmas), n, dtype=torch.float64)
    for i in range(0, n, bx):
        xb = x[i : i + bx]
        xb_sq = xb.square().sum(1, keepdim=True)  # (b, 1)
        parts = []  # per sample chunk: (S, b)
        for j in range(0, m, bs):
            sb = samples[j : j + bs]
            # ||x - s||^2 = ||x||^2 + ||s||^2 - 2 x.s, in float64 (cancellation is ~1e-13 relative here)
            d2 = (xb_sq + s_sq[j : j + bs].unsqueeze(0) - 2.0 * xb @ sb.T).clamp_min_(0.0)  # (b, m_chunk)
            parts.append(torch.stack([torch.logsumexp(d2 * (-c), dim=1) for c in inv_two_var.tolist()]))
        lse = parts[0] if len(parts) == 1 else torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)
        out[:, i : i + bx] = lse + const.unsqueeze(1)
    return out


def parzen_log_likelihood(
    x: ArrayLike,
    samples: ArrayLike,
    sigma: float,
    batch_size: int | None = 256,
    sample_batch_size: int | None = 4096,
) -> torch.Tensor:
    """Log-likelihood of each point of ``x`` under an isotropic Gaussian Parzen window on ``samples``.

    ``log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log M - (D/2) log(2 pi sigma^2)``
    (Breuleux et al. 2011; Goodfellow et al. 2014, Sec. 5). With one sample this is exactly the log-density
    of ``N(s, sigma^2 I)``.

    Args:
        x: ``(N, D)`` points or ``(N, C, H, W)`` images (flattened), any float scale; not rescaled here.
        samples: ``(M, D)`` or ``(M, C, H, W)`` kernel centres (the generator's samples), same scale as ``x``;
            a list of ``M`` equally shaped points is stacked.
        sigma: kernel standard deviation (> 0), in the units of the data.
        batch_size: points of ``x`` per chunk (``None``: all at once).
        sample_batch_size: samples per chunk (``None``: all at once). Memory is about
            ``8 * batch_size * sample_batch_size`` bytes; the result does not depend on the chunking
            beyond float64 rounding.

    Returns:
        float64 ``(N,)`` tensor of log-likelihoods in nats.

    Raises:
        ValueError: empty inputs, a dimension mismatch between ``x`` and ``samples``, non-finite values,
            a non-positive sigma or a non-positive chunk size.
    """
    xs = _as_matrix(x, "x")
    ss = _as_matrix(samples, "samples")
    _check_dims(xs, ss, "x")
    if np.ndim(sigma) != 0:
        raise ValueError(f"sigma must be a single positive number, got {sigma!r}; use select_sigma for a grid")
    (s,) = _as_sigmas(sigma)
    _check_batch(batch_size, "batch_size")
    _check_batch(sample_batch_size, "sample_batch_size")
    return _log_density(xs, ss, [s], batch_size, sample_batch_size)[0]


def select_sigma(
    val: ArrayLike,
    samples: ArrayLike,
    sigmas: ArrayLike | None = None,
    batch_size: int | None = 256,
    sample_batch_size: int | None = 4096,
) -> tuple[float, dict[float, float]]:
    """Choose the Parzen bandwidth that maximizes the mean validation log-likelihood.

    The cross-validation of Goodfellow et al.'s ``parzen_ll.py`` (``cross_validate_sigma``): every grid
    point is scored by the mean log-likelihood of ``val``; the first maximizer wins ties. Distances are
    computed once and shared by all grid points.

    Args:
        val: ``(N, D)`` or ``(N, C, H, W)`` validation points, same scale as ``samples``.
        samples: ``(M, D)`` or ``(M, C, H, W)`` generated samples.
        sigmas: grid of bandwidths (> 0); default :data:`DEFAULT_SIGMAS` = ``np.logspace(-1, 0, 10)``.
        batch_size, sample_batch_size: chunk sizes, see :func:`parzen_log_likelihood`.

    Returns:
        ``(best_sigma, {sigma: mean validation log-likelihood in nats})`` with plain Python floats.

    Raises:
        ValueError: as :func:`parzen_log_likelihood`, or an empty grid.
    """
    vs = _as_matrix(val, "val")
    ss = _as_matrix(samples, "samples")
    _check_dims(vs, ss, "val")
    grid = _as_sigmas(DEFAULT_SIGMAS if sigmas is None else sigmas)
    _check_batch(batch_size, "batch_size")
    _check_batch(sample_batch_size, "sample_batch_size")
    means = _log_density(vs, ss, grid, batch_size, sample_batch_size).mean(dim=1).tolist()
    per_sigma = dict(zip(grid, means))
    best = grid[int(np.argmax(means))]
    return best, per_sigma


def parzen_evaluation(
    samples: ArrayLike,
    val: ArrayLike,
    test: ArrayLike,
    sigmas: ArrayLike | None = None,
    *,
    signed_inputs: bool = True,
    batch_size: int | None = 256,
    sample_batch_size: int | None = 4096,
) -> ParzenResult:
    """The full protocol of Goodfellow et al. (2014), Sec. 5 / Table 1: choose sigma on ``val``, report
    the mean test log-likelihood and its standard error.

    Args:
        samples: ``(M, ...)`` generated images (the paper used ``M = 10,000``).
        val: ``(N_val, ...)`` validation images (select sigma).
        test: ``(N_test, ...)`` test images (the reported number).
        sigmas: bandwidth grid, default ``np.logspace(-1, 0, 10)`` (in ``[0, 1]`` pixel units).
        signed_inputs: ``True`` (default) when all three are genforge images in ``[-1, 1]``; they are mapped
            to ``[0, 1]`` by ``(x + 1) / 2`` before evaluation, the scale the paper used. ``False`` when the
            caller already passes ``[0, 1]`` values (they are used as given).
        batch_size, sample_batch_size: chunk sizes, see :func:`parzen_log_likelihood`.

    Returns:
        :class:`ParzenResult` ``(sigma, mean, std_error, per_sigma)``; log-likelihoods in nats per image.

    Raises:
        ValueError: as :func:`select_sigma`, or values outside ``[-1, 1]`` (``signed_inputs=True``) /
            below 0 or above 1 (``signed_inputs=False``), which signal a wrong ``signed_inputs``.
    """
    mats = {name: _as_matrix(a, name) for name, a in (("samples", samples), ("val", val), ("test", test))}
    lo, hi = (-1.0, 1.0) if signed_inputs else (0.0, 1.0)
    tol = 1e-6
    for name, t in mats.items():
        if t.min() < lo - tol or t.max() > hi + tol:
            raise ValueError(
                f"{name} has values in [{t.min():.4g}, {t.max():.4g}], outside [{lo:g}, {hi:g}] expected with "
                f"signed_inputs={signed_inputs}; genforge images are in [-1, 1] (signed_inputs=True), "
                f"[0, 1] pixels need signed_inputs=False"
            )
        if signed_inputs:
            mats[name] = (t + 1.0) / 2.0
    s, v, te = mats["samples"], mats["val"], mats["test"]
    _check_dims(te, s, "test")
    best, per_sigma = select_sigma(v, s, sigmas, batch_size, sample_batch_size)
    ll = parzen_log_likelihood(te, s, best, batch_size, sample_batch_size)
    std_error = float(ll.std(unbiased=False)) / math.sqrt(ll.numel())
    return ParzenResult(sigma=best, mean=float(ll.mean()), std_error=std_error, per_sigma=per_sigma)
