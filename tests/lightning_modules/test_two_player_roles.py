"""TwoPlayerModule steps by role, not by which network it is handed: a subclass that appends a third network
("encoder", as a VAE-GAN has) to its optimizer plan gets its optimizer from ``players()`` and steps it with
its own schedulers and max-norm constraint, without the WGAN clipping or the count of generator iterations
that belong to the discriminator's and the generator's roles. Also the critic schedule held as one value."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest
import torch
from pytorch_lightning import Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.objectives import WassersteinObjective
from lightning_modules.schedules import CriticSchedule, ExponentialDecay, critic_iterations
from lightning_modules.two_player import TwoPlayerModule

LR = 0.01
MAX_COL_NORM = 2.0
ROLES = ("generator", "discriminator", "encoder")
#: each network's weight before training: a row of norm 5 (above MAX_COL_NORM), and entries of 0.5, far
#: outside WGAN's clipping range [-0.01, 0.01]
START = {"generator": [[3.0, 4.0], [0.5, 0.5]], "discriminator": [[0.5, -0.5]], "encoder": [[0.5, 0.5], [3.0, 4.0]]}
SGD = partial(torch.optim.SGD, lr=LR)
HALVING = partial(ExponentialDecay, decay_factor=2.0, min_lr=0.0)  # per-update schedule: lr / 2 per step


class WithEncoder(TwoPlayerModule):
    """A VAE-GAN-shaped module: generator, critic (WGAN, clip 0.01) and an encoder, three ``nn.Linear``
    without bias; batch ``i`` steps the network of ``script[i]`` on ``sum(network(x))``."""

    def __init__(self, script: list[str]) -> None:
        super().__init__(generator=nn.Linear(2, 2, bias=False), discriminator=nn.Linear(2, 1, bias=False),
                         objective=WassersteinObjective(clip_value=0.01), optimizer_g=SGD, optimizer_d=SGD,
                         scheduler_g=HALVING, scheduler_d=HALVING, max_col_norm=MAX_COL_NORM)
        self.encoder = nn.Linear(2, 2, bias=False)
        self.optimizer_e, self.scheduler_e = SGD, HALVING
        self.script = script
        self.seen: list[dict] = []
        with torch.no_grad():
            for role in ROLES:
                self.role_network(role).weight.copy_(torch.tensor(START[role]))

    def optimizer_plan(self):
        return [*super().optimizer_plan(), ("encoder", self.encoder.parameters(), self.optimizer_e, self.scheduler_e)]

    def training_step(self, batch, batch_idx: int) -> None:
        role = self.script[batch_idx]
        players = self.players()
        self.update(players[role], self.role_network(role)(batch[0]).sum(), role)
        self.seen.append({
            "roles": tuple(players),
            "weights": {r: self.role_network(r).weight.detach().clone() for r in ROLES},
            "lr": {r: optimizer.optimizer.param_groups[0]["lr"] for r, optimizer in players.items()},
            "generator_steps": self.generator_steps,
        })


def fit(script: list[str]) -> WithEncoder:
    """``WithEncoder(script)`` after one epoch of ``len(script)`` batches of ``x = ones(4, 2)`` on a real
    CPU Trainer: each weight entry's gradient is ``sum_b x[b, i] = 4``."""
    model = WithEncoder(script)
    trainer = Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=len(script),
                      limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)
    trainer.fit(model, DataLoader(TensorDataset(torch.ones(4 * len(script), 2)), batch_size=4))
    return model


def renormed(rows: list[list[float]]) -> torch.Tensor:
    """The rows after one SGD step (each entry - LR * 4) and the max-norm constraint."""
    return torch.renorm(torch.tensor(rows) - LR * 4, 2, 0, MAX_COL_NORM)


