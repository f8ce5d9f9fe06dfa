"""Tests of metrics/: Parzen-window log-likelihood, the per-dataset feature network, FID/KID."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch.utils.data import DataLoader

import metrics.feature_net as fn
from datamodules.base import ImageDataModule, TensorImageDataset
from datamodules.images.digits import DigitsDataModule
from datamodules.images.mnist5k import MNIST5kDataModule
from metrics.fid import FeatureDistances, resolve_feature
from metrics.parzen import (
    DEFAULT_SIGMAS,
    ParzenResult,
    parzen_evaluation,
    parzen_log_likelihood,
    select_sigma,
)

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("single_thread")


# ============================================================================================= Parzen
@pytest.mark.parametrize("dim", [1, 5, 784])
@pytest.mark.parametrize("sigma", [0.1, 0.37, 2.0])
def test_parzen_one_sample_is_the_gaussian_logpdf(dim, sigma):
    g = np.random.default_rng(dim)
    s = g.random(dim)
    x = g.random((40, dim))
    got = parzen_log_likelihood(x, [s], sigma).numpy()
    want = multivariate_normal(mean=s, cov=sigma**2 * np.eye(dim)).logpdf(x)
    np.testing.assert_allclose(got, np.atleast_1d(want), rtol=1e-10, atol=1e-8)


def test_parzen_many_samples_approach_the_smoothed_gaussian():
    """Samples s ~ N(mu, tau^2 I): E_s[p_hat(x)] = N(x; mu, (tau^2 + sigma^2) I) =: p_sigma(x).

    Tolerance, derived (delta method): log p_hat = log p_sigma + d - d^2/2 + ..., d = p_hat/p_sigma - 1.
    Averaged over the test points x_a, mean(d) = (1/M) sum_i g(s_i) - 1 with g(s) = mean_a K(x_a - s)/p_sigma(x_a),
    so Var[mean(d)] = Var_s[g] / M, where E_s[K(x_a - s) K(x_b - s)] =
    N(x_a - x_b; 0, 2 sigma^2 I) N((x_a + x_b)/2; mu, (tau^2 + sigma^2/2) I) in closed form. The bias is
    -E[d^2]/2 = -rv/2, rv(x) = (E_s[K^2] / p_sigma^2 - 1) / M. Tolerance: |bias| + 5 standard deviations.
    """
    dim, tau, m, n = 2, 1.0, 20_000, 1_000
    mu = np.array([0.5, -0.3])
    g = np.random.default_rng(0)
    samples = mu + tau * g.standard_normal((m, dim))
    val = mu + tau * g.standard_normal((n, dim))
    test = mu + tau * g.standard_normal((n, dim))
    grid = np.logspace(-2, 0, 21)

    sigma, _ = select_sigma(val, samples, grid)
    ll = parzen_log_likelihood(test, samples, sigma).numpy()
    smoothed = multivariate_normal(mu, (tau**2 + sigma**2) * np.eye(dim)).logpdf(test)
    true = multivariate_normal(mu, tau**2 * np.eye(dim)).logpdf(test)

    p = np.exp(smoothed)
    ek2 = (4 * np.pi * sigma**2) ** (-dim / 2) * multivariate_normal(mu, (tau**2 + sigma**2 / 2) * np.eye(dim)).pdf(test)
    rv = (ek2 / p**2 - 1) / m
    diff = test[:, None, :] - test[None, :, :]
    mid = (test[:, None, :] + test[None, :, :]) / 2
    pair = (np.exp(-np.sum(diff**2, -1) / (4 * sigma**2)) / (4 * np.pi * sigma**2) ** (dim / 2)
            * np.exp(-np.sum((mid - mu) ** 2, -1) / (2 * (tau**2 + sigma**2 / 2)))
            / (2 * np.pi * (tau**2 + sigma**2 / 2)) ** (dim / 2))
    var_g = (pair / np.outer(p, p)).mean() - 1.0
    tol = rv.mean() / 2 + 5 * math.sqrt(var_g / m)
    assert abs(ll.mean() - smoothed.mean()) < tol, (ll.mean(), smoothed.mean(), tol)

    # the kernel's smoothing costs E_x[log N(mu, tau^2) - log N(mu, tau^2 + sigma^2)] = D/2 (log(1+r) - r/(1+r))
    r = sigma**2 / tau**2
    gap = dim / 2 * (math.log1p(r) - r / (1 + r))
    assert abs(ll.mean() - true.mean()) < tol + gap + 4 * np.std(smoothed - true) / math.sqrt(n)
    # the likelihood-optimal bandwidth is of the order of Silverman's rule tau (4 / ((D + 2) M))^(1/(D+4))
    silverman = tau * (4 / ((dim + 2) * m)) ** (1 / (dim + 4))
    assert silverman / 2 < sigma < 2 * silverman, (sigma, silverman)


def test_select_sigma_is_the_brute_force_argmax():
    g = torch.Generator().manual_seed(1)
    samples = torch.rand(300, 30, generator=g, dtype=torch.float64)
    val = torch.rand(120, 30, generator=g, dtype=torch.float64)
    grid = np.logspace(-1, 0, 10)
    best, per_sigma = select_sigma(val, samples, grid)
    brute = [parzen_log_likelihood(val, samples, s).mean().item() for s in grid]
    assert best == grid[int(np.argmax(brute))]
    assert list(per_sigma) == [float(s) for s in grid]
    np.testing.assert_allclose(list(per_sigma.values()), brute, rtol=1e-12)
    assert 0 < int(np.argmax(brute)) < len(grid) - 1  # an interior optimum: the check is not vacuous
    assert select_sigma(val, samples)[1].keys() == set(DEFAULT_SIGMAS)


def test_parzen_evaluation_protocol_and_standard_error():
    g = torch.Generator().manual_seed(2)
    samples = torch.rand(200, 1, 4, 4, generator=g) * 2 - 1  # genforge images in [-1, 1]
    val = torch.rand(50, 1, 4, 4, generator=g) * 2 - 1
    test = torch.rand(70, 1, 4, 4, generator=g) * 2 - 1
    res = parzen_evaluation(samples, val, test)
    assert isinstance(res, ParzenResult)
    unit = [(t.double() + 1) / 2 for t in (samples, val, test)]
    best, per_sigma = select_sigma(unit[1], unit[0], DEFAULT_SIGMAS)
    ll = parzen_log_likelihood(unit[2], unit[0], best).numpy()
    assert res.sigma == best and res.per_sigma == per_sigma
    assert res.mean == pytest.approx(ll.mean(), rel=1e-12)
    assert res.std_error == pytest.approx(ll.std() / math.sqrt(len(ll)), rel=1e-12)
    # the same numbers from [0, 1] inputs with signed_inputs=False
    res01 = parzen_evaluation(*unit, signed_inputs=False)
    assert res01.mean == pytest.approx(res.mean, rel=1e-12) and res01.sigma == res.sigma
    with pytest.raises(ValueError, match="signed_inputs"):
        parzen_evaluation(samples, val, test, signed_inputs=False)


def test_parzen_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(3)
    samples = torch.rand(1000, 64, generator=g, dtype=torch.float64)
    x = torch.rand(300, 64, generator=g, dtype=torch.float64)
    whole = parzen_log_likelihood(x, samples, 0.2, batch_size=None, sample_batch_size=None)
    for bx, bs in [(1, 7), (64, 100), (299, 999), (7, None), (None, 13)]:
        chunked = parzen_log_likelihood(x, samples, 0.2, batch_size=bx, sample_batch_size=bs)
        assert torch.allclose(chunked, whole, rtol=0, atol=1e-9), (bx, bs)
    # far-away points (every kernel underflows in float64 exp) still get finite values
    far = parzen_log_likelihood(x + 100.0, samples, 0.1, sample_batch_size=10)
    assert torch.isfinite(far).all()


def test_parzen_errors_are_clear():
    s = torch.rand(10, 4)
    with pytest.raises(ValueError, match="dimensions"):
        parzen_log_likelihood(torch.rand(3, 5), s, 0.1)
    with pytest.raises(ValueError, match="empty"):
        parzen_log_likelihood(torch.rand(0, 4), s, 0.1)
    with pytest.raises(ValueError, match="empty"):
        parzen_log_likelihood(torch.rand(3, 4), [], 0.1)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            parzen_log_likelihood(torch.rand(3, 4), s, bad)
    with pytest.raises(ValueError, match="sigma"):
        select_sigma(torch.rand(3, 4), s, [0.1, 0.0])
    with pytest.raises(ValueError, match="sigma"):
        select_sigma(torch.rand(3, 4), s, [])
    with pytest.raises(ValueError, match="shape"):
        parzen_log_likelihood(torch.rand(4), s, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        parzen_log_likelihood(torch.full((2, 4), float("nan")), s, 0.1)
    with pytest.raises(ValueError, match="batch_size"):
        parzen_log_likelihood(torch.rand(3, 4), s, 0.1, batch_size=0)
    with pytest.raises(ValueError, match="dimensions"):
        parzen_evaluation(s, torch.rand(3, 4), torch.rand(3, 5), signed_inputs=False)


# ============================================================================================= feature net
@pytest.fixture(scope="module")
def mnist():
    dm = MNIST5kDataModule()
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def mnist_net(mnist, tmp_path_factory):
    cache = tmp_path_factory.mktemp("feature_cache")
    net = fn.load_or_train_feature_net(mnist, cache, epochs=1, seed=0)
    return net, cache


def _all_images(dm, split):
    return next(iter(DataLoader(dm.dataset(split), batch_size=len(dm.dataset(split)))))[0]


class _Counter:
    """Wraps train_feature_net to count calls (so a test can tell a cache load from a training)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = fn.train_feature_net

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(fn, "train_feature_net", counted)


