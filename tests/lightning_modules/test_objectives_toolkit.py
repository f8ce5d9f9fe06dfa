"""The GAN toolkit's numbers against independent computations: the hinge loss on hand-picked scores, R1
(Mescheder et al. 2018, eq. 9) and WGAN-GP's penalty (Gulrajani et al. 2017, Algorithm 1) on critics whose
input gradient is known in closed form or computed by torch.func and finite differences, spectral
normalization's largest singular values (Miyato et al. 2018), and the discriminators' normalization option."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightning_modules.colorization.patchgan import PatchGANDiscriminator
from lightning_modules.gan.mlp import MaxoutDiscriminator
from lightning_modules.networks.dcgan import DCGANDiscriminator
from lightning_modules.networks.normalization import SPECTRAL_LAYERS, resolve_normalization, spectral_norm_
from lightning_modules.objectives import (
    EnergyObjective,
    GANObjective,
    HingeObjective,
    LSGANObjective,
    WassersteinObjective,
    interpolate_gradient_penalty,
    mean_score,
    r1_penalty,
)

pytestmark = pytest.mark.usefixtures("single_thread")
SHAPE = (4, 2, 3, 3)  # a batch of 4 two-channel 3 x 3 images: 18 values per image


def linear_critic(w: torch.Tensor, bias: float = 0.7):
    """``D(x) = <w, x> + bias (+ 5 * label)``: its input gradient is ``w`` for every ``x``."""
    def discriminate(images, labels=None):
        out = images.flatten(1) @ w.flatten() + bias
        return out if labels is None else out + 5.0 * labels.float()
    return discriminate


def weights(seed: int = 0) -> torch.Tensor:
    return torch.randn(SHAPE[1:], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def images(seed: int) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- hinge
def test_hinge_losses_on_hand_picked_scores():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 0.5])
    d_loss, logs = HingeObjective().discriminator_loss(real, fake)
    # relu(1 - real) = (0, 0.5, 2), relu(1 + fake) = (0, 1, 1.5): 2.5 / 3 each
    assert d_loss.item() == pytest.approx(5.0 / 3.0)
    assert logs["d_real"].item() == pytest.approx(0.5) and logs["d_fake"].item() == pytest.approx(-0.5)
    g_loss, _ = HingeObjective().generator_loss(fake)
    assert g_loss.item() == pytest.approx(0.5)  # -mean(-2, 0, 0.5)
    # beyond the margins the discriminator's loss is 0; at D = 0 it is 2
    assert HingeObjective().discriminator_loss(torch.full((2,), 1.5), torch.full((2,), -3.0))[0].item() == 0.0
    assert HingeObjective().discriminator_loss(torch.zeros(2), torch.zeros(2))[0].item() == pytest.approx(2.0)


def test_hinge_averages_patch_maps_like_the_other_objectives():
    real, fake = torch.tensor([[[[0.0, 2.0], [2.0, 2.0]]]]), torch.full((1, 1, 2, 2), -1.0)
    assert HingeObjective().discriminator_loss(real, fake)[0].item() == pytest.approx(0.25)


# ---------------------------------------------------------------- R1
@pytest.mark.parametrize("gamma", [10.0, 0.5])
def test_r1_of_a_linear_discriminator_is_half_gamma_times_the_squared_weight_norm(gamma):
    w = weights().requires_grad_(True)
    r1 = r1_penalty(linear_critic(w), images(1), None, gamma)
    assert r1.item() == pytest.approx(gamma / 2 * w.detach().pow(2).sum().item(), rel=1e-12)
    # its gradient reaches the discriminator's parameters: d/dw (gamma/2 ||w||^2) = gamma w
    r1.backward()
    torch.testing.assert_close(w.grad, gamma * w.detach())


def test_r1_ignores_the_condition_and_needs_no_gradient_on_the_inputs():
    w = weights()
    labels = torch.tensor([0, 1, 2, 3])
    real = images(2)  # no requires_grad, as a data batch
    r1 = r1_penalty(linear_critic(w), real, labels, 4.0)
    assert r1.item() == pytest.approx(2.0 * w.pow(2).sum().item(), rel=1e-12)
    assert not real.requires_grad and real.grad is None


def test_r1_of_a_nonlinear_discriminator_matches_torch_func():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(18, 7), nn.Tanh(), nn.Linear(7, 1)).double()
    real = images(3)
    r1 = r1_penalty(lambda x, _labels: net(x).squeeze(1), real, None, 10.0)
    per_sample = torch.func.vmap(torch.func.grad(lambda x: net(x.unsqueeze(0)).sum()))(real)
    expected = 5.0 * per_sample.pow(2).flatten(1).sum(1).mean()
    assert r1.item() == pytest.approx(expected.item(), rel=1e-10)


def test_r1_of_a_patch_map_differentiates_the_mean_score():
    # D(x) = w * x per pixel, a (B, 1, 3, 3) map; the score is its mean: gradient w / 9 per image
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    real = torch.randn(5, 1, 3, 3, dtype=torch.float64)
    r1 = r1_penalty(lambda x, _labels: w * x, real, None, 2.0)
    assert r1.item() == pytest.approx(w.pow(2).sum().item() / 81, rel=1e-12)


def test_r1_on_the_energy_of_an_auto_encoder_discriminator():
    # energy = mean(x^2) over 18 values: gradient 2x / 18, ||grad||^2 = 4 ||x||^2 / 324
    real = images(4)
    objective = EnergyObjective(margin=1.0, pt_weight=0.0, r1_gamma=3.0)
    penalty, logs = objective.penalty(lambda x, _labels: (x.pow(2).flatten(1).mean(1), x.flatten(1)), real,
                                      real, None)
    expected = 1.5 * (4 * real.pow(2).flatten(1).sum(1) / 324).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    assert logs["r1"].item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("objective", [GANObjective(r1_gamma=6.0), LSGANObjective(r1_gamma=6.0),
                                       HingeObjective(r1_gamma=6.0),
                                       WassersteinObjective(clip_value=None, r1_gamma=6.0)])
def test_every_objective_adds_r1_to_its_own_loss(objective):
    w, real, fake = weights(), images(5), images(6)
    discriminate = linear_critic(w)
    real_out, fake_out = discriminate(real), discriminate(fake)
    total, logs = objective.penalized_discriminator_loss(real_out, fake_out, discriminate, real, fake)
    plain, plain_logs = objective.discriminator_loss(real_out, fake_out)
    r1 = 3.0 * w.pow(2).sum()
    assert total.item() == pytest.approx((plain + r1).item(), rel=1e-12)
    assert logs["r1"].item() == pytest.approx(r1.item(), rel=1e-12)
    assert set(logs) == set(plain_logs) | {"r1"}


def test_without_a_penalty_the_total_is_the_objectives_loss():
    w, real, fake = weights(), images(5), images(6)
    discriminate = linear_critic(w)
    for objective in (GANObjective(), HingeObjective(), WassersteinObjective()):
        assert objective.penalty(discriminate, real, fake) == (None, {})
        total, logs = objective.penalized_discriminator_loss(discriminate(real), discriminate(fake), discriminate,
                                                             real, fake)
        plain, plain_logs = objective.discriminator_loss(discriminate(real), discriminate(fake))
        assert total.item() == plain.item() and logs.keys() == plain_logs.keys()


# ---------------------------------------------------------------- WGAN-GP
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_a_linear_critic_is_lambda_times_the_norm_minus_one_squared(scale):
    w = weights(7)
    w = (scale * w / w.norm()).requires_grad_(True)  # ||w|| = scale
    penalty, norms = interpolate_gradient_penalty(linear_critic(w), images(8), images(9), None, 10.0)
    torch.testing.assert_close(norms, torch.full((SHAPE[0],), scale, dtype=torch.float64))
    assert penalty.item() == pytest.approx(10.0 * (scale - 1) ** 2, abs=1e-12)
    # whatever eps: a second draw gives the same value
    again, _ = interpolate_gradient_penalty(linear_critic(w), images(8), images(9), None, 10.0)
    assert again.item() == pytest.approx(penalty.item(), abs=1e-12)
    # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    penalty.backward()
    torch.testing.assert_close(w.grad, 20.0 * (scale - 1) * w.detach() / scale)


def test_gradient_penalty_of_a_nonlinear_critic_matches_finite_differences():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(18, 9), nn.Softplus(), nn.Linear(9, 1)).double()
    real, fake = images(10), images(11)
    penalty, norms = interpolate_gradient_penalty(lambda x, _labels: net(x).squeeze(1), real, fake, None, 10.0,
                                                  generator=torch.Generator().manual_seed(42))
    eps = torch.rand(SHAPE[0], 1, 1, 1, generator=torch.Generator().manual_seed(42)).double()
    x_hat = eps * real + (1 - eps) * fake  # Algorithm 1, line 6
    step, grads = 1e-6, torch.zeros_like(x_hat)
    with torch.no_grad():
        for i in range(18):
            bump = torch.zeros(18, dtype=torch.float64)
            bump[i] = step
            bump = bump.view(SHAPE[1:])
            grads.flatten(1)[:, i] = (net(x_hat + bump) - net(x_hat - bump)).squeeze(1) / (2 * step)
    expected_norms = grads.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, expected_norms, rtol=1e-7, atol=1e-9)
    assert penalty.item() == pytest.approx((10.0 * (expected_norms - 1).pow(2).mean()).item(), rel=1e-6)


def test_wgan_gp_objective_adds_the_penalty_to_the_critic_loss_and_logs_it():
    w = weights(12)
    w = 2.0 * w / w.norm()
    real, fake = images(13), images(14)
    discriminate = linear_critic(w)
    objective = WassersteinObjective(clip_value=None, gradient_penalty=10.0, r1_gamma=1.0)
    total, logs = objective.penalized_discriminator_loss(discriminate(real), discriminate(fake), discriminate,
                                                         real, fake)
    estimate = discriminate(real).mean() - discriminate(fake).mean()
    # critic loss -estimate, R1 1/2 * ||w||^2 = 2, gradient penalty 10 * (2 - 1)^2 = 10
    assert total.item() == pytest.approx(-estimate.item() + 2.0 + 10.0, rel=1e-12)
    assert logs["gradient_penalty"].item() == pytest.approx(10.0)
    assert logs["gradient_norm"].item() == pytest.approx(2.0)
    assert logs["r1"].item() == pytest.approx(2.0)
    assert logs["wasserstein"].item() == pytest.approx(estimate.item())
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.fill_(5.0)
    objective.after_discriminator_step(critic)  # no clipping with the penalty
    assert critic.weight.min().item() == 5.0


def test_penalty_settings_are_checked_naming_their_keys():
    with pytest.raises(ValueError, match="model.objective.r1_gamma"):
        HingeObjective(r1_gamma=-1.0)
    with pytest.raises(ValueError, match="model.objective.r1_gamma"):
        GANObjective(r1_gamma=float("nan"))
    with pytest.raises(ValueError, match="model.objective.gradient_penalty"):
        WassersteinObjective(clip_value=None, gradient_penalty=-10.0)
    with pytest.raises(ValueError, match="clip_value=null"):
        WassersteinObjective(clip_value=0.01, gradient_penalty=10.0)
    with pytest.raises(ValueError, match="same shape"):
        interpolate_gradient_penalty(linear_critic(weights()), images(1), images(2)[:2], None, 10.0)
    with pytest.raises(TypeError, match="score"):
        mean_score((torch.zeros(2), torch.zeros(2, 3)))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference mode"):
        r1_penalty(linear_critic(weights()), images(1), None, 1.0)


def test_penalty_works_under_no_grad():
    # a penalty asked for inside torch.no_grad (e.g. by a user's own evaluation) still differentiates
    with torch.no_grad():
        r1 = r1_penalty(linear_critic(weights()), images(1), None, 2.0)
    assert r1.item() == pytest.approx(weights().pow(2).sum().item(), rel=1e-12)


# ---------------------------------------------------------------- spectral normalization
def spectral_norms(network: nn.Module) -> list[float]:
    """The largest singular value of every normalized layer's weight as used, reshaped to (out, -1)."""
    return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
            for m in network.modules() if isinstance(m, SPECTRAL_LAYERS)]


