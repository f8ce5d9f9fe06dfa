"""The one walk over the ``_target_``s of a config: what Hydra's ``instantiate`` would call, at any depth.

Used wherever genforge looks at a config's targets: the allowlist a saved run's config must pass
(:func:`utils.target_allowlist.check_targets`) and the identity of a model recorded in each checkpoint and
compared before a resume (:func:`utils.checkpoints.model_targets`).
"""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf

from utils.errors import InputError


class UnresolvedTargetError(InputError):
    """A ``_target_`` whose value is an interpolation that does not resolve; ``key`` is its key path
    (``model.generator._target_``)."""

    def __init__(self, key: str, error: Exception) -> None:
        super().__init__(f"{key} does not resolve ({error})")
        self.key = key


def target_key(path: str) -> str:
    """The key path of the ``_target_`` of the node at ``path`` (``""`` for the root):
    ``model.generator`` -> ``model.generator._target_``."""
    return f"{path}._target_" if path else "_target_"


def iter_targets(cfg: DictConfig | ListConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig, object]]:
    """Every node of ``cfg`` (at any depth, depth-first in key order) that has a ``_target_``, as
    ``(key path of the node, node, value of its _target_)``; ``prefix`` is the key path of ``cfg``
    (``"model"``: ``model``, ``model.optimizer_d``, ``model.layers[0]``). The value is resolved, and is
    usually a dotted name (``"torch.optim.Adam"``) but is not checked here.

    Interpolated values are resolved, and walked too when they resolve to a config (``scheduler_d:
    ${.scheduler_g}``, and ``${oc.create:...}`` that could otherwise hide a target); one that does not
    resolve cannot be instantiated and is skipped, except a ``_target_``. Missing values (``???``) and
    ``None`` nodes are skipped.

    Raises:
        UnresolvedTargetError: a ``_target_`` that does not resolve, naming its key path.
    """
    names = list(cfg.keys()) if isinstance(cfg, DictConfig) else range(len(cfg))
    if isinstance(cfg, DictConfig) and "_target_" in names and not OmegaConf.is_missing(cfg, "_target_"):
        try:
            target = cfg["_target_"]
        except Exception as error:  # noqa: BLE001 - any failure to resolve, with its reason
            raise UnresolvedTargetError(target_key(prefix), error) from error
        yield prefix, cfg, target
    for name in names:
        if name == "_target_" or OmegaConf.is_missing(cfg, name):
            continue
        if isinstance(cfg, DictConfig):
            key = f"{prefix}.{name}" if prefix else str(name)
        else:
            key = f"{prefix}[{name}]"
        if OmegaConf.is_interpolation(cfg, name):
            try:
                value = cfg[name]
            except Exception:  # noqa: BLE001 - an unresolvable value instantiates nothing
                continue
        else:
            value = cfg._get_node(name)
        if isinstance(value, (DictConfig, ListConfig)) and not value._is_none():
            yield from iter_targets(value, key)
