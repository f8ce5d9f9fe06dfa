"""Where genforge's modules moved when the code was grouped by method family (issue 22), so that configs and
checkpoints saved before still load.

A run folder's ``.hydra/config.yaml`` and the record in each checkpoint (:mod:`callbacks.run_identity`)
name classes by their module, e.g. ``lightning_modules.adversarial.AdversarialModule``, now
``lightning_modules.gan.module.AdversarialModule``. :func:`current_target` maps an old name to the new one;
:func:`update_targets` rewrites every ``_target_`` of a config. ``train.py`` applies it to the composed
config (a user's own preset with old names still runs, with a warning naming the key), and
:func:`utils.checkpoints.load_run` / :func:`utils.checkpoints.check_resumable` to saved runs and checkpoints
before anything is compared, checked against the allowlist or instantiated.
"""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig, OmegaConf

#: old module -> new module (the classes kept their names)
MOVED_MODULES: dict[str, str] = {
    "lightning_modules.adversarial": "lightning_modules.gan.module",
    "lightning_modules.networks.mlp": "lightning_modules.gan.mlp",
    "lightning_modules.colorization": "lightning_modules.colorization.module",
    "lightning_modules.networks.unet": "lightning_modules.colorization.unet",
    "lightning_modules.networks.patchgan": "lightning_modules.colorization.patchgan",
    "metrics.colorization": "lightning_modules.colorization.metrics",
    "lightning_modules.dcign": "lightning_modules.dcign.module",
    "lightning_modules.invariance": "lightning_modules.dcign.invariance",
    "lightning_modules.networks.dcign": "lightning_modules.dcign.networks",
    "metrics.disentanglement": "lightning_modules.dcign.disentanglement",
    "lightning_modules.deep_gmm": "lightning_modules.deep_gmm.module",
    "lightning_modules.deep_gmm_estep": "lightning_modules.deep_gmm.estep",
    "lightning_modules.deep_gmm_mstep": "lightning_modules.deep_gmm.mstep",
    "lightning_modules.deep_gmm_stats": "lightning_modules.deep_gmm.stats",
    "lightning_modules.networks.deep_gmm": "lightning_modules.deep_gmm.networks",
    "metrics.gaussian_mixture": "lightning_modules.deep_gmm.shallow_gmm",
    "lightning_modules.pixelcnn": "lightning_modules.pixelcnn.module",
    "lightning_modules.pixelcnn_sampling": "lightning_modules.pixelcnn.sampling",
    "lightning_modules.networks.pixelcnn": "lightning_modules.pixelcnn.networks",
    "metrics.likelihood": "lightning_modules.pixelcnn.likelihood",
    "datamodules.mnist": "datamodules.images.mnist",
    "datamodules.mnist5k": "datamodules.images.mnist5k",
    "datamodules.digits": "datamodules.images.digits",
    "datamodules.cifar10": "datamodules.images.cifar10",
    "datamodules.celeba": "datamodules.images.celeba",
    "datamodules.lsun": "datamodules.images.lsun",
    "datamodules.image_folder": "datamodules.images.image_folder",
    "datamodules.tfd": "datamodules.images.tfd",
    "datamodules.photos": "datamodules.images.photos",
    "datamodules.factor_batches": "datamodules.factors.batches",
    "datamodules.faces3d": "datamodules.factors.faces3d",
    "datamodules.faces3d_render": "datamodules.factors.faces3d_render",
    "datamodules.chairs": "datamodules.factors.chairs",
    "datamodules.factor_folder": "datamodules.factors.factor_folder",
    "datamodules.patches": "datamodules.patches.photo_patches",
    "datamodules.patch_protocol": "datamodules.patches.protocol",
    "datamodules.bsds300": "datamodules.patches.bsds300",
    "datamodules.tiny_images": "datamodules.patches.tiny_images",
}


def current_target(target: str) -> str:
    """``target`` (a dotted ``module.Class``) with its module's new name when it moved, else unchanged."""
    if not isinstance(target, str) or "." not in target:
        return target
    module, _, name = target.rpartition(".")
    moved = MOVED_MODULES.get(module)
    return f"{moved}.{name}" if moved else target


def update_targets(cfg: DictConfig | ListConfig, prefix: str = "") -> dict[str, tuple[str, str]]:
    """Rewrite in place every ``_target_`` of ``cfg`` (at any depth, interpolations left alone) that names a
    moved module; returns ``{key path: (old, new)}`` of what changed."""
    changed: dict[str, tuple[str, str]] = {}
    names = list(cfg.keys()) if isinstance(cfg, DictConfig) else range(len(cfg))
    for name in names:
        key = (f"{prefix}.{name}" if prefix else str(name)) if isinstance(cfg, DictConfig) else f"{prefix}[{name}]"
        if OmegaConf.is_missing(cfg, name) or OmegaConf.is_interpolation(cfg, name):
            continue
        node = cfg._get_node(name)
        if name == "_target_":
            old = node._value()
            new = current_target(old)
            if new != old:
                readonly = OmegaConf.is_readonly(cfg)
                OmegaConf.set_readonly(cfg, False)
                cfg[name] = new
                OmegaConf.set_readonly(cfg, readonly)
                changed[key] = (old, new)
        elif isinstance(node, (DictConfig, ListConfig)) and not node._is_none():
            changed.update(update_targets(node, key))
    return changed
