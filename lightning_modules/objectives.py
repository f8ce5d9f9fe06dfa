"""Adversarial objectives of the GAN family, shared by every adversarial method (GANs, colorization).

An objective turns discriminator outputs into the discriminator's and the generator's losses; it never
runs a network itself. Discriminator outputs are raw scores ``(B,)`` (or ``(B, 1, N, N)`` patch maps:
losses average over every element) except for the energy-based objective, whose discriminator returns
``(energy (B,), embedding (B, E))``.

Each ``*_loss`` returns ``(loss, logs)`` where ``logs`` maps metric names (without split prefix) to
detached scalar tensors for the LightningModule to log.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Logs = dict[str, Tensor]


class AdversarialObjective(nn.Module):
    """Base class: the discriminator's and the generator's losses, and a hook after each D step."""

    def discriminator_loss(self, real_out, fake_out) -> tuple[Tensor, Logs]:
        """Loss of the discriminator (critic) given its outputs on real and on generated images."""
        raise NotImplementedError

    def generator_loss(self, fake_out) -> tuple[Tensor, Logs]:
        """Loss of the generator given the discriminator's outputs on generated images."""
        raise NotImplementedError

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        """Called after every discriminator optimizer step (WGAN clips the weights here)."""


class GANObjective(AdversarialObjective):
    """The original GAN value function (Goodfellow et al. 2014, eq. 1 and Sec. 3).

    D maximises ``log D(x) + log(1 - D(G(z)))``: with logits ``s``, its loss is
    ``discriminator_scale * (BCE(s_real, 1) + BCE(s_fake, 0))`` (nats): the sum (scale 1, DCGAN's
    reference code) or the mean of the two (scale 0.5, the GAN paper's code, goodfeli/adversarial
    ``AdversaryCost2``: ``0.5 * (cost(real) + cost(fake))``). G minimises ``log(1 - D(G(z)))``
    (``minimax=True``) or, as the paper recommends in practice, maximises ``log D(G(z))`` (non-saturating,
    the default).

    Logs ``d_real`` and ``d_fake``: the mean probability D assigns to real and generated images, in [0, 1].

    Raises:
        ValueError: if ``discriminator_scale`` is not positive.
    """

    def __init__(self, minimax: bool = False, discriminator_scale: float = 1.0) -> None:
        super().__init__()
        if not discriminator_scale > 0:
            raise ValueError(f"model.objective.discriminator_scale must be > 0, got {discriminator_scale}")
        self.minimax = minimax
        self.discriminator_scale = float(discriminator_scale)

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        loss = self.discriminator_scale * (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                                           + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
        return loss, {"d_real": torch.sigmoid(real_out).mean().detach(),
                      "d_fake": torch.sigmoid(fake_out).mean().detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        if self.minimax:
            loss = -F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
        else:
            loss = F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
        return loss, {}


class LSGANObjective(AdversarialObjective):
    """Least-squares GAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks", eq. 2).

    ``L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]``, ``L_G = 1/2 E[(D(G(z)) - c)^2]``, with D's raw
    (linear) output. ``(a, b, c) = (0, 1, 1)`` (Sec. 3.2.2, the default) or ``(-1, 1, 0)`` (Sec. 3.2.1,
    minimising the Pearson chi^2 divergence).
    """

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        self.a, self.b, self.c = float(a), float(b), float(c)

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        loss = 0.5 * (real_out - self.b).pow(2).mean() + 0.5 * (fake_out - self.a).pow(2).mean()
        return loss, {"d_real": real_out.mean().detach(), "d_fake": fake_out.mean().detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        return 0.5 * (fake_out - self.c).pow(2).mean(), {}


class WassersteinObjective(AdversarialObjective):
    """Wasserstein GAN with weight clipping (Arjovsky, Chintala, Bottou 2017, Algorithm 1).

    Critic loss ``E[f(G(z))] - E[f(x)]``; generator loss ``-E[f(G(z))]``; after each critic step every
    critic parameter is clipped to ``[-clip_value, clip_value]`` (0.01 in the paper; ``None`` disables it).
    Logs ``wasserstein``: the critic's estimate ``E[f(x)] - E[f(G(z))]`` of the Wasserstein-1 distance
    (up to the Lipschitz constant the clipping imposes).
    """

    def __init__(self, clip_value: float | None = 0.01) -> None:
        super().__init__()
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"model.objective.clip_value must be positive or null, got {clip_value}")
        self.clip_value = clip_value

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        estimate = real_out.mean() - fake_out.mean()
        return -estimate, {"wasserstein": estimate.detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        return -fake_out.mean(), {}

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        if self.clip_value is not None:
            for p in discriminator.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


def pull_away_term(embedding: Tensor) -> Tensor:
    """The pull-away term of Zhao et al. 2017 (EBGAN, Sec. 2.4, eq. 6).

    ``f_PT(S) = 1 / (N (N - 1)) * sum_{i != j} (S_i^T S_j / (||S_i|| ||S_j||))^2`` for a batch of
    embeddings ``S`` ``(N, E)``; in [0, 1]: 0 for mutually orthogonal embeddings, 1 for identical ones.

    Raises:
        ValueError: if fewer than two embeddings are given.
    """
    n = embedding.shape[0]
    if n < 2:
        raise ValueError(f"the pull-away term needs at least 2 embeddings, got {n}")
    unit = F.normalize(embedding.flatten(1), dim=1)
    cosine_sq = (unit @ unit.t()).pow(2)
    return (cosine_sq.sum() - cosine_sq.diagonal().sum()) / (n * (n - 1))


class EnergyObjective(AdversarialObjective):
    """Energy-based GAN (Zhao, Mathieu, LeCun 2017, eqs. 1-2 and Sec. 2.4).

    The discriminator is an auto-encoder returning ``(energy (B,), embedding (B, E))`` with energy the
    reconstruction MSE. ``L_D = D(x) + [m - D(G(z))]^+`` and ``L_G = D(G(z)) + pt_weight * f_PT(S)``
    with ``S`` the encoder's embedding of the generated batch (the "EBGAN-PT" variant; ``pt_weight=0`` is
    plain EBGAN, 0.1 the paper's value).

    Raises:
        ValueError: if ``margin`` is not positive or ``pt_weight`` is negative.
    """

    def __init__(self, margin: float = 10.0, pt_weight: float = 0.1) -> None:
        super().__init__()
        if margin <= 0 or pt_weight < 0:
            raise ValueError(f"model.objective needs margin > 0 and pt_weight >= 0, got {margin}, {pt_weight}")
        self.margin, self.pt_weight = float(margin), float(pt_weight)

    @staticmethod
    def _energy(out) -> tuple[Tensor, Tensor]:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("EnergyObjective needs an auto-encoder discriminator returning (energy, embedding)")
        return out[0], out[1]

    def discriminator_loss(self, real_out, fake_out) -> tuple[Tensor, Logs]:
        real_energy, _ = self._energy(real_out)
        fake_energy, _ = self._energy(fake_out)
        loss = real_energy.mean() + F.relu(self.margin - fake_energy).mean()
        return loss, {"energy_real": real_energy.mean().detach(), "energy_fake": fake_energy.mean().detach()}

    def generator_loss(self, fake_out) -> tuple[Tensor, Logs]:
        energy, embedding = self._energy(fake_out)
        loss = energy.mean()
        logs: Logs = {}
        if self.pt_weight > 0:
            pt = pull_away_term(embedding)
            loss = loss + self.pt_weight * pt
            logs["pull_away"] = pt.detach()
        return loss, logs
