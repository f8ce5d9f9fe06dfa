"""Tests of sequential PixelCNN sampling: the full sampler, the cached Gated PixelCNN sampler and the
windowed PixelCNN sampler (``lightning_modules/pixelcnn/sampling.py``).

The cached samplers are checked against the network itself in float64: their teacher-forced conditionals
equal ``network(x)`` at every sub-pixel, and with the same noise they return the same sample as the full
sampler from the same logits. The full sampler is checked against a network whose distribution is known.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_modules.pixelcnn.networks import GatedPixelCNN, PixelCNN, from_levels
from lightning_modules.pixelcnn.sampling import (
    CachedGatedSampler,
    WindowedPixelCNNSampler,
    inverse_cdf,
    sample,
    sample_full,
    sample_images,
)

pytestmark = pytest.mark.usefixtures("single_thread")

BATCH = 3
TOL = {"rtol": 1e-10, "atol": 1e-10}

# (name, constructor kwargs, image (H, W), conditioning): small float64 networks
GATED = [
    ("grey_k3_l3", {"channels": 1, "levels": 4, "hidden": 4, "layers": 3, "kernel_size": 3}, (6, 6), ""),
    ("grey_k5_l2", {"channels": 1, "levels": 3, "hidden": 4, "layers": 2, "kernel_size": 5}, (6, 6), ""),
    ("grey_k5_l2_fixed", {"channels": 1, "levels": 3, "hidden": 4, "layers": 2, "kernel_size": 5,
                          "image_size": 6}, (6, 6), ""),
    ("grey_k3_l3_h", {"channels": 1, "levels": 4, "hidden": 4, "layers": 3, "kernel_size": 3,
                      "cond_dim": 3}, (6, 6), "h"),
    ("grey_k3_l2_s", {"channels": 1, "levels": 4, "hidden": 4, "layers": 2, "kernel_size": 3,
                      "cond_map_channels": 2}, (5, 7), "s"),
    ("rgb_k3_l2", {"channels": 3, "levels": 5, "hidden": 6, "layers": 2, "kernel_size": 3}, (4, 4), ""),
    ("rgb_k5_l3_h", {"channels": 3, "levels": 4, "hidden": 6, "layers": 3, "kernel_size": 5,
                     "cond_dim": 2}, (4, 4), "h"),
    ("rgb_k3_l2_hs", {"channels": 3, "levels": 4, "hidden": 6, "layers": 2, "kernel_size": 3, "cond_dim": 2,
                      "cond_map_channels": 2, "head_hidden": 9}, (4, 4), "hs"),
]
PLAIN = [
    ("grey_l1", {"channels": 1, "levels": 4, "hidden": 8, "layers": 1, "kernel_size": 3,
                 "first_kernel_size": 3}, (6, 6), ""),
    ("grey_l0", {"channels": 1, "levels": 3, "hidden": 4, "layers": 0, "first_kernel_size": 5}, (6, 6), ""),
    ("grey_l2_hs", {"channels": 1, "levels": 4, "hidden": 8, "layers": 2, "kernel_size": 3,
                    "first_kernel_size": 3, "cond_dim": 2, "cond_map_channels": 2}, (5, 7), "hs"),
    ("rgb_l1_h", {"channels": 3, "levels": 4, "hidden": 12, "layers": 1, "kernel_size": 3,
                  "first_kernel_size": 3, "cond_dim": 2}, (4, 4), "h"),
]


def build(kind: str, kwargs: dict, seed: int = 0) -> nn.Module:
    """A float64 network with random weights and biases (biases enlarged so that they matter)."""
    torch.manual_seed(seed)
    net = (GatedPixelCNN if kind == "gated" else PixelCNN)(**kwargs).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    return net


def conditioning(net: nn.Module, which: str, size: tuple[int, int], batch: int = BATCH) -> dict:
    g = torch.Generator().manual_seed(7)
    cond = {}
    if "h" in which:
        cond["h"] = torch.randn(batch, net.cond_dim, generator=g, dtype=torch.float64)
    if "s" in which:
        cond["s"] = torch.randn(batch, net.cond_map_channels, *size, generator=g, dtype=torch.float64)
    return cond


def sampler_for(net: nn.Module):
    return CachedGatedSampler(net) if isinstance(net, GatedPixelCNN) else WindowedPixelCNNSampler(net)


CASES = [pytest.param("gated", *case[1:], id=f"gated_{case[0]}") for case in GATED] + [
    pytest.param("plain", *case[1:], id=f"pixelcnn_{case[0]}") for case in PLAIN
]


# ----------------------------------------------------------------------------------------- inverse CDF


def test_inverse_cdf_by_hand() -> None:
    logits = torch.tensor([0.2, 0.5, 0.3]).log().expand(5, 3)
    u = torch.tensor([0.1, 0.3, 0.75, 0.69, 0.0])
    assert inverse_cdf(logits, u).tolist() == [0, 1, 2, 1, 0]
    assert inverse_cdf(logits, u).dtype == torch.int64
    # shifting the logits does not change the distribution; a zero-probability level is never drawn
    assert inverse_cdf(logits + 10.0, u).tolist() == [0, 1, 2, 1, 0]
    masked = torch.tensor([[-math.inf, 0.0, -math.inf, 0.0]]).expand(4, 4)
    assert inverse_cdf(masked, torch.tensor([0.0, 0.49, 0.5, 0.999999])).tolist() == [1, 1, 3, 3]
    # u just below 1 gives the last level even when the float CDF sums to slightly less than 1
    assert inverse_cdf(torch.zeros(1, 7), torch.tensor([1 - 1e-12], dtype=torch.float64)).item() == 6


def test_inverse_cdf_errors() -> None:
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logits of shape"):
        inverse_cdf(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="u of shape"):
        inverse_cdf(logits, torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        inverse_cdf(logits, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        inverse_cdf(logits, torch.tensor([-0.1, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        inverse_cdf(torch.tensor([[0.0, math.nan, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([0.5, 0.5]))


# ------------------------------------------------------------------------------ cached == full network


@pytest.mark.parametrize(("kind", "kwargs", "size", "which"), CASES)
def test_cached_conditionals_equal_network(kind: str, kwargs: dict, size: tuple[int, int], which: str) -> None:
    """Teacher forcing: the cached/windowed schedule's logits at every sub-pixel are the network's."""
    net = build(kind, kwargs)
    cond = conditioning(net, which, size)
    levels = torch.randint(net.levels, (BATCH, net.channels, *size), generator=torch.Generator().manual_seed(3))
    expected = net(from_levels(levels, net.levels, torch.float64), **cond)
    got = sampler_for(net).conditionals(levels, **cond)
    assert got.shape == expected.shape == (BATCH, net.levels, net.channels, *size)
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize(("kind", "kwargs", "size", "which"), CASES)
def test_cached_and_full_samplers_agree(kind: str, kwargs: dict, size: tuple[int, int], which: str) -> None:
    """Same noise, same conditionals at every step, same sample; and those are the model's conditionals."""
    net = build(kind, kwargs, seed=1)
    cond = conditioning(net, which, size)
    z = torch.rand(BATCH, net.channels, *size, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    full, full_logits = sample_full(net, z, return_logits=True, **cond)
    cached, cached_logits = sampler_for(net).sample(z, return_logits=True, **cond)
    assert full.dtype == cached.dtype == torch.int64
    assert full.shape == (BATCH, net.channels, *size)
    assert torch.equal(full, cached)
    torch.testing.assert_close(cached_logits, full_logits, **TOL)
    torch.testing.assert_close(full_logits, net(from_levels(full, net.levels, torch.float64), **cond), **TOL)
    assert 0 < len(torch.unique(full)) <= net.levels  # a real sample, not a constant image
    assert torch.equal(sample(net, z, cached=True, **cond), full)
    assert torch.equal(sample(net, z, cached=False, **cond), full)


def test_cached_sampler_never_runs_the_whole_network(monkeypatch) -> None:
    """The cached schedule reuses activations: neither the network's nor a block's forward is called."""
    net = build("gated", {"channels": 3, "levels": 4, "hidden": 6, "layers": 2, "kernel_size": 3, "cond_dim": 2})
    z = torch.rand(2, 3, 3, 3, dtype=torch.float64)
    h = torch.randn(2, 2, dtype=torch.float64)
    expected = sample_full(net, z, h)

    def boom(*args, **kwargs):
        raise AssertionError("full forward called")

    monkeypatch.setattr(net, "forward", boom)
    for block in net.blocks:
        monkeypatch.setattr(block, "forward", boom)
    assert torch.equal(CachedGatedSampler(net).sample(z, h), expected)


def test_cached_sampler_float32_matches_network() -> None:
    """In float32 the regrouped arithmetic agrees with the network to ~1e-5 relative."""
    torch.manual_seed(0)
    net = GatedPixelCNN(1, levels=4, hidden=8, layers=3, kernel_size=5)
    levels = torch.randint(4, (2, 1, 6, 6))
    torch.testing.assert_close(CachedGatedSampler(net).conditionals(levels), net(from_levels(levels, 4)),
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------- known distribution


@pytest.mark.parametrize("kind", ["gated", "plain"])
def test_samples_follow_a_known_distribution(kind: str) -> None:
    """Zero weights and a chosen output bias: every sub-pixel's logits are ``log p_c``, so level frequencies
    over many draws match ``p_c`` per channel (and the full and cached samplers draw the same levels)."""
    channels, levels, size, batch = 3, 4, 3, 400
    if kind == "gated":
        net = GatedPixelCNN(channels, levels, hidden=6, layers=2, kernel_size=3)
    else:
        net = PixelCNN(channels, levels, hidden=12, layers=1, kernel_size=3, first_kernel_size=3)
    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.1, 0.2]])
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.head.net[-1].bias.copy_(probs.log().reshape(-1))  # C blocks of L logits
    z = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(11))
    full = sample_full(net, z)
    assert torch.equal(sampler_for(net).sample(z), full)
    n = batch * size * size
    for c in range(channels):
        freq = torch.bincount(full[:, c].reshape(-1), minlength=levels).double() / n
        std = (probs[c].double() * (1 - probs[c].double()) / n).sqrt()
        assert torch.all((freq - probs[c]).abs() <= 4.5 * std + 1e-12), (c, freq, probs[c])
    assert not torch.any(full[:, 2] == 1)  # probability 0


