"""Rebuild a trained model from its run: the run's saved config plus the checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf


def find_run_config(ckpt_path: Path, run_config: str | None) -> Path:
    """The training run's ``config.yaml``: ``run_config`` if given, else ``<run>/.hydra/config.yaml`` for a
    checkpoint in ``<run>/checkpoints/``.

    Raises:
        FileNotFoundError: naming the checkpoint and where the config was looked for.
    """
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    candidate = Path(run_config) if run_config else ckpt_path.resolve().parents[1] / ".hydra" / "config.yaml"
    if not candidate.is_file():
        raise FileNotFoundError(f"no training config at {candidate} for ckpt_path={ckpt_path}; "
                                "pass run_config=<run>/.hydra/config.yaml")
    return candidate


def load_weights(model: torch.nn.Module, ckpt_path: Path) -> dict:
    """Load a Lightning checkpoint's ``state_dict`` into ``model`` with ``weights_only=True``.

    Raises:
        ValueError: if the file is not a Lightning checkpoint of this model (names the file).
    """
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {ckpt_path}: {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{ckpt_path} is not a Lightning checkpoint (no 'state_dict')")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {ckpt_path} does not fit the model of its run config: {error}") from error
    return checkpoint


def load_run(ckpt_path: str | Path, run_config: str | None, overrides, paths: DictConfig):
    """``(model in eval mode, run config)`` for a checkpoint: the run's config merged with ``overrides``
    (its ``paths`` replaced by the current ones), the model built from it, the weights loaded.

    Raises:
        FileNotFoundError, ValueError: see :func:`find_run_config` and :func:`load_weights`.
    """
    from hydra.utils import instantiate

    ckpt_path = Path(ckpt_path)
    run_cfg = OmegaConf.merge(OmegaConf.load(find_run_config(ckpt_path, run_config)), overrides or {})
    run_cfg.paths = paths
    model = instantiate(run_cfg.model)
    load_weights(model, ckpt_path)
    return model.eval(), run_cfg
