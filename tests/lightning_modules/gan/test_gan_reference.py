"""The GAN family as its reference code trains it: schedules, the marginal output bias, the 0.5 cost, the
critic-iteration schedule, the budget in generator iterations, EMA, and reproducible evaluation."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from hydra.utils import instantiate

from lightning_modules.gan.mlp import MLPGenerator
from lightning_modules.objectives import GANObjective
from lightning_modules.schedules import ExponentialDecay, MomentumAdjustor, critic_iterations
from tests.hydra_helpers import compose_train, run_cli, run_train

FAST = ["logger=csv", "callbacks.evaluation.feature_epochs=1", "callbacks.parzen=null", "test=false"]


def sgd(lr=0.1, momentum=0.5):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=momentum)


def test_exponential_decay_divides_by_the_factor_per_update_down_to_the_floor():
    optimizer = sgd()
    schedule = ExponentialDecay(optimizer, decay_factor=1.000004, min_lr=1e-6)
    assert optimizer.param_groups[0]["lr"] == 0.1  # the first update uses the base rate
    for _ in range(1000):
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 1.000004**1000, rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.09960080, rel=1e-7)
    # 0.1 / 1.000004**t reaches 1e-6 after ln(1e5) / ln(1.000004) = 2,878,237.1 updates; then it stays there
    schedule.last_epoch = 2_878_237
    assert schedule.get_lr()[0] == pytest.approx(1.0000004e-6, rel=1e-6)
    schedule.last_epoch = 2_878_238
    assert schedule.get_lr()[0] == 1e-6
    schedule.last_epoch = 10**12  # no overflow far beyond
    assert schedule.get_lr()[0] == 1e-6
    assert ExponentialDecay.interval == "step" and MomentumAdjustor.interval == "epoch"


def test_momentum_rises_linearly_from_epoch_1_to_250():
    optimizer = sgd(momentum=0.5)
    schedule = MomentumAdjustor(optimizer, final_momentum=0.7, start=1, saturate=250)
    by_epoch = {1: optimizer.param_groups[0]["momentum"]}
    for epoch in range(2, 302):
        schedule.step()
        by_epoch[epoch] = optimizer.param_groups[0]["momentum"]
    assert by_epoch[1] == 0.5
    assert by_epoch[2] == pytest.approx(0.5 + 0.2 / 249)
    assert by_epoch[125] == pytest.approx(0.5 + 0.2 * 124 / 249)
    assert by_epoch[249] < 0.7 and by_epoch[250] == pytest.approx(0.7) and by_epoch[301] == pytest.approx(0.7)
    restored = MomentumAdjustor(sgd(momentum=0.5), final_momentum=0.7)
    restored.load_state_dict(schedule.state_dict())
    assert restored.optimizer.param_groups[0]["momentum"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="momentum"):
        MomentumAdjustor(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]))


def test_critic_iteration_schedule_of_the_wgan_reference_code():
    counts = [critic_iterations(g, 5, 100, 25, 500) for g in range(1501)]
    assert counts[:25] == [100] * 25 and counts[25] == 5
    assert [g for g, n in enumerate(counts) if n == 100 and g >= 25] == [500, 1000, 1500]
    assert sum(counts[:1500]) == 25 * 100 + 2 * 100 + (1500 - 27) * 5  # 10,065 critic iterations
    assert critic_iterations(0, 5, None) == 5 and critic_iterations(3, 2, 7, 0, 0) == 2
    with pytest.raises(ValueError, match="n_critic"):
        critic_iterations(0, 0)


@pytest.mark.slow
def test_critic_bursts_in_a_run_and_the_count_of_generator_iterations(tmp_path):
    # bursts of 3 critic steps for the first 2 generator iterations, then 2: 10 batches give generator
    # steps after batches 3, 6, 8, 10
    run_train(["model=wgan", "debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=10",
               "model.n_critic=2", "model.n_critic_burst=3", "model.burst_first=2", "model.burst_every=0", *FAST],
              tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["generator_steps"] == 4 and checkpoint["critic_steps"] == 0
    assert checkpoint["global_step"] == 10 + 4  # Lightning counts both networks' optimizer steps
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    counted: dict[float, int] = {}  # the batch index where each generator iteration was first logged
    for r in rows:
        if r.get("train/generator_steps"):
            counted.setdefault(float(r["train/generator_steps"]), int(r["step"]))
    assert counted == {1.0: 2, 2.0: 5, 3.0: 7, 4.0: 9}
    assert sum(1 for r in rows if r.get("train/d_loss")) == 10


@pytest.mark.slow
def test_the_budget_stops_mid_epoch_with_a_last_validation(tmp_path):
    run_train(["model=dcgan", "debug=limit", "trainer.max_epochs=-1", "model.max_generator_steps=7", *FAST], tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["generator_steps"] == 7 and checkpoint["epoch"] == 1
    with open(tmp_path / "csv" / "metrics.csv") as f:
        validated = sorted({int(r["epoch"]) for r in csv.DictReader(f) if r.get("val/fid")})
    assert validated == [0, 1]  # epoch 1 stopped after 2 of its 5 batches and was still validated


def test_presets_state_their_budget_in_generator_iterations(tmp_path):
    for preset, steps, batch in [("gan", 4000, 100), ("dcgan", 1240, 64), ("wgan", 1500, 64), ("cgan", 1240, 64),
                                 ("lsgan", 1240, 64), ("ebgan", 1240, 64)]:
        cfg = compose_train([f"model={preset}"], tmp_path)
        assert (cfg.model.max_generator_steps, cfg.trainer.max_epochs, cfg.data.batch_size) == (steps, -1, batch)
    cfg = compose_train(["model=wgan", "model.max_generator_steps=10", "data.batch_size=32"], tmp_path)
    assert (cfg.model.max_generator_steps, cfg.data.batch_size) == (10, 32)  # the command line still wins
    cfg = compose_train(["model=dcign"], tmp_path)
    assert cfg.trainer.max_epochs == 20  # other methods keep their epochs
    cfg = compose_train(["experiment=wgan_celeba"], tmp_path)
    assert (cfg.model.max_generator_steps, cfg.trainer.max_epochs) == (None, 25)  # an experiment's epochs


def test_presets_composed_from_dcgan_differ_from_it_only_where_they_say(tmp_path):
    """lsgan, cgan, ebgan and wgan compose from dcgan.yaml (`- dcgan`, `- override ...`): every other key is
    dcgan's, and the keys they name are theirs."""
    from omegaconf import OmegaConf

    def model(preset):
        return OmegaConf.to_container(compose_train([f"model={preset}"], tmp_path).model)

    dcgan = model("dcgan")
    differs = {"lsgan": {"objective"}, "cgan": {"conditional"},
               "ebgan": {"discriminator", "objective", "optimizer_g", "optimizer_d"},
               "wgan": {"objective", "optimizer_g", "optimizer_d", "n_critic", "n_critic_burst", "burst_first",
                        "burst_every", "max_generator_steps"}}
    for preset, keys in differs.items():
        other = model(preset)
        assert {k for k in dcgan.keys() | other.keys() if dcgan.get(k, "absent") != other.get(k, "absent")} == keys
    assert model("lsgan")["objective"]["_target_"].endswith("LSGANObjective")
    assert model("ebgan")["optimizer_g"] == {**dcgan["optimizer_g"], "lr": 0.0005}
    assert model("wgan")["optimizer_d"]["_target_"] == "torch.optim.RMSprop"


