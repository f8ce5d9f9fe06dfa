"""Sample-quality evaluation during validation and test: FID/KID (torchmetrics) and Parzen windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from callbacks.protocols import Samples, offers
from datamodules.base import dataset_images

log = logging.getLogger("genforge")


def uses_samples(pl_module: LightningModule) -> bool:
    """Whether sample-based metrics apply: the module offers :class:`callbacks.protocols.Samples` and does
    not opt out with ``sample_metrics = False`` (autoregressive models, whose sequential sampling is too
    slow and whose metric is the likelihood)."""
    return offers(pl_module, Samples) and bool(pl_module.sample_metrics)


class FeatureDistanceEvaluation(Callback):
    """FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) of generated vs real images, logged as
    ``val/fid``, ``val/kid_mean``, ``val/kid_std`` each validation epoch and ``test/...`` at test.

    Features come from genforge's feature network for the dataset (:mod:`metrics.feature_net`: a small
    classifier trained on the dataset's labels, made once and cached under ``cache_dir``), or Inception
    with ``feature="inception"`` and ``inception_weights`` (needs torch-fidelity). For every real batch
    of the split a generated batch of the same size is drawn (with the same labels for a conditional
    model), from a generator seeded with ``seed`` (plus the process's rank) at the start of every
    evaluation, so a checkpoint's numbers are the same from ``train.py``'s test and from ``evaluate.py``;
    the real statistics of a split are computed once per run. A module whose samples come from a moving
    average of its generator (``has_ema``) also gets the trained generator's numbers, as
    ``<split>/fid_no_ema``, ``<split>/kid_mean_no_ema`` and ``<split>/kid_std_no_ema``.

    Args:
        cache_dir: where feature networks are cached (``paths.cache_dir``).
        feature: ``"genforge"`` or ``"inception"``.
        inception_weights: path of Inception weights for ``feature="inception"``.
        feature_epochs, num_features: training settings of the feature network.
        seed: seed of the feature network's training and of the generated samples.
        kid_subset_size: KID subset size (clamped to the number of images available).
        every_n_epochs: evaluate every n-th validation epoch (the metric keeps its last value between).
    """

    def __init__(self, cache_dir: str, feature: str = "genforge", inception_weights: str | None = None,
                 feature_epochs: int = 5, num_features: int = 128, seed: int = 0,
                 kid_subset_size: int = 1000, every_n_epochs: int = 1) -> None:
        super().__init__()
        if feature not in ("genforge", "inception"):
            raise ValueError(f"callbacks.evaluation.feature must be 'genforge' or 'inception', got {feature!r}")
        self.cache_dir, self.feature, self.inception_weights = cache_dir, feature, inception_weights
        self.feature_epochs, self.num_features, self.seed = feature_epochs, num_features, seed
        self.kid_subset_size, self.every_n_epochs = kid_subset_size, every_n_epochs
        self.distances: dict[str, object] = {}
        self.enabled = True
        self._real_done: dict[str, bool] = {}
        self._diverged: set[str] = set()
        self._net = None
        self._draws: dict[str, torch.Generator] = {}

    # ------------------------------------------------------------------ set-up
    def _feature_network(self, trainer: Trainer):
        from metrics.feature_net import inception_feature, load_or_train_feature_net

        if self.feature == "inception":
            return inception_feature(self.inception_weights)
        if trainer.datamodule is None:
            raise RuntimeError("FeatureDistanceEvaluation needs the Trainer to be given a datamodule")

        def build():
            log.info(f"FID/KID features: loading genforge's feature network from {self.cache_dir}, or training "
                     f"it on {type(trainer.datamodule).__name__} once ({self.feature_epochs} epochs)")
            net = load_or_train_feature_net(trainer.datamodule, self.cache_dir, epochs=self.feature_epochs,
                                            seed=self.seed, num_features=self.num_features)
            report = getattr(net, "metrics", None) or {}
            log.info(f"FID/KID features: {net.cache_path} (validation accuracy {report.get('val_accuracy')})")
            return net

        # rank 0 trains and caches; the others load after it
        net = build() if trainer.is_global_zero else None
        trainer.strategy.barrier("genforge-feature-net")
        return net if net is not None else build()

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.enabled = uses_samples(pl_module)  # methods that do not sample (colorization) are skipped
        if self.enabled and self._net is None:
            # the run's random state does not depend on whether the network is trained (a first run) or
            # loaded (building a module draws its initial weights): both runs train alike
            with torch.random.fork_rng(devices=[]):
                self._net = self._feature_network(trainer)

    def _metric(self, key: str, device: torch.device):
        from metrics.fid import FeatureDistances

        if key not in self.distances:
            self.distances[key] = FeatureDistances(self._net, kid_subset_size=self.kid_subset_size)
            self._real_done[key] = False
        return self.distances[key].to(device)

    def _active(self, trainer: Trainer, split: str) -> bool:
        if trainer.sanity_checking or not self.enabled:
            return False
        return split == "test" or trainer.current_epoch % self.every_n_epochs == 0

    @staticmethod
    def _variants(pl_module: LightningModule, split: str) -> list[tuple[str, dict]]:
        """``(metric key, sample() keywords)``: the module's samples, and the trained generator's beside a
        moving average."""
        variants = [(split, {})]
        if pl_module.has_ema:
            variants.append((f"{split}_no_ema", {"ema": False}))
        return variants

    # ------------------------------------------------------------------ accumulate and compute
    def _start(self, trainer, split: str) -> None:
        if self._active(trainer, split):
            self._draws[split] = torch.Generator().manual_seed(self.seed + trainer.global_rank)

    def _update(self, trainer, pl_module, batch, split: str) -> None:
        if not self._active(trainer, split):
            return
        real, labels = batch
        state = self._draws[split].get_state()
        for key, keywords in self._variants(pl_module, split):
            metric = self._metric(key, pl_module.device)
            if not self._real_done[key]:
                metric.update(real, real=True)
            self._draws[split].set_state(state)  # every variant draws the same noise
            fake = pl_module.sample(real.shape[0], labels=labels, generator=self._draws[split], **keywords)
            if torch.isfinite(fake).all():
                metric.update(fake, real=False)
            else:  # a diverged generator: its FID is NaN, which checkpointing ranks as the worst
                self._diverged.add(key)

    def _compute(self, trainer, pl_module, split: str) -> None:
        if not self._active(trainer, split):
            return
        for key, _ in self._variants(pl_module, split):
            if key not in self.distances:
                continue
            metric = self.distances[key]
            if key in self._diverged:
                log.warning(f"{key}: the generator produced NaN or infinite images; logging NaN for FID/KID")
                self._diverged.discard(key)
                values = {"fid": float("nan"), "kid_mean": float("nan"), "kid_std": float("nan")}
            else:
                values = metric.compute()
            self._real_done[key] = True
            metric.reset()  # clears the generated images' statistics; the real ones are kept
            suffix = key[len(split):]
            for name, value in values.items():
                # the same on every rank (all-gathered features): the mean keeps it, and Lightning stays quiet
                pl_module.log(f"{split}/{name}{suffix}", float(value), sync_dist=True)

    def on_validation_epoch_start(self, trainer, pl_module):
        self._start(trainer, "val")

    def on_test_epoch_start(self, trainer, pl_module):
        self._start(trainer, "test")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update(trainer, pl_module, batch, "val")

    def on_validation_epoch_end(self, trainer, pl_module):
        self._compute(trainer, pl_module, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update(trainer, pl_module, batch, "test")

    def on_test_epoch_end(self, trainer, pl_module):
        self._compute(trainer, pl_module, "test")


class ParzenEvaluation(Callback):
    """Parzen-window log-likelihood at test time, as Goodfellow et al. 2014 (Sec. 5, Table 1) report it.

    ``num_samples`` generated images (10,000 in the paper) define a Gaussian kernel density; sigma is
    chosen on the validation set over ``sigmas`` (default ``logspace(-1, 0, 10)``) and the test set's mean
    log-likelihood and standard error are logged in nats as ``test/parzen_ll``, ``test/parzen_ll_se`` and
    ``test/parzen_sigma``, on images scaled to ``[0, 1]`` (see :mod:`metrics.parzen`).

    Args:
        num_samples: generated images in the window.
        sigmas: the validation grid of bandwidths.
        max_points: use at most this many validation and test images (``None``: all).
        seed: seed of the generated samples (the same on every process).
    """

    def __init__(self, num_samples: int = 10000, sigmas: Sequence[float] | None = None,
                 max_points: int | None = None, seed: int = 0, batch_size: int = 1000) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"callbacks.parzen.num_samples must be positive, got {num_samples}")
        self.num_samples, self.sigmas, self.max_points = num_samples, sigmas, max_points
        self.seed, self.batch_size = seed, batch_size
        self.result = None

    @torch.no_grad()
    def generate(self, pl_module: LightningModule) -> torch.Tensor:
        """``num_samples`` images ``(N, C, H, W)`` in ``[-1, 1]`` from the module, drawn with ``seed``."""
        generator = torch.Generator().manual_seed(self.seed)
        chunks, left = [], self.num_samples
        while left > 0:
            n = min(self.batch_size, left)
            chunks.append(pl_module.sample(n, generator=generator).cpu())
            left -= n
        return torch.cat(chunks)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from metrics.parzen import parzen_evaluation

        if not uses_samples(pl_module):
            return
        datamodule = trainer.datamodule
        val = dataset_images(datamodule.dataset("val"), self.max_points)
        test = dataset_images(datamodule.dataset("test"), self.max_points)
        samples = self.generate(pl_module)
        if not torch.isfinite(samples).all():
            log.warning("test: the generator produced NaN or infinite images; logging NaN for the Parzen LL")
            pl_module.log_dict({"test/parzen_ll": float("nan"), "test/parzen_ll_se": float("nan")},
                               sync_dist=True)
            return
        self.result = parzen_evaluation(samples, val, test, sigmas=self.sigmas, signed_inputs=True)
        # the same on every rank (same seed, weights, whole splits): the mean keeps it, Lightning stays quiet
        pl_module.log_dict({"test/parzen_ll": self.result.mean, "test/parzen_ll_se": self.result.std_error,
                            "test/parzen_sigma": self.result.sigma}, sync_dist=True)
