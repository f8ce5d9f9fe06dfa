"""Checkpoints a user hands in: read them safely, say what they hold, rebuild a trained model from its run.

Every read is ``torch.load(weights_only=True)``; every problem is an :class:`~utils.errors.InputError`
naming the file (a missing, truncated or foreign file, a checkpoint of another model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from utils.config_targets import iter_targets
from utils.errors import InputError, MissingFileError

#: the key of genforge's record in a checkpoint (written by :class:`callbacks.run_identity.RunIdentity`)
IDENTITY_KEY = "genforge"


def find_run_config(ckpt_path: Path, run_config: str | None, key: str = "ckpt_path",
                    option: str = "run_config") -> Path:
    """The training run's ``config.yaml``: ``run_config`` if given, else ``<run>/.hydra/config.yaml`` for a
    checkpoint in ``<run>/checkpoints/``. ``key`` and ``option`` name the checkpoint's and the config's
    argument in messages.

    Raises:
        MissingFileError: naming the checkpoint and where the config was looked for.
    """
    if not ckpt_path.is_file():
        raise MissingFileError(f"{key}={ckpt_path} does not exist")
    candidate = Path(run_config) if run_config else ckpt_path.resolve().parents[1] / ".hydra" / "config.yaml"
    if not candidate.is_file():
        raise MissingFileError(f"no training config at {candidate} for {key}={ckpt_path}; "
                               f"pass {option}=<run>/.hydra/config.yaml")
    return candidate


def read_checkpoint(ckpt_path: str | Path, key: str = "ckpt_path", map_location="cpu") -> dict:
    """The Lightning checkpoint at ``ckpt_path`` (config key ``key``), read with ``weights_only=True``
    onto the CPU (memory-mapped, so a large file is not read twice when Lightning loads it again), or where
    ``map_location`` says (``torch.load``'s argument).

    Raises:
        MissingFileError: the file does not exist.
        InputError: it is truncated, not a PyTorch file, holds objects ``weights_only`` refuses, or is
            not a Lightning checkpoint (no ``state_dict``).
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise MissingFileError(f"{key}={path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - every reason is reported the same way, with its first line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{key}={path} ({path.stat().st_size} bytes) is not a readable checkpoint: "
                         f"truncated, or not a file torch.save wrote ({type(error).__name__}: {reason[:200]})"
                         ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{key}={path} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def model_targets(model_cfg: DictConfig, prefix: str = "model") -> dict[str, str]:
    """Every ``_target_`` of a model config by the key path of its node (walked by
    :func:`utils.config_targets.iter_targets`: interpolated nodes resolved and followed), e.g.
    ``{"model": "...AdversarialModule", "model.optimizer_d": "torch.optim.RMSprop", ...}``: what a
    checkpoint must match to be resumed.

    Raises:
        utils.config_targets.UnresolvedTargetError: a ``_target_`` that does not resolve, naming its key.
    """
    return {path: str(target) for path, _, target in iter_targets(model_cfg, prefix)}


def checkpoint_identity(checkpoint: dict, ckpt_path: Path) -> dict | None:
    """What model a checkpoint holds: genforge's record in it (``preset``, ``targets``), else the same read
    from its run folder's ``.hydra/`` files when it lies in ``<run>/checkpoints/``; ``None`` if neither."""
    record = checkpoint.get(IDENTITY_KEY)
    if isinstance(record, dict) and "targets" in record:
        return record
    hydra_dir = Path(ckpt_path).resolve().parents[1] / ".hydra"
    try:
        run_cfg = OmegaConf.load(hydra_dir / "config.yaml")
        choices = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        preset = choices.get("model")
    except Exception:  # noqa: BLE001 - no (readable) run folder: nothing known
        return None
    if "model" not in run_cfg:
        return None
    return {"preset": preset, "targets": model_targets(run_cfg.model)}


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


def load_state(model: torch.nn.Module, checkpoint: dict, ckpt_path: Path, strict: bool = True):
    """Load ``checkpoint["state_dict"]`` (read from ``ckpt_path``) into ``model``; returns torch's
    ``(missing_keys, unexpected_keys)``, empty when ``strict``.

    Raises:
        InputError: the weights do not fit the model (names the file and the first differences).
    """
    try:
        return model.load_state_dict(checkpoint["state_dict"], strict=strict)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise InputError(f"checkpoint {ckpt_path} does not fit the model of its run config: "
                         f"{' '.join(first[:3])[:300]}") from error


def load_weights(model: torch.nn.Module, ckpt_path: Path) -> dict:
    """Load a Lightning checkpoint's ``state_dict`` into ``model`` with ``weights_only=True``.

    Raises:
        InputError: if the file is unreadable or not a Lightning checkpoint of this model (names the file).
    """
    checkpoint = read_checkpoint(ckpt_path)
    load_state(model, checkpoint, ckpt_path)
    return checkpoint


def check_config_targets(cfg: DictConfig, source: str, trust_run_config: bool = False, prefix: str = "",
                         trusted_packages=()) -> None:
    """Before a saved config (read from ``source``) is instantiated: every ``_target_`` of ``cfg`` (key path
    ``prefix``) on the allowlist of :mod:`utils.target_allowlist` or in one of ``trusted_packages`` (the
    evaluating command's config key, a list of package names), unless ``trust_run_config`` (a warning).

    Raises:
        InputError: ``trusted_packages`` is not a list of package names.
        UntrustedConfigError: a ``_target_`` outside the allowlist, naming the key and ``source``.
    """
    import logging

    from utils.target_allowlist import check_targets

    if trust_run_config:
        logging.getLogger("genforge").warning(f"trust_run_config=true: instantiating {source} unchecked")
    else:
        check_targets(cfg, source, prefix, trusted_packages)


def saved_model_config(checkpoint: dict, ckpt_path: Path, run_config: str | Path | None = None,
                       key: str = "ckpt_path", option: str = "run_config") -> tuple[DictConfig, str]:
    """``(model config, where it was read)`` of a checkpoint, not yet checked nor instantiated.

    The config comes from ``run_config`` when given (a run's ``.hydra/config.yaml``, or any YAML with a
    ``model`` node), else from the checkpoint's own record (``checkpoint["genforge"]["model"]``, written by
    :class:`callbacks.run_identity.RunIdentity`, so a checkpoint copied away from its run still loads), else
    from ``<run>/.hydra/config.yaml`` beside ``<run>/checkpoints/`` (checkpoints from before the record).
    ``key``/``option`` name the checkpoint's and the config's arguments in messages.

    Raises:
        MissingFileError: no record, and no run config where it was looked for (names both).
        InputError: the run config has no ``model`` node with a ``_target_``.
    """
    record = checkpoint.get(IDENTITY_KEY)
    if run_config is None and isinstance(record, dict) and isinstance(record.get("model"), dict):
        model_cfg, source = OmegaConf.create(record["model"]), f"{key}={ckpt_path} (its record of the model)"
    else:
        config_file = find_run_config(Path(ckpt_path), str(run_config) if run_config else None, key, option)
        run_cfg = OmegaConf.load(config_file)
        if not isinstance(run_cfg, DictConfig) or not isinstance(run_cfg.get("model"), DictConfig) \
                or "_target_" not in run_cfg.model:
            raise InputError(f"{option}={config_file} has no 'model' node with a _target_: expected a run's "
                             ".hydra/config.yaml")
        model_cfg, source = run_cfg.model, str(config_file)
    return model_cfg, source


def load_run(ckpt_path: str | Path, run_config: str | None, overrides, paths: DictConfig,
             trust_run_config: bool = False, trusted_packages=()):
    """``(model in eval mode, run config)`` for a checkpoint: the run's config merged with ``overrides``
    (its ``paths`` replaced by the current ones), the model built from it, the weights loaded.

    Unless ``trust_run_config``, every ``_target_`` of the run's config must be on the allowlist of
    :mod:`utils.target_allowlist`, or in one of ``trusted_packages`` (the evaluating command's own config
    key ``trusted_packages``, never the run's), before anything is instantiated.

    Raises:
        MissingFileError, InputError: see :func:`find_run_config` and :func:`load_weights`; InputError
            also for ``trusted_packages`` that are not package names.
        UntrustedConfigError: a ``_target_`` outside the allowlist, naming the key and the file.
    """
    from hydra.utils import instantiate

    ckpt_path = Path(ckpt_path)
    config_file = find_run_config(ckpt_path, run_config)
    run_cfg = OmegaConf.merge(OmegaConf.load(config_file), overrides or {})
    run_cfg.paths = paths
    check_config_targets(run_cfg, str(config_file), trust_run_config, trusted_packages=trusted_packages)
    model = instantiate(run_cfg.model)
    load_weights(model, ckpt_path)
    return model.eval(), run_cfg