# ------------------------------------------------------------------------------------ convenience/API


@pytest.mark.parametrize("cached", [True, False])
def test_sample_images(cached: bool) -> None:
    torch.manual_seed(0)
    net = GatedPixelCNN(1, levels=3, hidden=4, layers=2, kernel_size=3, cond_dim=2, image_size=4)
    h = torch.eye(2)
    images = sample_images(net, 2, generator=torch.Generator().manual_seed(0), h=h, cached=cached)
    assert images.shape == (2, 1, 4, 4) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert set(images.unique().tolist()) <= {-1.0, 0.0, 1.0}  # the level grid of L = 3
    again = sample_images(net, 2, generator=torch.Generator().manual_seed(0), h=h, cached=not cached)
    assert torch.equal(images, again)


def test_sample_images_size_and_generic_network() -> None:
    torch.manual_seed(0)
    plain = PixelCNN(1, levels=2, hidden=4, layers=0, first_kernel_size=3)
    with pytest.raises(ValueError, match="image_size"):
        sample_images(plain, 2)
    assert sample_images(plain, 2, image_size=(3, 5)).shape == (2, 1, 3, 5)
    with pytest.raises(ValueError, match="positive"):
        sample_images(plain, 0, image_size=3)

    class Wrapped(nn.Module):  # any network with .channels/.levels/forward(x, h, s) uses the full sampler
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner, self.channels, self.levels = inner, inner.channels, inner.levels

        def forward(self, x, h=None, s=None):
            return self.inner(x, h, s)

    z = torch.rand(2, 1, 3, 3)
    assert torch.equal(sample(Wrapped(plain), z), sample(plain, z))


def test_sampling_errors() -> None:
    torch.manual_seed(0)
    net = GatedPixelCNN(1, levels=3, hidden=4, layers=1, kernel_size=3, cond_dim=2)
    z = torch.rand(2, 1, 3, 3)
    with pytest.raises(ValueError, match="needs h"):
        sample(net, z)
    with pytest.raises(ValueError, match="needs h"):
        sample_full(net, z)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        sample(net, torch.rand(2, 3, 3, 3), h=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sample(net, z + 1.0, h=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="float"):
        sample(net, torch.zeros(2, 1, 3, 3, dtype=torch.long), h=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="levels"):
        CachedGatedSampler(net).conditionals(torch.full((2, 1, 3, 3), 3), h=torch.zeros(2, 2))
    with pytest.raises(TypeError, match="GatedPixelCNN"):
        CachedGatedSampler(PixelCNN(1, levels=3, hidden=4, layers=0))
    with pytest.raises(TypeError, match="PixelCNN"):
        WindowedPixelCNNSampler(net)
