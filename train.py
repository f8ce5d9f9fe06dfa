"""genforge's one entry point: ``python train.py model=<method> data=<dataset> [trainer=...] [logger=...]``.

Hydra composes ``conf/train.yaml``; this script seeds, instantiates the DataModule, the LightningModule,
callbacks, loggers and the Trainer from their ``_target_``s, logs the hyper-parameters, fits (resuming
from ``ckpt_path``), tests, and returns ``optimized_metric`` for sweepers.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from utils.bootstrap import bootstrap
from utils.config import metric_value
from utils.errors import first_line, report_input_errors

log = bootstrap()  # at import: the processes ddp_spawn starts import this file again
#: ``ckpt_path`` values Lightning resolves itself (``ckpt_path=last`` resumes this run's last checkpoint)
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


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


def without_hydra_node(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` without its ``hydra`` node (present when composed with ``return_hydra_config=True``,
    the Lightning+Hydra template's test pattern); ``${hydra:...}`` resolvers still read the running Hydra."""
    from omegaconf import open_dict

    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def model_choice(group: str) -> str | None:
    """The option Hydra chose for config group ``group`` (``model=dcgan`` -> ``"dcgan"``), or ``None``
    outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get(group)


def run_callbacks(cfg: DictConfig) -> list:
    """The callbacks of ``cfg.callbacks`` plus those every run has, whatever ``callbacks=`` says:
    :class:`callbacks.run_identity.RunIdentity` (its checkpoints record which model they hold),
    :class:`callbacks.interruption.Interruption` (a signal leaves a checkpoint of its step; the Slurm
    requeue signal ``requeue_signal``) and :class:`callbacks.resumed_history.ResumedHistory` (a resumed run
    continues its metric history)."""
    from callbacks.interruption import Interruption
    from callbacks.resumed_history import ResumedHistory
    from callbacks.run_identity import RunIdentity
    from utils.checkpoints import model_targets
    from utils.config import instantiate_group

    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    callbacks.append(RunIdentity(preset=model_choice("model"), data=model_choice("data"),
                                 targets=model_targets(cfg.model), model=cfg.model))
    try:  # first, so that its signal handlers are in place before the other callbacks' setup (FID features)
        callbacks.insert(0, Interruption(requeue_signal=cfg.get("requeue_signal", "USR2")))
    except ValueError as error:
        from utils.errors import InputError

        raise InputError(str(error)) from None
    callbacks.append(ResumedHistory())
    return callbacks


def requeued_checkpoint(trainer, ckpt_path: str | None) -> str | None:
    """``ckpt_path``, or -- when it is null inside a Slurm job whose run folder already holds ``last.ckpt``
    (a job requeued after preemption or its time limit, see :class:`callbacks.interruption.Interruption`)
    -- that ``last.ckpt``, so the requeued job resumes with no new command."""
    from callbacks.interruption import last_checkpoint_path, slurm_job_id

    if ckpt_path is not None or slurm_job_id() is None:
        return ckpt_path
    last = last_checkpoint_path(trainer)
    if not last.is_file():
        return None
    log.info(f"Slurm job {slurm_job_id()}: resuming from {last} (this run folder's last checkpoint)")
    return str(last)


def atomic_checkpoint_plugins(plugins: list) -> list:
    """``plugins`` plus :class:`utils.checkpoint_io.AtomicCheckpointIO` unless one of them already is a
    ``CheckpointIO``: every checkpoint is written beside its target and renamed onto it."""
    from pytorch_lightning.plugins.io import CheckpointIO

    from utils.checkpoint_io import AtomicCheckpointIO

    if any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        return plugins
    return [*plugins, AtomicCheckpointIO()]


def keep_wandb_in_run_folder(loggers: list) -> None:
    """Point ``WANDB_DIR`` at the W&B logger's ``save_dir`` (the run folder), so that processes that attach
    to the run later (the ranks ``ddp_spawn`` starts) write their files there and not into ``./wandb``."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger.save_dir:
            os.environ["WANDB_DIR"] = str(Path(logger.save_dir).resolve())


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as ``cfg`` says; returns every metric logged (``split/name`` -> float).

    ``cfg`` may hold a ``hydra`` node (composed with ``return_hydra_config=True``); it is ignored. However the
    run ends, every logger is told how (:func:`utils.run_status.end_run`: W&B's exit code and preempted
    mark, TensorBoard's session status, ``status.json`` in the run folder).

    Raises:
        InputError: a config value of the wrong type (``trainer.max_epochs=abc``), an unreadable
            ``ckpt_path`` or a checkpoint of another model (naming the key or the file).
        SystemExit: ``128 + signal number`` when a signal stopped the run (143 for SIGTERM, 130 for Ctrl-C,
            140 for the Slurm requeue signal USR2), after the checkpoint of its step was written.
        whatever instantiation or training raises otherwise.
    """
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from callbacks.interruption import Interruption
    from utils.checkpoints import check_resumable
    from utils.config import check_argument_types, instantiate_group
    from utils.run_status import RunStatus, end_run

    cfg = without_hydra_node(cfg)
    status, trainer, loggers, interruption = RunStatus(), None, [], None
    try:
        if cfg.get("seed") is not None:
            pl.seed_everything(cfg.seed, workers=True)
        for key in ("data", "model", "trainer"):
            check_argument_types(cfg[key], key)
        log.info(f"Instantiating datamodule <{cfg.data._target_}>")
        datamodule = instantiate(cfg.data)
        log.info(f"Instantiating model <{cfg.model._target_}>")
        model = instantiate(cfg.model)
        callbacks = run_callbacks(cfg)
        from utils.monitor import check_monitored_metric  # before training: is optimized_metric logged?
        check_monitored_metric(cfg.get("optimized_metric"), callbacks, model)
        interruption = next(cb for cb in callbacks if isinstance(cb, Interruption))
        loggers = instantiate_group(cfg.get("logger"), "logger")
        keep_wandb_in_run_folder(loggers)
        plugins = atomic_checkpoint_plugins(list(instantiate(cfg.trainer.get("plugins")) or []))
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)
        log_hyperparameters(cfg, model, trainer)

        metrics: dict[str, float] = {}
        ckpt_path = cfg.get("ckpt_path")
        if cfg.get("train", True):
            ckpt_path = requeued_checkpoint(trainer, ckpt_path)
            if ckpt_path is not None and str(ckpt_path) not in LIGHTNING_CKPT_NAMES:
                check_resumable(ckpt_path, model, cfg.model, model_choice("model"))
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
            if interruption.received is not None:  # it came after the last training batch: no test
                log.error(f"{interruption.received.name}: came after the last training batch; the last "
                          "checkpoint holds the trained state; no test")
                raise SystemExit(interruption.exit_code)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if cfg.get("test", True):
            ckpt = _test_checkpoint(trainer, cfg)
            if ckpt is not None and not cfg.get("train", True) and str(ckpt) not in LIGHTNING_CKPT_NAMES:
                check_resumable(ckpt, model, cfg.model, model_choice("model"))
            trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        status.status, status.exit_code = "finished", 0
        return metrics
    except (SystemExit, KeyboardInterrupt) as stop:  # Lightning's SIGTERMException, its exit(1) after Ctrl-C
        if isinstance(stop, KeyboardInterrupt) and (interruption is None or interruption.received is None):
            status.status, status.exit_code, status.signal = "interrupted", 130, "SIGINT"  # outside training
            raise SystemExit(130) from None
        if interruption is None or interruption.received is None:
            raise
        interruption.record(status)
        raise SystemExit(status.exit_code) from None
    except BaseException as error:
        status.error = first_line(error)
        raise
    finally:
        if trainer is not None:
            status.global_step, status.epoch = int(trainer.global_step), int(trainer.current_epoch)
            status.generator_steps = getattr(trainer.lightning_module, "generator_steps", None)
        rank = trainer.global_rank if trainer is not None else 0
        end_run(status, loggers, cfg.get("paths", {}).get("output_dir"), rank=rank)


def _test_checkpoint(trainer, cfg: DictConfig) -> str | None:
    """The checkpoint to test: the best one of this run if any, else the weights in memory (or
    ``ckpt_path`` when only testing). After a divergence the weights in memory are the diverged ones, so the
    best checkpoint is tested, else ``last.ckpt`` (the last good state), else (no checkpoint yet) the
    in-memory weights with a warning."""
    from callbacks.divergence import has_diverged

    if not cfg.get("train", True):
        return cfg.get("ckpt_path")
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if callback is not None else ""
    if best and Path(best).is_file():
        return best
    if has_diverged(trainer):
        for callback in trainer.checkpoint_callbacks:
            path = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
            if path and Path(path).is_file():
                return path
        log.warning("training diverged before any checkpoint was written: testing the diverged weights")
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_input_errors
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
