"""The adversarial objectives' numbers on hand-checked inputs."""

import math

import pytest
import torch
from torch import nn

from lightning_modules.objectives import (
    EnergyObjective,
    GANObjective,
    LSGANObjective,
    WassersteinObjective,
    pull_away_term,
)


def test_gan_losses_match_cross_entropy_by_hand():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 0.0])
    d_loss, logs = GANObjective().discriminator_loss(real, fake)
    sig = torch.sigmoid
    expected = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert logs["d_real"].item() == pytest.approx(((0.5 + sig(torch.tensor(2.0))) / 2).item())
    # non-saturating: -log D(G(z)); minimax: log(1 - D(G(z)))
    g_ns, _ = GANObjective().generator_loss(fake)
    g_mm, _ = GANObjective(minimax=True).generator_loss(fake)
    assert g_ns.item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-6)
    assert g_mm.item() == pytest.approx(torch.log(1 - sig(fake)).mean().item(), rel=1e-6)
    # at D = 1/2 everywhere the discriminator loss is 2 log 2 (Goodfellow et al. 2014, Thm. 1)
    zero = torch.zeros(4)
    assert GANObjective().discriminator_loss(zero, zero)[0].item() == pytest.approx(2 * math.log(2))


@pytest.mark.parametrize("abc", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_lsgan_targets(abc):
    a, b, c = abc
    objective = LSGANObjective(a, b, c)
    # outputs exactly at their targets give zero loss
    assert objective.discriminator_loss(torch.full((3,), b), torch.full((3,), a))[0].item() == 0.0
    assert objective.generator_loss(torch.full((3,), c))[0].item() == 0.0
    # one unit away from each target: 1/2 + 1/2 for D, 1/2 for G
    d, _ = objective.discriminator_loss(torch.full((3,), b + 1), torch.full((3,), a - 1))
    g, _ = objective.generator_loss(torch.full((3,), c + 1))
    assert d.item() == pytest.approx(1.0) and g.item() == pytest.approx(0.5)


def test_wasserstein_estimate_and_clipping_bounds():
    objective = WassersteinObjective(clip_value=0.01)
    loss, logs = objective.discriminator_loss(torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5]))
    assert logs["wasserstein"].item() == pytest.approx(2.0) and loss.item() == pytest.approx(-2.0)
    assert objective.generator_loss(torch.tensor([0.5, -1.5]))[0].item() == pytest.approx(0.5)
    critic = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.linspace(-1, 1, p.numel()).view_as(p))
    objective.after_discriminator_step(critic)
    values = torch.cat([p.flatten() for p in critic.parameters()])
    assert values.max().item() == pytest.approx(0.01) and values.min().item() == pytest.approx(-0.01)
    # values already inside the bounds are unchanged
    small = nn.Linear(2, 1)
    with torch.no_grad():
        small.weight.copy_(torch.tensor([[0.005, -0.002]]))
        small.bias.fill_(0.5)
    objective.after_discriminator_step(small)
    assert torch.equal(small.weight, torch.tensor([[0.005, -0.002]])) and small.bias.item() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="clip_value"):
        WassersteinObjective(clip_value=0.0)


def test_pull_away_term_orthogonal_vs_identical():
    orthogonal = torch.eye(4) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(-1, 1)
    assert pull_away_term(orthogonal).item() == pytest.approx(0.0, abs=1e-7)
    identical = torch.tensor([[1.0, 2.0, 3.0]]).repeat(5, 1)
    assert pull_away_term(identical).item() == pytest.approx(1.0, rel=1e-6)
    # two vectors at 60 degrees: cos^2 = 1/4, both ordered pairs count: (2 * 1/4) / (2 * 1) = 1/4
    pair = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert pull_away_term(pair).item() == pytest.approx(0.25, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        pull_away_term(torch.ones(1, 3))


def test_energy_objective_margin_and_pt():
    objective = EnergyObjective(margin=1.0, pt_weight=0.1)
    real = (torch.tensor([0.2, 0.4]), torch.randn(2, 3))
    fake = (torch.tensor([0.5, 1.5]), torch.randn(2, 3))
    d_loss, _ = objective.discriminator_loss(real, fake)
    # mean real energy 0.3 + mean of [1 - 0.5]^+ = 0.5 and [1 - 1.5]^+ = 0 -> 0.25
    assert d_loss.item() == pytest.approx(0.55)
    same = (torch.tensor([0.5, 1.5]), torch.ones(2, 3))
    g_loss, logs = objective.generator_loss(same)
    assert logs["pull_away"].item() == pytest.approx(1.0) and g_loss.item() == pytest.approx(1.0 + 0.1)
    with pytest.raises(TypeError, match="auto-encoder"):
        objective.discriminator_loss(torch.ones(2), torch.ones(2))