@pytest.mark.parametrize("make", [
    lambda sn: DCGANDiscriminator(1, 28, base_width=8, normalization="none", spectral_norm=sn),
    lambda sn: DCGANDiscriminator(3, 16, base_width=8, num_classes=3, n_extra_layers=1, spectral_norm=sn),
    lambda sn: MaxoutDiscriminator(1, 8, hidden_dims=(12, 10), pieces=3, spectral_norm=sn),
    lambda sn: PatchGANDiscriminator(3, base_width=4, n_layers=2, spectral_norm=sn),
], ids=["dcgan", "dcgan_bn_cond_extra", "maxout", "patchgan"])
def test_spectral_norm_gives_every_layer_a_largest_singular_value_of_one(make):
    torch.manual_seed(0)
    plain, normalized = make(False), make(True)
    assert any(abs(s - 1) > 0.2 for s in spectral_norms(plain))  # the raw weights are not normalized
    normalized.train()
    x = torch.randn(2, *example_input_shape(normalized))
    cond = torch.eye(3)[:2] if getattr(normalized, "num_classes", 0) else None
    for _ in range(30):  # power iterations, one per training forward pass
        normalized(x, cond)
    sigmas = spectral_norms(normalized)
    assert len(sigmas) == sum(isinstance(m, SPECTRAL_LAYERS) for m in plain.modules())
    assert sigmas == pytest.approx([1.0] * len(sigmas), abs=0.02)


