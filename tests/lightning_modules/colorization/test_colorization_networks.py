"""Tests of the colorization networks: pix2pix U-Net generator and PatchGAN discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_modules.colorization.patchgan import PatchGANDiscriminator, patchgan_layer_specs
from lightning_modules.colorization.unet import UNetGenerator, unet_depth

WIDTH = 8  # small base width keeps the tests fast; geometry does not depend on it


pytestmark = pytest.mark.usefixtures("single_thread")


def small_unet(**kwargs) -> UNetGenerator:
    kwargs.setdefault("base_width", WIDTH)
    kwargs.setdefault("max_width", 4 * WIDTH)
    return UNetGenerator(**kwargs)


# --------------------------------------------------------------------------------------------- U-Net


@pytest.mark.parametrize(("size", "depth"), [(256, 8), (64, 6), (32, 5), (96, 5), (8, 3)])
def test_unet_default_depth_from_image_size(size, depth):
    assert unet_depth(size) == depth
    assert small_unet(image_size=size).depth == depth
    assert small_unet().depth == 5  # fixed default without image_size


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("batch", [1, 2])
def test_unet_output_shape_and_range(size, batch):
    torch.manual_seed(0)
    net = small_unet(image_size=size)  # full depth: 1x1 bottleneck, BatchNorm-free there (batch 1 trains)
    net.train()
    out = net(torch.randn(batch, 1, size, size) * 3)
    assert out.shape == (batch, 2, size, size)
    assert out.abs().max() <= 1.0
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(batch, 1, size, size)).shape == (batch, 2, size, size)


def test_unet_non_square_and_channels():
    net = small_unet(in_channels=3, out_channels=3, depth=5)
    assert net(torch.randn(2, 3, 64, 96)).shape == (2, 3, 64, 96)


def test_unet_pix2pix_widths_and_dropout():
    net = UNetGenerator(image_size=256)
    assert net.widths == (64, 128, 256, 512, 512, 512, 512, 512)
    dropouts = [any(isinstance(m, nn.Dropout) for m in block.modules()) for block in net.decoder]
    assert dropouts == [True] * 3 + [False] * 5
    bns = [any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) for block in net.encoder]
    assert bns == [False] + [True] * 6 + [False]  # no BN on the input layer nor the 1x1 bottleneck
    assert isinstance(net.decoder[-1][-1], nn.Tanh)


@pytest.mark.parametrize("shape", [(1, 1, 16, 16), (1, 1, 48, 64), (1, 1, 64, 40)])
def test_unet_too_small_or_not_divisible_raises(shape):
    net = small_unet(depth=5)
    with pytest.raises(ValueError, match=r"too small or not divisible.*multiples of 2\*\*depth=32"):
        net(torch.randn(*shape))


def test_unet_bad_arguments_raise():
    with pytest.raises(ValueError, match="expected images of shape"):
        small_unet()(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*depth=64"):
        small_unet(image_size=32, depth=6)
    with pytest.raises(ValueError, match="is odd"):
        small_unet(image_size=33)
    with pytest.raises(ValueError, match="dropout"):
        small_unet(dropout=1.0)
    with pytest.raises(ValueError, match="depth"):
        small_unet(depth=0)


def test_unet_single_pixel_reaches_whole_output():
    """With a 1x1 bottleneck every output pixel depends on every input pixel (global receptive field)."""
    torch.manual_seed(0)
    net = small_unet(image_size=32).double().eval()
    x = torch.randn(1, 1, 32, 32, dtype=torch.double, requires_grad=True)
    net(x)[0, :, 0, 0].sum().backward()  # a corner output pixel ...
    assert x.grad[0, 0, -1, -1] != 0  # ... sees the opposite corner through the bottleneck
    x2 = x.detach().clone()
    x2[0, 0, 31, 31] += 1.0
    with torch.no_grad():
        assert (net(x2) != net(x.detach())).all()


def test_unet_last_decoder_layer_receives_first_encoder_features():
    torch.manual_seed(0)
    net = small_unet(image_size=32).eval()
    seen = {}
    net.encoder[0].register_forward_hook(lambda m, i, o: seen.__setitem__("enc0", o))
    net.decoder[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("dec_last_in", i[0]))
    with torch.no_grad():
        net(torch.randn(2, 1, 32, 32))
    assert seen["dec_last_in"].shape == (2, 2 * WIDTH, 16, 16)
    assert torch.equal(seen["dec_last_in"][:, :WIDTH], seen["enc0"])  # skip first, then decoder features


def test_unet_skips_carry_information_without_bottleneck():
    """Zeroing the innermost encoder conv cuts the bottleneck path; the output must still follow the input
    through the skips (a U-Net without skips would become constant)."""
    torch.manual_seed(0)
    net = small_unet(image_size=32).double().eval()
    with torch.no_grad():
        net.encoder[-1][0].weight.zero_()
        net.encoder[-1][0].bias.zero_()
        a = net(torch.randn(1, 1, 32, 32, dtype=torch.double))
        b = net(torch.randn(1, 1, 32, 32, dtype=torch.double))
    assert (a - b).abs().mean() > 1e-3
    # the control: with the first skips also cut, nothing of the input reaches the output
    hooks = [blk.register_forward_hook(lambda m, i, o: torch.zeros_like(o)) for blk in net.encoder]
    with torch.no_grad():
        a = net(torch.randn(1, 1, 32, 32, dtype=torch.double))
        b = net(torch.randn(1, 1, 32, 32, dtype=torch.double))
    for h in hooks:
        h.remove()
    assert torch.equal(a, b)


def test_unet_all_parameters_get_gradients():
    torch.manual_seed(0)
    net = small_unet(image_size=32)
    net(torch.randn(2, 1, 32, 32)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_unet_dcgan_init():
    torch.manual_seed(0)
    net = UNetGenerator(image_size=64)
    weight = net.encoder[2][0].weight
    assert abs(weight.std().item() - 0.02) < 2e-3 and abs(weight.mean().item()) < 1e-3


# ------------------------------------------------------------------------------------------- PatchGAN


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (2, 34), (3, 70), (5, 286)])
def test_patchgan_receptive_field(n_layers, field):
    assert PatchGANDiscriminator.receptive_field(n_layers) == field
    assert len(patchgan_layer_specs(n_layers)) == n_layers + 2


@pytest.mark.parametrize(("size", "out"), [(64, 6), (70, 6), (256, 30), (32, 2)])
def test_patchgan_output_shape(size, out):
    net = PatchGANDiscriminator(base_width=WIDTH)
    assert net.output_size(size) == out
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 1, out, out)


def test_patchgan_pix2pix_widths():
    net = PatchGANDiscriminator()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in PatchGANDiscriminator(batch_norm=False).modules())


@pytest.mark.parametrize("batch_norm", [True, False])
def test_patchgan_score_sees_exactly_a_70x70_window(batch_norm):
    """The gradient of one score w.r.t. the input is non-zero exactly on its 70x70 patch."""
    torch.manual_seed(0)
    net = PatchGANDiscriminator(base_width=WIDTH, batch_norm=batch_norm).double().eval()
    x = torch.randn(1, 3, 128, 128, dtype=torch.double, requires_grad=True)
    scores = net(x)
    assert scores.shape == (1, 1, 14, 14)
    row, col = 7, 5
    scores[0, 0, row, col].backward()
    support = x.grad[0].abs().sum(0) != 0
    r0, r1 = net.patch_window(row)
    c0, c1 = net.patch_window(col)
    assert (r1 - r0, c1 - c0) == (70, 70) and 0 <= r0 and r1 <= 128 and 0 <= c0 and c1 <= 128
    expected = torch.zeros_like(support)
    expected[r0:r1, c0:c1] = True
    assert torch.equal(support, expected)


def test_patchgan_conditional_concat():
    torch.manual_seed(0)
    net = PatchGANDiscriminator(base_width=WIDTH).eval()
    lightness, ab = torch.randn(2, 1, 64, 64), torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(ab, cond=lightness), net(torch.cat([ab, lightness], dim=1)))
        assert not torch.equal(net(ab, cond=lightness), net(ab, cond=torch.randn(2, 1, 64, 64)))
    with pytest.raises(ValueError, match="in_channels=3"):
        net(ab)
    with pytest.raises(ValueError, match="expected cond of shape"):
        net(ab, cond=torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="too small"):
        net(torch.randn(1, 3, 16, 16))


def test_patchgan_all_parameters_get_gradients():
    torch.manual_seed(0)
    net = PatchGANDiscriminator(base_width=WIDTH)
    net(torch.randn(2, 2, 64, 64), torch.randn(2, 1, 64, 64)).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
