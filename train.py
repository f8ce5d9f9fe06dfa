"""genforge's one entry point: ``python train.py model=<method> data=<dataset> [trainer=...] [logger=...]``.

Hydra composes ``conf/train.yaml``; this script seeds, instantiates the DataModule, the LightningModule,
callbacks, loggers and the Trainer from their ``_target_``s, logs the hyper-parameters, fits (resuming
from ``ckpt_path``), tests, and returns ``optimized_metric`` for sweepers.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("GENFORGE_ROOT", str(Path(__file__).resolve().parent))
if os.environ["GENFORGE_ROOT"] not in sys.path:
    sys.path.insert(0, os.environ["GENFORGE_ROOT"])

import hydra
from omegaconf import DictConfig, OmegaConf

from utils.config import metric_value, register_resolvers

register_resolvers()
log = logging.getLogger("genforge")


def count_parameters(model) -> dict[str, int]:
    """Parameter counts of ``model`` and of each of its top-level children (``model/params/<name>``)."""
    counts = {"model/params/total": sum(p.numel() for p in model.parameters()),
              "model/params/trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[f"model/params/{name}"] = n
    return counts


def log_hyperparameters(cfg: DictConfig, model, trainer) -> None:
    """Send the resolved config and the parameter counts to every active logger."""
    if not trainer.loggers:
        return
    hparams: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    hparams.pop("hydra", None)
    hparams.update(count_parameters(model))
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)


def finish_wandb() -> None:
    """Close the W&B run, if one is open, so the next job of a multirun starts a fresh one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as ``cfg`` says; returns every metric logged (``split/name`` -> float).

    Raises:
        whatever instantiation or training raises, after closing W&B.
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from utils.config import instantiate_group

    try:
        if cfg.get("seed") is not None:
            pl.seed_everything(cfg.seed, workers=True)
        log.info(f"Instantiating datamodule <{cfg.data._target_}>")
        datamodule = instantiate(cfg.data)
        log.info(f"Instantiating model <{cfg.model._target_}>")
        model = instantiate(cfg.model)
        callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
        loggers = instantiate_group(cfg.get("logger"), "logger")
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        log_hyperparameters(cfg, model, trainer)

        metrics: dict[str, float] = {}
        if cfg.get("train", True):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if cfg.get("test", True):
            ckpt = _test_checkpoint(trainer, cfg)
            trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        return metrics
    finally:
        finish_wandb()


def _test_checkpoint(trainer, cfg: DictConfig) -> str | None:
    """The checkpoint to test: the best one of this run if any, else the weights in memory
    (or ``ckpt_path`` when only testing)."""
    if not cfg.get("train", True):
        return cfg.get("ckpt_path")
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if callback is not None else ""
    if best and Path(best).is_file():
        return best
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: print and save the config tree, run, return ``optimized_metric``."""
    from pytorch_lightning.utilities import rank_zero_only

    from utils.config import print_config_tree

    if rank_zero_only.rank == 0 and cfg.get("print_config", True):
        print_config_tree(cfg, save_dir=cfg.paths.output_dir)
    metrics = run(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
