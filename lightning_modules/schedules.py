"""Training schedules of the GAN family's reference code: learning-rate decay and momentum per update or
epoch (Goodfellow et al. 2014's pylearn2 configs), and the WGAN critic-iteration schedule.

The two optimizer schedules are stateful like torch's LR schedulers (``step``, ``state_dict``,
``load_state_dict``), so Lightning checkpoints them and a resumed run goes on where it stopped. Each says
when it is stepped with its ``interval`` attribute: ``"step"`` after every update of its network,
``"epoch"`` after every training epoch (see :class:`lightning_modules.two_player.TwoPlayerModule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class ExponentialDecay(LRScheduler):
    """pylearn2's ``sgd.ExponentialDecay`` (goodfeli/adversarial ``mnist.yaml``: ``decay_factor: 1.000004``,
    ``min_lr: .000001``), stepped after every update of its network.

    The ``t``-th update (counted from 1) uses ``lr_t = max(lr_0 / decay_factor**(t - 1), min_lr)``, as
    pylearn2's callback divides the base rate by ``decay_factor**count`` after each update and clips it at
    ``min_lr``.

    Args:
        optimizer: the wrapped optimizer; its ``lr`` is ``lr_0``.
        decay_factor: divisor per update (> 1 decays; 1 keeps the rate).
        min_lr: floor of the learning rate (>= 0).
        last_epoch: as torch's schedulers (``-1``: start).

    Raises:
        ValueError: if ``decay_factor <= 0`` or ``min_lr < 0``.
    """

    interval = "step"

    def __init__(self, optimizer: Optimizer, decay_factor: float = 1.000004, min_lr: float = 1e-6,
                 last_epoch: int = -1) -> None:
        if not decay_factor > 0:
            raise ValueError(f"ExponentialDecay: decay_factor must be > 0, got {decay_factor}")
        if min_lr < 0:
            raise ValueError(f"ExponentialDecay: min_lr must be >= 0, got {min_lr}")
        self.decay_factor, self.min_lr = float(decay_factor), float(min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The rates after ``last_epoch`` updates: ``max(lr_0 * exp(-t log decay_factor), min_lr)``
        (computed in log space: no overflow after billions of updates)."""
        scale = math.exp(-self.last_epoch * math.log(self.decay_factor))
        return [max(base * scale, self.min_lr) for base in self.base_lrs]


