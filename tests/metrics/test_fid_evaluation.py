"""FeatureDistanceEvaluation: what the FID is worth (feature-net quality), num_samples, the cached real
statistics, the Inception extra, and the one-time feature-net training announcement."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from pytorch_lightning import LightningModule, Trainer
from torch import nn

import metrics.fid as fid_module
from callbacks.evaluation import FeatureDistanceEvaluation
from datamodules.base import ImageDataModule, TensorImageDataset
from metrics.feature_quality import feature_quality
from metrics.real_stats import ImageFingerprint, load_real_statistics
from utils.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")


class _Twins(ImageDataModule):
    """Labels the images cannot predict: every image appears once with label 0 and once with label 1, in
    every split, so any classifier's VAL accuracy is exactly 1/2 (chance). ``tweak`` changes one VAL pixel
    (the same dataset identity, other data); ``labeled=False`` makes it unlabelled."""

    def __init__(self, tweak: bool = False, labeled: bool = True, batch_size: int = 8) -> None:
        super().__init__(batch_size=batch_size, image_size=8, channels=1, num_classes=2 if labeled else 0)
        self.tweak, self.labeled = tweak, labeled

    def build_splits(self):
        seeded = torch.Generator().manual_seed(0)
        base = torch.randint(0, 256, (26, 1, 8, 8), generator=seeded, dtype=torch.uint8)
        if self.tweak:
            base[20, 0, 0, 0] ^= 1

        def twins(images):
            labels = torch.cat([torch.zeros(len(images)), torch.ones(len(images))]).long()
            return TensorImageDataset(images.repeat(2, 1, 1, 1), labels if self.labeled else None)

        return {"train": twins(base[:20]), "val": twins(base[20:23]), "test": twins(base[23:])}


class _Generator(LightningModule):
    """The Samples protocol and nothing else: uniform noise images, every request recorded."""

    sample_metrics = True

    def __init__(self, has_ema: bool = False) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.has_ema = has_ema
        self.requests: list[tuple[int, torch.Tensor | None, bool]] = []

    def sample(self, num_samples, labels=None, generator=None, ema=True):
        self.requests.append((num_samples, None if labels is None else labels.cpu().clone(), ema))
        return torch.rand(num_samples, 1, 8, 8, generator=generator) * 2 - 1

    def training_step(self, batch, batch_idx):
        return self.layer(torch.ones(1, 1)).sum()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(callback, datamodule=None, module=None):
    """One epoch of one training batch and the whole validation split; returns (metrics, module)."""
    module = module or _Generator()
    trainer = Trainer(max_epochs=1, limit_train_batches=1, num_sanity_val_steps=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", callbacks=[callback])
    trainer.fit(module, datamodule=datamodule or _Twins())
    return {k: float(v) for k, v in trainer.callback_metrics.items()}, module


def _callback(cache, **kwargs):
    return FeatureDistanceEvaluation(cache_dir=str(cache), feature_epochs=1, num_features=8,
                                     kid_subset_size=4, **kwargs)


@pytest.fixture
def genforge_log(caplog):
    caplog.set_level(logging.INFO, logger="genforge")
    return caplog


def _lines(caplog, text):
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ============================================================================================ quality
def test_quality_is_zero_at_chance_and_one_when_perfect():
    chance = feature_quality({"task": "classify", "val_accuracy": 0.1, "val_chance_accuracy": 0.1})
    assert chance.quality == 0 and chance.poor
    perfect = feature_quality({"task": "classify", "val_accuracy": 1.0, "val_chance_accuracy": 0.1})
    assert perfect.quality == 1 and not perfect.poor
    attributes = feature_quality({"task": "multilabel", "val_accuracy": 0.95, "val_chance_accuracy": 0.8})
    assert attributes.quality == pytest.approx(0.75)
    # the auto-encoder: 1 - MSE / variance (R^2 against the mean image)
    ae = feature_quality({"task": "autoencode", "val_loss": 0.18, "val_variance": 0.2})
    assert ae.quality == pytest.approx(0.1) and ae.poor and "variance" in ae.describe()
    assert not feature_quality({"task": "autoencode", "val_loss": 0.02, "val_variance": 0.2}).poor
    # no validation images: unmeasurable, so poor
    empty = feature_quality({"task": "classify", "val_accuracy": None, "val_chance_accuracy": None})
    assert math.isnan(empty.quality) and empty.poor and "no validation images" in empty.describe()


def test_chance_accuracy_warns_in_one_line_and_the_quality_is_logged(tmp_path, genforge_log):
    metrics, _ = _fit(_callback(tmp_path))
    warnings = _lines(genforge_log, "is poor")
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert "validation accuracy 0.500 (chance 0.500): quality 0.00" in warnings[0]
    assert "callbacks.evaluation.feature_epochs" in warnings[0] and "docs/fid.md" in warnings[0]
    assert metrics["val/fid_feature_quality"] == 0.0 and math.isfinite(metrics["val/fid"])


def test_autoencoder_reconstruction_near_the_variance_warns(tmp_path, genforge_log):
    callback = _callback(tmp_path)
    metrics, _ = _fit(callback, _Twins(labeled=False))
    report = callback._net.metrics
    assert callback._net.task == "autoencode" and report["val_variance"] > 0
    want = 1 - report["val_loss"] / report["val_variance"]
    assert metrics["val/fid_feature_quality"] == pytest.approx(want, abs=1e-6)
    assert want < 0.2  # one epoch on 40 noise images explains nothing
    (line,) = _lines(genforge_log, "is poor")
    assert "reconstruction MSE" in line and "the data's variance" in line


def test_the_first_training_is_announced_with_the_command_that_builds_it_ahead(tmp_path, genforge_log):
    _fit(_callback(tmp_path))
    (line,) = _lines(genforge_log, "one-time cost")
    assert "python -m metrics.feature_net data=" in line and "epochs=1" in line and "num_features=8" in line
    assert "roughly" in line and str(tmp_path) in line
    genforge_log.clear()
    _fit(_callback(tmp_path))  # cached now: nothing to announce
    assert not _lines(genforge_log, "one-time cost")


# ============================================================================================ num_samples
def test_num_samples_draws_exactly_that_many_with_the_real_label_distribution(tmp_path):
    metrics, module = _fit(_callback(tmp_path, num_samples=25))
    sizes = [n for n, _, _ in module.requests]
    assert sum(sizes) == 25 and max(sizes) <= 8  # in batches of data.batch_size
    labels = torch.cat([lab for _, lab, _ in module.requests])
    assert len(labels) == 25 and abs(int((labels == 0).sum()) - 12.5) <= 0.5  # VAL holds 0s and 1s alike
    assert math.isfinite(metrics["val/fid"])


def test_num_samples_with_a_moving_average_draws_the_same_noise_for_both(tmp_path):
    _, module = _fit(_callback(tmp_path, num_samples=10), module=_Generator(has_ema=True))
    ema = [(n, lab) for n, lab, e in module.requests if e]
    raw = [(n, lab) for n, lab, e in module.requests if not e]
    assert sum(n for n, _ in ema) == sum(n for n, _ in raw) == 10
    assert all(torch.equal(a[1], b[1]) for a, b in zip(ema, raw))


def test_without_num_samples_one_generated_batch_per_real_batch(tmp_path):
    _, module = _fit(_callback(tmp_path))
    assert [n for n, _, _ in module.requests] == [6]  # VAL: 6 images, one batch


def test_num_samples_below_two_is_refused():
    with pytest.raises(InputError, match="callbacks.evaluation.num_samples"):
        FeatureDistanceEvaluation(cache_dir="unused", num_samples=1)


# ============================================================================================ real statistics
def test_real_statistics_are_cached_and_recomputed_when_the_data_changes(tmp_path, monkeypatch, genforge_log):
    real_updates = []
    original = fid_module.FeatureDistances.update

    def counted(self, images, real):
        if real:
            real_updates.append(len(images))
        return original(self, images, real)

    monkeypatch.setattr(fid_module.FeatureDistances, "update", counted)
    first, _ = _fit(_callback(tmp_path))
    assert sum(real_updates) == 6
    (path,) = tmp_path.glob("real_stats-_Twins-val-6-*.pt")
    stored = load_real_statistics(path)

    real_updates.clear()
    second, _ = _fit(_callback(tmp_path))  # a new run: reads the images, computes no real features
    assert real_updates == []
    assert _lines(genforge_log, "the real statistics of 6 images from")
    for name in ("val/fid", "val/kid_mean"):
        assert second[name] == pytest.approx(first[name], rel=1e-9, abs=1e-12)

    third, _ = _fit(_callback(tmp_path), _Twins(tweak=True))  # same identity, one pixel changed
    assert sum(real_updates) == 6
    assert _lines(genforge_log, "are not those of")
    assert load_real_statistics(path).fingerprint != stored.fingerprint  # rewritten in place

    real_updates.clear()
    _fit(_callback(tmp_path, cache_real=False))
    assert sum(real_updates) == 6


def test_the_fingerprint_ignores_batching_and_sees_every_pixel_and_label():
    images, labels = torch.rand(10, 1, 4, 4), torch.arange(10)

    def digest(chunks, imgs=images, labs=labels):
        fp = ImageFingerprint()
        for part in torch.arange(10).tensor_split(chunks):
            fp.update(imgs[part], labs[part])
        return fp.hexdigest()

    assert digest(1) == digest(3) == digest(10)
    changed = images.clone()
    changed[7, 0, 3, 3] += 1e-3
    assert digest(2, imgs=changed) != digest(2)
    assert digest(2, labs=labels.flip(0)) != digest(2)


# ============================================================================================ Inception
def test_inception_without_torch_fidelity_names_the_extra_in_one_line():
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    assert not _TORCH_FIDELITY_AVAILABLE, "this test checks the error; torch-fidelity is installed here"
    with pytest.raises(InputError) as info:
        FeatureDistanceEvaluation(cache_dir="unused", feature="inception", inception_weights="inception.pth")
    message = str(info.value)
    assert "\n" not in message and 'pip install -e ".[inception]"' in message
    assert "callbacks.evaluation.feature=inception" in message


# ============================================================================================ a real run
@pytest.mark.slow
def test_a_folder_of_60_own_images_warns_and_logs_the_quality(tmp_path, caplog):
    """The issue's case: ``data=image_folder`` on 60 unlabelled images, through train.py (debug=fdr)."""
    from PIL import Image

    from tests.hydra_helpers import run_train

    root = tmp_path / "photos"
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(60):
        pixels = torch.randint(0, 256, (20, 20, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(root / f"{i:02d}.png")
    caplog.set_level(logging.INFO, logger="genforge")
    metrics = run_train(["model=dcgan", "data=image_folder", f"data.root={root}", "data.image_size=32",
                         "debug=fdr", "logger=csv", "callbacks.evaluation.feature_epochs=1",
                         f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path / "run")
    (line,) = _lines(caplog, "is poor")
    assert "reconstruction MSE" in line
    assert metrics["val/fid_feature_quality"] < 0.2 and "test/fid_feature_quality" in metrics
    (announced,) = _lines(caplog, "one-time cost")
    assert "python -m metrics.feature_net data=image_folder data.root=" in announced
