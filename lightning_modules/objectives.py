"""Adversarial objectives of the GAN family, shared by every adversarial method (GANs, colorization).

An objective turns discriminator outputs into the discriminator's and the generator's losses, and may add
a **penalty** to the discriminator's loss that needs the images and the network itself (a gradient
penalty). Discriminator outputs are raw scores ``(B,)`` (or ``(B, 1, N, N)`` patch maps: losses average
over every element) except for the energy-based objective, whose discriminator returns
``(energy (B,), embedding (B, E))``.

Each ``*_loss`` returns ``(loss, logs)`` where ``logs`` maps metric names (without split prefix) to
detached scalar tensors for the LightningModule to log.

**The contract of an objective** (a user's own objective subclasses :class:`AdversarialObjective`):

- ``discriminator_loss(real_out, fake_out) -> (loss, logs)`` and ``generator_loss(fake_out) -> (loss,
  logs)``: from the discriminator's outputs only.
- ``penalty(discriminate, real, fake, labels) -> (penalty | None, logs)``: a term added to the
  discriminator's loss, computed from the network and the batches. ``discriminate(images, labels)`` runs
  the discriminator as the module does (its conditioning included) on images in the networks' pixel range;
  ``real`` and ``fake`` are the real and generated batches ``(B, ...)`` the discriminator step uses (the
  generated one detached from the generator), ``labels`` their common condition (``None`` for an
  unconditional model; the lightness ``L`` for the colorizers, whose ``images`` are the ab channels). A
  penalty may run the discriminator again and differentiate through its input (``create_graph=True``):
  the module then backpropagates ``loss + penalty`` into the discriminator's parameters. ``None``: no
  penalty (the base class's default unless ``r1_gamma > 0``). Subclasses extend it with
  ``super().penalty(...)`` so that R1 keeps working on every objective.
- ``score(out) -> (B,)``: the one number per sample a gradient penalty differentiates (the mean of a
  patch map; the energy of an auto-encoder discriminator).
- ``after_discriminator_step(discriminator)``: after every discriminator optimizer step (WGAN's clipping).

The modules call :meth:`AdversarialObjective.penalized_discriminator_loss`, the sum of the two, with the
logs of both; ``train/d_loss`` is that sum. Evaluation (``val/``, ``test/``) logs the
``discriminator_loss`` alone: it runs under inference mode, where no input gradient exists.

Every objective takes ``r1_gamma`` (``model.objective.r1_gamma``, 0 = off): the R1 penalty of Mescheder,
Geiger & Nowozin 2018 (:func:`r1_penalty`). The Wasserstein objective also takes ``gradient_penalty``,
WGAN-GP's (Gulrajani et al. 2017, :func:`interpolate_gradient_penalty`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Logs = dict[str, Tensor]
#: ``discriminate(images, labels)``: the discriminator's raw output on images in the networks' pixel range
Discriminate = Callable[[Tensor, Any], Any]


def mean_score(out: Any, owner: str = "objective") -> Tensor:
    """One score per sample ``(B,)`` from a discriminator output: ``(B,)`` as it is, ``(B, ...)`` (a
    PatchGAN's ``(B, 1, N, N)`` map) averaged over all but the batch dimension, as the losses average it.

    Raises:
        TypeError: if ``out`` is not a tensor (e.g. an auto-encoder's ``(energy, embedding)``: that
            objective overrides :meth:`AdversarialObjective.score`).
        ValueError: if ``out`` is 0-dimensional.
    """
    if not isinstance(out, Tensor):
        raise TypeError(f"{owner}: a gradient penalty needs the discriminator's scores as a tensor (B,) or "
                        f"(B, ...), got {type(out).__name__}; override score() for other outputs")
    if out.dim() == 0:
        raise ValueError(f"{owner}: a gradient penalty needs one score per sample, got a scalar output")
    return out.flatten(1).mean(1) if out.dim() > 1 else out


def input_gradients(discriminate: Discriminate, images: Tensor, labels: Any,
                    score: Callable[[Any], Tensor] = mean_score) -> Tensor:
    """``grad_x sum_i score(D(x_i))``: each sample's score's gradient with respect to its own image.

    The graph is kept (``create_graph=True``) so that a penalty on the gradients backpropagates into the
    discriminator's parameters (double backpropagation). ``images`` are detached first: the gradient
    reaches no generator. With batch norm in training mode each score also depends on the other samples
    (through the batch statistics), which is why Gulrajani et al. 2017 (Sec. 4) drop it from the critic.

    Args:
        discriminate: ``discriminate(images, labels)``, see the module docstring.
        images: ``(B, ...)`` in the networks' pixel range.
        labels: the condition passed on to ``discriminate`` (``None`` if unconditional).
        score: ``(output) -> (B,)``; :func:`mean_score` by default.

    Returns:
        ``(B, ...)``, the shape of ``images``, in score units per pixel unit, differentiable with respect to
        the discriminator's parameters.

    Raises:
        RuntimeError: under ``torch.inference_mode`` (Lightning's validation and test), where no gradient
            can be taken.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError("a gradient penalty needs input gradients, which inference mode (validation, "
                           "test) does not record: compute it in training only")
    with torch.enable_grad():
        x = images.detach().requires_grad_(True)
        scores = score(discriminate(x, labels))
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad


def r1_penalty(discriminate: Discriminate, real: Tensor, labels: Any, gamma: float,
               score: Callable[[Any], Tensor] = mean_score) -> Tensor:
    """R1 (Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually Converge?",
    eq. 9): ``gamma / 2 * E_x ||grad_x D(x)||^2`` on real data only, ``D`` the raw score (the logit).

    The authors' code (LMescheder/GAN_stability ``gan_training/train.py``, ``reg_type: real``) adds
    ``reg_param * E||grad||^2`` without the 1/2: its ``reg_param: 10`` is ``gamma = 20`` here.

    Args:
        discriminate, labels, score: see :func:`input_gradients`.
        real: the real batch ``(B, ...)`` in the networks' pixel range.
        gamma: the weight ``gamma >= 0`` (10 in the paper's experiments, Sec. 4.2).

    Returns:
        a scalar ``>= 0`` in squared score units per pixel unit.
    """
    grad = input_gradients(discriminate, real, labels, score)
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()


def interpolate_gradient_penalty(discriminate: Discriminate, real: Tensor, fake: Tensor, labels: Any,
                                 weight: float, score: Callable[[Any], Tensor] = mean_score,
                                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """WGAN-GP's gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
    Algorithm 1, lines 4-7): ``weight * E[(||grad_x_hat D(x_hat)||_2 - 1)^2]`` at
    ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` drawn per sample (one per image, shared by
    its pixels), ``x`` and ``G(z)`` paired in batch order with the same ``labels``.

    Args:
        discriminate, labels, score: see :func:`input_gradients`.
        real, fake: real and generated batches of the same shape ``(B, ...)`` (the networks' pixel range).
        weight: the penalty coefficient ``lambda >= 0`` (10 in the paper).
        generator: the random generator of ``eps`` (``None``: torch's global one).

    Returns:
        ``(penalty, norms)``: the scalar penalty ``>= 0`` and the gradient norms ``(B,)`` at the
        interpolates (detached; 1 for a critic with the paper's optimal slope).

    Raises:
        ValueError: if ``real`` and ``fake`` differ in shape.
    """
    if real.shape != fake.shape:
        raise ValueError(f"the gradient penalty interpolates real and generated batches of the same shape, "
                         f"got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    device = real.device if generator is None else generator.device
    eps = torch.rand(eps_shape, generator=generator, device=device).to(device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    grad = input_gradients(discriminate, x_hat, labels, score)
    norms = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return weight * (norms - 1).pow(2).mean(), norms.detach()


class AdversarialObjective(nn.Module):
    """Base class: the discriminator's and the generator's losses, a penalty on the discriminator, and a
    hook after each discriminator step.

    A user's own objective subclasses it and implements :meth:`discriminator_loss` and
    :meth:`generator_loss` (outputs in, ``(scalar loss, logs)`` out); it may override :meth:`penalty` (call
    ``super().penalty(...)`` and add to its result, so that ``r1_gamma`` keeps working), :meth:`score` (for a
    discriminator that returns something other than scores) and :meth:`after_discriminator_step`. Its
    constructor passes ``r1_gamma`` on to this one. The modules call :meth:`penalized_discriminator_loss` with
    ``discriminate(images, labels)`` (the discriminator as the module runs it, conditioning included, on
    images in the networks' pixel range), the real batch and the generated batch (detached from the
    generator) and their labels, and minimise the result; the penalty may differentiate through the
    discriminator's input (``create_graph=True``). More in the module docstring.

    Args:
        r1_gamma: weight of the R1 penalty on real data (:func:`r1_penalty`, Mescheder et al. 2018, eq. 9),
            ``model.objective.r1_gamma``; 0 (the default) turns it off. Logged as ``r1`` (the term added).

    Raises:
        ValueError: if ``r1_gamma`` is negative or not a number.
    """

    def __init__(self, r1_gamma: float = 0.0) -> None:
        super().__init__()
        r1_gamma = float(r1_gamma)
        if not r1_gamma >= 0:
            raise ValueError(f"model.objective.r1_gamma must be >= 0 (0: off), got {r1_gamma}")
        self.r1_gamma = r1_gamma

    def discriminator_loss(self, real_out, fake_out) -> tuple[Tensor, Logs]:
        """Loss of the discriminator (critic) given its outputs on real and on generated images."""
        raise NotImplementedError

    def generator_loss(self, fake_out) -> tuple[Tensor, Logs]:
        """Loss of the generator given the discriminator's outputs on generated images."""
        raise NotImplementedError

    def score(self, out) -> Tensor:
        """One score per sample ``(B,)`` from the discriminator's output, for gradient penalties
        (:func:`mean_score`)."""
        return mean_score(out, type(self).__name__)

    def penalty(self, discriminate: Discriminate, real: Tensor, fake: Tensor,
                labels: Any = None) -> tuple[Tensor | None, Logs]:
        """A term added to the discriminator's loss (the contract: see the module docstring); here R1 on
        ``real`` when ``r1_gamma > 0``, else ``None``. Subclasses add theirs to ``super().penalty(...)``.

        Returns:
            ``(penalty or None, logs)``; logs ``r1`` when R1 is on.
        """
        if not self.r1_gamma:
            return None, {}
        r1 = r1_penalty(discriminate, real, labels, self.r1_gamma, self.score)
        return r1, {"r1": r1.detach()}

    def penalized_discriminator_loss(self, real_out, fake_out, discriminate: Discriminate, real: Tensor,
                                     fake: Tensor, labels: Any = None) -> tuple[Tensor, Logs]:
        """The discriminator's total loss ``discriminator_loss(real_out, fake_out) + penalty(discriminate,
        real, fake, labels)`` and the logs of both: what the modules minimise and log as ``d_loss``."""
        loss, logs = self.discriminator_loss(real_out, fake_out)
        penalty, penalty_logs = self.penalty(discriminate, real, fake, labels)
        if penalty is not None:
            loss = loss + penalty
        return loss, {**logs, **penalty_logs}

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

    ``r1_gamma``: the R1 penalty (:class:`AdversarialObjective`).

    Raises:
        ValueError: if ``discriminator_scale`` is not positive or ``r1_gamma`` is negative.
    """

    def __init__(self, minimax: bool = False, discriminator_scale: float = 1.0,
                 r1_gamma: float = 0.0) -> None:
        super().__init__(r1_gamma)
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
    minimising the Pearson chi^2 divergence). ``r1_gamma``: the R1 penalty (:class:`AdversarialObjective`).
    """

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, r1_gamma: float = 0.0) -> None:
        super().__init__(r1_gamma)
        self.a, self.b, self.c = float(a), float(b), float(c)

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        loss = 0.5 * (real_out - self.b).pow(2).mean() + 0.5 * (fake_out - self.a).pow(2).mean()
        return loss, {"d_real": real_out.mean().detach(), "d_fake": fake_out.mean().detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        return 0.5 * (fake_out - self.c).pow(2).mean(), {}


class WassersteinObjective(AdversarialObjective):
    """Wasserstein GAN, with weight clipping (Arjovsky, Chintala, Bottou 2017, Algorithm 1) or with a
    gradient penalty (WGAN-GP, Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1).

    Critic loss ``E[f(G(z))] - E[f(x)]``; generator loss ``-E[f(G(z))]``. Weight clipping: after each
    critic step every critic parameter is clipped to ``[-clip_value, clip_value]`` (0.01 in the paper;
    ``None`` disables it). Gradient penalty: ``gradient_penalty`` is WGAN-GP's ``lambda`` (10 in the paper;
    0 disables it), the critic's loss gains ``lambda * E[(||grad_x_hat f(x_hat)||_2 - 1)^2]`` at random
    interpolates of the real and generated batches (:func:`interpolate_gradient_penalty`), and nothing is
    clipped. Logs ``wasserstein``: the critic's estimate ``E[f(x)] - E[f(G(z))]`` of the Wasserstein-1
    distance (up to the Lipschitz constant the constraint imposes); with the penalty also
    ``gradient_penalty`` (the term added) and ``gradient_norm`` (the mean ``||grad_x_hat f||``, 1 at the
    paper's optimum). ``r1_gamma``: the R1 penalty (:class:`AdversarialObjective`), added to it.

    Raises:
        ValueError: if ``clip_value`` is not positive or null, ``gradient_penalty`` or ``r1_gamma`` is
            negative, or both clipping and the gradient penalty are on (the penalty replaces the clipping).
    """

    def __init__(self, clip_value: float | None = 0.01, gradient_penalty: float = 0.0,
                 r1_gamma: float = 0.0) -> None:
        super().__init__(r1_gamma)
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"model.objective.clip_value must be positive or null, got {clip_value}")
        gradient_penalty = float(gradient_penalty)
        if not gradient_penalty >= 0:
            raise ValueError(f"model.objective.gradient_penalty must be >= 0 (0: off), "
                             f"got {gradient_penalty}")
        if gradient_penalty > 0 and clip_value is not None:
            raise ValueError(f"model.objective.gradient_penalty={gradient_penalty} replaces weight clipping "
                             f"(Gulrajani et al. 2017): set model.objective.clip_value=null (got "
                             f"{clip_value}), or use model/objective=wgan_gp")
        self.clip_value = clip_value
        self.gradient_penalty = gradient_penalty

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        estimate = real_out.mean() - fake_out.mean()
        return -estimate, {"wasserstein": estimate.detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        return -fake_out.mean(), {}

    def penalty(self, discriminate: Discriminate, real: Tensor, fake: Tensor,
                labels: Any = None) -> tuple[Tensor | None, Logs]:
        """R1 if ``r1_gamma > 0`` plus WGAN-GP's penalty if ``gradient_penalty > 0`` (logs
        ``gradient_penalty`` and ``gradient_norm``)."""
        total, logs = super().penalty(discriminate, real, fake, labels)
        if self.gradient_penalty:
            gp, norms = interpolate_gradient_penalty(discriminate, real, fake, labels, self.gradient_penalty,
                                                     self.score)
            total = gp if total is None else total + gp
            logs = {**logs, "gradient_penalty": gp.detach(), "gradient_norm": norms.mean()}
        return total, logs

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        if self.clip_value is not None:
            for p in discriminator.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


class HingeObjective(AdversarialObjective):
    """The hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for
    Generative Adversarial Networks", eqs. 16-17, the loss of SAGAN, Zhang et al. 2019, and of BigGAN).

    ``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, ``L_G = -E[D(G(z))]`` with ``D`` the raw score
    (pfnet-research/sngan_projection ``updater.py``, ``loss_hinge_dis`` / ``loss_hinge_gen``). The
    discriminator's loss is 2 at ``D = 0`` and 0 once real scores are >= 1 and generated ones <= -1. Logs
    ``d_real`` and ``d_fake``: the mean raw scores. ``r1_gamma``: the R1 penalty
    (:class:`AdversarialObjective`).

    Raises:
        ValueError: if ``r1_gamma`` is negative.
    """

    def __init__(self, r1_gamma: float = 0.0) -> None:
        super().__init__(r1_gamma)

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> tuple[Tensor, Logs]:
        loss = F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()
        return loss, {"d_real": real_out.mean().detach(), "d_fake": fake_out.mean().detach()}

    def generator_loss(self, fake_out: Tensor) -> tuple[Tensor, Logs]:
        return -fake_out.mean(), {}


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
    plain EBGAN, 0.1 the paper's value). ``r1_gamma``: the R1 penalty (:class:`AdversarialObjective`) on
    the energy of real images (:meth:`score`).

    Raises:
        ValueError: if ``margin`` is not positive, or ``pt_weight`` or ``r1_gamma`` is negative.
    """

    def __init__(self, margin: float = 10.0, pt_weight: float = 0.1, r1_gamma: float = 0.0) -> None:
        super().__init__(r1_gamma)
        if margin <= 0 or pt_weight < 0:
            raise ValueError(f"model.objective needs margin > 0 and pt_weight >= 0, got {margin}, {pt_weight}")
        self.margin, self.pt_weight = float(margin), float(pt_weight)

    @staticmethod
    def _energy(out) -> tuple[Tensor, Tensor]:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("EnergyObjective needs an auto-encoder discriminator returning (energy, embedding)")
        return out[0], out[1]

    def score(self, out) -> Tensor:
        """The energy ``(B,)``: what a gradient penalty differentiates for an auto-encoder discriminator."""
        return self._energy(out)[0]

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
