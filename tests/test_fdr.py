"""``debug=fdr`` is a smoke test of seconds for every preset (issue 31): the debug config caps what a real run
sizes for (the GMM baseline, FID's feature network, sample grids, interpolations, traversals, threads), the
capped callbacks still write their outputs, the GMM baseline fit stops on SIGTERM, and one-time costs are
announced. The wall times themselves are ``benchmarks/fdr.py``'s (not a test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tests.hydra_helpers import CONF, ROOT, compose_train, run_train

ALL_PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


# ------------------------------------------------------------------------------------------ the config
def test_fdr_caps_what_a_real_run_sizes(tmp_path):
    default = compose_train(["model=deep_gmm", "data=patches"], tmp_path / "default").callbacks
    fdr = compose_train(["model=deep_gmm", "data=patches", "debug=fdr"], tmp_path / "fdr").callbacks
    assert default.gmm_baseline.max_train is None and default.gmm_baseline.max_iter == 100
    assert fdr.gmm_baseline.max_train == 5000 and fdr.gmm_baseline.max_iter == 10
    assert default.evaluation.feature_epochs == 5 and fdr.evaluation.feature_epochs == 1
    assert fdr.parzen.num_samples == 200 < default.parzen.num_samples
    assert fdr.samples.max_images == 1 and default.samples.max_images is None
    assert fdr.embedding_interpolation.rows * fdr.embedding_interpolation.steps == 2
    assert fdr.interpolation.rows * fdr.interpolation.steps < default.interpolation.rows * default.interpolation.steps
    assert fdr.traversal.rows * fdr.traversal.steps < default.traversal.rows * default.traversal.steps
    assert fdr.colorization.rows < default.colorization.rows
    assert fdr.thread_limit.threads == 1 and "thread_limit" not in default


@pytest.mark.parametrize("preset", ALL_PRESETS)
def test_every_preset_composes_under_fdr_and_its_callbacks_take_the_caps(preset, tmp_path):
    from utils.config import instantiate_group

    cfg = compose_train([f"model={preset}", "debug=fdr"], tmp_path)
    assert cfg.trainer.fast_dev_run is True
    callbacks = {type(cb).__name__: cb for cb in instantiate_group(cfg.callbacks, "callbacks")}
    assert callbacks["SampleGrid"].max_images == 1
    assert callbacks["ShallowGMMBaseline"].max_train == 5000
    assert callbacks["ThreadLimit"].threads == 1
    assert callbacks["EmbeddingInterpolation"].rows == 1


# ------------------------------------------------------------------------------------------ the GMM baseline
def _patches(n: int, dim: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, dim))
    return centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, dim))


def test_chunked_fit_gives_the_parameters_of_one_fit():
    from lightning_modules.deep_gmm.shallow_gmm import fit_gmm

    x = _patches(600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = fit_gmm(x, 3, seed=1, max_iter=7)
        chunked = fit_gmm(x, 3, seed=1, max_iter=7, should_stop=lambda: False, chunk_iter=2, threads=1)
    assert chunked.n_iter_ == whole.n_iter_
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.covariances_, whole.covariances_, rtol=1e-10, atol=1e-12)


def test_fit_stops_between_chunks_when_told():
    from lightning_modules.deep_gmm.shallow_gmm import FitStopped, fit_gmm

    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2   # two chunks run, the third is refused

    uniform = np.random.default_rng(0).uniform(size=(600, 2))   # EM takes 20 iterations to converge here
    with pytest.raises(FitStopped) as stopped, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gmm(uniform, 8, max_iter=1000, should_stop=should_stop, chunk_iter=1)
    assert stopped.value.iterations == 2


def _fake_run(train: np.ndarray, test: np.ndarray, sigterm: bool = False):
    """A trainer and a module with what ShallowGMMBaseline reads: the patch datasets, num_parameters, log."""
    splits = {"train": SimpleNamespace(x=torch.from_numpy(train)), "test": SimpleNamespace(x=torch.from_numpy(test))}
    datamodule = SimpleNamespace(dataset=splits.__getitem__)
    trainer = SimpleNamespace(datamodule=datamodule, callback_metrics={"test/log_likelihood": torch.tensor(-5.0)},
                              received_sigterm=sigterm)
    logged = {}
    module = SimpleNamespace(num_parameters=lambda: 3 * (5 + 15 + 1), log=lambda k, v, **_: logged.__setitem__(k, v))
    return trainer, module, logged


def test_gmm_baseline_fits_on_at_most_max_train_patches_and_max_iter_iterations():
    from callbacks.gmm_baseline import ShallowGMMBaseline

    trainer, module, logged = _fake_run(_patches(900), _patches(200, seed=1))
    ShallowGMMBaseline(max_train=250, max_iter=3, chunk_iter=2).on_test_epoch_end(trainer, module)
    assert logged["test/gmm_train_patches"] == 250 and logged["test/gmm_components"] == 3
    assert 1 <= logged["test/gmm_iterations"] <= 3
    assert logged["test/gain_over_gmm"] == pytest.approx(-5.0 - logged["test/gmm_log_likelihood"])


def test_gmm_baseline_turns_a_sigterm_into_lightnings_exception():
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from callbacks.gmm_baseline import ShallowGMMBaseline

    trainer, module, logged = _fake_run(_patches(300), _patches(50, seed=1), sigterm=True)
    with pytest.raises(SIGTERMException):
        ShallowGMMBaseline().on_test_epoch_end(trainer, module)
    assert not logged


@pytest.mark.parametrize("key", ["max_iter", "max_train", "chunk_iter", "threads"])
def test_gmm_baseline_refuses_caps_below_one(key):
    from callbacks.gmm_baseline import ShallowGMMBaseline

    with pytest.raises(ValueError, match=f"callbacks.gmm_baseline.{key}"):
        ShallowGMMBaseline(**{key: 0})


# ------------------------------------------------------------------------------------------ other caps
def test_sample_grid_draws_at_most_max_images(tmp_path):
    from callbacks.samples import SampleGrid

    drawn = []

    def generate(z, labels):
        drawn.append(len(z))
        return z

    module = SimpleNamespace(fixed_z=torch.zeros(20, 1, 4, 4), fixed_labels=torch.arange(20) % 10,
                             generate=generate, label_classes=10)
    grid = SampleGrid(str(tmp_path), max_images=3).render(module)
    assert drawn == [3] and tuple(grid.shape) == (1, 4 + 2 * 2, 3 * (4 + 2) + 2)   # one row of 3 tiles
    assert tuple(SampleGrid(str(tmp_path)).render(module).shape) == (1, 2 * 6 + 2, 10 * 6 + 2)  # 20 as 2 rows of 10
    with pytest.raises(ValueError, match="callbacks.samples.max_images"):
        SampleGrid(str(tmp_path), max_images=0)


def test_thread_limit_holds_from_setup_to_teardown():
    from threadpoolctl import threadpool_info

    from callbacks.threads import ThreadLimit

    before = torch.get_num_threads()
    blas_before = [pool["num_threads"] for pool in threadpool_info()]
    limit = ThreadLimit(1)
    limit.setup(None, None, "fit")
    assert torch.get_num_threads() == 1 and all(pool["num_threads"] == 1 for pool in threadpool_info())
    limit.teardown(None, None, "fit")
    assert torch.get_num_threads() == before
    assert [pool["num_threads"] for pool in threadpool_info()] == blas_before
    with pytest.raises(ValueError, match="callbacks.thread_limit.threads"):
        ThreadLimit(0)


# ------------------------------------------------------------------------------------------ announcements
def test_a_cache_build_is_announced_in_one_line_before_it_starts(tmp_path, caplog):
    from datamodules.decoded_cache import cached_array

    decoded = []

    def decode(i: int) -> np.ndarray:
        decoded.append(i)
        return np.full((2, 3), i, dtype=np.uint8)

    caplog.set_level("INFO", logger="datamodules.decoded_cache")
    array = cached_array(tmp_path, "toy", {"source": "test"}, (10, 2, 3), decode, workers=0)
    assert int(array[7, 0, 0]) == 7
    lines = [r.getMessage() for r in caplog.records]
    announce = [i for i, line in enumerate(lines) if "decoded-image cache: building" in line]
    built = [i for i, line in enumerate(lines) if "decoded-image cache: built" in line]
    assert len(announce) == 1 and announce[0] < built[0]
    assert "10 images" in lines[announce[0]] and "about 1 s" in lines[announce[0]]
    assert "To build it ahead: python -m datamodules.prepare data=" in lines[announce[0]]
    caplog.clear()
    cached_array(tmp_path, "toy", {"source": "test"}, (10, 2, 3), decode, workers=0)
    assert not [r for r in caplog.records if "building" in r.getMessage()]   # reused: no announcement


def test_patch_extraction_is_announced(caplog):
    from datamodules.patches.photo_patches import PatchesDataModule

    caplog.set_level("INFO", logger="datamodules.patches.photo_patches")
    PatchesDataModule(train_patches=30, val_patches=10, test_patches=10).setup()
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("patches: extracting 30 train")]


def test_prepare_refuses_a_dataset_that_caches_nothing_on_disk():
    from datamodules.prepare import prepare
    from utils.errors import InputError

    faces = OmegaConf.load(CONF / "data" / "faces3d.yaml")
    with pytest.raises(InputError, match="keeps no decoded-image cache on disk"):
        prepare(OmegaConf.create({"data": faces}))


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.usefixtures("single_thread")
def test_capped_callbacks_still_write_their_outputs(tmp_path):
    metrics = run_train(["model=pixelcnn_autoencoder", "debug=fdr", "logger=csv"], tmp_path / "ae")
    from PIL import Image

    samples = tmp_path / "ae" / "samples"
    assert Image.open(samples / "samples_epoch_000.png").size == (28 + 4, 28 + 4)   # one image
    assert Image.open(samples / "embedding_interpolation_epoch_000.png").size == (2 * 30 + 2, 30 + 2)  # 1 x 2
    assert "test/reconstruction_bits_per_dim" in metrics
    metrics = run_train(["model=deep_gmm", "data=patches", "debug=fdr", "logger=csv"], tmp_path / "gmm")
    assert metrics["test/gmm_train_patches"] == 5000 and metrics["test/gmm_iterations"] <= 10
    assert np.isfinite(metrics["test/gain_over_gmm"])


@pytest.mark.slow
def test_sigterm_stops_the_gmm_baseline_fit(tmp_path):
    """Issue 31: `timeout`'s SIGTERM did not stop the baseline fit (minutes on all training patches)."""
    args = [sys.executable, "train.py", "model=deep_gmm", "data=patches", "debug=fdr", "logger=csv",
            "callbacks.gmm_baseline.max_train=null", "callbacks.gmm_baseline.max_iter=100000",
            "callbacks.gmm_baseline.chunk_iter=1", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while not any("Shallow baseline: fitting" in line for line in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines[-40:])
        time.sleep(0.2)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    waited = time.monotonic() - sent
    reader.join(timeout=10)
    out = "".join(lines)
    assert code == 143, out[-3000:]
    assert "SIGTERM: stopped the shallow GMM baseline after" in out
    assert waited < 60, f"{waited:.0f} s from SIGTERM to exit"