@pytest.mark.slow
def test_feature_net_trains_on_mnist5k_and_is_cached(mnist, mnist_net, monkeypatch):
    net, cache = mnist_net
    acc = net.metrics["val_accuracy"]
    print(f"\nfeature net on mnist5k, 1 epoch: val accuracy {acc:.4f}, trained in "
          f"{net.metrics['train_seconds']:.1f} s")
    assert acc > 0.8
    assert net.metrics["task"] == "classify"
    assert net.cache_path.is_file() and net.cache_path.parent == cache
    assert net.cache_path.name.startswith("feature_net-MNIST5kDataModule-28px-1ch-10cls-")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    net.train()  # e.g. Lightning's .train() on a parent module: a frozen net stays in eval mode
    assert not net.training and not net.trunk[0][1].training

    counter = _Counter(monkeypatch)
    mtime = net.cache_path.stat().st_mtime_ns
    again = fn.load_or_train_feature_net(mnist, cache, epochs=1, seed=0)
    assert counter.calls == 0 and net.cache_path.stat().st_mtime_ns == mtime
    assert again.metrics["val_accuracy"] == acc
    x = _all_images(mnist, "test")[:16]
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)
    assert again(x).shape == (16, 128) and again.num_features == 128


def test_feature_net_key_follows_the_settings(mnist):
    base = fn.feature_net_key(mnist, epochs=5, seed=0)
    assert base == fn.feature_net_key(mnist, epochs=5, seed=0)
    assert base != fn.feature_net_key(mnist, epochs=4, seed=0)
    assert base != fn.feature_net_key(mnist, epochs=5, seed=1)
    assert base != fn.feature_net_key(mnist, epochs=5, seed=0, num_features=64)
    assert base != fn.feature_net_key(MNIST5kDataModule(split_seed=1), epochs=5, seed=0)
    assert base != fn.feature_net_key(MNIST5kDataModule(image_size=32), epochs=5, seed=0)


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch):
    dm = DigitsDataModule()
    counter = _Counter(monkeypatch)
    net = fn.load_or_train_feature_net(dm, tmp_path, epochs=1, num_features=16)
    assert counter.calls == 1 and net.metrics["val_accuracy"] > 0.3
    path = net.cache_path
    for garbage in (b"not a torch file", path.read_bytes()[:100]):
        path.write_bytes(garbage)
        with pytest.warns(UserWarning, match="rebuilding"):
            rebuilt = fn.load_or_train_feature_net(dm, tmp_path, epochs=1, num_features=16)
        x = _all_images(dm, "val")[:8]
        torch.testing.assert_close(rebuilt(x), net(x))  # same seed, same net
    calls = counter.calls
    fn.load_or_train_feature_net(dm, tmp_path, epochs=1, num_features=16)
    assert counter.calls == calls  # the rebuilt file loads
    # a cache file under an explicit key made with other settings is rebuilt too
    fn.load_or_train_feature_net(dm, tmp_path, key="mine", epochs=1, num_features=16)
    with pytest.warns(UserWarning, match="other settings"):
        other = fn.load_or_train_feature_net(dm, tmp_path, key="mine", epochs=1, num_features=8)
    assert other.num_features == 8
    with pytest.raises(ValueError, match="not a genforge feature-net cache"):
        torch.save({"weights": torch.zeros(1)}, tmp_path / "x.pt")
        fn.load_feature_net(tmp_path / "x.pt")


