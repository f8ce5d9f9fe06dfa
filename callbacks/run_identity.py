"""Record in every checkpoint which model it holds, so a resume with another model can say so and
``<Module>.load_from_checkpoint(path)`` can rebuild it anywhere."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Callback, LightningModule, Trainer


def plain_model_config(model: DictConfig | dict | None) -> dict | None:
    """``model`` as plain data (dicts, lists, strings, numbers, booleans, ``None``), every interpolation
    resolved, so that a checkpoint holding it still loads with ``torch.load(weights_only=True)``; ``None``
    for ``None``.

    Raises:
        omegaconf.errors.OmegaConfBaseException: an interpolation that does not resolve (naming its key).
    """
    if model is None:
        return None
    container = OmegaConf.to_container(OmegaConf.create(model) if isinstance(model, dict) else model,
                                       resolve=True, throw_on_missing=True)
    return container  # type: ignore[return-value]


class RunIdentity(Callback):
    """Write ``checkpoint["genforge"] = {"preset", "data", "targets", "model"}`` into every checkpoint: the
    model preset (``model=<preset>``), the data config, every ``_target_`` of the model config by key path
    (see :func:`utils.checkpoints.model_targets`) and the model config itself, resolved to plain data
    (:func:`plain_model_config`). :func:`utils.checkpoints.check_resumable` compares the targets with the run
    that resumes; :mod:`lightning_modules.loading` builds the model from ``model`` (its ``_target_``s pass
    the allowlist first). ``train.py`` adds this callback to every run (it is not a config choice).

    Args:
        preset: the model preset's name (Hydra's choice of the ``model`` group), or ``None``.
        data: the data config's name, or ``None``.
        targets: ``{key path: _target_}`` of the model config.
        model: the model config (``cfg.model``), or ``None``: the record then has no ``model`` and loading
            needs the run folder's ``.hydra/config.yaml``.

    Raises:
        omegaconf.errors.OmegaConfBaseException: ``model`` has an interpolation that does not resolve.
    """

    def __init__(self, preset: str | None, data: str | None, targets: dict[str, str],
                 model: DictConfig | dict | None = None) -> None:
        super().__init__()
        self.record = {"preset": preset, "data": data, "targets": dict(targets)}
        if model is not None:
            self.record["model"] = plain_model_config(model)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        import copy

        from utils.checkpoints import IDENTITY_KEY

        checkpoint[IDENTITY_KEY] = copy.deepcopy(self.record)
