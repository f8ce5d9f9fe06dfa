"""Record in every checkpoint which model it holds, so a resume with another model can say so."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer


class RunIdentity(Callback):
    """Write ``checkpoint["genforge"] = {"preset", "data", "targets"}`` into every checkpoint: the model
    preset (``model=<preset>``), the data config and every ``_target_`` of the model config by key path
    (see :func:`utils.checkpoints.model_targets`). :func:`utils.checkpoints.check_resumable` compares it
    with the run that resumes. ``train.py`` adds this callback to every run (it is not a config choice).

    Args:
        preset: the model preset's name (Hydra's choice of the ``model`` group), or ``None``.
        data: the data config's name, or ``None``.
        targets: ``{key path: _target_}`` of the model config.
    """

    def __init__(self, preset: str | None, data: str | None, targets: dict[str, str]) -> None:
        super().__init__()
        self.record = {"preset": preset, "data": data, "targets": dict(targets)}

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        from utils.checkpoints import IDENTITY_KEY

        checkpoint[IDENTITY_KEY] = dict(self.record)
