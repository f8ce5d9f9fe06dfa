"""The colorizers' generator loss as the study weighs it (Fabbri 2017, Sec. 4: lambda_1 adversarial,
lambda_2 L1, lambda_3 L2, the L2 term as its code's tf.nn.l2_loss), and checkpoints saved under the old
weight names."""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from datamodules.lab import rgb_to_lab_scaled
from lightning_modules.colorization.module import ColorizationModule
from tests.hydra_helpers import compose_train, presets

SIZE, BATCH = 32, 4
OLD_NAMES = {"lambda_1": "lambda_adv", "lambda_2": "lambda_l1", "lambda_3": "lambda_l2"}


def one_training_step(preset: str, tmp_path) -> tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]:
    """``(generator loss, logs, G(L), true ab)`` of one ``training_step`` of ``preset`` on a random batch
    ``(4, 3, 32, 32)``, with the optimizers' steps and Lightning's logging replaced by recorders."""
    overrides = [f"model={preset}", "data=photos", f"data.image_size={SIZE}", "model.n_critic=1"]
    cfg = compose_train(overrides, tmp_path)
    model = instantiate(cfg.model)
    torch.manual_seed(0)
    rgb = torch.rand(BATCH, 3, SIZE, SIZE) * 2 - 1
    seen: dict = {"logs": {}}
    model.generator.register_forward_hook(lambda module, inputs, output: seen.__setitem__("fake_ab", output))
    roles = ("generator",) if model.discriminator is None else ("generator", "discriminator")
    model.players = lambda: {role: f"opt_{role[0]}" for role in roles}
    model.toggled_optimizer = lambda optimizer: nullcontext()
    model.update = lambda optimizer, loss, role: seen.__setitem__(optimizer, loss)
    model.log = lambda name, value, **kwargs: seen["logs"].__setitem__(name, value)
    model.log_dict = lambda values, **kwargs: seen["logs"].update(values)
    model.training_step((rgb,), 0)
    return seen["opt_g"], seen["logs"], seen["fake_ab"], rgb_to_lab_scaled(rgb)[1]


@pytest.mark.parametrize("preset", presets("colorization"))
def test_generator_loss_is_the_studys(preset, tmp_path):
    loss, logs, fake_ab, ab = one_training_step(preset, tmp_path)
    difference = fake_ab - ab
    adversarial = logs.get("train/g_adversarial", torch.tensor(0.0))
    if preset.endswith("_l2"):  # (1, 0, 1): the study code's tf.nn.l2_loss, half the squared error summed
        expected = adversarial + 0.5 * difference.pow(2).sum()
        # B * H * W = 4,096 times the logged per-element mean: the study's weight, not the mean's
        l2_mean = logs["train/l2"].item()
        assert (loss - adversarial).item() == pytest.approx(BATCH * SIZE * SIZE * l2_mean, rel=1e-4)
    else:  # (1, 100, 0), or (0, 100, 0) without a discriminator
        expected = adversarial + 100 * difference.abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["train/l2"].item() == pytest.approx(difference.pow(2).mean().item(), rel=1e-5)
    assert logs["train/l1"].item() == pytest.approx(difference.abs().mean().item(), rel=1e-5)
    assert ("train/g_adversarial" in logs) == (preset != "colorizer_l1")


def test_l2_term_reductions():
    from lightning_modules.colorization.module import l2_term

    difference = torch.tensor([1.0, -2.0, 3.0, 0.0]).view(1, 2, 1, 2)
    assert l2_term(difference, "mean").item() == pytest.approx(14 / 4)
    assert l2_term(difference, "half_sum").item() == pytest.approx(7.0)  # tf.nn.l2_loss: sum(t**2) / 2
    with pytest.raises(ValueError, match="model.l2_reduction"):
        l2_term(difference, "sum")


def small_networks() -> dict:
    """Networks, objective and optimizers of a small colorizer (8-wide U-Net and PatchGAN, 32 x 32)."""
    from lightning_modules.colorization.patchgan import PatchGANDiscriminator
    from lightning_modules.colorization.unet import UNetGenerator
    from lightning_modules.objectives import GANObjective

    return {"generator": UNetGenerator(base_width=8, image_size=SIZE),
            "discriminator": PatchGANDiscriminator(base_width=8, n_layers=1),
            "objective": GANObjective(), "optimizer_g": partial(torch.optim.Adam, lr=1e-4),
            "optimizer_d": partial(torch.optim.Adam, lr=1e-4)}