def test_an_encoder_is_stepped_as_an_encoder_not_as_a_discriminator():
    encoder_step, discriminator_step, generator_step = fit(["encoder", "discriminator", "generator"]).seen
    assert encoder_step["roles"] == ROLES  # players() by the plan's names, the subclass's entry included

    weights = encoder_step["weights"]
    # the encoder moved by plain SGD, 0.5 - 0.01 * 4 = 0.46 (not clipped to 0.01); its row of norm 4.94
    # was renormed to MAX_COL_NORM = 2 (the constraint applies to the stepped role's network)
    assert weights["encoder"][0].tolist() == pytest.approx([0.46, 0.46], abs=1e-6)
    assert weights["encoder"][1].norm().item() == pytest.approx(MAX_COL_NORM, rel=1e-5)
    assert torch.allclose(weights["encoder"], renormed(START["encoder"]), atol=1e-6)
    # nothing else moved: no clipping of the critic, no constraint on the generator's row of norm 5
    assert torch.equal(weights["discriminator"], torch.tensor(START["discriminator"]))
    assert torch.equal(weights["generator"], torch.tensor(START["generator"]))
    # only the encoder's per-update scheduler stepped; no generator iteration counted
    assert encoder_step["lr"] == {"generator": LR, "discriminator": LR, "encoder": LR / 2}
    assert encoder_step["generator_steps"] == 0

    # the discriminator's role clips: 0.5 - 0.04 = 0.46 -> 0.01, -0.54 -> -0.01
    assert discriminator_step["weights"]["discriminator"][0].tolist() == pytest.approx([0.01, -0.01], abs=1e-8)
    assert torch.equal(discriminator_step["weights"]["encoder"], weights["encoder"])
    assert discriminator_step["lr"] == {"generator": LR, "discriminator": LR / 2, "encoder": LR / 2}
    assert discriminator_step["generator_steps"] == 0

    # the generator's role counts a generator iteration and is constrained, not clipped
    assert torch.allclose(generator_step["weights"]["generator"], renormed(START["generator"]), atol=1e-6)
    assert generator_step["weights"]["generator"][1].tolist() == pytest.approx([0.46, 0.46], abs=1e-6)
    assert generator_step["lr"] == {"generator": LR / 2, "discriminator": LR / 2, "encoder": LR / 2}
    assert generator_step["generator_steps"] == 1


def test_an_unknown_role_is_refused_before_anything_steps():
    model = WithEncoder([])
    with pytest.raises(ValueError, match=r"unknown role 'critic'.*'generator', 'discriminator', 'encoder'"):
        model.step(None, "critic")
    with pytest.raises(ValueError, match="unknown role 'decoder'"):  # before the backward pass (no trainer)
        model.update(None, torch.ones((), requires_grad=True), "decoder")


def test_roles_follow_the_plan():
    alone = TwoPlayerModule(generator=nn.Linear(2, 2), discriminator=None, objective=None, optimizer_g=SGD,
                            optimizer_d=None)
    assert alone.roles() == ("generator",)
    with pytest.raises(ValueError, match="unknown role 'discriminator'.*'generator'"):
        alone.role_index("discriminator")
    assert WithEncoder([]).role_index("encoder") == 2

    class Misnamed(WithEncoder):
        def optimizer_plan(self):
            return [*super().optimizer_plan()[:2], ("critic2", self.encoder.parameters(), SGD, None)]

    with pytest.raises(TypeError, match=r"'critic2' of Misnamed names no network.*override role_network"):
        Misnamed([]).role_network("critic2")


def test_the_critic_schedule_is_one_validated_value():
    schedule = CriticSchedule(n_critic=5, n_critic_burst=100, burst_first=25, burst_every=500)
    assert [schedule.iterations(g) for g in (0, 24, 25, 499, 500, 501)] == [100, 100, 5, 5, 100, 5]
    assert [critic_iterations(g, 5, 100, 25, 500) for g in (0, 25, 500)] == [100, 5, 100]
    assert CriticSchedule(n_critic=3).iterations(0) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.n_critic = 1
    for kwargs, key in [({"n_critic": 0}, "model.n_critic must be >= 1, got 0"),
                        ({"n_critic_burst": 0}, "model.n_critic_burst must be >= 1 or null, got 0"),
                        ({"burst_every": -1}, "model.burst_first and model.burst_every must be >= 0")]:
        with pytest.raises(ValueError, match=key):
            CriticSchedule(**kwargs)

    model = TwoPlayerModule(generator=nn.Linear(2, 2), discriminator=nn.Linear(2, 1),
                            objective=WassersteinObjective(), optimizer_g=SGD, optimizer_d=SGD, n_critic=2,
                            n_critic_burst=7, burst_first=1, burst_every=0)
    assert model.critic_schedule == CriticSchedule(2, 7, 1, 0) and model.n_critic == 2
    # a burst of 7 before generator iteration 0, then 2 per generator iteration
    steps = [model.count_critic_step() for _ in range(7)]
    assert steps == [False] * 6 + [True]
    model.generator_steps = 1
    assert [model.count_critic_step() for _ in range(4)] == [False, True, False, True]
