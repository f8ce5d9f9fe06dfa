"""Checkpoints a user hands in: read them safely, say what they hold, rebuild a trained model from its run.

Every read is ``torch.load(weights_only=True)``; every problem is an :class:`~utils.errors.InputError`
naming the file (a missing, truncated or foreign file, a checkpoint of another model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from utils.errors import InputError, MissingFileError

#: the key of genforge's record in a checkpoint (written by :class:`callbacks.run_identity.RunIdentity`)
IDENTITY_KEY = "genforge"


def find_run_config(ckpt_path: Path, run_config: str | None) -> Path:
    """The training run's ``config.yaml``: ``run_config`` if given, else ``<run>/.hydra/config.yaml`` for a
    checkpoint in ``<run>/checkpoints/``.

    Raises:
        MissingFileError: naming the checkpoint and where the config was looked for.
    """
    if not ckpt_path.is_file():
        raise MissingFileError(f"ckpt_path={ckpt_path} does not exist")
    candidate = Path(run_config) if run_config else ckpt_path.resolve().parents[1] / ".hydra" / "config.yaml"
    if not candidate.is_file():
        raise MissingFileError(f"no training config at {candidate} for ckpt_path={ckpt_path}; "
                               "pass run_config=<run>/.hydra/config.yaml")
    return candidate


def read_checkpoint(ckpt_path: str | Path, key: str = "ckpt_path") -> dict:
    """The Lightning checkpoint at ``ckpt_path`` (config key ``key``), read with ``weights_only=True``
    onto the CPU (memory-mapped, so a large file is not read twice when Lightning loads it again).

    Raises:
        MissingFileError: the file does not exist.
        InputError: it is truncated, not a PyTorch file, holds objects ``weights_only`` refuses, or is
            not a Lightning checkpoint (no ``state_dict``).
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise MissingFileError(f"{key}={path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - every reason is reported the same way, with its first line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{key}={path} ({path.stat().st_size} bytes) is not a readable checkpoint: "
                         f"truncated, or not a file torch.save wrote ({type(error).__name__}: {reason[:200]})"
                         ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{key}={path} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def model_targets(model_cfg: DictConfig, prefix: str = "model") -> dict[str, str]:
    """Every ``_target_`` of a model config by key path, e.g. ``{"model": "...AdversarialModule",
    "model.optimizer_d": "torch.optim.RMSprop", ...}``: what a checkpoint must match to be resumed."""
    targets: dict[str, str] = {}
    if isinstance(model_cfg, DictConfig):
        for name in model_cfg:
            if name == "_target_":
                targets[prefix] = str(model_cfg[name])
            elif isinstance(model_cfg._get_node(name), (DictConfig, ListConfig)):
                targets.update(model_targets(model_cfg[name], f"{prefix}.{name}"))
    elif isinstance(model_cfg, ListConfig):
        for i, item in enumerate(model_cfg):
            targets.update(model_targets(item, f"{prefix}[{i}]"))
    return targets


def checkpoint_identity(checkpoint: dict, ckpt_path: Path) -> dict | None:
    """What model a checkpoint holds: genforge's record in it (``preset``, ``targets``), else the same read
    from its run folder's ``.hydra/`` files when it lies in ``<run>/checkpoints/``; ``None`` if neither."""
    from utils.moved import current_target

    record = checkpoint.get(IDENTITY_KEY)
    if isinstance(record, dict) and "targets" in record:  # targets as named now (a checkpoint from before a move)
        return {**record, "targets": {k: current_target(v) for k, v in record["targets"].items()}}
    hydra_dir = Path(ckpt_path).resolve().parents[1] / ".hydra"
    try:
        run_cfg = OmegaConf.load(hydra_dir / "config.yaml")
        choices = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        preset = choices.get("model")
    except Exception:  # noqa: BLE001 - no (readable) run folder: nothing known
        return None
    if "model" not in run_cfg:
        return None
    return {"preset": preset, "targets": {k: current_target(v) for k, v in model_targets(run_cfg.model).items()}}


def describe(identity: dict) -> str:
    """``model=dcgan (lightning_modules.gan.module.AdversarialModule)`` for an identity record."""
    module = identity["targets"].get("model", "?")
    return f"model={identity['preset']} ({module})" if identity.get("preset") else module


def check_resumable(ckpt_path: str | Path, model: torch.nn.Module, model_cfg: DictConfig,
                    preset: str | None = None) -> dict:
    """Check before ``trainer.fit(ckpt_path=...)`` that the checkpoint is one of this model: readable, its
    record's ``_target_``s (module, networks, optimizers, objective) equal to ``model_cfg``'s, its weights
    the model's names and shapes. Returns the checkpoint.

    Raises:
        MissingFileError, InputError: see :func:`read_checkpoint`; a checkpoint of another model, naming
            the model it holds and the first differences.
    """
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    here = f"this run's model={preset}" if preset else "this run's model"
    identity = checkpoint_identity(checkpoint, path)
    if identity is not None:
        theirs, ours = identity["targets"], model_targets(model_cfg)
        differences = [f"{k}: {theirs.get(k)} there, {ours.get(k)} here"
                       for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
        if differences:
            hint = f"; resume it with model={identity['preset']}" if identity.get("preset") else ""
            raise InputError(f"ckpt_path={path} holds a checkpoint of {describe(identity)}, not of {here} "
                             f"({'; '.join(differences[:3])}){hint}")
    saved, expected = checkpoint["state_dict"], model.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    shapes = [f"{k} {tuple(saved[k].shape)} there, {tuple(expected[k].shape)} here" for k in sorted(expected)
              if k in saved and hasattr(saved[k], "shape") and saved[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        held = describe(identity) if identity else "another model"
        details = [*(f"missing {k}" for k in missing[:2]), *(f"unexpected {k}" for k in unexpected[:2]), *shapes[:2]]
        raise InputError(f"ckpt_path={path} holds the weights of {held}, which do not fit {here}: "
                         f"{'; '.join(details)}")
    return checkpoint


def load_weights(model: torch.nn.Module, ckpt_path: Path) -> dict:
    """Load a Lightning checkpoint's ``state_dict`` into ``model`` with ``weights_only=True``.

    Raises:
        InputError: if the file is unreadable or not a Lightning checkpoint of this model (names the file).
    """
    checkpoint = read_checkpoint(ckpt_path)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise InputError(f"checkpoint {ckpt_path} does not fit the model of its run config: "
                         f"{' '.join(first[:3])[:300]}") from error
    return checkpoint


def load_run(ckpt_path: str | Path, run_config: str | None, overrides, paths: DictConfig,
             trust_run_config: bool = False):
    """``(model in eval mode, run config)`` for a checkpoint: the run's config merged with ``overrides``
    (its ``paths`` replaced by the current ones), the model built from it, the weights loaded.

    ``_target_``s naming a module that has since moved are renamed first (:mod:`utils.moved`). Unless
    ``trust_run_config``, every ``_target_`` of the run's config must be on the allowlist of
    :mod:`utils.target_allowlist` before anything is instantiated.

    Raises:
        MissingFileError, InputError: see :func:`find_run_config` and :func:`load_weights`.
        UntrustedConfigError: a ``_target_`` outside the allowlist, naming the key and the file.
    """
    import logging

    from hydra.utils import instantiate

    from utils.target_allowlist import check_targets

    ckpt_path = Path(ckpt_path)
    config_file = find_run_config(ckpt_path, run_config)
    from utils.moved import update_targets

    run_cfg = OmegaConf.merge(OmegaConf.load(config_file), overrides or {})
    update_targets(run_cfg)  # a run saved before a module moved names it as it was
    run_cfg.paths = paths
    if trust_run_config:
        logging.getLogger("genforge").warning(f"trust_run_config=true: instantiating {config_file} unchecked")
    else:
        check_targets(run_cfg, str(config_file))
    model = instantiate(run_cfg.model)
    load_weights(model, ckpt_path)
    return model.eval(), run_cfg