def test_weights_renamed_and_checked():
    model = ColorizationModule(**small_networks(), lambda_1=1.0, lambda_2=0.0, lambda_3=1.0,
                               l2_reduction="half_sum")
    assert (model.hparams.lambda_1, model.hparams.lambda_2, model.hparams.lambda_3) == (1.0, 0.0, 1.0)
    old = ColorizationModule(**small_networks(), lambda_adv=0.5, lambda_l1=0.0, lambda_l2=2.0)
    assert (old.hparams.lambda_1, old.hparams.lambda_2, old.hparams.lambda_3) == (0.5, 0.0, 2.0)
    assert not {"lambda_adv", "lambda_l1", "lambda_l2"} & set(old.hparams)  # saved under the new names only
    with pytest.raises(ValueError, match="model.lambda_l2 is the old name of model.lambda_3"):
        ColorizationModule(**small_networks(), lambda_l2=1.0, lambda_3=5.0)
    with pytest.raises(TypeError, match="lambda_4"):
        ColorizationModule(**small_networks(), lambda_4=1.0)
    with pytest.raises(ValueError, match="model.lambda_1, model.lambda_2 and model.lambda_3 must be >= 0"):
        ColorizationModule(**small_networks(), lambda_3=-1.0)
    with pytest.raises(ValueError, match="model.l2_reduction"):
        ColorizationModule(**small_networks(), l2_reduction="sum")


def old_checkpoint(model: ColorizationModule, path) -> None:
    """Save ``model`` as a checkpoint from before the rename: hyper-parameters ``lambda_adv``, ``lambda_l1``,
    ``lambda_l2`` = (1, 0, 1) and no ``l2_reduction`` (the old presets' ``colorizer_gan_l2``)."""
    import pytorch_lightning as pl

    hparams = {k: v for k, v in model.hparams.items() if k not in (*OLD_NAMES, "l2_reduction")}
    hparams.update(lambda_adv=1.0, lambda_l1=0.0, lambda_l2=1.0)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "global_step": 0,
                "pytorch-lightning_version": pl.__version__}, path)


def test_old_checkpoint_loads_with_load_from_checkpoint(tmp_path):
    trained = ColorizationModule(**small_networks())
    old_checkpoint(trained, tmp_path / "old.ckpt")
    # the networks are not hyper-parameters (a run's config rebuilds them), so they are passed in
    model = ColorizationModule.load_from_checkpoint(tmp_path / "old.ckpt", **small_networks())
    assert (model.hparams.lambda_1, model.hparams.lambda_2, model.hparams.lambda_3) == (1.0, 0.0, 1.0)
    assert model.hparams.l2_reduction == "mean"  # the loss it was trained with
    assert not {"lambda_adv", "lambda_l1", "lambda_l2"} & set(model.hparams)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))


def test_old_run_colorizes(tmp_path):
    """colorize.py on a run folder from before the rename: its config.yaml and checkpoint say lambda_adv..."""
    from PIL import Image

    from colorize import colorize
    from utils.checkpoints import load_run

    cfg = compose_train(["model=colorizer_gan_l2", "data=photos", f"data.image_size={SIZE}",
                         "model.generator.base_width=8", "model.discriminator.base_width=8"],
                        tmp_path / "compose")
    run_cfg = OmegaConf.to_container(cfg, resolve=False)
    del run_cfg["hydra"]
    for new, old in OLD_NAMES.items():  # the old config: old names, no keys added since
        run_cfg["model"][old] = run_cfg["model"].pop(new)
    for added in ("l2_reduction", "n_critic_burst", "burst_first", "burst_every", "max_generator_steps"):
        del run_cfg["model"][added]
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    OmegaConf.save(OmegaConf.create(run_cfg), run / ".hydra" / "config.yaml")
    old_checkpoint(instantiate(cfg.model), run / "checkpoints" / "last.ckpt")

    paths = OmegaConf.create({"output_dir": str(tmp_path / "out"), "root_dir": str(tmp_path)})
    model, _ = load_run(run / "checkpoints" / "last.ckpt", None, None, paths)
    assert (model.hparams.lambda_1, model.hparams.lambda_2, model.hparams.lambda_3) == (1.0, 0.0, 1.0)
    Image.new("L", (40, 24), 128).save(tmp_path / "gray.png")
    [written] = colorize(OmegaConf.create({"ckpt_path": str(run / "checkpoints" / "last.ckpt"),
                                           "input": str(tmp_path / "gray.png"), "sheet_height": 24, "run": {},
                                           "run_config": None, "trust_run_config": False, "paths": paths}))
    assert Image.open(written).size == (40, 24)