def test_output_bias_from_the_training_pixels_marginals(tmp_path):
    generator = MLPGenerator(latent_dim=3, channels=1, image_size=2, hidden_dims=(4,), unit_output=True)
    generator.init_output_bias_from_marginals(torch.tensor([[[0.0, 0.25], [0.5, 1.0]]]))
    bias = generator.net[-1].bias
    assert torch.sigmoid(bias).tolist() == pytest.approx([1e-7, 0.25, 0.5, 1 - 1e-7], rel=1e-5)
    assert bias[2].item() == 0.0 and bias[0].item() == pytest.approx(math.log(1e-7 / (1 - 1e-7)), rel=1e-5)
    with pytest.raises(ValueError, match="4 pixels"):
        generator.init_output_bias_from_marginals(torch.zeros(5))

    # in a run: before the first step, the gan preset's output bias gives each pixel its training mean
    from pytorch_lightning import Callback

    class Capture(Callback):
        def on_train_start(self, trainer, pl_module):
            self.bias = pl_module.generator.net[-1].bias.detach().clone()
            self.mean = (trainer.datamodule.dataset("train").images.float() / 255).mean(0).flatten()

    cfg = compose_train(["model=gan", "debug=fdr"], tmp_path)
    model, datamodule, capture = instantiate(cfg.model), instantiate(cfg.data), Capture()
    import pytorch_lightning as pl

    pl.Trainer(fast_dev_run=True, logger=False, callbacks=[capture], enable_progress_bar=False,
               enable_model_summary=False).fit(model, datamodule=datamodule)
    torch.testing.assert_close(torch.sigmoid(capture.bias), capture.mean.clamp(1e-7, 1 - 1e-7), atol=1e-6, rtol=1e-4)
    assert capture.mean[0] == 0 and capture.mean.max() > 0.5  # a corner pixel is always black, strokes are not


