"""Callbacks say when they skip a module, once, naming what it lacks; and they read nothing off a module but
the members of the protocol they checked (each is run on a stub that has exactly those members;
FeatureDistanceEvaluation's stub is ``tests/metrics/test_fid_evaluation.py``'s ``_Generator``, as its run trains
a feature network)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pytorch_lightning import LightningModule

from callbacks.colorization_grid import ColorizationGrid
from callbacks.evaluation import FeatureDistanceEvaluation, ParzenEvaluation
from callbacks.factor_scatter import FactorScatter
from callbacks.gmm_baseline import ShallowGMMBaseline
from callbacks.protocols import (
    Colorizer,
    Embeddings,
    FixedNoise,
    LatentPrior,
    ParameterCount,
    Samples,
    ScatteredFactors,
    Traversable,
    members,
    rank_zero_only,
)
from callbacks.samples import EmbeddingInterpolation, LatentInterpolation, SampleGrid
from callbacks.traversal import LatentTraversal
from datamodules.base import TensorImageDataset

pytestmark = pytest.mark.usefixtures("single_thread")


class Bare(LightningModule):
    """A module with none of the protocols' members."""


def only(protocol: type, **implementation) -> LightningModule:
    """A LightningModule whose members beyond ``LightningModule``'s are exactly ``protocol``'s, set from
    ``implementation``: a callback that reads anything else off it raises ``AttributeError``."""
    assert set(implementation) == set(members(protocol)), "a stub implements its protocol's members, no more"
    module = type(f"Only{protocol.__name__}", (LightningModule,), {})()
    for name, value in implementation.items():
        setattr(module, name, value)
    return module


def fake_trainer(datamodule=None) -> SimpleNamespace:
    """What the hooks read off a trainer, at epoch 0 with no logger."""
    return SimpleNamespace(current_epoch=0, global_step=0, loggers=[], datamodule=datamodule, callback_metrics={},
                           is_global_zero=True, received_sigterm=False)


def splits(**datasets) -> SimpleNamespace:
    """A datamodule offering :class:`callbacks.protocols.SplitDatasets` and nothing else."""
    return SimpleNamespace(dataset=datasets.__getitem__)


def skips(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "genforge" and " skips " in r.getMessage()]


@pytest.fixture
def genforge_log(caplog):
    caplog.set_level(logging.INFO, logger="genforge")
    return caplog


# (callback, its hooks in the order Lightning calls them, the protocol it checks on the module)
CASES = {
    "SampleGrid": (lambda tmp: SampleGrid(str(tmp)), ["on_train_epoch_end"], FixedNoise),
    "LatentInterpolation": (lambda tmp: LatentInterpolation(str(tmp), rows=2, steps=3), ["on_train_epoch_end"],
                            LatentPrior),
    "EmbeddingInterpolation": (lambda tmp: EmbeddingInterpolation(str(tmp), rows=2, steps=3),
                               ["on_train_epoch_end"], Embeddings),
    "ColorizationGrid": (lambda tmp: ColorizationGrid(str(tmp), rows=2), ["on_fit_start", "on_train_epoch_end"],
                         Colorizer),
    "LatentTraversal": (lambda tmp: LatentTraversal(str(tmp), rows=2, steps=2),
                        ["on_fit_start", "on_train_epoch_end"], Traversable),
    "FactorScatter": (lambda tmp: FactorScatter(str(tmp)), ["on_test_end"], ScatteredFactors),
    "ShallowGMMBaseline": (lambda tmp: ShallowGMMBaseline(max_train=200, max_iter=3, chunk_iter=2),
                           ["on_test_epoch_end"], ParameterCount),
    "FeatureDistanceEvaluation": (lambda tmp: FeatureDistanceEvaluation(cache_dir=str(tmp)), ["setup"], Samples),
    "ParzenEvaluation": (lambda tmp: ParzenEvaluation(num_samples=20, sigmas=[0.1, 1.0], batch_size=10),
                         ["on_test_epoch_end"], Samples),
}


def run_hooks(callback, hooks: list[str], trainer, module) -> None:
    for hook in hooks:
        getattr(callback, hook)(trainer, module, *(["fit"] if hook == "setup" else []))


# ======================================================================================== the skip line
@pytest.mark.parametrize("name", CASES)
def test_a_module_without_the_protocol_is_skipped_and_said_once(name, tmp_path, genforge_log):
    make, hooks, protocol = CASES[name]
    callback = make(tmp_path)
    for _ in range(2):  # two epochs (or tests): still one line
        run_hooks(callback, hooks, fake_trainer(), Bare())
    lacking = ", ".join(members(protocol))
    assert skips(genforge_log) == [f"{name} skips Bare: it has no {lacking} (callbacks.protocols.{protocol.__name__})"]
    assert [r.levelno for r in genforge_log.records if " skips " in r.getMessage()] == [logging.INFO]
    assert not list(tmp_path.iterdir())  # nothing rendered


