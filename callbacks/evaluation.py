"""Sample-quality evaluation during validation and test: FID/KID (torchmetrics) and Parzen windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from callbacks.protocols import Samples, applies, offers, skip
from datamodules.base import dataset_images
from metrics.feature_quality import MIN_QUALITY
from utils.errors import InputError, MissingFileError

log = logging.getLogger("genforge")
#: how to install what ``feature=inception`` needs (the ``inception`` extra of pyproject.toml)
INCEPTION_INSTALL = 'pip install -e ".[inception]"'


def uses_samples(pl_module: LightningModule) -> bool:
    """Whether sample-based metrics apply: the module offers :class:`callbacks.protocols.Samples` and does
    not opt out with ``sample_metrics = False`` (autoregressive models, whose sequential sampling is too
    slow and whose metric is the likelihood)."""
    return offers(pl_module, Samples) and bool(pl_module.sample_metrics)


def measures(callback, pl_module: LightningModule) -> bool:
    """:func:`uses_samples`, for ``callback``: a module it does not measure is skipped, and the reason said
    once (:func:`callbacks.protocols.skip`): the members of :class:`callbacks.protocols.Samples` it lacks, or
    its ``sample_metrics = False``."""
    if not applies(callback, pl_module, Samples):
        return False
    if not pl_module.sample_metrics:
        skip(callback, pl_module, "its sample_metrics is False: sample-based metrics do not apply to it "
                                  "(callbacks.protocols.Samples)")
        return False
    return True


def _metric_names(splits: Sequence[str], names: Sequence[str],
                  suffixes: Sequence[str] = ("",)) -> tuple[str, ...]:
    """``<split>/<name><suffix>`` for every combination, in that order."""
    return tuple(f"{split}/{name}{suffix}" for split in splits for name in names for suffix in suffixes)


class FeatureDistanceEvaluation(Callback):
    """FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) of generated vs real images, logged as
    ``val/fid``, ``val/kid_mean``, ``val/kid_std`` each validation epoch and ``test/...`` at test.

    Features come from genforge's feature network for the dataset (:mod:`metrics.feature_net`: a small
    classifier trained on the dataset's labels, or an auto-encoder for unlabelled data, made once and cached
    under ``cache_dir``; its training is announced in one log line with the command that builds it ahead),
    or Inception-v3 with ``feature="inception"`` and ``inception_weights`` (the ``inception`` install extra,
    torch-fidelity; docs/fid.md). With genforge's network, its quality (:mod:`metrics.feature_quality`: 0 at
    chance, 1 perfect) is logged beside the metric on every evaluation as ``<split>/fid_feature_quality``,
    and a network below ``min_feature_quality`` is reported in one warning line when the run starts.

    Real side: the split's images (all of them; the first ``limit * batch_size`` under
    ``trainer.limit_{val,test}_batches`` or ``fast_dev_run``) are read from the DataModule's loader once per
    run, and their statistics cached per dataset, split and feature network
    (:mod:`metrics.real_stats`): a later run reads the images only to check they are unchanged.

    Generated side: by default one generated batch per real batch of the split (the same size, the same
    labels for a conditional model); with ``num_samples``, that many images in batches of the DataModule's
    ``batch_size``, whose labels cycle through a seeded permutation of the real labels (the real label
    distribution). Either way from a generator seeded with ``seed`` (plus the process's rank) at the start of
    every evaluation, so a checkpoint's numbers are the same from ``train.py``'s test and from
    ``evaluate.py``. A module whose samples come from a moving average of its generator (``has_ema``) also
    gets the trained generator's numbers, as ``<split>/fid_no_ema``, ``<split>/kid_mean_no_ema`` and
    ``<split>/kid_std_no_ema`` (the same noise).

    Args:
        cache_dir: where feature networks and real statistics are cached (``paths.cache_dir``/features).
        feature: ``"genforge"`` or ``"inception"``.
        inception_weights: path of the Inception weights file (torch-fidelity's ``pt_inception-2015-12-05``)
            for ``feature="inception"``; ``None`` lets torch-fidelity download it.
        feature_epochs, num_features: training settings of the feature network.
        seed: seed of the feature network's training and of the generated samples.
        kid_subset_size: KID subset size (clamped to the number of images available).
        every_n_epochs: evaluate every n-th validation epoch (the metric keeps its last value between).
        num_samples: generated images per evaluation (papers: 10,000 or 50,000); ``None``: one batch per
            real batch.
        cache_real: cache the real statistics across runs (``False``: computed once per run).
        min_feature_quality: quality below which the feature network is reported as poor.

    Raises:
        utils.errors.InputError: an unknown ``feature``, ``num_samples`` below 2, ``feature="inception"``
            without torch-fidelity (naming the ``inception`` extra).
        utils.errors.MissingFileError: ``inception_weights`` names no file.
    """

    #: what it logs (utils.monitor checks ``optimized_metric`` against it before training)
    LOGGED_METRICS = _metric_names(("val", "test"), ("fid", "kid_mean", "kid_std"), ("", "_no_ema")) + \
        _metric_names(("val", "test"), ("fid_feature_quality",))
    #: the modules it evaluates (the others get nothing logged)
    applies_to = staticmethod(uses_samples)

    def __init__(self, cache_dir: str, feature: str = "genforge", inception_weights: str | None = None,
                 feature_epochs: int = 5, num_features: int = 128, seed: int = 0,
                 kid_subset_size: int = 1000, every_n_epochs: int = 1, num_samples: int | None = None,
                 cache_real: bool = True, min_feature_quality: float = MIN_QUALITY) -> None:
        super().__init__()
        if feature not in ("genforge", "inception"):
            raise InputError(f"callbacks.evaluation.feature must be 'genforge' or 'inception', "
                             f"got {feature!r}")
        if num_samples is not None and (isinstance(num_samples, bool) or int(num_samples) != num_samples
                                        or num_samples < 2):
            raise InputError(f"callbacks.evaluation.num_samples must be an integer >= 2 (FID/KID need two "
                             f"images) or null (one generated batch per real batch), got {num_samples!r}")
        if feature == "inception":
            check_inception(inception_weights)
        self.cache_dir, self.feature, self.inception_weights = cache_dir, feature, inception_weights
        self.feature_epochs, self.num_features, self.seed = feature_epochs, num_features, seed
        self.kid_subset_size, self.every_n_epochs = kid_subset_size, every_n_epochs
        self.num_samples = None if num_samples is None else int(num_samples)
        self.cache_real, self.min_feature_quality = cache_real, min_feature_quality
        self.distances: dict[str, object] = {}
        self.enabled = True
        self.quality = None  # metrics.feature_quality.FeatureQuality of genforge's network
        # split -> metrics.real_stats.RealStatistics (its labels; on rank 0 the state too)
        self.real: dict[str, object] = {}
        self._diverged: set[str] = set()
        self._net = None
        self._draws: dict[str, torch.Generator] = {}

    # ------------------------------------------------------------------ set-up
    def _feature_network(self, trainer: Trainer):
        from metrics.feature_net import feature_net_path, inception_feature, load_or_train_feature_net

        if self.feature == "inception":
            return inception_feature(self.inception_weights)
        if trainer.datamodule is None:
            raise RuntimeError("FeatureDistanceEvaluation needs the Trainer to be given a datamodule")
        datamodule = trainer.datamodule
        settings = {"epochs": self.feature_epochs, "seed": self.seed, "num_features": self.num_features}

        def build():
            if not feature_net_path(datamodule, self.cache_dir, **settings).exists():
                log.info(training_announcement(datamodule, self.cache_dir, **settings))
            return load_or_train_feature_net(datamodule, self.cache_dir, **settings)

        # rank 0 trains and caches; the others load after it
        net = build() if trainer.is_global_zero else None
        trainer.strategy.barrier("genforge-feature-net")
        return net if net is not None else build()

    def _judge(self, trainer: Trainer) -> None:
        """Score genforge's network on VAL; one warning line when it is poor."""
        from metrics.feature_net import evaluate_feature_net
        from metrics.feature_quality import feature_quality

        report = dict(getattr(self._net, "metrics", None) or {})
        if "val_variance" not in report:  # a cache file written before the baselines were recorded
            report.update(evaluate_feature_net(self._net, trainer.datamodule))
        self.quality = feature_quality({**report, "task": self._net.task}, self.min_feature_quality)
        if not trainer.is_global_zero:
            return
        path = getattr(self._net, "cache_path", "genforge's feature network")
        if self.quality.poor:
            log.warning(f"FID/KID features: the feature network {path} is poor ({self.quality.describe()}, "
                        f"below {self.min_feature_quality}): FID/KID in its space say little about the "
                        f"samples (logged as <split>/fid_feature_quality); train it longer "
                        f"(callbacks.evaluation.feature_epochs), give it more (labelled) data, or use "
                        f"Inception features (docs/fid.md)")
        else:
            log.info(f"FID/KID features: {path} ({self.quality.describe()})")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.enabled = measures(self, pl_module)  # methods that do not sample (colorization) are skipped
        if self.enabled and self._net is None:
            # the run's random state does not depend on whether the network is trained (a first run) or
            # loaded (building a module draws its initial weights): both runs train alike
            with torch.random.fork_rng(devices=[]):
                self._net = self._feature_network(trainer)
            if self.feature == "genforge":
                self._judge(trainer)

    def _metric(self, key: str, device: torch.device):
        from metrics.fid import FeatureDistances

        if key not in self.distances:
            self.distances[key] = FeatureDistances(self._net, kid_subset_size=self.kid_subset_size)
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

    # ------------------------------------------------------------------ the real side
    @staticmethod
    def _real_count(trainer: Trainer, split: str, available: int) -> int:
        """The real images of ``split`` the evaluation uses: all, or under a batch limit (``limit_*_batches``,
        ``fast_dev_run``) the first ``batches * batch_size`` over all processes."""
        limit = trainer.limit_val_batches if split == "val" else trainer.limit_test_batches
        batches = trainer.num_val_batches if split == "val" else trainer.num_test_batches
        batch_size = getattr(trainer.datamodule, "batch_size", None)
        if (isinstance(limit, float) and limit >= 1.0) or not batches or not batch_size:
            return available
        return int(min(available, batches[0] * batch_size * trainer.world_size))

    def _prepare_real(self, trainer: Trainer, pl_module: LightningModule, split: str):
        """The split's :class:`metrics.real_stats.RealStatistics`: from the cache when its fingerprint
        matches the split's images, else computed (rank 0; the other ranks only read the labels, which
        ``num_samples`` needs) and cached."""
        from metrics.feature_net import data_identity
        from metrics.fid import FeatureDistances
        from metrics.real_stats import (
            RealStatistics,
            load_real_statistics,
            module_fingerprint,
            real_stats_path,
            save_real_statistics,
            scan_split,
        )

        datamodule = trainer.datamodule
        count = self._real_count(trainer, split, len(datamodule.dataset(split)))

        def batches():
            return getattr(datamodule, f"{split}_dataloader")()

        if not trainer.is_global_zero:
            labels = scan_split(batches(), count)[1] if self.num_samples is not None else torch.zeros(0)
            return RealStatistics("", labels, {})
        path = None
        if self.cache_real:
            path = real_stats_path(self.cache_dir, data_identity(datamodule), split, count,
                                   module_fingerprint(self._net))
            cached = load_real_statistics(path)
            if cached is not None:
                fingerprint, _ = scan_split(batches(), count)
                if fingerprint == cached.fingerprint:
                    log.info(f"FID/KID {split}: the real statistics of {count} images from {path}")
                    return cached
                log.info(f"FID/KID {split}: the {split} images are not those of {path}; recomputing their "
                         "statistics")
        metric = FeatureDistances(self._net, kid_subset_size=self.kid_subset_size).to(pl_module.device)
        with torch.no_grad():
            fingerprint, labels = scan_split(batches(), count, metric)
        stats = RealStatistics(fingerprint, labels, metric.real_state())
        if path is not None:
            save_real_statistics(stats, path)
            log.info(f"FID/KID {split}: real statistics of {count} images cached at {path}")
        return stats

    # ------------------------------------------------------------------ accumulate and compute
    def _start(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        if not self._active(trainer, split):
            return
        self._draws[split] = torch.Generator().manual_seed(self.seed + trainer.global_rank)
        if split not in self.real:
            with torch.random.fork_rng(devices=[]):  # the loaders' shuffling must not move the run's RNG
                self.real[split] = self._prepare_real(trainer, pl_module, split)
            state = self.real[split].state if trainer.is_global_zero else None
            for key, _ in self._variants(pl_module, split):
                self._metric(key, pl_module.device).load_real_state(state)

    def _add_fake(self, key: str, fake: torch.Tensor) -> None:
        if torch.isfinite(fake).all():
            self.distances[key].update(fake, real=False)
        else:  # a diverged generator: its FID is NaN, which checkpointing ranks as the worst
            self._diverged.add(key)

    def _update(self, trainer, pl_module, batch, split: str) -> None:
        if not self._active(trainer, split) or self.num_samples is not None:
            return
        real, labels = batch
        state = self._draws[split].get_state()
        for key, keywords in self._variants(pl_module, split):
            self._metric(key, pl_module.device)
            self._draws[split].set_state(state)  # every variant draws the same noise
            self._add_fake(key, pl_module.sample(real.shape[0], labels=labels, generator=self._draws[split],
                                                 **keywords))

    @torch.no_grad()
    def _generate(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        """``num_samples`` generated images (this process's contiguous share under DDP), in batches of the
        DataModule's ``batch_size``; labels from a seeded permutation of the real ones, cycled."""
        real_labels = self.real[split].labels
        order = torch.randperm(len(real_labels), generator=torch.Generator().manual_seed(self.seed))
        share = torch.tensor_split(torch.arange(self.num_samples), trainer.world_size)[trainer.global_rank]
        batch_size = getattr(trainer.datamodule, "batch_size", None) or 64
        state = self._draws[split].get_state()
        for key, keywords in self._variants(pl_module, split):
            self._metric(key, pl_module.device)
            self._draws[split].set_state(state)  # every variant draws the same noise
            for chunk in share.split(batch_size):
                labels = real_labels[order[chunk % len(real_labels)]].to(pl_module.device)
                self._add_fake(key, pl_module.sample(len(chunk), labels=labels, generator=self._draws[split],
                                                     **keywords))

    def _compute(self, trainer, pl_module, split: str) -> None:
        if not self._active(trainer, split):
            return
        if self.num_samples is not None:
            self._generate(trainer, pl_module, split)
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
            metric.reset()  # clears the generated images' statistics; the real ones are kept
            suffix = key[len(split):]
            for name, value in values.items():
                # the same on every rank (all-gathered features): the mean keeps it, and Lightning stays quiet
                pl_module.log(f"{split}/{name}{suffix}", float(value), sync_dist=True)
        if self.quality is not None:  # what the FID above is worth (the same on every rank)
            pl_module.log(f"{split}/fid_feature_quality", float(self.quality.quality), sync_dist=True)

    def on_validation_epoch_start(self, trainer, pl_module):
        self._start(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer, pl_module):
        self._start(trainer, pl_module, "test")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update(trainer, pl_module, batch, "val")

    def on_validation_epoch_end(self, trainer, pl_module):
        self._compute(trainer, pl_module, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update(trainer, pl_module, batch, "test")

    def on_test_epoch_end(self, trainer, pl_module):
        self._compute(trainer, pl_module, "test")


def check_inception(weights: str | None) -> None:
    """Fail before training when ``feature=inception`` cannot run: torch-fidelity missing (naming the
    ``inception`` install extra) or ``inception_weights`` naming no file.

    Raises:
        utils.errors.InputError, utils.errors.MissingFileError: as above, one line each.
    """
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise InputError(f"callbacks.evaluation.feature=inception needs torch-fidelity, which is not "
                         f"installed: {INCEPTION_INSTALL} (docs/fid.md), or use "
                         f"callbacks.evaluation.feature=genforge")
    if weights is not None and not Path(weights).expanduser().is_file():
        raise MissingFileError(f"callbacks.evaluation.inception_weights={weights} is not a file; expected "
                               "torch-fidelity's Inception weights (pt_inception-2015-12-05-6726825d.pth, "
                               "docs/fid.md) or null to let torch-fidelity download them")


def training_announcement(datamodule, cache_dir: str, epochs: int, seed: int, num_features: int) -> str:
    """The one line said before genforge's feature network is trained: what, roughly how long, where it is
    cached, and the command that builds it ahead (with the run's ``data=`` choice and its ``data.*`` /
    ``paths.*`` overrides when Hydra runs)."""
    from hydra.core.hydra_config import HydraConfig

    from metrics.feature_net import build_command, estimated_training_seconds

    data, overrides = "<name>", []
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        data = hydra_cfg.runtime.choices.get("data") or data
        overrides = [o for o in hydra_cfg.overrides.task if o.split("=", 1)[0].lstrip("+~").startswith(
            ("data.", "paths."))]
    seconds = estimated_training_seconds(datamodule, epochs)
    return (f"FID/KID features: training genforge's feature network for {type(datamodule).__name__} once, a "
            f"one-time cost ({epochs} epochs over {len(datamodule.dataset('train'))} images, roughly "
            f"{max(1, round(seconds))} s on a CPU, less on a GPU), cached in {cache_dir} for later runs; "
            f"build it ahead with `{build_command(data, overrides, epochs, seed, num_features)}` "
            f"(conf/features.yaml)")


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

    #: what it logs (utils.monitor checks ``optimized_metric`` against it before training)
    LOGGED_METRICS = _metric_names(("test",), ("parzen_ll", "parzen_ll_se", "parzen_sigma"))
    #: the modules it evaluates
    applies_to = staticmethod(uses_samples)

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

        if not measures(self, pl_module):
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
