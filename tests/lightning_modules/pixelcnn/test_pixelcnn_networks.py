"""Tests of the PixelCNN networks (masked convolutions, Gated PixelCNN, original PixelCNN) and of the
discrete log-likelihood helpers.

Causality is checked by autograd in float64: for every output sub-pixel ``(c, i, j)`` the gradient of its
logits with respect to every input sub-pixel is computed, and the set of inputs with a nonzero gradient is
compared with the set the architecture should see (exact zeros for the future, nonzero for the past).
"""

from __future__ import annotations

import math
from copy import deepcopy

import pytest
import torch
from torch import nn

from lightning_modules.pixelcnn.conditioning import ConditionMap, LayerConditioning, check_h
from lightning_modules.pixelcnn.likelihood import bits_per_dim, nats_to_bits_per_dim, nll_nats
from lightning_modules.pixelcnn.masks import MaskedConv2d
from lightning_modules.pixelcnn.networks import (
    GatedPixelCNN,
    PixelCNN,
    PixelCNNResidualBlock,
    from_levels,
    to_levels,
)

pytestmark = pytest.mark.usefixtures("single_thread")

BATCH = 4


# -------------------------------------------------------------------------------------------- helpers


def leaky(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every ``nn.ReLU`` replaced by ``LeakyReLU(0.2)``, same weights and masks.

    A ReLU unit that is off for every test input (common at init in the narrow test networks) hides a
    connection from the gradient without the masks being at fault. Leaky units keep every path's
    gradient nonzero, so "nonzero gradient" tests the wiring; they cannot create a connection, so an
    exact zero of the leaky copy is an exact zero of the network itself."""
    copy = deepcopy(net)
    for module in copy.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.LeakyReLU(0.2))
    return copy


def dependency(net: nn.Module, channels: int, size: int, batch: int = 8, **cond) -> torch.Tensor:
    """``dep[c, i, j, c', i', j']``: True where the logits of output sub-pixel ``(c, i, j)`` have a nonzero
    gradient with respect to input sub-pixel ``(c', i', j')`` (summed over a batch of random inputs and
    over the logits' levels with random weights, so an accidental cancellation is practically impossible).
    Computed on the :func:`leaky` copy of ``net``; future inputs are also checked on ``net`` itself."""
    torch.manual_seed(1)
    dep = _dependency(leaky(net), channels, size, batch, **cond)
    real = _dependency(net, channels, size, batch, **cond)
    assert not torch.any(real & ~dep), "the leaky copy must see everything the network sees"
    for c in range(channels):
        for i in range(size):
            for j in range(size):
                assert not torch.any(real[c, i, j] & ~past(channels, size, c, i, j)), (c, i, j)
    return dep


def _dependency(net: nn.Module, channels: int, size: int, batch: int, **cond) -> torch.Tensor:
    x = (torch.rand(batch, channels, size, size, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    out = net(x, **cond)
    weights = torch.rand(out.shape[1], dtype=torch.float64) + 0.5
    dep = torch.zeros(channels, size, size, channels, size, size, dtype=torch.bool)
    for c in range(channels):
        for i in range(size):
            for j in range(size):
                target = (out[:, :, c, i, j] * weights).sum()
                (grad,) = torch.autograd.grad(target, x, retain_graph=True)
                dep[c, i, j] = grad.abs().sum(dim=0) > 0
    return dep


def past(channels: int, size: int, c: int, i: int, j: int) -> torch.Tensor:
    """Input sub-pixels strictly before ``(c, i, j)`` in raster-then-channel order, ``(C, H, W)`` bool."""
    rows = torch.arange(size)[:, None].expand(size, size)
    cols = torch.arange(size)[None, :].expand(size, size)
    before_pixel = (rows < i) | ((rows == i) & (cols < j))
    mask = before_pixel[None].expand(channels, size, size).clone()
    mask[:c, i, j] = True
    return mask


def gated_field(size: int, i: int, j: int, reach: int) -> torch.Tensor:
    """Pixels the Gated PixelCNN sees from ``(i, j)`` (grey): row ``i`` columns ``j - R .. j - 1`` and rows
    ``i - 1 - R .. i - 1`` with ``|j' - j| <= R``, clipped to the image (no blind spot)."""
    rows = torch.arange(size)[:, None].expand(size, size)
    cols = torch.arange(size)[None, :].expand(size, size)
    same_row = (rows == i) & (cols < j) & (cols >= j - reach)
    above = (rows < i) & (rows >= i - 1 - reach) & ((cols - j).abs() <= reach)
    return same_row | above


def pixelcnn_field(size: int, i: int, j: int, first: int, kernel: int, layers: int) -> torch.Tensor:
    """Pixels the original PixelCNN sees from ``(i, j)`` (grey), by propagating positions back through the
    layers: each type-B block moves to rows above within ``kernel // 2`` or left in the same row (or
    stays), the type-A first layer moves to rows above within ``first // 2`` or strictly left."""

    def step(positions: set[tuple[int, int]], r: int, keep_centre: bool) -> set[tuple[int, int]]:
        out = set()
        for pi, pj in positions:
            for di in range(-r, 1):
                for dj in range(-r, r + 1):
                    if di == 0 and (dj > 0 or (dj == 0 and not keep_centre)):
                        continue
                    if 0 <= pi + di < size and 0 <= pj + dj < size:
                        out.add((pi + di, pj + dj))
        return out

    positions = {(i, j)}
    for _ in range(layers):
        positions = step(positions, kernel // 2, keep_centre=True)
    positions = step(positions, first // 2, keep_centre=False)
    field = torch.zeros(size, size, dtype=torch.bool)
    for pi, pj in positions:
        field[pi, pj] = True
    return field


def one_hot(batch: int, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.arange(batch) % k, k).float()


# ------------------------------------------------------------------------------------ masked conv


def test_masked_conv_grey_masks() -> None:
    a = MaskedConv2d(1, 4, 5, "A")
    b = MaskedConv2d(4, 4, 5, "B")
    for conv, centre in ((a, 0.0), (b, 1.0)):
        mask = conv.mask
        assert mask.shape == conv.weight.shape
        assert torch.all(mask[:, :, :2] == 1)  # rows above
        assert torch.all(mask[:, :, 2, :2] == 1)  # left in the centre row
        assert torch.all(mask[:, :, 2, 3:] == 0)  # right in the centre row
        assert torch.all(mask[:, :, 3:] == 0)  # rows below
        assert torch.all(mask[:, :, 2, 2] == centre)
        assert torch.all(conv.weight[mask == 0] == 0)
    x = torch.randn(2, 1, 6, 6)
    assert a(x).shape == (2, 4, 6, 6)


def test_masked_conv_colour_groups() -> None:
    conv_a = MaskedConv2d(3, 6, 3, "A", color_channels=3)  # input = the image's R, G, B
    centre = conv_a.mask[:, :, 1, 1]
    out_group = torch.arange(6) // 2
    for o in range(6):
        assert centre[o].tolist() == [float(c < out_group[o]) for c in range(3)]
    conv_b = MaskedConv2d(6, 9, 1, "B", color_channels=3)
    centre = conv_b.mask[:, :, 0, 0]
    for o in range(9):
        assert centre[o].tolist() == [float(k // 2 <= o // 3) for k in range(6)]
    # gated halves: both chunks grouped like a 3-map layer
    conv_g = MaskedConv2d(3, 6, 1, "B", color_channels=3, out_chunks=2)
    assert conv_g.mask[:, :, 0, 0].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]] * 2


def test_masked_conv_errors() -> None:
    with pytest.raises(ValueError, match="in_channels=4"):
        MaskedConv2d(4, 6, 3, "B", color_channels=3)
    with pytest.raises(ValueError, match="out_channels"):
        MaskedConv2d(3, 7, 3, "A", color_channels=3)
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 4, 3, "C")
    with pytest.raises(ValueError, match="kernel_size"):
        MaskedConv2d(1, 4, 4, "A")
    with pytest.raises(ValueError, match="hidden=63 must be even"):
        PixelCNNResidualBlock(63, color_channels=3)                 # a layer checks; the networks round up
    with pytest.raises(ValueError, match="levels"):
        GatedPixelCNN(levels=1)
    with pytest.raises(ValueError, match="kernel_size"):
        GatedPixelCNN(kernel_size=4)


# ----------------------------------------------------------------------------------------- causality


def test_gated_receptive_field_exact_grey() -> None:
    """Kernel 3, 2 layers (reach 2) on 7x7: zero gradient for the present and future, nonzero exactly on
    the predicted field (rows above within the reach on both sides: no blind spot)."""
    torch.manual_seed(0)
    net = GatedPixelCNN(1, levels=4, hidden=8, layers=2, kernel_size=3).double()
    assert net.reach == 2
    dep = dependency(net, 1, 7)
    for i in range(7):
        for j in range(7):
            seen = dep[0, i, j, 0]
            assert not torch.any(seen & ~past(1, 7, 0, i, j)[0]), (i, j)
            assert torch.equal(seen, gated_field(7, i, j, net.reach)), (i, j)


def test_gated_sees_whole_past_grey() -> None:
    """Kernel 5, 3 layers (reach 6) covers a 7x7 image: every output pixel depends on every earlier pixel
    (including those above-right) and on nothing at or after it."""
    torch.manual_seed(0)
    net = GatedPixelCNN(1, levels=2, hidden=8, layers=3, kernel_size=5).double()
    dep = dependency(net, 1, 7)
    for i in range(7):
        for j in range(7):
            assert torch.equal(dep[0, i, j], past(1, 7, 0, i, j)), (i, j)


@pytest.mark.parametrize("conditional", [False, True])
def test_gated_sees_whole_past_colour(conditional: bool) -> None:
    """3x5x5 colour, reach 4: output sub-pixel (c, i, j) depends on exactly the sub-pixels before it in
    raster-then-R->G->B order; conditioning on h and s does not change that."""
    torch.manual_seed(0)
    kwargs = {"cond_dim": 4, "cond_map_channels": 2} if conditional else {}
    net = GatedPixelCNN(3, levels=3, hidden=12, layers=2, kernel_size=5, **kwargs).double()
    cond = {}
    if conditional:
        cond = {"h": one_hot(8, 4).double(), "s": torch.randn(8, 2, 5, 5, dtype=torch.float64)}
    dep = dependency(net, 3, 5, batch=8, **cond)
    for c in range(3):
        for i in range(5):
            for j in range(5):
                assert torch.equal(dep[c, i, j], past(3, 5, c, i, j)), (c, i, j)


@pytest.mark.parametrize("vector_conditioning", [True, False])
@pytest.mark.parametrize("kind", ["gated", "pixelcnn"])
def test_module_conditioned_on_a_spatial_map_is_causal(kind: str, vector_conditioning: bool) -> None:
    """The LightningModule with ``model.network.cond_map_channels=2`` (eq. 5: ``s = m(h)`` added in every
    layer): the logits of sub-pixel ``(c, i, j)`` have zero gradient with respect to every input sub-pixel at
    or after it (raster order, then R -> G -> B), and depend on the class ``h`` through ``s``."""
    import functools

    from lightning_modules.pixelcnn.module import PixelCNNModule

    torch.manual_seed(0)
    if kind == "gated":
        network = functools.partial(GatedPixelCNN, hidden=6, layers=2, kernel_size=3, cond_map_channels=2)
    else:
        network = functools.partial(PixelCNN, hidden=12, layers=1, kernel_size=3, first_kernel_size=3,
                                    cond_map_channels=2)
    eq5_alone = {} if vector_conditioning else {"vector_conditioning": False}
    model = PixelCNNModule(network, functools.partial(torch.optim.Adam), levels=3, channels=3, image_size=5,
                           conditional=True, num_classes=4, **eq5_alone).double()
    h = one_hot(8, 4).double()
    dep = dependency(model, 3, 5, batch=8, h=h)             # asserts nothing at or after (c, i, j) is seen
    assert dep[2, 4, 4].any() and dep[1, 0, 0, 0, 0, 0]     # and the past is
    assert model.network_conditions(h)[1].shape == (8, 2, 5, 5)
    x = torch.rand(8, 3, 5, 5, dtype=torch.float64) * 2 - 1
    h = h.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(leaky(model)(x, h)[:, :, 0, 0, 0].sum(), h)
    assert grad.abs().sum() > 0                              # the first sub-pixel depends on the class via s


def test_pixelcnn_blind_spot_grey() -> None:
    """Original PixelCNN (7x7 type A + two 3x3 blocks, nominal reach 5): causal, sees exactly the pixels
    its stacked masks reach, and misses pixels above-right inside the nominal field (the blind spot)."""
    torch.manual_seed(0)
    net = PixelCNN(1, levels=4, hidden=16, layers=2, kernel_size=3, first_kernel_size=7).double()
    assert net.reach == 5
    dep = dependency(net, 1, 7)
    blind = []
    for i in range(7):
        for j in range(7):
            seen = dep[0, i, j, 0]
            before = past(1, 7, 0, i, j)[0]
            assert not torch.any(seen & ~before), (i, j)
            assert torch.equal(seen, pixelcnn_field(7, i, j, 7, 3, 2)), (i, j)
            nominal = torch.zeros(7, 7, dtype=torch.bool)
            nominal[max(0, i - net.reach) : i + 1, max(0, j - net.reach) : j + net.reach + 1] = True
            blind += [(i, j, p) for p in (before & nominal & ~seen).nonzero().tolist()]
    assert blind, "the original PixelCNN should have a blind spot"
    # the pixel one row up and first_kernel_size // 2 + 1 columns right is never seen
    assert (2, 1, [1, 5]) in blind
    assert not dep[0, 2, 1, 0, 1, 5]
    # the Gated PixelCNN with the same reach sees it
    gated = GatedPixelCNN(1, levels=4, hidden=8, layers=5, kernel_size=3).double()
    assert gated.reach == net.reach
    x = torch.rand(BATCH, 1, 7, 7, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(leaky(gated)(x)[:, :, 0, 2, 1].sum(), x)
    assert grad[:, 0, 1, 5].abs().sum() > 0


def test_pixelcnn_causal_colour() -> None:
    """Colour PixelCNN: no output sub-pixel depends on an input sub-pixel at or after it."""
    torch.manual_seed(0)
    net = PixelCNN(3, levels=3, hidden=24, layers=1, kernel_size=3, first_kernel_size=5).double()
    dep = dependency(net, 3, 5)
    for c in range(3):
        for i in range(5):
            for j in range(5):
                assert not torch.any(dep[c, i, j] & ~past(3, 5, c, i, j)), (c, i, j)
                if (i, j) != (0, 0):
                    assert torch.any(dep[c, i, j]), (c, i, j)


@pytest.mark.parametrize("kind", ["gated", "pixelcnn"])
def test_rgb_ordering_within_pixel(kind: str) -> None:
    """At pixel (i, j): R sees none of R, G, B; G sees R only; B sees R and G (PixelRNN paper, Sec. 3.4)."""
    torch.manual_seed(0)
    if kind == "gated":
        net = GatedPixelCNN(3, levels=5, hidden=6, layers=2, kernel_size=3).double()
    else:
        net = PixelCNN(3, levels=5, hidden=12, layers=2, kernel_size=3, first_kernel_size=3).double()
    x = (torch.rand(BATCH, 3, 4, 4, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    out = leaky(net)(x)
    expected = {0: [False, False, False], 1: [True, False, False], 2: [True, True, False]}
    for i, j in ((0, 0), (2, 1), (3, 3)):
        for c, sees in expected.items():
            (grad,) = torch.autograd.grad(out[:, :, c, i, j].sum(), x, retain_graph=True)
            got = [bool(grad[:, cin, i, j].abs().sum() > 0) for cin in range(3)]
            assert got == sees, (kind, c, i, j, got)


# -------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("levels", [2, 17, 256])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["gated", "pixelcnn"])
def test_output_shapes(kind: str, channels: int, levels: int) -> None:
    torch.manual_seed(0)
    if kind == "gated":
        net = GatedPixelCNN(channels, levels, hidden=6, layers=2, kernel_size=3, image_size=8)
    else:
        net = PixelCNN(channels, levels, hidden=12, layers=1, image_size=8)
    x = from_levels(torch.randint(0, levels, (2, channels, 8, 8)), levels)
    out = net(x)
    assert out.shape == (2, levels, channels, 8, 8)
    assert torch.isfinite(out).all()
    loss = torch.nn.functional.cross_entropy(out, to_levels(x, levels))
    loss.backward()


def test_layer_conditioning_adds_v_h_and_v_conv_s() -> None:
    """Eqs. 4-5 of the Gated PixelCNN paper: ``V^T h`` broadcast over the map plus the 1x1 convolution
    ``V * s``; a width of 0 leaves its term out, and neither term gives ``None``."""
    terms = LayerConditioning(cond_dim=2, map_channels=1, width=3)
    with torch.no_grad():
        terms.vector.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))  # (width, K)
        terms.map.weight.copy_(torch.tensor([1.0, -1.0, 0.5]).view(3, 1, 1, 1))  # (width, K', 1, 1)
    h = torch.tensor([[3.0, 5.0]])
    s = torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]])  # (1, 1, 2, 2)
    out = terms(h, s)
    assert out.shape == (1, 3, 2, 2)
    assert torch.equal(out[0, 0], torch.tensor([[4.0, 5.0], [7.0, 11.0]]))  # 3 + s
    assert torch.equal(out[0, 1], torch.tensor([[9.0, 8.0], [6.0, 2.0]]))  # 10 - s
    assert torch.equal(out[0, 2], torch.tensor([[8.5, 9.0], [10.0, 12.0]]))  # 8 + s / 2
    assert torch.equal(terms(h, None)[0, :, 0, 0], torch.tensor([3.0, 10.0, 8.0]))
    assert LayerConditioning(0, 0, 3)(h, s) is None
    assert LayerConditioning(0, 1, 3).vector is None and LayerConditioning(2, 0, 3).map is None


def test_check_h_names_h_and_cond_dim() -> None:
    """The shared check_cond with the PixelCNNs' names; an integer one-hot h comes back as float."""
    assert check_h(None, 0, BATCH, "Net") is None
    h = check_h(one_hot(BATCH, 3).long(), 3, BATCH, "Net")
    assert h.dtype == torch.float32 and torch.equal(h, one_hot(BATCH, 3))
    with pytest.raises(ValueError, match=r"Net has cond_dim=0 \(unconditional\) but got h of shape \(4, 3\)"):
        check_h(one_hot(BATCH, 3), 0, BATCH, "Net")
    with pytest.raises(ValueError, match=r"expected h of shape \(4, 3\) \(batch size, cond_dim; .* \(3, 3\)"):
        check_h(one_hot(3, 3), 3, BATCH, "Net")
    with pytest.raises(TypeError, match=r"Net: h must be a torch.Tensor"):
        check_h([[1.0, 0.0, 0.0]], 3, 1, "Net")


@pytest.mark.parametrize("size", [5, 8, 28])
def test_condition_map_shapes(size: int) -> None:
    cmap = ConditionMap(cond_dim=10, out_channels=3, image_size=size, hidden=8)
    s = cmap(one_hot(BATCH, 10))
    assert s.shape == (BATCH, 3, size, size)
    with pytest.raises(ValueError, match=r"\bh\b"):
        cmap(torch.zeros(BATCH, 9))
    with pytest.raises(ValueError, match="one_hot"):
        cmap(torch.arange(BATCH))


@pytest.mark.parametrize("kind", ["gated", "pixelcnn"])
def test_conditional_forward_and_errors(kind: str) -> None:
    torch.manual_seed(0)
    k, k_map, size = 10, 2, 8
    common = {"channels": 1, "levels": 17, "cond_dim": k, "cond_map_channels": k_map}
    if kind == "gated":
        net = GatedPixelCNN(hidden=6, layers=2, kernel_size=3, **common)
    else:
        net = PixelCNN(hidden=8, layers=1, **common)
    cmap = ConditionMap(k, k_map, size, hidden=8)
    x = torch.rand(BATCH, 1, size, size) * 2 - 1
    h = one_hot(BATCH, k)
    out = net(x, h=h, s=cmap(h))
    assert out.shape == (BATCH, 17, 1, size, size)
    # h and s both change the output
    h2 = one_hot(BATCH + 1, k)[1:]
    assert not torch.allclose(out, net(x, h=h2, s=cmap(h)))
    assert not torch.allclose(out, net(x, h=h, s=cmap(h2)))
    # integer one-hot h is accepted
    assert torch.allclose(out, net(x, h=h.long(), s=cmap(h)))

    s = cmap(h)
    with pytest.raises(ValueError, match=r"needs h of shape"):
        net(x, s=s)
    with pytest.raises(ValueError, match=rf"expected h of shape \({BATCH}, 10\)"):
        net(x, h=torch.zeros(BATCH, k + 1), s=s)
    with pytest.raises(ValueError, match=r"one_hot"):
        net(x, h=torch.arange(BATCH), s=s)
    with pytest.raises(ValueError, match=r"needs s of shape"):
        net(x, h=h)
    with pytest.raises(ValueError, match=rf"expected s of shape \({BATCH}, 2, 8, 8\)"):
        net(x, h=h, s=torch.zeros(BATCH, k_map, size - 1, size))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, H, W\)"):
        net(torch.zeros(BATCH, 3, size, size), h=h, s=s)
    with pytest.raises(ValueError, match=r"x must be a floating tensor"):
        net(torch.zeros(BATCH, 1, size, size, dtype=torch.long), h=h, s=s)

    plain = GatedPixelCNN(1, 17, hidden=6, layers=1, kernel_size=3, image_size=size)
    with pytest.raises(ValueError, match=r"cond_dim=0 .* got h"):
        plain(x, h=h)
    with pytest.raises(ValueError, match=r"cond_map_channels=0 .* got s"):
        plain(x, s=s)
    with pytest.raises(ValueError, match=r"image_size=8"):
        plain(torch.zeros(BATCH, 1, size + 1, size + 1))


def test_levels_round_trip() -> None:
    for levels in (2, 17, 256):
        idx = torch.arange(levels)
        x = from_levels(idx, levels)
        assert x.min() == -1 and x.max() == 1
        assert torch.equal(to_levels(x, levels), idx)
    assert torch.equal(to_levels(torch.tensor([-3.0, 3.0]), 4), torch.tensor([0, 3]))


# ---------------------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_uniform_logits_give_log2_levels_bits(levels: int) -> None:
    logits = torch.zeros(2, levels, 3, 4, 5, dtype=torch.float64)
    targets = torch.randint(0, levels, (2, 3, 4, 5))
    nats = nll_nats(logits, targets)
    assert nats.shape == (2,)
    assert torch.allclose(nats, torch.full((2,), 60 * math.log(levels), dtype=torch.float64))
    bpd = bits_per_dim(logits, targets)
    assert bpd.shape == ()
    assert abs(bpd.item() - math.log2(levels)) < 1e-12
    assert bits_per_dim(logits, targets, reduction="none").shape == (2,)


def test_nll_by_hand() -> None:
    # one image, one sub-pixel per channel, two channels, three levels
    logits = torch.tensor([[[[[0.0]], [[1.0]]], [[[1.0]], [[1.0]]], [[[2.0]], [[1.0]]]]])  # (1, 3, 2, 1, 1)
    targets = torch.tensor([[[[2]], [[0]]]])  # (1, 2, 1, 1)
    expected = -(2.0 - math.log(1 + math.e + math.e**2)) + math.log(3.0)
    assert nll_nats(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    assert nats_to_bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert nats_to_bits_per_dim(3072 * 3.0, 3072) == pytest.approx(3.0 / math.log(2))
    t = torch.tensor([math.log(2) * 6, math.log(2) * 12])
    assert torch.allclose(nats_to_bits_per_dim(t, 6), torch.tensor([1.0, 2.0]))


def test_likelihood_errors() -> None:
    logits = torch.zeros(2, 4, 1, 3, 3)
    with pytest.raises(ValueError, match="targets"):
        nll_nats(logits, torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        nll_nats(logits, torch.full((2, 1, 3, 3), 4))
    with pytest.raises(ValueError, match="integer"):
        nll_nats(logits, torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="dims"):
        nats_to_bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="reduction"):
        bits_per_dim(logits, torch.zeros(2, 1, 3, 3, dtype=torch.long), reduction="sum")
