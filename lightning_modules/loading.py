"""``<Module>.load_from_checkpoint(path)`` for every genforge family, as Lightning's convention has it.

genforge's modules take their networks, objectives and optimizer partials as constructor arguments
(Hydra instantiates them) and keep them out of the checkpoint's hyper-parameters, so Lightning's own
``load_from_checkpoint`` cannot call the constructor. :class:`LoadsFromCheckpoint` builds the module from
the model config instead: the record each checkpoint carries (``checkpoint["genforge"]["model"]``, plain
data written by :class:`callbacks.run_identity.RunIdentity`), else the run's ``.hydra/config.yaml``
beside ``<run>/checkpoints/`` (see :func:`utils.checkpoints.saved_model_config`). The checkpoint is read
with ``torch.load(weights_only=True)`` and every ``_target_`` passes the allowlist of
:mod:`utils.target_allowlist` before anything is instantiated.

Example::

    from lightning_modules.gan.module import AdversarialModule
    model = AdversarialModule.load_from_checkpoint("outputs/.../checkpoints/last.ckpt").eval()
    images = model.sample(16)          # (16, C, H, W) in [-1, 1]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from utils.checkpoints import (
    check_config_targets,
    checkpoint_identity,
    describe,
    load_state,
    read_checkpoint,
    saved_model_config,
)
from utils.errors import InputError, MissingFileError

#: the checkpoint's argument, as Lightning names it (and as messages name it)
KEY = "checkpoint_path"


def module_class(cls: type, model_cfg, checkpoint: dict, path: Path) -> type:
    """The class to build for ``cls.load_from_checkpoint``: the saved ``model._target_`` when it is ``cls``
    or a subclass, ``cls`` when ``cls`` subclasses it (a user's own subclass). Call it only after the
    targets passed the allowlist (it imports the saved target).

    Raises:
        InputError: a checkpoint of another family, in one line naming the preset and class it holds and
            the class whose ``load_from_checkpoint`` loads it.
    """
    from hydra.utils import get_object

    saved = get_object(model_cfg._target_)
    if issubclass(saved, cls):
        return saved
    if issubclass(cls, saved):
        return cls
    held = {**(checkpoint_identity(checkpoint, path) or {}), "targets": {"model": model_cfg._target_}}
    use = (f"; load it with {saved.__name__}.load_from_checkpoint (from {saved.__module__} import "
           f"{saved.__name__})" if hasattr(saved, "load_from_checkpoint") else "")
    raise InputError(f"{KEY}={path} holds a checkpoint of {describe(held)}, not of {cls.__name__}{use}")


def load_module(cls: type, checkpoint_path: str | Path, map_location=None, hparams_file: str | Path | None = None,
                strict: bool | None = None, weights_only: bool | None = None, trust_run_config: bool = False,
                lightning_load=None, trusted_packages=(), **overrides: Any):
    """A module of class ``cls`` (or the subclass the checkpoint holds) with the checkpoint's weights, as
    Lightning's ``load_from_checkpoint`` returns it (on the device of the loaded weights, in training mode).

    Args:
        cls: the class ``load_from_checkpoint`` was called on.
        checkpoint_path: a Lightning checkpoint written by a genforge run.
        map_location: ``torch.load``'s; ``None``: the device each tensor was saved on when it is available,
            else the CPU (Lightning's default).
        hparams_file: a YAML with the run's config (``<run>/.hydra/config.yaml``, or any file with a
            ``model`` node); ``None``: the checkpoint's record, else its run folder's config.
        strict: load the weights strictly (``None``: the module's ``strict_loading``, ``True`` by default).
        weights_only: ``None`` or ``True``; genforge checkpoints hold plain data and are read with
            ``weights_only=True`` only.
        trust_run_config: skip the ``_target_`` allowlist (a run one trusts).
        trusted_packages: packages whose classes pass the allowlist besides genforge's (one's own code,
            e.g. ``["mylab"]``; see :func:`utils.target_allowlist.check_target`).
        lightning_load: Lightning's own ``load_from_checkpoint``, used when the checkpoint has no record and
            no run config but ``overrides`` give the constructor's networks (a checkpoint saved by hand).
        **overrides: values for config keys of the model (``ema_decay=None``, ``num_fixed=16``, a network
            object ``generator=...``), as Lightning's keyword arguments override hyper-parameters.

    Raises:
        MissingFileError: the file does not exist; or neither a record nor a run config to build from.
        InputError: an unreadable or non-Lightning file, ``weights_only=False``, a checkpoint of another
            family (one line naming it and the class to use), weights that do not fit (``strict``).
        UntrustedConfigError: a ``_target_`` outside the allowlist, naming the key and where it was read.
    """
    import torch
    from hydra.utils import instantiate
    from pytorch_lightning.core.saving import _default_map_location
    from pytorch_lightning.utilities import rank_zero_warn
    from pytorch_lightning.utilities.model_helpers import is_overridden

    from utils.config import register_resolvers

    if weights_only is False:
        raise InputError("weights_only=False: genforge reads checkpoints with weights_only=True only "
                         "(its checkpoints hold plain data)")
    path = Path(checkpoint_path)
    checkpoint = read_checkpoint(path, KEY, map_location or _default_map_location)
    try:
        model_cfg, source = saved_model_config(checkpoint, path, hparams_file, KEY, "hparams_file")
    except MissingFileError:
        if not overrides or lightning_load is None or not path.is_file():
            raise
        return lightning_load(path, map_location, None, strict, True, **overrides)
    register_resolvers()
    check_config_targets(model_cfg, source, trust_run_config, prefix="model",
                         trusted_packages=trusted_packages)
    built = module_class(cls, model_cfg, checkpoint, path)
    model_cfg._target_ = f"{built.__module__}.{built.__qualname__}"
    model = instantiate(model_cfg, **overrides)
    strict = model.strict_loading if strict is None else strict
    if is_overridden("configure_model", model):
        model.configure_model()
    model.on_load_checkpoint(checkpoint)
    keys = load_state(model, checkpoint, path, strict)
    if not strict and (keys.missing_keys or keys.unexpected_keys):
        rank_zero_warn(f"{KEY}={path}: missing {keys.missing_keys}, unexpected {keys.unexpected_keys}")
    tensors = [t for t in checkpoint["state_dict"].values() if isinstance(t, torch.Tensor)]
    return model.to(tensors[0].device) if tensors else model


class LoadsFromCheckpoint:
    """Mixin of every family's LightningModule (listed first among its bases): ``load_from_checkpoint``
    builds the module from the checkpoint's model config (see :func:`load_module`), so
    ``AdversarialModule.load_from_checkpoint(path)`` needs no networks passed in."""

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, map_location=None,
                             hparams_file: str | Path | None = None, strict: bool | None = None,
                             weights_only: bool | None = None, *, trust_run_config: bool = False,
                             trusted_packages=(), **kwargs: Any):
        """The module saved in ``checkpoint_path``, built from its model config; Lightning's signature (see
        :func:`load_module` for every argument, what is returned and the errors raised)."""
        return load_module(cls, checkpoint_path, map_location, hparams_file, strict, weights_only, trust_run_config,
                           super().load_from_checkpoint, trusted_packages, **kwargs)