def test_gan_preset_works_on_unit_pixels_and_keeps_the_signed_interface(tmp_path):
    model = instantiate(compose_train(["model=gan"], tmp_path).model).eval()
    raw = model.generator_output(model.fixed_z[:4])
    assert raw.min() >= 0 and raw.max() <= 1  # the paper's sigmoid on [0, 1]
    torch.testing.assert_close(model.generate(model.fixed_z[:4]), raw * 2 - 1)
    torch.testing.assert_close(model.to_network(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))
    z = model.noise(20000, torch.Generator().manual_seed(0))
    assert z.abs().max() <= math.sqrt(3) and z.var().item() == pytest.approx(1.0, abs=0.02)  # U(-sqrt 3, sqrt 3)
    assert isinstance(model.objective, GANObjective) and model.objective.discriminator_scale == 0.5
    with pytest.raises(Exception, match="unit_output=False disagrees"):
        instantiate(compose_train(["model=gan", "model.generator.unit_output=false"], tmp_path).model)


def test_discriminator_cost_is_the_mean_of_real_and_fake():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 0.0])
    full, _ = GANObjective().discriminator_loss(real, fake)
    half, _ = GANObjective(discriminator_scale=0.5).discriminator_loss(real, fake)
    assert half.item() == pytest.approx(0.5 * full.item(), rel=1e-7)
    assert GANObjective(discriminator_scale=0.5).discriminator_loss(torch.zeros(3), torch.zeros(3))[0].item() == \
        pytest.approx(math.log(2))  # D = 1/2 everywhere: the mean of two log 2
    with pytest.raises(ValueError, match="discriminator_scale"):
        GANObjective(discriminator_scale=0.0)


@pytest.mark.slow
def test_the_gan_preset_schedules_its_optimizers_per_update_and_per_epoch(tmp_path):
    run_train(["model=gan", "debug=limit", "trainer.max_epochs=2", *FAST], tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["generator_steps"] == 10  # 2 epochs of 5 generator updates
    for state in checkpoint["optimizer_states"]:  # generator and discriminator, 10 updates each
        group = state["param_groups"][0]
        assert group["lr"] == pytest.approx(0.1 / 1.000004**10, rel=1e-9)
        assert group["momentum"] == pytest.approx(0.5 + 0.2 * 2 / 249)  # the momentum of epoch 3
    assert len(checkpoint["lr_schedulers"]) == 4


def test_ema_of_the_generator_weights(tmp_path):
    model = instantiate(compose_train(["model=dcgan", "model.ema_decay=0.9"], tmp_path).model)
    assert model.has_ema and not any(p.requires_grad for p in model.generator_ema.parameters())
    weight = model.generator.project[1].weight
    with torch.no_grad():
        weight.fill_(1.0)
    model.generator_ema.update_parameters(model.generator)  # the first update copies
    with torch.no_grad():
        weight.fill_(3.0)
    model.generator_ema.update_parameters(model.generator)
    ema_weight = model.generator_ema.module.project[1].weight
    torch.testing.assert_close(ema_weight, torch.full_like(ema_weight, 0.9 * 1.0 + 0.1 * 3.0))
    model.eval()
    z = model.fixed_z[:3]
    torch.testing.assert_close(model.generate(z), model.generator_ema.module(z))
    torch.testing.assert_close(model.generate(z, ema=False), model.generator(z))
    assert (model.generate(z) - model.generate(z, ema=False)).abs().max() > 1e-3
    with pytest.raises(Exception, match="ema_decay"):
        instantiate(compose_train(["model=dcgan", "model.ema_decay=1.0"], tmp_path).model)


@pytest.mark.slow
def test_ema_run_reports_fid_with_and_without(tmp_path):
    # 5 batches: the average has moved away from the generator after its first update (a copy)
    metrics = run_train(["model=dcgan", "debug=limit", "trainer.max_epochs=1", "logger=csv",
                         "callbacks.evaluation.feature_epochs=1", "callbacks.parzen=null", "model.ema_decay=0.5"],
                        tmp_path)
    for key in ("val/fid", "val/fid_no_ema", "val/generator_steps", "test/fid", "test/fid_no_ema",
                "test/kid_mean_no_ema"):
        assert math.isfinite(metrics[key]), key
    assert metrics["test/fid"] != metrics["test/fid_no_ema"]


@pytest.mark.slow
def test_evaluate_gives_the_test_numbers_of_train(tmp_path):
    run = tmp_path / "run"
    run_cli(["train.py", "model=dcgan", "debug=limit", "trainer.max_epochs=2", "logger=csv",
             "callbacks.evaluation.feature_epochs=1", "callbacks.parzen.num_samples=300", f"hydra.run.dir={run}"])
    with open(run / "csv" / "metrics.csv") as f:
        trained = {k: float(v) for row in csv.DictReader(f) for k, v in row.items() if k.startswith("test/") and v}
    best = next((run / "checkpoints").glob("epoch_*.ckpt"))
    out = tmp_path / "eval"
    # the same test batches as the run's debug=limit; +run.* overrides the run's config (here to its own value)
    run_cli(["evaluate.py", f"ckpt_path={best}", "num_samples=12", "+trainer.limit_test_batches=2",
             "+run.callbacks.parzen.num_samples=300", f"hydra.run.dir={out}"])
    assert len(list((out / "samples").glob("sample_*.png"))) == 12 and (out / "samples" / "grid.png").is_file()
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["test/fid"] > 0 and evaluated["test/parzen_ll"] < 0
    for key in ("test/fid", "test/kid_mean", "test/parzen_ll"):
        assert evaluated[key] == pytest.approx(trained[key], rel=1e-6), key


def test_wgan_critic_clips_every_parameter_and_has_no_batch_norm_on_its_first_layer(tmp_path):
    model = instantiate(compose_train(["model=wgan", "model.discriminator.n_extra_layers=2",
                                       "model.generator.n_extra_layers=1"], tmp_path).model)
    critic = model.discriminator
    first_norm = next(i for i, m in enumerate(critic.downsample) if isinstance(m, torch.nn.BatchNorm2d))
    assert isinstance(critic.downsample[0], torch.nn.Conv2d) and first_norm == 3  # conv, LeakyReLU, extra conv, BN
    norms = [m for m in critic.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.weight.min() > 0.9 for m in norms)  # DCGAN's init: N(1, 0.02)
    model.objective.after_discriminator_step(critic)
    values = torch.cat([p.detach().flatten() for p in critic.parameters()])
    assert values.abs().max() == pytest.approx(0.01) and all(m.weight.max() <= 0.01 for m in norms)
    # the reference's n_extra_layers: 3x3 resolution-keeping convolutions, 2 in the critic, 1 in the generator
    def count(net):
        return sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))

    assert (count(critic), count(model.generator)) == (2, 1)
    assert critic(model.generator(model.fixed_z[:2])).shape == (2,)


