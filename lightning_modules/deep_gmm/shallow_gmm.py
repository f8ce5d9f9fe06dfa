"""The shallow baseline of the Deep GMM: scikit-learn's full-covariance GaussianMixture, sized by parameter
count (van den Oord & Schrauwen 2014, Sec. 4: deep models against the best GMM of comparable size)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits


class FitStopped(Exception):
    """:func:`fit_gmm` was told to stop (``should_stop()`` came true between chunks of EM iterations).

    Attributes:
        iterations: the EM iterations done before it stopped.
    """

    def __init__(self, iterations: int) -> None:
        super().__init__(f"the GMM fit was stopped after {iterations} EM iteration(s)")
        self.iterations = iterations


def gmm_parameter_count(components: int, dim: int) -> int:
    """Free parameters of a full-covariance GMM: ``K (D + D (D + 1) / 2) + K - 1``."""
    return components * (dim + dim * (dim + 1) // 2) + components - 1


def components_for_parameters(parameters: int, dim: int) -> int:
    """The number of GMM components whose parameter count is closest to ``parameters`` (at least 1)."""
    per = dim + dim * (dim + 1) // 2 + 1
    return max(1, round((parameters + 1) / per))


def fit_gmm(train: np.ndarray, components: int, seed: int = 0, max_iter: int = 100,
            reg_covar: float = 1e-6, should_stop: Callable[[], bool] | None = None, chunk_iter: int = 5,
            threads: int | None = None) -> GaussianMixture:
    """Fit ``GaussianMixture(covariance_type="full")`` (k-means initialisation, one start) on ``train``.

    With ``should_stop``, EM runs in chunks of ``chunk_iter`` iterations (scikit-learn's ``warm_start``:
    each chunk continues from the last one's parameters and lower bound, so the iterates and the stopping
    point are those of one ``fit``; each chunk adds one E-step) and ``should_stop()`` is asked before each
    chunk, so a signal stops a long fit within one chunk (the k-means initialisation is not interruptible).
    A fit that does not converge within ``max_iter`` warns once (``ConvergenceWarning``), as ``fit`` does.

    Args:
        train: float ``(N, D)``.
        components: ``K``.
        seed: ``random_state``.
        max_iter: EM iterations at most.
        reg_covar: added to the covariances' diagonals.
        should_stop: asked between chunks; ``True`` stops the fit (``None``: one uninterrupted ``fit``).
        chunk_iter: EM iterations per chunk (at least 1).
        threads: BLAS/OpenMP threads during the fit (``threadpoolctl``); ``None``: the libraries' defaults.
            On a loaded 2-core CPU next to PyTorch's thread pool, 2 threads made a 2,000-point fit 50x slower
            than one.

    Returns:
        The fitted ``GaussianMixture``; ``n_iter_`` counts every EM iteration (all chunks).

    Raises:
        ValueError: if there are fewer points than components, or ``chunk_iter < 1``.
        FitStopped: when ``should_stop()`` came true (its ``iterations`` says how far the fit got).
    """
    if len(train) < components:
        raise ValueError(f"a {components}-component GMM needs at least {components} points, got {len(train)}")
    if chunk_iter < 1:
        raise ValueError(f"chunk_iter must be at least 1, got {chunk_iter}")
    data = np.asarray(train, dtype=np.float64)
    with threadpool_limits(limits=threads):
        if should_stop is None:
            return GaussianMixture(components, covariance_type="full", max_iter=max_iter, reg_covar=reg_covar,
                                   random_state=seed).fit(data)
        gmm = GaussianMixture(components, covariance_type="full", reg_covar=reg_covar, random_state=seed,
                              warm_start=True)
        done = 0
        while done < max_iter:
            if should_stop():
                raise FitStopped(done)
            gmm.max_iter = min(chunk_iter, max_iter - done)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(data)
            done += gmm.n_iter_
            if gmm.converged_:
                break
    gmm.n_iter_ = done
    if not gmm.converged_:
        warnings.warn(f"the GMM did not converge in max_iter={max_iter} EM iterations", ConvergenceWarning,
                      stacklevel=2)
    return gmm


def average_log_likelihood(gmm: GaussianMixture, data: np.ndarray, threads: int | None = None) -> float:
    """Average ``log p(x)`` over ``data`` ``(N, D)``, nats per point (``threads``: as :func:`fit_gmm`'s)."""
    with threadpool_limits(limits=threads):
        return float(gmm.score(np.asarray(data, dtype=np.float64)))
