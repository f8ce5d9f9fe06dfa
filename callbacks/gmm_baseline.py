"""The shallow baseline next to every Deep GMM test: scikit-learn's GaussianMixture with as many
parameters, fitted on the same training patches and scored on the same test patches (van den Oord &
Schrauwen 2014, Sec. 4, Table 1 and Fig. 4)."""

from __future__ import annotations

import time

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities import rank_zero_info

from callbacks.protocols import ParameterCount, SplitDatasets, offers
from lightning_modules.deep_gmm.shallow_gmm import average_log_likelihood, components_for_parameters, fit_gmm


class ShallowGMMBaseline(Callback):
    """After testing, fit a full-covariance GMM of (about) the Deep GMM's parameter count on the training
    patches and log its test average log-likelihood next to the deep model's:

    - ``test/gmm_log_likelihood`` (nats per patch), ``test/gmm_components``, ``test/gmm_seconds``;
    - ``test/gain_over_gmm``: ``test/log_likelihood`` minus the GMM's (the paper: +2.5 nats on BSDS300).

    Applies to modules with ``num_parameters()`` whose datamodule serves patches
    (``datamodule.dataset(split).x``, see :mod:`datamodules.patches.photo_patches`).

    Args:
        components: the GMM's components; ``None`` matches the Deep GMM's parameter count.
        max_iter: scikit-learn EM iterations.
        max_train: fit on at most this many training patches (the first ones; ``None``: all).
        seed: the GMM's ``random_state``.
    """

    def __init__(self, components: int | None = None, max_iter: int = 100, max_train: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.components, self.max_iter, self.max_train, self.seed = components, max_iter, max_train, seed
        self.result: dict[str, float] = {}

    @staticmethod
    def applies(trainer: Trainer, pl_module: LightningModule) -> bool:
        """Whether the module and the datamodule follow the patch protocol."""
        return offers(pl_module, ParameterCount) and offers(getattr(trainer, "datamodule", None), SplitDatasets)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit the baseline and log its test log-likelihood next to the Deep GMM's."""
        if not self.applies(trainer, pl_module):
            return
        datamodule = trainer.datamodule
        train, test = datamodule.dataset("train").x.numpy(), datamodule.dataset("test").x.numpy()
        if self.max_train is not None:
            train = train[: self.max_train]
        components = self.components or components_for_parameters(pl_module.num_parameters(), train.shape[1])
        start = time.perf_counter()
        gmm = fit_gmm(train, components, seed=self.seed, max_iter=self.max_iter)
        self.result = {"gmm_log_likelihood": average_log_likelihood(gmm, test),
                       "gmm_components": float(components), "gmm_seconds": time.perf_counter() - start}
        deep = trainer.callback_metrics.get("test/log_likelihood")
        if deep is not None:
            self.result["gain_over_gmm"] = float(deep) - self.result["gmm_log_likelihood"]
        for key, value in self.result.items():
            pl_module.log(f"test/{key}", value, sync_dist=True)
        rank_zero_info(f"Shallow baseline: GaussianMixture({components}, full) test log-likelihood "
                       f"{self.result['gmm_log_likelihood']:.2f} nats"
                       + (f"; Deep GMM {float(deep):.2f} nats ({self.result['gain_over_gmm']:+.2f})"
                          if deep is not None else ""))