@pytest.mark.parametrize("size", [8, 28, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_feature_net_shapes(size, channels):
    for task, k in (("classify", 10), ("autoencode", 0)):
        net = fn.FeatureNet(in_channels=channels, num_classes=k, num_features=24, image_size=size, task=task)
        x = torch.rand(2, channels, size, size) * 2 - 1
        assert net(x).shape == (2, 24)
        if task == "classify":
            assert net.logits(x).shape == (2, 10)
        else:
            rec = net.reconstruct(x)
            assert rec.shape == x.shape and rec.abs().max() <= 1


class _UnlabeledDigits(DigitsDataModule):
    """The digits with their labels dropped: num_classes == 0, labels -1."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = 0

    def build_splits(self):
        self.num_classes = 10
        splits = super().build_splits()
        self.num_classes = 0
        return {k: TensorImageDataset(ds.images) for k, ds in splits.items()}


class _AttributeData(ImageDataModule):
    """Tiny multi-hot dataset: attribute k = mean brightness of quadrant k above 0."""

    def build_splits(self):
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (300, 3, 12, 12), dtype=torch.uint8, generator=g)
        x = images.float() / 127.5 - 1
        quads = torch.stack([x[:, :, :6, :6].mean((1, 2, 3)), x[:, :, :6, 6:].mean((1, 2, 3)),
                             x[:, :, 6:, :6].mean((1, 2, 3)), x[:, :, 6:, 6:].mean((1, 2, 3))], 1)
        labels = (quads > 0).float()
        return {"train": TensorImageDataset(images[:200], labels[:200]),
                "val": TensorImageDataset(images[200:250], labels[200:250]),
                "test": TensorImageDataset(images[250:], labels[250:])}


def test_unlabeled_data_falls_back_to_an_autoencoder(tmp_path):
    dm = _UnlabeledDigits()
    net = fn.load_or_train_feature_net(dm, tmp_path, epochs=1, num_features=16)
    assert net.task == "autoencode" and net.head is None
    assert net.metrics["val_accuracy"] is None and net.metrics["val_loss"] < 1.0
    x = _all_images(dm, "val")[:5]
    assert net(x).shape == (5, 16) and net.reconstruct(x).shape == x.shape
    assert fn.load_feature_net(net.cache_path).task == "autoencode"
    with pytest.raises(RuntimeError, match="no logits"):
        net.logits(x)


def test_multi_hot_attributes_train_with_bce(tmp_path):
    dm = _AttributeData(image_size=12, channels=3, num_classes=4, batch_size=32)
    net, metrics = fn.train_feature_net(dm, epochs=1, num_features=8)
    assert metrics["task"] == "multilabel" and 0 <= metrics["val_accuracy"] <= 1
    assert net.logits(_all_images(dm, "val")).shape == (50, 4)


def test_inception_feature_without_torch_fidelity_says_how_to_install():
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    assert not _TORCH_FIDELITY_AVAILABLE, "this test checks the error message; torch-fidelity is installed here"
    with pytest.raises(ImportError, match="pip install torch-fidelity"):
        fn.inception_feature("weights.pth")
    with pytest.raises(ImportError, match="torch-fidelity"):
        FeatureDistances("inception")
    with pytest.raises(ImportError, match="torch-fidelity"):
        resolve_feature("inception:/some/weights.pth")


@pytest.mark.slow
def test_feature_net_cli(tmp_path):
    """``python -m metrics.feature_net data=digits``: trains into ${paths.cache_dir}/features (by default
    $XDG_CACHE_HOME/genforge/features; where the
    evaluation callback looks), runs in ${paths.log_dir}/features/<data>/<time>."""
    env = {k: v for k, v in os.environ.items() if k not in ("GENFORGE_CACHE", "GENFORGE_OUTPUTS", "GENFORGE_DATA")}
    env["GENFORGE_ROOT"] = str(tmp_path)  # paths.root_dir: the run dir lands below it
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # the cache: the user's cache folder, not the checkout
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "metrics.feature_net", "data=digits", "epochs=1", "num_features=16"]
    out = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "val accuracy: " in out.stdout
    assert not (tmp_path / ".cache").exists()
    files = list((tmp_path / "xdg" / "genforge" / "features").glob("feature_net-DigitsDataModule-8px-1ch-10cls-*.pt"))
    assert len(files) == 1 and f"cache: {files[0]}" in out.stdout
    runs = list((tmp_path / "outputs" / "features" / "digits").glob("*/.hydra/config.yaml"))
    assert len(runs) == 1
    # the key the CLI used is the one a training run derives for the same data config and settings
    dm = DigitsDataModule(batch_size=64, val_size=200, test_size=200, split_seed=0)
    assert files[0].name == f"feature_net-{fn.feature_net_key(dm, epochs=1, num_features=16)}.pt"


# ============================================================================================= FID / KID
def test_fid_orders_real_split_below_noise(mnist, mnist_net):
    net, _ = mnist_net
    test, val = _all_images(mnist, "test"), _all_images(mnist, "val")
    g = torch.Generator().manual_seed(0)
    metric = FeatureDistances(net, kid_subset_size=200, kid_subsets=20)
    for batch in test.split(128):
        metric.update(batch, real=True)

    def score(fake):
        metric.reset()
        for batch in fake.split(128):
            metric.update(batch, real=False)
        return metric.compute()

    same = score(test)
    split = score(val)
    noisy = score((val + 0.5 * torch.randn(val.shape, generator=g)).clamp(-1, 1))
    noise = score((val + 2.0 * torch.randn(val.shape, generator=g)).clamp(-1, 1))
    print(f"\nFID real-vs-itself {same['fid']:.3g}, real-vs-other-split {split['fid']:.4g}, "
          f"real-vs-noisy(0.5) {noisy['fid']:.4g}, real-vs-heavy-noise(2.0) {noise['fid']:.4g}; "
          f"KID {split['kid_mean']:.3g} / {noise['kid_mean']:.3g}")
    assert abs(same["fid"]) < 1e-3 * split["fid"] and abs(same["fid"]) < 1e-6
    assert split["fid"] < noisy["fid"] < noise["fid"]
    assert noise["fid"] > 20 * split["fid"]
    assert abs(split["kid_mean"]) < 5 * split["kid_std"] + 1e-3 * noise["kid_mean"]  # unbiased: ~0
    assert split["kid_mean"] < noisy["kid_mean"] < noise["kid_mean"]
    assert metric.num_real == len(test)  # real features were kept through the resets


class _RecordingFeature(torch.nn.Module):
    """3-channel feature stand-in: mean and std per channel; records what it was given."""

    num_features = 6
    in_channels = 3

    def __init__(self):
        super().__init__()
        self.seen = []
        self.scale = torch.nn.Parameter(torch.ones(()), requires_grad=False)

    def forward(self, x):
        self.seen.append(x)
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1) * self.scale


def test_kid_subset_is_clamped_and_grayscale_goes_to_three_channels():
    feature = _RecordingFeature()
    metric = FeatureDistances(feature, kid_subset_size=1000, kid_subsets=10)
    g = torch.Generator().manual_seed(0)
    fake = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    metric.update(torch.rand(9, 1, 8, 8, generator=g) * 2 - 1, real=True)
    metric.update(fake, real=False)
    assert feature.seen[0].shape == (9, 3, 8, 8) and torch.equal(feature.seen[0][:, 0], feature.seen[0][:, 2])
    out = metric.compute()
    assert set(out) == {"fid", "kid_mean", "kid_std"} and all(math.isfinite(v) for v in out.values())
    assert metric.kid.subset_size == 6  # clamped from 1000 to the 6 generated images
    metric.reset()  # keeps the real features; same fakes and kid_seed -> the same numbers
    metric.update(fake.half(), real=False)  # half precision is cast to the feature's dtype
    assert feature.seen[-1].dtype == torch.float32 and metric.num_real == 9
    assert metric.compute() == pytest.approx(out, rel=1e-3)

    metric.reset()
    metric.update(torch.rand(1, 1, 8, 8, generator=g), real=False)
    with pytest.raises(RuntimeError, match="at least 2"):
        metric.compute()
    metric.reset(real=True)
    assert metric.num_real == 0 and metric.num_fake == 0
    with pytest.raises(TypeError, match="float"):
        metric.update(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), real=True)


def test_feature_distances_from_a_cache_file(mnist_net):
    net, _ = mnist_net
    metric = FeatureDistances(str(net.cache_path), kid_subset_size=10)
    assert metric.num_features == 128 and not metric.feature.training
    with pytest.raises(FileNotFoundError):
        FeatureDistances("/nonexistent/feature_net.pt")
    with pytest.raises(TypeError, match="num_features"):
        FeatureDistances(torch.nn.Identity())


_DDP_SCRIPT = """
import json, os, sys
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, {repo!r})
from metrics.feature_net import FeatureNet
from metrics.fid import FeatureDistances


def data():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(40, 1, 12, 12, generator=g) * 2 - 1
    fake = torch.rand(30, 1, 12, 12, generator=g) * 0.5  # brighter, less varied than the real ones
    return real, fake


def metric():
    torch.manual_seed(0)
    return FeatureDistances(FeatureNet(1, 10, num_features=8, image_size=12).freeze(), kid_subset_size=25,
                            kid_subsets=10)


def run(m, real, fake):
    for batch in real.split(10):
        m.update(batch, real=True)
    for batch in fake.split(10):
        m.update(batch, real=False)
    return m.compute()


def worker(rank, world, store):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=world)
    real, fake = data()
    # contiguous halves, so the gathered features come in the single-process order
    out = run(metric(), real.chunk(world)[rank], fake.chunk(world)[rank])
    if rank == 0:
        with open(os.path.join(os.path.dirname(store), "ddp.json"), "w") as f:
            json.dump(out, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    real, fake = data()
    with open(os.path.join(sys.argv[1], "single.json"), "w") as f:
        json.dump(run(metric(), real, fake), f)
    mp.spawn(worker, args=(2, os.path.join(sys.argv[1], "store")), nprocs=2)
"""


def test_feature_distances_agree_under_ddp(tmp_path):
    """Two gloo processes with half the images each give the single-process FID and KID (states synced)."""
    import json

    script = tmp_path / "ddp_fid.py"
    script.write_text(_DDP_SCRIPT.format(repo=str(REPO)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], check=False, cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    single = json.loads((tmp_path / "single.json").read_text())
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert single["fid"] > 0
    for name in ("fid", "kid_mean", "kid_std"):
        assert ddp[name] == pytest.approx(single[name], rel=1e-6, abs=1e-9), name