class MomentumAdjustor:
    """pylearn2's ``learning_rule.MomentumAdjustor`` (goodfeli/adversarial ``mnist.yaml``: ``start: 1``,
    ``saturate: 250``, ``final_momentum: .7``), stepped after every training epoch.

    During epoch ``e`` (counted from 1) the momentum is
    ``m_0 + (final_momentum - m_0) * clip((e - start) / (saturate - start), 0, 1)``: the optimizer's
    initial momentum ``m_0`` (0.5 in the paper) in epoch ``start``, rising linearly to ``final_momentum``
    in epoch ``saturate``, then constant. pylearn2 counts its monitor calls, one before training and one
    after each epoch, which gives the same values.

    Args:
        optimizer: an optimizer whose parameter groups have a ``momentum`` (SGD).
        final_momentum: the momentum from epoch ``saturate`` on, in [0, 1).
        start, saturate: the epochs (from 1) where the ramp starts and ends; ``saturate >= start``.

    Raises:
        ValueError: if the optimizer has no momentum, or the arguments are out of range.
    """

    interval = "epoch"

    def __init__(self, optimizer: Optimizer, final_momentum: float = 0.7, start: int = 1,
                 saturate: int = 250) -> None:
        if any("momentum" not in group for group in optimizer.param_groups):
            raise ValueError(f"MomentumAdjustor needs an optimizer with momentum (SGD), got "
                             f"{type(optimizer).__name__}")
        if not 0 <= final_momentum < 1 or start < 1 or saturate < start:
            raise ValueError(f"MomentumAdjustor needs 0 <= final_momentum < 1 and 1 <= start <= saturate, got "
                             f"final_momentum={final_momentum}, start={start}, saturate={saturate}")
        self.optimizer = optimizer
        self.final_momentum, self.start, self.saturate = float(final_momentum), int(start), int(saturate)
        self.initial_momentum = [float(group["momentum"]) for group in optimizer.param_groups]
        self.epoch = 1
        self._apply()

    def momentum(self, epoch: int, initial: float) -> float:
        """The momentum during ``epoch`` (from 1) for a group that started at ``initial``."""
        if self.saturate == self.start:  # a step at ``start``
            alpha = float(epoch >= self.start)
        else:
            alpha = min(1.0, max(0.0, (epoch - self.start) / (self.saturate - self.start)))
        return initial + (self.final_momentum - initial) * alpha

    def _apply(self) -> None:
        for group, initial in zip(self.optimizer.param_groups, self.initial_momentum):
            group["momentum"] = self.momentum(self.epoch, initial)

    def step(self) -> None:
        """End of an epoch: set the next epoch's momentum."""
        self.epoch += 1
        self._apply()

    def state_dict(self) -> dict:
        """The epoch counter and the initial momenta (plain values)."""
        return {"epoch": self.epoch, "initial_momentum": list(self.initial_momentum)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s values and set the optimizer's momentum from them."""
        self.epoch = int(state["epoch"])
        self.initial_momentum = [float(m) for m in state["initial_momentum"]]
        self._apply()


@dataclass(frozen=True)
class CriticSchedule:
    """How many critic (discriminator) iterations precede each generator iteration.

    The WGAN reference code (martinarjovsky/WassersteinGAN ``main.py``): ``Diters = 100`` while
    ``gen_iterations < 25`` or ``gen_iterations % 500 == 0``, else ``n_critic`` (5), so the critic is
    trained close to optimality at the start and every 500 generator iterations. With
    ``n_critic_burst=None`` the schedule is the fixed ``n_critic`` of the paper's Algorithm 1 (Arjovsky et
    al. 2017; Goodfellow et al. 2014's ``k``). The fields are the config keys ``model.n_critic``,
    ``model.n_critic_burst``, ``model.burst_first`` and ``model.burst_every``.

    Args:
        n_critic: critic iterations per generator iteration outside bursts (>= 1).
        n_critic_burst: critic iterations in a burst (>= 1), or ``None`` (no bursts).
        burst_first: the first ``burst_first`` generator iterations are bursts (>= 0).
        burst_every: so is every ``burst_every``-th (>= 0; 0: none after the first ones).

    Raises:
        ValueError: on ``n_critic < 1``, ``n_critic_burst < 1``, or negative ``burst_first``/``burst_every``,
            naming the config key.
    """

    n_critic: int = 1
    n_critic_burst: int | None = None
    burst_first: int = 25
    burst_every: int = 500

    def __post_init__(self) -> None:
        if self.n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {self.n_critic}")
        if self.n_critic_burst is not None and self.n_critic_burst < 1:
            raise ValueError(f"model.n_critic_burst must be >= 1 or null, got {self.n_critic_burst}")
        if self.burst_first < 0 or self.burst_every < 0:
            raise ValueError(f"model.burst_first and model.burst_every must be >= 0, got {self.burst_first}, "
                             f"{self.burst_every}")

    def iterations(self, generator_steps: int) -> int:
        """Critic iterations before generator iteration ``generator_steps`` (counted from 0, >= 0):
        ``n_critic_burst`` in a burst, else ``n_critic``."""
        if self.n_critic_burst is not None and (
                generator_steps < self.burst_first or (self.burst_every and generator_steps % self.burst_every == 0)):
            return self.n_critic_burst
        return self.n_critic


def critic_iterations(generator_steps: int, n_critic: int, n_critic_burst: int | None = None,
                      burst_first: int = 25, burst_every: int = 500) -> int:
    """Critic (discriminator) iterations before generator iteration ``generator_steps`` (counted from 0):
    ``CriticSchedule(n_critic, n_critic_burst, burst_first, burst_every).iterations(generator_steps)``, see
    :class:`CriticSchedule` (the WGAN reference code's ``Diters``).

    Raises:
        ValueError: as :class:`CriticSchedule`.
    """
    return CriticSchedule(n_critic, n_critic_burst, burst_first, burst_every).iterations(generator_steps)
