"""The shallow baseline next to every Deep GMM test: scikit-learn's GaussianMixture with as many
parameters, fitted on the same training patches and scored on the same test patches (van den Oord &
Schrauwen 2014, Sec. 4, Table 1 and Fig. 4)."""

from __future__ import annotations

import logging
import time
import warnings

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException
from sklearn.exceptions import ConvergenceWarning

from callbacks.protocols import ParameterCount, SplitDatasets, applies, datamodule_applies
from lightning_modules.deep_gmm.shallow_gmm import (
    FitStopped,
    average_log_likelihood,
    components_for_parameters,
    fit_gmm,
)

log = logging.getLogger("genforge")


class ShallowGMMBaseline(Callback):
    """After testing, fit a full-covariance GMM of (about) the Deep GMM's parameter count on the training
    patches and log its test average log-likelihood next to the deep model's:

    - ``test/gmm_log_likelihood`` (nats per patch), ``test/gmm_components``, ``test/gmm_seconds``,
      ``test/gmm_train_patches`` (the patches it was fitted on), ``test/gmm_iterations`` (EM iterations run);
    - ``test/gain_over_gmm``: ``test/log_likelihood`` minus the GMM's (the paper: +2.5 nats on BSDS300).

    Applies to modules with ``num_parameters()`` (:class:`callbacks.protocols.ParameterCount`) whose datamodule
    serves patches (``datamodule.dataset(split).x``, see :mod:`datamodules.patches.photo_patches`); others are
    skipped (said once). The fit (minutes on all
    60,000 default patches) runs in chunks of ``chunk_iter`` EM iterations; a SIGTERM (``timeout``, Slurm)
    stops it at the next chunk, the run then ends as any SIGTERM does (exit 143, nothing logged for it).

    Args:
        components: the GMM's components; ``None`` matches the Deep GMM's parameter count.
        max_iter: scikit-learn EM iterations at most.
        max_train: fit on at most this many training patches (the first ones; ``None``: all).
        seed: the GMM's ``random_state``.
        chunk_iter: EM iterations between two looks for a SIGTERM.
        threads: BLAS/OpenMP threads for the fit (``None``: the libraries' defaults); see
            :func:`lightning_modules.deep_gmm.shallow_gmm.fit_gmm`.

    Raises:
        ValueError: (construction) ``max_iter``, ``max_train``, ``chunk_iter`` or ``threads`` below 1, naming
            the ``callbacks.gmm_baseline`` key.
    """

    def __init__(self, components: int | None = None, max_iter: int = 100, max_train: int | None = None,
                 seed: int = 0, chunk_iter: int = 5, threads: int | None = 1) -> None:
        super().__init__()
        for key, value in (("max_iter", max_iter), ("max_train", max_train), ("chunk_iter", chunk_iter),
                           ("threads", threads)):
            if value is not None and value < 1:
                raise ValueError(f"callbacks.gmm_baseline.{key} must be at least 1 (or null), got {value}")
        self.components, self.max_iter, self.max_train, self.seed = components, max_iter, max_train, seed
        self.chunk_iter, self.threads = chunk_iter, threads
        self.result: dict[str, float] = {}

    def applies(self, trainer: Trainer, pl_module: LightningModule) -> bool:
        """Whether the module and the datamodule follow the patch protocol (a skip is said once)."""
        return applies(self, pl_module, ParameterCount) and datamodule_applies(self, trainer, pl_module, SplitDatasets)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit the baseline and log its test log-likelihood next to the Deep GMM's.

        Raises:
            SIGTERMException: a SIGTERM came during the fit (Lightning's, as after a batch).
        """
        if not self.applies(trainer, pl_module):
            return
        datamodule = trainer.datamodule
        train, test = datamodule.dataset("train").x.numpy(), datamodule.dataset("test").x.numpy()
        if self.max_train is not None:
            train = train[: self.max_train]
        components = self.components or components_for_parameters(pl_module.num_parameters(), train.shape[1])
        rank_zero_info(f"Shallow baseline: fitting GaussianMixture({components}, full) on {len(train):,} training "
                       f"patches, at most {self.max_iter} EM iterations (all 60,000 default patches x 100 iterations: "
                       f"minutes; callbacks.gmm_baseline.max_train / max_iter cap it, =null skips it)")
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():  # said in the summary line instead
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm = fit_gmm(train, components, seed=self.seed, max_iter=self.max_iter, chunk_iter=self.chunk_iter,
                              should_stop=lambda: trainer.received_sigterm, threads=self.threads)
        except FitStopped as stopped:
            log.error(f"SIGTERM: stopped the shallow GMM baseline after {stopped.iterations} EM iteration(s) "
                      f"({time.perf_counter() - start:.0f} s); no test/gmm_* metrics")
            raise SIGTERMException from None
        self.result = {"gmm_log_likelihood": average_log_likelihood(gmm, test, threads=self.threads),
                       "gmm_components": float(components), "gmm_seconds": time.perf_counter() - start,
                       "gmm_train_patches": float(len(train)), "gmm_iterations": float(gmm.n_iter_)}
        deep = trainer.callback_metrics.get("test/log_likelihood")
        if deep is not None:
            self.result["gain_over_gmm"] = float(deep) - self.result["gmm_log_likelihood"]
        for key, value in self.result.items():
            pl_module.log(f"test/{key}", value, sync_dist=True)
        rank_zero_info(f"Shallow baseline: GaussianMixture({components}, full) on {len(train):,} training patches, "
                       f"{gmm.n_iter_} EM iterations ({'converged' if gmm.converged_ else 'not converged'}), "
                       f"{self.result['gmm_seconds']:.1f} s: test log-likelihood "
                       f"{self.result['gmm_log_likelihood']:.2f} nats"
                       + (f"; Deep GMM {float(deep):.2f} nats ({self.result['gain_over_gmm']:+.2f})"
                          if deep is not None else ""))
