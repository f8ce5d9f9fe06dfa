"""What every adversarial method shares: a generator and a discriminator, each with its optimizer, stepped
by hand (manual optimization) with optional gradient clipping, max-norm constraints and LR schedulers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from pytorch_lightning import LightningModule
from torch import Tensor, nn

from lightning_modules.objectives import AdversarialObjective

#: constructor arguments kept out of the checkpoint's hyper-parameters: networks and factories are rebuilt
#: from the run's config, so a checkpoint holds plain values only and loads with ``weights_only=True``
NOT_HYPERPARAMETERS = ["generator", "discriminator", "objective", "optimizer_g", "optimizer_d", "scheduler_g",
                       "scheduler_d"]


class TwoPlayerModule(LightningModule):
    """Base of the adversarial LightningModules (GAN family, colorization).

    Subclasses call ``super().__init__`` with the networks and factories, then ``save_hyperparameters``
    (ignoring :data:`NOT_HYPERPARAMETERS`), and write ``training_step`` with :meth:`update` for each
    network's step. A method without a discriminator (a regression baseline) passes
    ``discriminator=None``: it then has one optimizer.

    Args:
        generator: the generator network.
        discriminator: the discriminator (critic) network, or ``None``.
        objective: an :class:`AdversarialObjective` (``None`` without a discriminator).
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``), bound to parameters in
            :meth:`configure_optimizers`.
        n_critic: discriminator steps per generator step (>= 1).
        gradient_clip_val: clip each network's gradient norm to this value (``None``: no clipping).
        max_col_norm: after each step, rescale every linear layer's per-unit weight vector to at most this
            L2 norm (pylearn2's ``max_col_norm``, 1.9365 in Goodfellow et al. 2014's configs; ``None``: off).
        scheduler_g, scheduler_d: optional partial LR schedulers, stepped once per epoch.

    Raises:
        ValueError: on ``n_critic < 1``, or a discriminator without objective or optimizer.
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
        scheduler_g: Callable | None = None,
        scheduler_d: Callable | None = None,
    ) -> None:
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"model.n_critic must be >= 1, got {n_critic}")
        if discriminator is not None and (objective is None or optimizer_d is None):
            raise ValueError("a model with a discriminator needs model.objective and model.optimizer_d")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.n_critic = n_critic
        self.gradient_clip_val = gradient_clip_val
        self.max_col_norm = max_col_norm
        self.optimizer_factories = (optimizer_g, optimizer_d)
        self.scheduler_factories = (scheduler_g, scheduler_d)

    def is_generator_step(self, batch_idx: int) -> bool:
        """Whether batch ``batch_idx`` ends with a generator step (every ``n_critic``-th batch)."""
        return self.discriminator is None or (batch_idx + 1) % self.n_critic == 0

    def update(self, optimizer, loss: Tensor, network: nn.Module) -> None:
        """One optimizer step on ``loss`` for ``network``: backward, optional gradient-norm clipping,
        step, optional max-norm constraint."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()
        self.constrain(network)

    @torch.no_grad()
    def constrain(self, network: nn.Module) -> None:
        """Apply ``max_col_norm`` to every ``nn.Linear`` of ``network`` (rows of ``(out, in)`` weights)."""
        if self.max_col_norm:
            for module in network.modules():
                if isinstance(module, nn.Linear):
                    module.weight.copy_(torch.renorm(module.weight, 2, 0, self.max_col_norm))

    def discriminator_step(self, optimizer, real_out, fake_out) -> Tensor:
        """The discriminator's loss from its outputs, one step with it, the objective's hook (WGAN clips
        here), and its logs under ``train/``. Call it between ``toggle_optimizer`` and ``untoggle``."""
        d_loss, d_logs = self.objective.discriminator_loss(real_out, fake_out)
        self.update(optimizer, d_loss, self.discriminator)
        self.objective.after_discriminator_step(self.discriminator)
        self.log("train/d_loss", d_loss.detach(), prog_bar=True)
        self.log_dict({f"train/{k}": v for k, v in d_logs.items()})
        return d_loss

    def on_train_epoch_end(self) -> None:
        if any(make is not None for make in self.scheduler_factories):
            schedulers = self.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()

    def configure_optimizers(self):
        make_g, make_d = self.optimizer_factories
        optimizers = [make_g(params=self.generator.parameters())]
        if self.discriminator is not None:
            optimizers.append(make_d(params=self.discriminator.parameters()))
        schedulers = [make(optimizer=opt) for make, opt in zip(self.scheduler_factories, optimizers)
                      if make is not None]
        return (optimizers, schedulers) if schedulers else optimizers
