"""What every adversarial method shares: a generator and a discriminator (and any further network a subclass
adds, e.g. a VAE-GAN's encoder), each with its optimizer, stepped by hand (manual optimization) by role with
optional gradient clipping, max-norm constraints, LR/momentum schedules, a critic-iteration schedule, and a
budget in generator iterations."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_modules.loading import LoadsFromCheckpoint
from lightning_modules.objectives import AdversarialObjective
from lightning_modules.optimization import ConfiguredModule
from lightning_modules.schedules import CriticSchedule

#: the two players' roles: their entries' names in :meth:`TwoPlayerModule.optimizer_plan`, and the attributes
#: holding their networks
GENERATOR, DISCRIMINATOR = "generator", "discriminator"
log = logging.getLogger("genforge")


class TwoPlayerModule(LoadsFromCheckpoint, ConfiguredModule):
    """Base of the adversarial LightningModules (GAN family, colorization).

    **The subclass contract.** Subclasses call ``super().__init__`` with keyword arguments (the networks,
    factories and settings below), then
    :meth:`~lightning_modules.optimization.ConfiguredModule.save_plain_hyperparameters`, and write
    ``training_step``: :meth:`players` for the optimizers by role, :meth:`count_critic_step` once per batch to
    know whether the batch ends with a generator step, :meth:`discriminator_step` and
    ``update(optimizer, loss, role)`` (or ``step(optimizer, role)`` on gradients already computed) for each
    network's step. A method without a discriminator (a regression baseline) passes ``discriminator=None``:
    it then has one optimizer.

    **Roles.** Every optimizer has a role: the name of its entry in :meth:`optimizer_plan`, which is also the
    attribute holding its network (:meth:`role_network`). :meth:`step` behaves by role, never by which
    network it is handed: it steps that role's schedulers and applies ``max_col_norm`` to that role's
    network; only ``"discriminator"`` runs the objective's after-step hook (WGAN's weight clipping), and only
    ``"generator"`` counts generator iterations. An unknown role is a ``ValueError``.

    **Extending the plan.** A subclass with a third network (a VAE-GAN's encoder) stores it as an attribute
    and appends its entry, named after that attribute::

        def optimizer_plan(self):
            return [*super().optimizer_plan(),
                    ("encoder", self.encoder.parameters(), self.optimizer_e, self.scheduler_e)]

    :meth:`players` then has ``players["encoder"]``, and ``self.update(opt_e, loss, "encoder")`` steps it
    (its schedulers only, no clipping, no generator iteration counted). Its partial optimizer and
    schedulers stay out of the checkpoint's hyper-parameters by value (see
    :meth:`~lightning_modules.optimization.ConfiguredModule.save_plain_hyperparameters`).

    **Generator iterations.** Lightning's ``global_step`` counts every optimizer step of either network
    (manual optimization); :attr:`generator_steps` counts the generator's, the unit of the WGAN paper
    (Arjovsky et al. 2017, Fig. 3), logged as ``train/generator_steps`` and, beside the validation
    metrics, ``val/generator_steps``, and saved in checkpoints. ``max_generator_steps`` is the budget in
    that unit: when it is reached, training stops after that batch (``trainer.should_stop``), with a last
    validation and checkpoint even inside an epoch, and one line says so ("stopped: budget of 1,240
    generator iterations reached (model.max_generator_steps)"). A run resumed from a checkpoint that
    already spent the budget takes no step: it says so in one line, naming the key to raise.

    **Critic iterations.** The generator steps after ``n_critic`` discriminator steps (Goodfellow et al.
    2014's ``k``, Algorithm 1), or after the count of :attr:`critic_schedule` (a
    :class:`lightning_modules.schedules.CriticSchedule`) when ``n_critic_burst`` is set (the WGAN reference
    code). Each discriminator step takes one batch; the count carries over epoch ends and is saved in
    checkpoints (``critic_steps``).

    **Schedules.** ``scheduler_g``/``scheduler_d`` are each a partial scheduler or a mapping
    ``name -> partial scheduler`` (e.g. a learning-rate decay and a momentum schedule). A scheduler whose
    class has ``interval = "step"`` is stepped after every update of its network, any other (torch's LR
    schedulers) after every training epoch.

    Args:
        generator: the generator network.
        discriminator: the discriminator (critic) network, or ``None``.
        objective: an :class:`AdversarialObjective` (``None`` without a discriminator).
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``), bound to parameters in
            :meth:`configure_optimizers`.
        n_critic: discriminator steps per generator step (>= 1).
        gradient_clip_val: clip each network's gradient norm to this value (``None``: no clipping).
        max_col_norm: after each step, rescale every linear layer's per-unit weight vector to at most this
            L2 norm (pylearn2's ``max_col_norm``, 1.9365 in Goodfellow et al. 2014's TFD configs; ``None``: off).
        scheduler_g, scheduler_d: ``None``, a partial scheduler, or a mapping of names to partial schedulers.
        n_critic_burst, burst_first, burst_every: the critic-iteration bursts of
            :class:`lightning_modules.schedules.CriticSchedule` (``n_critic_burst=None``: a fixed
            ``n_critic``); the four settings are held together as :attr:`critic_schedule`.
        max_generator_steps: the budget in generator iterations (``None``: the trainer's epochs or steps
            decide).

    Raises:
        ValueError: on ``n_critic < 1``, a bad burst schedule, ``max_generator_steps < 1``, or a
            discriminator without objective or optimizer.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        objective: AdversarialObjective | None,
        optimizer_g: Callable,
        optimizer_d: Callable | None,
        n_critic: int = 1,
        gradient_clip_val: float | None = None,
        max_col_norm: float | None = None,
        scheduler_g=None,
        scheduler_d=None,
        n_critic_burst: int | None = None,
        burst_first: int = 25,
        burst_every: int = 500,
        max_generator_steps: int | None = None,
    ) -> None:
        super().__init__()
        critic_schedule = CriticSchedule(n_critic, n_critic_burst, burst_first, burst_every)  # validates it
        if max_generator_steps is not None and max_generator_steps < 1:
            raise ValueError(f"model.max_generator_steps must be >= 1 or null, got {max_generator_steps}")
        if discriminator is not None and (objective is None or optimizer_d is None):
            raise ValueError("a model with a discriminator needs model.objective and model.optimizer_d")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.critic_schedule = critic_schedule
        self.critic_steps = 0  # discriminator steps since the last generator step
        self.generator_steps = 0  # generator iterations so far
        self.max_generator_steps = max_generator_steps
        self.gradient_clip_val = gradient_clip_val
        self.max_col_norm = max_col_norm
        self.optimizer_factories = {GENERATOR: optimizer_g, DISCRIMINATOR: optimizer_d}
        self.scheduler_factories = {GENERATOR: scheduler_g, DISCRIMINATOR: scheduler_d}
        self.schedule_plan: list[tuple[int, str]] = []  # (optimizer index, interval) of each scheduler

    @property
    def n_critic(self) -> int:
        """Discriminator steps per generator step outside bursts (``model.n_critic``, >= 1)."""
        return self.critic_schedule.n_critic

    # ------------------------------------------------------------------ roles
    def roles(self) -> tuple[str, ...]:
        """The names of :meth:`optimizer_plan`'s entries in optimizer order: ``("generator",
        "discriminator")``, ``("generator",)`` without a discriminator, plus what a subclass appends."""
        return tuple(name for name, *_ in self.optimizer_plan())

    def role_index(self, role: str) -> int:
        """The index of ``role``'s optimizer (in ``self.optimizers()`` and :attr:`schedule_plan`).

        Raises:
            ValueError: ``role`` is not a name in :meth:`optimizer_plan`, naming it and the known roles.
        """
        roles = self.roles()
        if role not in roles:
            raise ValueError(f"unknown role {role!r}: {type(self).__name__}'s optimizer plan has the roles "
                             f"{', '.join(map(repr, roles))}")
        return roles.index(role)

    def role_network(self, role: str) -> nn.Module:
        """The network that ``role``'s optimizer steps: the attribute named after the role (``self.generator``,
        ``self.encoder``). A subclass whose plan entry steps something else overrides this.

        Raises:
            TypeError: the module has no ``nn.Module`` under that name.
        """
        network = getattr(self, role, None)
        if not isinstance(network, nn.Module):
            raise TypeError(f"optimizer plan entry {role!r} of {type(self).__name__} names no network: "
                             f"self.{role} is {type(network).__name__}; name the entry after the attribute "
                             "holding its network, or override role_network")
        return network

    # ------------------------------------------------------------------ the loop's pieces
    def players(self) -> dict:
        """The optimizers by role, in :meth:`optimizer_plan`'s order: ``{"generator": opt_g,
        "discriminator": opt_d}`` (Lightning's ``LightningOptimizer`` wrappers); without a discriminator only
        ``"generator"``; a subclass's extra entries (``"encoder"``) too. Call it inside a training step."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return dict(zip(self.roles(), optimizers, strict=True))

    def critic_iterations(self) -> int:
        """Discriminator steps before the next generator step, at the current :attr:`generator_steps`."""
        return self.critic_schedule.iterations(self.generator_steps)

    def count_critic_step(self) -> bool:
        """Count this batch's discriminator step; ``True`` when a generator step follows it (always
        without a discriminator). Call it once per training batch."""
        if self.discriminator is None:
            return True
        self.critic_steps += 1
        if self.critic_steps >= self.critic_iterations():
            self.critic_steps = 0
            return True
        return False

    def update(self, optimizer, loss: Tensor, role: str) -> None:
        """One optimizer step on the scalar ``loss`` for ``role`` (a name in :meth:`optimizer_plan`): zero the
        gradients, backward, then :meth:`step`.

        Raises:
            ValueError: an unknown role (before any backward pass).
        """
        self.role_index(role)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.step(optimizer, role)

    def step(self, optimizer, role: str) -> None:
        """Step ``role``'s network on the gradients it holds: optional gradient-norm clipping, the optimizer's
        step, optional max-norm constraint (``max_col_norm``) on :meth:`role_network`, that role's per-update
        schedulers; for ``"discriminator"`` then the objective's hook (WGAN clips there, Arjovsky et al. 2017,
        Algorithm 1, line 7), for ``"generator"`` the count of generator iterations and the stop at
        ``max_generator_steps``; any other role (a subclass's ``"encoder"``) neither.

        Raises:
            ValueError: ``role`` is not a name in :meth:`optimizer_plan` (before anything is stepped).
            TypeError: the plan's name for ``role`` holds no network (see :meth:`role_network`).
        """
        index = self.role_index(role)
        network = self.role_network(role)
        if self.gradient_clip_val:
            # under 16-mixed the gradients are still multiplied by the GradScaler's scale here (Lightning
            # unscales inside optimizer.step), so the norm limit is scaled alike
            scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            scale = float(scaler.get_scale()) if scaler is not None else 1.0
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val * scale,
                                gradient_clip_algorithm="norm")
        optimizer.step()
        self.constrain(network)
        self._step_schedulers(lambda i, interval: i == index and interval == "step")
        if role == DISCRIMINATOR:
            self.objective.after_discriminator_step(network)
        elif role == GENERATOR:
            self.generator_steps += 1
            self.log("train/generator_steps", float(self.generator_steps))
            if self.budget_spent():
                self.trainer.should_stop = True  # validation and checkpoints still run after this batch
                if self.trainer.is_global_zero:
                    log.info(f"stopped: budget of {self.max_generator_steps:,} generator iterations reached "
                             "(model.max_generator_steps)")

    def budget_spent(self) -> bool:
        """Whether :attr:`generator_steps` has reached ``max_generator_steps`` (never without a budget)."""
        return self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps

    def on_train_start(self) -> None:
        if self.budget_spent():  # a resume with nothing left to do
            self.trainer.should_stop = True
            if self.trainer.is_global_zero:
                log.info(f"stopped: budget of {self.max_generator_steps:,} generator iterations already reached "
                         f"by the checkpoint (model.max_generator_steps); raise it to train on, e.g. "
                         f"model.max_generator_steps={2 * self.max_generator_steps}")

    def on_train_batch_start(self, batch, batch_idx: int) -> int | None:
        return -1 if self.budget_spent() else None  # -1: Lightning skips the rest of the epoch

    @torch.no_grad()
    def constrain(self, network: nn.Module) -> None:
        """Apply ``max_col_norm`` to every ``nn.Linear`` of ``network`` (rows of ``(out, in)`` weights)."""
        if self.max_col_norm:
            for module in network.modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(torch.renorm(module.weight, 2, 0, self.max_col_norm))

    def discriminator_step(self, optimizer, discriminate, real: Tensor, fake: Tensor, labels=None) -> Tensor:
        """One discriminator step: its outputs ``discriminate(real, labels)`` and ``discriminate(fake,
        labels)``, the objective's loss plus its penalty (R1, WGAN-GP;
        :meth:`~lightning_modules.objectives.AdversarialObjective.penalized_discriminator_loss`), one step
        with it (:meth:`step`, the objective's hook included), and its logs under ``train/``.
        ``discriminate(images, labels)`` runs the discriminator on images in the networks' pixel range (the
        objective's contract); ``fake`` must be detached from the generator. Call it inside
        ``toggled_optimizer(optimizer)``."""
        real_out, fake_out = discriminate(real, labels), discriminate(fake, labels)
        d_loss, d_logs = self.objective.penalized_discriminator_loss(real_out, fake_out, discriminate, real, fake,
                                                                     labels)
        self.update(optimizer, d_loss, DISCRIMINATOR)
        self.log_discriminator(d_loss, d_logs)
        return d_loss

    def log_discriminator(self, d_loss: Tensor, d_logs: dict) -> None:
        """``train/d_loss`` and the objective's other discriminator logs under ``train/``."""
        self.log("train/d_loss", d_loss.detach(), prog_bar=True)
        self.log_dict({f"train/{k}": v for k, v in d_logs.items()})

    # ------------------------------------------------------------------ schedules and state
    def _step_schedulers(self, chosen: Callable[[int, str], bool]) -> None:
        if not self.schedule_plan:
            return
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        for scheduler, (index, interval) in zip(schedulers, self.schedule_plan):
            if chosen(index, interval):
                scheduler.step()

    def on_train_epoch_end(self) -> None:
        self._step_schedulers(lambda index, interval: interval != "step")

    def on_validation_epoch_end(self) -> None:
        # beside val/fid in the same row, so validation curves plot against generator iterations
        self.log("val/generator_steps", float(self.generator_steps), sync_dist=True)  # the same on every rank

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["critic_steps"] = int(self.critic_steps)
        checkpoint["generator_steps"] = int(self.generator_steps)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # checkpoints from before these counts took one generator step per n_critic discriminator steps
        self.critic_steps = int(checkpoint.get("critic_steps", 0))
        self.generator_steps = int(checkpoint.get("generator_steps",
                                                  checkpoint.get("global_step", 0) // (self.n_critic + 1)))

    def optimizer_plan(self):
        """``[(role, parameters, partial optimizer, scheduler argument), ...]``: the generator's entry, then
        the discriminator's (when there is one). The role names the attribute holding the network; a
        subclass appends its own networks' entries (see the class docstring)."""
        roles = [GENERATOR] if self.discriminator is None else [GENERATOR, DISCRIMINATOR]
        return [(role, self.role_network(role).parameters(), self.optimizer_factories[role],
                 self.scheduler_factories[role]) for role in roles]