@pytest.mark.slow
def test_a_first_run_trains_as_a_later_one_that_loads_the_feature_network(tmp_path):
    # the first run trains FID's feature network, the second loads it from the cache (building a module
    # draws its initial weights): neither may move the run's random state
    first_losses = []
    for run in ("first", "second"):
        run_train(["model=dcgan", "debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                   f"paths.cache_dir={tmp_path / 'cache'}", *FAST], tmp_path / run)
        with open(tmp_path / run / "csv" / "metrics.csv") as f:
            first_losses.append(next(float(r["train/d_loss"]) for r in csv.DictReader(f) if r.get("train/d_loss")))
    assert len(list((tmp_path / "cache" / "features").glob("feature_net-*.pt"))) == 1  # trained once
    assert first_losses[0] == first_losses[1]


@pytest.mark.parametrize("simultaneous", [True, False])
def test_simultaneous_update_takes_both_gradients_at_the_same_parameters(simultaneous, tmp_path):
    # without dropout, one batch of SGD (momentum's first step is the plain gradient): the generator moves
    # by -0.1 times its loss's gradient through the discriminator before its step (simultaneous,
    # goodfeli/adversarial) or after it (Algorithm 1); the discriminator's rate of 100 makes them differ
    import copy

    import pytorch_lightning as pl
    from pytorch_lightning import Callback

    class Capture(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.before = copy.deepcopy(pl_module).cpu()
            self.batch, self.rng = batch, torch.get_rng_state()

    cfg = compose_train(["model=gan", f"model.simultaneous={simultaneous}", "model.discriminator.dropout=0",
                         "model.discriminator.input_dropout=0", "model.optimizer_d.lr=100", "debug=fdr"], tmp_path)
    model, capture = instantiate(cfg.model), Capture()
    pl.Trainer(fast_dev_run=True, logger=False, callbacks=[capture], enable_progress_bar=False,
               enable_model_summary=False).fit(model, datamodule=instantiate(cfg.data))

    before = capture.before
    real = before.to_network(capture.batch[0])
    torch.set_rng_state(capture.rng)
    z = before.noise(real.shape[0])
    critic = copy.deepcopy(before.discriminator)
    if not simultaneous:  # the discriminator's own step first
        d_loss, _ = before.objective.discriminator_loss(critic(real), critic(before.generator(z).detach()))
        grads = torch.autograd.grad(d_loss, list(critic.parameters()))
        with torch.no_grad():
            for p, g in zip(critic.parameters(), grads):
                p -= 100 * g
    g_loss, _ = before.objective.generator_loss(critic(before.generator(z)))
    grads = torch.autograd.grad(g_loss, list(before.generator.parameters()))
    for p0, g, p1 in zip(before.generator.parameters(), grads, model.generator.parameters()):
        torch.testing.assert_close(p1.detach().cpu(), p0.detach() - 0.1 * g, rtol=1e-4, atol=1e-6)
