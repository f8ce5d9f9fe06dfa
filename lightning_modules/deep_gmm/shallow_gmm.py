"""The shallow baseline of the Deep GMM: scikit-learn's full-covariance GaussianMixture, sized by parameter
count (van den Oord & Schrauwen 2014, Sec. 4: deep models against the best GMM of comparable size)."""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture


def gmm_parameter_count(components: int, dim: int) -> int:
    """Free parameters of a full-covariance GMM: ``K (D + D (D + 1) / 2) + K - 1``."""
    return components * (dim + dim * (dim + 1) // 2) + components - 1


def components_for_parameters(parameters: int, dim: int) -> int:
    """The number of GMM components whose parameter count is closest to ``parameters`` (at least 1)."""
    per = dim + dim * (dim + 1) // 2 + 1
    return max(1, round((parameters + 1) / per))


def fit_gmm(train: np.ndarray, components: int, seed: int = 0, max_iter: int = 100,
            reg_covar: float = 1e-6) -> GaussianMixture:
    """Fit ``GaussianMixture(covariance_type="full")`` (k-means initialisation, one start) on ``train``.

    Args:
        train: float ``(N, D)``.
        components: ``K``.

    Raises:
        ValueError: if there are fewer points than components.
    """
    if len(train) < components:
        raise ValueError(f"a {components}-component GMM needs at least {components} points, got {len(train)}")
    return GaussianMixture(components, covariance_type="full", max_iter=max_iter, reg_covar=reg_covar,
                           random_state=seed).fit(np.asarray(train, dtype=np.float64))


def average_log_likelihood(gmm: GaussianMixture, data: np.ndarray) -> float:
    """Average ``log p(x)`` over ``data`` ``(N, D)``, nats per point."""
    return float(gmm.score(np.asarray(data, dtype=np.float64)))
