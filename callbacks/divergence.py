"""Stop a run whose losses are no longer finite or have exploded, and keep its last good checkpoint."""

from __future__ import annotations

import logging
import math

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

log = logging.getLogger("genforge")


class DivergenceGuard(Callback):
    """Stop training when a logged training loss (a ``train/`` key ending in ``loss``) is NaN, infinite or
    beyond ``±max_loss``, and keep the last checkpoint written before it.

    The losses are read from ``trainer.callback_metrics`` every ``check_every_n_steps`` batches, before
    each validation and at the end of each training epoch (Lightning runs checkpoint callbacks after all
    others, so this check comes before the epoch's save). On divergence it sets ``trainer.should_stop``,
    records ``diverged_at = (epoch, batch_idx, global_step, key, value)`` and logs one message naming
    them; :class:`callbacks.checkpoint.ModelCheckpoint` then writes nothing more, so ``last.ckpt`` stays
    the last good state to resume from (e.g. with a smaller learning rate).

    Args:
        check_every_n_steps: batches between checks (each check reads the losses, a host-device sync).
        max_loss: the largest ``|loss|`` taken as training. Every preset's losses stay far below the
            default 1e6 (a GAN's objectives are O(1)-O(100); DC-IGN's negative ELBO and PixelCNN's NLL are
            nats per image, O(1e4) for 150x150 or 32x32x3 images); ``null`` checks finiteness only.

    Raises:
        ValueError: ``check_every_n_steps`` < 1 or ``max_loss`` <= 0 (names the config key).
    """

    def __init__(self, check_every_n_steps: int = 50, max_loss: float | None = 1.0e6) -> None:
        super().__init__()
        if int(check_every_n_steps) < 1:
            raise ValueError(f"callbacks.divergence_guard.check_every_n_steps must be >= 1, got {check_every_n_steps}")
        if max_loss is not None and not float(max_loss) > 0:
            raise ValueError(f"callbacks.divergence_guard.max_loss must be > 0 or null, got {max_loss}")
        self.check_every_n_steps = int(check_every_n_steps)
        self.max_loss = None if max_loss is None else float(max_loss)
        self.diverged_at: tuple[int, int, int, str, float] | None = None
        self._batch_idx = 0

    def _bad(self, value: torch.Tensor) -> bool:
        value = value.detach().float()
        if not torch.isfinite(value).all():
            return True
        return self.max_loss is not None and bool((value.abs() > self.max_loss).any())

    def check(self, trainer: Trainer, batch_idx: int) -> bool:
        """Look at the training losses now; on divergence stop the run (see the class). Returns whether the
        run has diverged (now or before)."""
        if self.diverged_at is not None:
            return True
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and key.endswith("loss") and self._bad(torch.as_tensor(value)):
                number = float(torch.as_tensor(value).detach().float().reshape(-1)[0])
                self.diverged_at = (trainer.current_epoch, batch_idx, trainer.global_step, key, number)
                why = "not finite" if not math.isfinite(number) else f"|{key}| > max_loss={self.max_loss:g}"
                log.error(f"training diverged: {key} = {number:.4g} at epoch {trainer.current_epoch}, batch "
                          f"{batch_idx} (global step {trainer.global_step}): {why}. Training is stopped and no "
                          "checkpoint is written after this point: checkpoints/last.ckpt holds the last good "
                          "state (resume it with ckpt_path=..., e.g. with a smaller learning rate)")
                trainer.should_stop = True
                return True
        return False

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int):
        self._batch_idx = batch_idx
        if batch_idx % self.check_every_n_steps == 0:
            self.check(trainer, batch_idx)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from pytorch_lightning.trainer.states import TrainerFn

        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.check(trainer, self._batch_idx)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer, self._batch_idx)


def has_diverged(trainer: Trainer) -> bool:
    """True once a :class:`DivergenceGuard` of ``trainer`` has stopped the run."""
    return any(isinstance(cb, DivergenceGuard) and cb.diverged_at is not None for cb in trainer.callbacks)