def example_input_shape(network: nn.Module) -> tuple[int, ...]:
    if isinstance(network, PatchGANDiscriminator):
        return (network.in_channels, 16, 16)
    return (network.channels, network.image_size, network.image_size)


def test_a_spectrally_normalized_discriminator_saves_loads_copies_and_averages():
    torch.manual_seed(0)
    net = DCGANDiscriminator(1, 28, base_width=8, normalization="none", spectral_norm=True)
    x = torch.randn(3, 1, 28, 28)
    net.train()
    for _ in range(3):
        net(x)
    net.eval()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert any(k.endswith("parametrizations.weight.original") for k in state)
    fresh = DCGANDiscriminator(1, 28, base_width=8, normalization="none", spectral_norm=True).eval()
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), net(x))
    torch.testing.assert_close(copy.deepcopy(net)(x), net(x))
    average = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    average.update_parameters(net)
    torch.testing.assert_close(average.module.eval()(x), net(x))
    # applying it twice changes nothing; a network without layers is refused
    assert spectral_norm_(net) is net and spectral_norms(net) == pytest.approx(spectral_norms(fresh))
    with pytest.raises(ValueError, match="no convolution or linear"):
        spectral_norm_(nn.Sequential(nn.ReLU()))


# ---------------------------------------------------------------- normalization
def test_dcgan_discriminator_normalization_choices():
    def kinds(net):
        return {type(m).__name__ for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))}

    assert kinds(DCGANDiscriminator()) == {"BatchNorm2d"}
    assert kinds(DCGANDiscriminator(normalization="layer")) == {"GroupNorm"}
    assert kinds(DCGANDiscriminator(normalization="none")) == set()
    assert kinds(DCGANDiscriminator(batch_norm=False)) == set()  # the older flag still works
    layer = DCGANDiscriminator(channels=1, image_size=28, base_width=8, normalization="layer")
    norms = [m for m in layer.modules() if isinstance(m, nn.GroupNorm)]
    assert [(m.num_groups, m.num_channels) for m in norms] == [(1, 16)]
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)  # layer norm does not cancel a per-channel bias
    # per sample: zero mean and unit variance over (C, H, W) at init (scale 1, offset 0)
    h = torch.randn(2, 16, 7, 7) * 3 + 1
    out = norms[0](h)
    torch.testing.assert_close(out.flatten(1).mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.flatten(1).var(1, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)
    assert resolve_normalization(None, None, "D") == "batch"
    with pytest.raises(ValueError, match="model.discriminator.normalization"):
        DCGANDiscriminator(normalization="instance")
    with pytest.raises(ValueError, match="contradicts"):
        DCGANDiscriminator(batch_norm=True, normalization="layer")


# ---------------------------------------------------------------- the modules
def fit(overrides: list[str], tmp_path, batches: int, callbacks=()):
    """Train the composed preset for ``batches`` batches on the CPU (no validation, logger, checkpoint)."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from tests.hydra_helpers import compose_train

    cfg = compose_train([*overrides, "debug=fdr"], tmp_path)
    model = instantiate(cfg.model)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=0, num_sanity_val_steps=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1, callbacks=list(callbacks))
    trainer.fit(model, datamodule=instantiate(cfg.data))
    return model, trainer


def finite_parameters(model: nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_wgan_gp_preset_trains_with_the_penalty_and_no_batch_norm_in_the_critic(tmp_path):
    model, trainer = fit(["model=wgan_gp"], tmp_path, batches=6)  # 5 critic steps, a generator step, 1 more
    metrics = trainer.callback_metrics
    assert model.generator_steps == 1 and finite_parameters(model)
    assert metrics["train/gradient_penalty"] > 0 and torch.isfinite(metrics["train/gradient_norm"])
    assert {"train/wasserstein", "train/g_loss", "train/d_loss"} <= metrics.keys()
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in model.discriminator.modules())
    assert model.objective.clip_value is None and model.objective.gradient_penalty == 10.0
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == [1e-4, 1e-4]
    assert [tuple(o.param_groups[0]["betas"]) for o in trainer.optimizers] == [(0.5, 0.9), (0.5, 0.9)]


@pytest.mark.slow
def test_sngan_preset_trains_saves_loads_and_copies(tmp_path):
    model, trainer = fit(["model=sngan", "model.ema_decay=0.999", "model.n_critic=1"], tmp_path, batches=2)
    metrics = trainer.callback_metrics
    assert model.generator_steps == 2 and finite_parameters(model)
    assert torch.isfinite(metrics["train/d_loss"]) and torch.isfinite(metrics["train/g_loss"])
    assert isinstance(model.objective, HingeObjective)
    convs = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(hasattr(c, "parametrizations") for c in convs)
    path = tmp_path / "sngan.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    from hydra.utils import instantiate

    from tests.hydra_helpers import compose_train

    fresh = instantiate(compose_train(["model=sngan", "model.ema_decay=0.999", "debug=fdr"], tmp_path).model)
    fresh.load_state_dict(checkpoint["state_dict"])
    x = torch.randn(3, 1, 28, 28)
    expected = model.discriminator.eval()(x)
    torch.testing.assert_close(fresh.discriminator.eval()(x), expected)
    torch.testing.assert_close(copy.deepcopy(model).discriminator(x), expected)
    torch.testing.assert_close(fresh.sample(4, generator=torch.Generator().manual_seed(0)),
                               model.sample(4, generator=torch.Generator().manual_seed(0)))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["dcgan", "ebgan"])
def test_r1_on_any_preset_is_logged(preset, tmp_path):
    model, trainer = fit([f"model={preset}", "model.objective.r1_gamma=10"], tmp_path, batches=2)
    assert trainer.callback_metrics["train/r1"] > 0 and finite_parameters(model)


@pytest.mark.slow
def test_a_colorizer_critic_takes_the_gradient_penalty_on_ab_given_l(tmp_path):
    model, trainer = fit(["model=colorizer_wgan", "data=photos", "model/objective=wgan_gp"], tmp_path, batches=1)
    metrics = trainer.callback_metrics
    assert metrics["train/gradient_penalty"] > 0 and torch.isfinite(metrics["train/gradient_norm"])
    assert finite_parameters(model)


@pytest.mark.slow
@pytest.mark.parametrize("simultaneous", [True, False])
def test_the_discriminator_steps_on_its_loss_plus_the_penalty(simultaneous, tmp_path):
    # the GAN preset without dropout, SGD at 0.1 (momentum's first step is the plain gradient): after one
    # batch the discriminator moved by -0.1 times the gradient of its loss plus R1, both with one update
    # (simultaneous, gradients from manual_backward(d_loss, inputs=...)) and with the discriminator first
    # (inside toggled_optimizer)
    from pytorch_lightning.callbacks import LambdaCallback

    seen = {}  # the module, batch and random state as the batch starts

    def remember(trainer, module, batch, batch_idx):
        seen.update(module=copy.deepcopy(module).cpu(), images=batch[0], rng=torch.get_rng_state())

    model, _ = fit(["model=gan", f"model.simultaneous={simultaneous}", "model.discriminator.dropout=0",
                    "model.discriminator.input_dropout=0", "+model.discriminator.init_range=0.05",
                    "model.objective.r1_gamma=1000"], tmp_path, batches=1,
                   callbacks=[LambdaCallback(on_train_batch_start=remember)])
    before = seen["module"]
    real = before.to_network(seen["images"])
    torch.set_rng_state(seen["rng"])
    fake = before.generator_output(before.noise(real.shape[0])).detach()
    critic = before.discriminator
    discriminate = lambda images, _labels: critic(images)
    params = list(critic.parameters())
    with_r1, logs = before.objective.penalized_discriminator_loss(critic(real), critic(fake), discriminate, real,
                                                                  fake)
    without, _ = before.objective.discriminator_loss(critic(real), critic(fake))
    grads = torch.autograd.grad(with_r1, params)
    plain = torch.autograd.grad(without, params)
    assert logs["r1"] > 0 and max((g - h).abs().max() for g, h in zip(grads, plain)) > 1e-3
    for p0, g, p1 in zip(params, grads, model.discriminator.parameters()):
        torch.testing.assert_close(p1.detach().cpu(), p0.detach() - 0.1 * g, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- the configs
def test_new_presets_compose_from_dcgan_and_differ_only_where_they_say(tmp_path):
    from omegaconf import OmegaConf

    from tests.hydra_helpers import CONF, compose_train

    def model(*overrides):
        return OmegaConf.to_container(compose_train(["model=" + overrides[0], *overrides[1:]], tmp_path).model)

    dcgan = model("dcgan")
    for preset, keys in {"wgan_gp": {"objective", "optimizer_g", "optimizer_d", "n_critic", "discriminator",
                                     "max_generator_steps"},
                         "sngan": {"objective", "discriminator", "n_critic", "optimizer_g", "optimizer_d"}}.items():
        other = model(preset)
        assert {k for k in dcgan.keys() | other.keys() if dcgan.get(k) != other.get(k)} == keys
        assert {k for k in dcgan["discriminator"] if dcgan["discriminator"][k] != other["discriminator"][k]} == (
            {"normalization"} if preset == "wgan_gp" else {"normalization", "spectral_norm"})
    wgan_gp, sngan = model("wgan_gp"), model("sngan")
    assert wgan_gp["objective"] == {"_target_": "lightning_modules.objectives.WassersteinObjective",
                                    "clip_value": None, "gradient_penalty": 10.0, "r1_gamma": 0.0}
    assert (wgan_gp["n_critic"], wgan_gp["n_critic_burst"], wgan_gp["max_generator_steps"]) == (5, None, 1500)
    assert wgan_gp["optimizer_d"] == {**dcgan["optimizer_d"], "lr": 1e-4, "betas": [0.5, 0.9]}
    assert wgan_gp["discriminator"]["normalization"] == "none"
    assert sngan["objective"]["_target_"].endswith("HingeObjective") and sngan["max_generator_steps"] == 1240
    assert sngan["discriminator"]["spectral_norm"] is True and sngan["discriminator"]["normalization"] == "none"
    assert sngan["n_critic"] == 5 and sngan["optimizer_g"] == {**dcgan["optimizer_g"], "betas": [0.0, 0.9]}
    # every objective takes r1_gamma, off by default; the command line turns it on, on any preset
    for path in sorted((CONF / "model" / "objective").glob("*.yaml")):
        assert OmegaConf.load(path)["r1_gamma"] == 0.0, path.name
    assert model("dcgan", "model.objective.r1_gamma=10")["objective"]["r1_gamma"] == 10
    assert model("dcgan", "model/objective=hinge")["objective"]["_target_"].endswith("HingeObjective")
    assert model("wgan_gp", "model/objective=hinge")["objective"]["_target_"].endswith("HingeObjective")
