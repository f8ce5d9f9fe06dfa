"""Tests of the GAN-family networks: MLP/maxout (GAN), DCGAN, EBGAN auto-encoder discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_modules.gan.mlp import Maxout, MaxoutDiscriminator, MLPGenerator
from lightning_modules.networks.autoencoder import AutoEncoderDiscriminator
from lightning_modules.networks.conditioning import append_cond_maps, append_cond_vector
from lightning_modules.networks.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_geometry,
    dcgan_widths,
)

LATENT = 16
BATCH = 3
K = 4  # conditioning width in conditional tests


pytestmark = pytest.mark.usefixtures("single_thread")


def small_generators(channels: int, image_size: int, num_classes: int) -> dict[str, nn.Module]:
    return {
        "mlp": MLPGenerator(LATENT, channels, image_size, hidden_dims=(32, 24), num_classes=num_classes),
        "dcgan": DCGANGenerator(LATENT, channels, image_size, base_width=8, num_classes=num_classes),
    }


def small_discriminators(channels: int, image_size: int, num_classes: int) -> dict[str, nn.Module]:
    return {
        "maxout": MaxoutDiscriminator(
            channels, image_size, hidden_dims=(24, 16), pieces=3, num_classes=num_classes
        ),
        "dcgan": DCGANDiscriminator(channels, image_size, base_width=8, num_classes=num_classes),
        "dcgan_nobn": DCGANDiscriminator(
            channels, image_size, base_width=8, num_classes=num_classes, batch_norm=False
        ),
    }


def small_autoencoders(channels: int, image_size: int, num_classes: int) -> dict[str, nn.Module]:
    return {
        "ae_map": AutoEncoderDiscriminator(channels, image_size, base_width=8, num_classes=num_classes),
        "ae_vec": AutoEncoderDiscriminator(
            channels, image_size, base_width=8, embedding_dim=10, num_classes=num_classes
        ),
    }


def make_cond(num_classes: int, batch: int = BATCH) -> torch.Tensor | None:
    if num_classes == 0:
        return None
    return torch.nn.functional.one_hot(torch.arange(batch) % num_classes, num_classes).float()


def images(channels: int, image_size: int, batch: int = BATCH) -> torch.Tensor:
    return torch.rand(batch, channels, image_size, image_size) * 2 - 1


# --------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("image_size", [8, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, K])
def test_output_shapes(image_size: int, channels: int, num_classes: int) -> None:
    torch.manual_seed(0)
    cond = make_cond(num_classes)
    z = torch.randn(BATCH, LATENT)
    x = images(channels, image_size)
    for name, g in small_generators(channels, image_size, num_classes).items():
        out = g(z, cond)
        assert out.shape == (BATCH, channels, image_size, image_size), name
        assert out.abs().max() <= 1.0, name
    for name, d in small_discriminators(channels, image_size, num_classes).items():
        assert d(x, cond).shape == (BATCH,), name
    base, n = dcgan_geometry(image_size)
    for name, ae in small_autoencoders(channels, image_size, num_classes).items():
        energy, embedding = ae(x, cond)
        expected_e = 10 if name == "ae_vec" else 8 * 2 ** (n - 1) * base * base
        assert energy.shape == (BATCH,), name
        assert embedding.shape == (BATCH, expected_e), name
        assert (energy >= 0).all(), name
        assert ae.reconstruct(x, cond).shape == (BATCH, channels, image_size, image_size), name


@pytest.mark.parametrize(
    ("image_size", "base", "scales"),
    [(8, 4, 1), (16, 4, 2), (28, 7, 2), (32, 4, 3), (64, 4, 4), (128, 4, 5), (12, 3, 2), (20, 5, 2)],
)
def test_dcgan_geometry(image_size: int, base: int, scales: int) -> None:
    assert dcgan_geometry(image_size) == (base, scales)


@pytest.mark.parametrize("image_size", [27, 4, 36, 9, 2])
@pytest.mark.parametrize("cls", [DCGANGenerator, DCGANDiscriminator, AutoEncoderDiscriminator])
def test_invalid_image_size_raises(cls: type[nn.Module], image_size: int) -> None:
    with pytest.raises(ValueError, match=rf"data\.image_size={image_size}"):
        cls(image_size=image_size)


def test_wrong_input_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"z of shape \(B, 100\)"):
        DCGANGenerator()(torch.randn(2, 99))
    with pytest.raises(ValueError, match=r"z of shape \(B, 100\)"):
        MLPGenerator()(torch.randn(2, 100, 1))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\).*image_size=28"):
        DCGANDiscriminator()(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        MaxoutDiscriminator()(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        AutoEncoderDiscriminator().reconstruct(torch.randn(2, 784))


def test_bad_constructor_args_raise() -> None:
    with pytest.raises(ValueError, match="hidden_dims"):
        MLPGenerator(hidden_dims=())
    with pytest.raises(ValueError, match="dropout"):
        MaxoutDiscriminator(dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        DCGANGenerator(num_classes=-1)
    with pytest.raises(ValueError, match="base_width"):
        DCGANDiscriminator(base_width=0)
    with pytest.raises(ValueError, match="embedding_dim"):
        AutoEncoderDiscriminator(embedding_dim=0)


# -------------------------------------------------------------------------------------------- values


def _saturate_(module: nn.Linear | nn.ConvTranspose2d) -> None:
    with torch.no_grad():
        module.weight.mul_(1000.0)


def test_generator_outputs_bounded_even_when_saturated() -> None:
    torch.manual_seed(0)
    z = torch.randn(8, 100)
    mlp = MLPGenerator()
    _saturate_(mlp.net[-1])
    dc = DCGANGenerator(image_size=32, channels=3)
    _saturate_(dc.upsample[-2])
    for g in (mlp, dc):
        out = g(z)
        assert out.min() >= -1.0 and out.max() <= 1.0
        # the pre-activation is huge, so the squashing must be what keeps it in range
        assert out.min() < -0.99 and out.max() > 0.99


def test_mlp_generator_is_affine_sigmoid() -> None:
    torch.manual_seed(0)
    g = MLPGenerator(latent_dim=5, channels=1, image_size=8, hidden_dims=(7,))
    z = torch.randn(4, 5)
    pre = g.net(z)
    expected = (2 * torch.sigmoid(pre) - 1).view(4, 1, 8, 8)
    torch.testing.assert_close(g(z), expected)
    torch.testing.assert_close(g(z), torch.tanh(pre / 2).view(4, 1, 8, 8))


def test_maxout_hand_computed() -> None:
    m = Maxout(2, 2, pieces=3)
    with torch.no_grad():
        # rows 0..2 are unit 0's pieces, rows 3..5 unit 1's pieces
        m.linear.weight.copy_(
            torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, -3.0]])
        )
        m.linear.bias.copy_(torch.tensor([0.0, 0.0, -5.0, 0.5, 0.0, 1.0]))
    x = torch.tensor([[2.0, 3.0], [-1.0, -4.0]])
    # sample 0: unit 0 max(2, 3, 0) = 3;   unit 1 max(-1.5, -3, 4 - 9 + 1 = -4) = -1.5
    # sample 1: unit 0 max(-1, -4, -10) = -1; unit 1 max(1.5, 4, -2 + 12 + 1 = 11) = 11
    torch.testing.assert_close(m(x), torch.tensor([[3.0, -1.5], [-1.0, 11.0]]))


def test_maxout_discriminator_default_size_matches_paper() -> None:
    d = MaxoutDiscriminator()
    # 784 -> 240x5 -> 240x5 -> 1 (pylearn2 mnist.yaml)
    expected = (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 + 1)
    assert sum(p.numel() for p in d.parameters()) == expected
    g = MLPGenerator()
    expected_g = (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784)
    assert sum(p.numel() for p in g.parameters()) == expected_g


@pytest.mark.parametrize("embedding_dim", [None, 12])
@pytest.mark.parametrize("num_classes", [0, K])
def test_energy_is_reconstruction_mse(embedding_dim: int | None, num_classes: int) -> None:
    torch.manual_seed(0)
    ae = AutoEncoderDiscriminator(
        3, 16, base_width=8, embedding_dim=embedding_dim, num_classes=num_classes
    ).eval()
    x = images(3, 16, batch=4)
    cond = make_cond(num_classes, 4)
    energy, embedding = ae(x, cond)
    rec = ae.reconstruct(x, cond)
    assert rec.abs().max() <= 1.0
    manual = ((rec - x) ** 2).sum(dim=(1, 2, 3)) / (3 * 16 * 16)
    torch.testing.assert_close(energy, manual)
    assert energy.min() > 0.01  # an untrained auto-encoder does not reconstruct noise
    # the embedding is the encoder output, not a function of the decoder
    with torch.no_grad():
        for p in ae.decoder.parameters():
            p.add_(1.0)
    energy2, embedding2 = ae(x, cond)
    torch.testing.assert_close(embedding2, embedding)
    assert not torch.allclose(energy2, energy)


def test_ae_embedding_is_flattened_encoder_map() -> None:
    torch.manual_seed(0)
    ae = AutoEncoderDiscriminator().eval()
    x = images(1, 28)
    _, embedding = ae(x)
    torch.testing.assert_close(embedding, ae.encoder(x).flatten(1))
    assert embedding.shape == (BATCH, 128 * 7 * 7)


# ------------------------------------------------------------------------------------------ conditioning


def test_conditioning_helpers() -> None:
    x = torch.zeros(2, 1, 3, 3)
    cond = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = append_cond_maps(x, cond)
    assert out.shape == (2, 3, 3, 3)
    assert out[0, 1].eq(1).all() and out[0, 2].eq(0).all() and out[1, 2].eq(1).all()
    assert append_cond_maps(x, None) is x
    v = append_cond_vector(torch.full((2, 3), 7.0), cond)
    torch.testing.assert_close(v, torch.tensor([[7.0, 7, 7, 1, 0], [7.0, 7, 7, 0, 1]]))


def _all_conditional_nets() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    nets: dict[str, tuple[nn.Module, torch.Tensor]] = {}
    for name, g in small_generators(1, 28, K).items():
        nets[f"G_{name}"] = (g, torch.randn(BATCH, LATENT))
    for name, d in {**small_discriminators(1, 28, K), **small_autoencoders(1, 28, K)}.items():
        nets[f"D_{name}"] = (d, images(1, 28))
    return nets


def _first(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def test_conditional_output_depends_on_cond() -> None:
    for name, (net, inp) in _all_conditional_nets().items():
        net.eval()
        # the auto-encoder's energy is dominated by |x|^2 at init: compare its reconstruction instead
        run = net.reconstruct if isinstance(net, AutoEncoderDiscriminator) else net
        a = _first(run(inp, torch.eye(K)[[0, 1, 2]]))
        b = _first(run(inp, torch.eye(K)[[3, 3, 3]]))
        same = _first(run(inp, torch.eye(K)[[0, 1, 2]]))
        torch.testing.assert_close(a, same, msg=name)  # deterministic in eval mode
        diff = (a - b).abs().reshape(BATCH, -1).amax(dim=1)
        # relative: the maxout net's paper init (U(+-0.005)) gives logits of order 1e-5
        scale = torch.maximum(a.abs(), b.abs()).reshape(BATCH, -1).amax(dim=1)
        assert (diff > 1e-3 * scale).all() and (scale > 0).all(), f"{name}: output ignores cond ({diff})"
        # multi-hot attribute vectors are accepted too
        assert _first(net(inp, torch.ones(BATCH, K))).shape[0] == BATCH


def test_cond_errors() -> None:
    for net, inp in _all_conditional_nets().values():
        with pytest.raises(ValueError, match=rf"num_classes={K}.*got None"):
            net(inp)
        with pytest.raises(
            ValueError, match=rf"expected cond of shape \({BATCH}, {K}\).*got \({BATCH}, {K + 1}\)"
        ):
            net(inp, torch.zeros(BATCH, K + 1))
        with pytest.raises(ValueError, match="one-hot encoded"):
            net(inp, torch.zeros(BATCH, dtype=torch.long))
        with pytest.raises(ValueError, match=r"got \(2, 4\)"):
            net(inp, torch.zeros(2, K))  # wrong batch size
    unconditional = {
        **small_generators(1, 8, 0),
        **small_discriminators(1, 8, 0),
        **small_autoencoders(1, 8, 0),
    }
    for name, net in unconditional.items():
        inp = torch.randn(BATCH, LATENT) if isinstance(net, (MLPGenerator, DCGANGenerator)) else images(1, 8)
        with pytest.raises(ValueError, match="unconditional"):
            net(inp, torch.eye(K)[:BATCH])
        assert _first(net(inp)).shape[0] == BATCH, name


# -------------------------------------------------------------------------------------------- structure


def test_dcgan_64_channel_progression() -> None:
    g = DCGANGenerator(latent_dim=100, channels=3, image_size=64)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    assert [c.in_channels for c in convs] == [100, 512, 256, 128, 64]
    assert convs[0].kernel_size == (4, 4) and convs[0].stride == (1, 1)
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs[1:])
    # BatchNorm after every layer but the output, tanh output
    assert [m.num_features for m in g.modules() if isinstance(m, nn.BatchNorm2d)] == [512, 256, 128, 64]
    assert isinstance(g.upsample[-1], nn.Tanh)
    # resolutions 4 -> 8 -> 16 -> 32 -> 64
    sizes: list[int] = []
    hooks = [c.register_forward_hook(lambda _m, _i, o: sizes.append(o.shape[-1])) for c in convs]
    g.eval()(torch.randn(1, 100))
    for h in hooks:
        h.remove()
    assert sizes == [4, 8, 16, 32, 64]

    d = DCGANDiscriminator(channels=3, image_size=64)
    dconvs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in dconvs] == [64, 128, 256, 512, 1]
    assert [m.num_features for m in d.modules() if isinstance(m, nn.BatchNorm2d)] == [128, 256, 512]
    slopes = {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in DCGANDiscriminator(batch_norm=False).modules())


def test_dcgan_28_progression_and_widths() -> None:
    g = DCGANGenerator()
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == [128, 64, 1]
    assert dcgan_widths(64, 4) == (512, 256, 128, 64)
    d = DCGANDiscriminator(num_classes=10)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 1 + 10  # cond maps as extra input channels
    assert convs[-1].kernel_size == (7, 7)


def test_dcgan_init() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(channels=3, image_size=64)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and 0.019 < w.std().item() < 0.021
    bn_w = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn_w.mean().item() - 1.0) < 3e-3 and 0.015 < bn_w.std().item() < 0.025
    biases = [m.bias for m in g.modules() if getattr(m, "bias", None) is not None]
    assert biases and all(b.abs().max().item() == 0.0 for b in biases)


def test_hydra_instantiate_from_yaml() -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        """
        g: {_target_: lightning_modules.gan.mlp.MLPGenerator, latent_dim: 10, hidden_dims: [20, 30]}
        d: {_target_: lightning_modules.networks.dcgan.DCGANDiscriminator, image_size: 32, channels: 3}
        e: {_target_: lightning_modules.networks.autoencoder.AutoEncoderDiscriminator, embedding_dim: null}
        """
    )
    g = instantiate(cfg.g)
    assert g.hidden_dims == (20, 30) and g(torch.randn(2, 10)).shape == (2, 1, 28, 28)
    assert instantiate(cfg.d)(torch.randn(2, 3, 32, 32)).shape == (2,)
    assert instantiate(cfg.e).embedding_dim == 128 * 7 * 7


# -------------------------------------------------------------------------------------------- gradients


def test_gradients_reach_every_parameter() -> None:
    for name, (net, inp) in _all_conditional_nets().items():
        net.train()
        net.zero_grad(set_to_none=True)
        _first(net(inp, make_cond(K))).sum().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not missing, f"{name}: no gradient for {missing}"


def test_critic_supports_gradient_penalty_double_backward() -> None:
    torch.manual_seed(0)
    d = DCGANDiscriminator(3, 32, base_width=8, batch_norm=False)
    x = images(3, 32).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    # input gradients of a piecewise-linear net do not depend on biases; every weight must get a gradient
    weights = [p for n, p in d.named_parameters() if n.endswith("weight")]
    assert len(weights) == 4 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