def test_only_the_missing_members_are_named(tmp_path, genforge_log):
    partial = type("HalfNoise", (LightningModule,), {})()
    partial.fixed_z = torch.zeros(4, 16)
    partial.label_classes = 0
    SampleGrid(str(tmp_path)).on_train_epoch_end(fake_trainer(), partial)
    assert skips(genforge_log) == [("SampleGrid skips HalfNoise: it has no fixed_labels, generate "
                                    "(callbacks.protocols.FixedNoise)")]


def test_each_callback_instance_and_module_class_is_said_once(tmp_path, genforge_log):
    first, second = SampleGrid(str(tmp_path)), SampleGrid(str(tmp_path))
    for callback in (first, first, second):
        callback.on_train_epoch_end(fake_trainer(), Bare())
    other = type("Other", (LightningModule,), {})()
    first.on_train_epoch_end(fake_trainer(), other)
    assert [line.split(":")[0] for line in skips(genforge_log)] == \
        ["SampleGrid skips Bare", "SampleGrid skips Bare", "SampleGrid skips Other"]


def test_only_rank_zero_says_it(tmp_path, genforge_log, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    callback = ParzenEvaluation(num_samples=20)
    callback.on_test_epoch_end(fake_trainer(), Bare())  # would fail reading a datamodule if it did not skip
    assert skips(genforge_log) == []
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    ParzenEvaluation(num_samples=20).on_test_epoch_end(fake_trainer(), Bare())
    assert len(skips(genforge_log)) == 1


@pytest.mark.parametrize("datamodule,why", [
    (None, "the trainer has no datamodule"),
    (SimpleNamespace(), "its datamodule SimpleNamespace has no dataset"),
])
def test_a_datamodule_without_splits_is_said_with_the_module(datamodule, why, tmp_path, genforge_log):
    module = only(Traversable, factor_latent={"azimuth": 0}, traverse=None)
    callback = LatentTraversal(str(tmp_path))
    run_hooks(callback, ["on_fit_start", "on_train_epoch_end"], fake_trainer(datamodule), module)
    assert skips(genforge_log) == [f"LatentTraversal skips OnlyTraversable: {why} (callbacks.protocols.SplitDatasets)"]
    assert callback.last_path is None


def test_opting_out_of_sample_metrics_is_said(tmp_path, genforge_log):
    module = only(Samples, sample_metrics=False, has_ema=False, sample=None)
    callback = FeatureDistanceEvaluation(cache_dir=str(tmp_path))
    callback.setup(fake_trainer(), module, "fit")
    assert callback.enabled is False
    assert skips(genforge_log) == [("FeatureDistanceEvaluation skips OnlySamples: its sample_metrics is False: "
                                    "sample-based metrics do not apply to it (callbacks.protocols.Samples)")]


def test_a_module_without_embeddings_yet_is_said(tmp_path, genforge_log):
    module = only(Embeddings, fixed_z=torch.zeros(2, 1, 4, 4), embedding_pairs=lambda rows, generator=None: None,
                  generate_from_embeddings=None)
    callback = EmbeddingInterpolation(str(tmp_path))
    callback.on_train_epoch_end(fake_trainer(), module)
    callback.on_train_epoch_end(fake_trainer(), module)
    assert len(skips(genforge_log)) == 1 and "embedding_pairs() gives no embeddings" in skips(genforge_log)[0]
    assert callback.last_path is None


# ============================================================== stubs: the protocol's members are enough
def _images(z: torch.Tensor) -> torch.Tensor:
    """``(B, 16)`` latents as ``(B, 1, 4, 4)`` images in ``[-1, 1]``."""
    return z.reshape(-1, 1, 4, 4).tanh()


def test_sample_grid_renders_a_fixed_noise_stub_one_column_per_class(tmp_path, genforge_log):
    drawn = []

    def generate(z, labels=None):
        drawn.append(labels.tolist())
        return _images(z)

    module = only(FixedNoise, fixed_z=torch.randn(8, 16), fixed_labels=torch.arange(8) % 2, label_classes=2,
                  generate=generate)
    callback = SampleGrid(str(tmp_path))
    callback.on_train_epoch_end(fake_trainer(), module)
    assert drawn == [[0, 1, 0, 1, 0, 1, 0, 1]]
    assert callback.last_path == tmp_path / "samples_epoch_000.png" and callback.last_path.is_file()
    assert tuple(callback.render(module).shape) == (1, 4 * (4 + 2) + 2, 2 * (4 + 2) + 2)  # 4 rows of the 2 classes
    module.label_classes = 0  # unconditional: make_grid's default, ceil(sqrt(8)) = 3 a row
    assert tuple(callback.render(module).shape) == (1, 3 * (4 + 2) + 2, 3 * (4 + 2) + 2)
    assert skips(genforge_log) == []


def test_latent_interpolation_renders_a_latent_prior_stub(tmp_path, genforge_log):
    latents = []

    def generate(z, labels=None):
        latents.append(z)
        return _images(z)

    module = only(LatentPrior, fixed_z=torch.zeros(1, 16), fixed_labels=torch.zeros(1), label_classes=0,
                  generate=generate, noise=lambda n, generator=None: torch.randn(n, 16, generator=generator),
                  random_labels=lambda n, generator=None: None)
    callback = LatentInterpolation(str(tmp_path), rows=2, steps=3, mode="linear")
    callback.on_train_epoch_end(fake_trainer(), module)
    (z,) = latents
    assert z.shape == (6, 16)
    torch.testing.assert_close(z[1], (z[0] + z[2]) / 2)  # the middle of a row is halfway (linear)
    assert (tmp_path / "interpolation_epoch_000.png").is_file() and skips(genforge_log) == []


def test_embedding_interpolation_renders_an_embeddings_stub(tmp_path, genforge_log):
    seen = []

    def generate_from_embeddings(z, h):
        seen.append(h)
        return z * 0 + h[:, :1].view(-1, 1, 1, 1)

    module = only(Embeddings, fixed_z=torch.zeros(4, 1, 4, 4),
                  embedding_pairs=lambda rows, generator=None: (torch.zeros(rows, 2), torch.ones(rows, 2)),
                  generate_from_embeddings=generate_from_embeddings)
    callback = EmbeddingInterpolation(str(tmp_path), rows=2, steps=3)
    callback.on_train_epoch_end(fake_trainer(), module)
    h = seen[-1]
    torch.testing.assert_close(h[:, 0], torch.tensor([0.0, 0.5, 1.0, 0.0, 0.5, 1.0]))
    assert (tmp_path / "embedding_interpolation_epoch_000.png").is_file() and skips(genforge_log) == []


def test_colorization_grid_renders_a_colorizer_stub(tmp_path, genforge_log):
    val = [(torch.rand(3, 4, 4) * 2 - 1, 0) for _ in range(3)]
    module = only(Colorizer, colorize_rgb=lambda images: -images)
    callback = ColorizationGrid(str(tmp_path), rows=2)
    trainer = fake_trainer(splits(val=val))
    run_hooks(callback, ["on_fit_start", "on_train_epoch_end"], trainer, module)
    torch.testing.assert_close(callback._images, torch.stack([val[0][0], val[1][0]]))
    assert tuple(callback.render(module).shape) == (3, 2 * (4 + 2) + 2, 3 * (4 + 2) + 2)  # 2 rows of L|colour|true
    assert (tmp_path / "colorization_epoch_000.png").is_file() and skips(genforge_log) == []


def test_latent_traversal_renders_a_traversable_stub(tmp_path, genforge_log):
    val = [(torch.rand(5, 1, 4, 4) * 2 - 1, torch.zeros(5), 0) for _ in range(3)]
    module = only(Traversable, factor_latent={"azimuth": 0, "light": 2},
                  traverse=lambda images, factor, steps=8: images.unsqueeze(1).expand(-1, steps, -1, -1, -1))
    callback = LatentTraversal(str(tmp_path), rows=2, steps=2)
    run_hooks(callback, ["on_fit_start", "on_train_epoch_end"], fake_trainer(splits(val=val)), module)
    torch.testing.assert_close(callback.images, torch.stack([val[0][0][0], val[1][0][0]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traversal_azimuth_epoch_000.png",
                                                          "traversal_light_epoch_000.png"]
    assert skips(genforge_log) == []


def test_factor_scatter_plots_a_scattered_factors_stub(tmp_path, genforge_log):
    truth = torch.linspace(-1, 1, 10)
    module = only(ScatteredFactors, scatter={"azimuth": (2 * truth, truth)}, factor_latent={"azimuth": 1})
    callback = FactorScatter(str(tmp_path))
    callback.on_test_end(fake_trainer(), module)
    assert callback.paths == [tmp_path / "scatter_azimuth.png"] and callback.paths[0].is_file()
    assert skips(genforge_log) == []


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_gmm_baseline_fits_for_a_parameter_count_stub(genforge_log):
    rng = np.random.default_rng(0)
    patches = {split: SimpleNamespace(x=torch.from_numpy(rng.normal(size=(n, 5)))) for split, n in
               (("train", 300), ("test", 50))}
    module = only(ParameterCount, num_parameters=lambda: 3 * (5 + 15 + 1))  # 3 full-covariance components in 5-D
    callback = ShallowGMMBaseline(max_train=200, max_iter=3, chunk_iter=2)
    callback.on_test_epoch_end(fake_trainer(splits(**patches)), module)
    assert callback.result["gmm_components"] == 3 and callback.result["gmm_train_patches"] == 200
    assert np.isfinite(callback.result["gmm_log_likelihood"]) and skips(genforge_log) == []


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_parzen_evaluates_a_samples_stub(genforge_log):
    def dataset(n, seed):
        images = torch.randint(0, 256, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
        return TensorImageDataset(images, None)

    module = only(Samples, sample_metrics=True, has_ema=False,
                  sample=lambda n, labels=None, generator=None: torch.rand(n, 1, 4, 4, generator=generator) * 2 - 1)
    callback = ParzenEvaluation(num_samples=20, sigmas=[0.1, 1.0], batch_size=10)
    callback.on_test_epoch_end(fake_trainer(splits(val=dataset(8, 1), test=dataset(8, 2))), module)
    assert callback.result.sigma in (0.1, 1.0) and np.isfinite(callback.result.mean)
    assert skips(genforge_log) == []

