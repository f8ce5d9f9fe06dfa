"""The dashboards' loggers: one W&B run per run folder with the best value as summary
(utils.wandb_logger), TensorBoard's HPARAMS tab and session status (utils.tensorboard_logger), and a
module's hyper-parameters logged once (by train.py, not by Lightning at fit start)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import wandb
from pytorch_lightning.utilities import rank_zero_only
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.wandb_records import wandb_records
from utils.tensorboard_logger import TensorBoardLogger
from utils.wandb_logger import WandbLogger


@pytest.fixture(autouse=True)
def finish_wandb():
    """Close any W&B run a test left open, also when it fails."""
    yield
    wandb.finish()


def final_summary(run_folder: Path) -> dict:
    """The run's summary after ``wandb.finish()``: its summary updates applied in order."""
    (log,) = run_folder.glob("run-*.wandb")
    summary = {}
    for record in wandb_records(log):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                summary["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
    return summary


def wandb_logger(save_dir: Path, **kwargs) -> WandbLogger:
    return WandbLogger(save_dir=save_dir, offline=True, project="genforge-test", **kwargs)


def offline_runs(save_dir: Path) -> list[Path]:
    return sorted((save_dir / "wandb").glob("offline-run-*"))


def folder_run_id(folder: Path) -> str:
    """The run id in an offline run folder's name, ``offline-run-<time>-<id>``; W&B appends ``-1``, ``-2``
    ... to a second folder of the same id started in the same second."""
    return re.fullmatch(r"offline-run-\d{8}_\d{6}-(.+?)(-\d+)?", folder.name)[1]


# ----------------------------------------------------------------------------------------------- W&B
def test_a_run_folder_keeps_one_wandb_run_and_a_new_folder_gets_a_new_one(tmp_path):
    run = tmp_path / "run"
    first = wandb_logger(run)
    first.experiment  # noqa: B018 (starts the W&B run)
    wandb.finish()
    run_id = (run / "wandb" / "run_id").read_text().strip()
    assert first.version == run_id and len(run_id) == 8
    assert [folder_run_id(p) for p in offline_runs(run)] == [run_id]

    # resuming into the same folder (ckpt_path=... hydra.run.dir=<run>) continues that W&B run
    second = wandb_logger(run)
    assert second.version == run_id and second._wandb_init["resume"] == "allow"
    second.experiment  # noqa: B018
    wandb.finish()
    assert len(offline_runs(run)) == 2 and {folder_run_id(p) for p in offline_runs(run)} == {run_id}
    starts = [r.run for folder in offline_runs(run) for r in wandb_records(next(folder.glob("run-*.wandb")))
              if r.WhichOneof("record_type") == "run"]
    assert starts and all(start.run_id == run_id and start.resume for start in starts)

    # another run folder: another W&B run
    other = wandb_logger(tmp_path / "other")
    assert other.version not in (None, run_id)
    assert (tmp_path / "other" / "wandb" / "run_id").read_text() == f"{other.version}\n"


def test_an_explicit_id_wins_and_ranks_above_0_only_read_the_file(tmp_path, monkeypatch):
    run = tmp_path / "run"
    wandb_logger(run)
    assert wandb_logger(run, id="explicit1").version == "explicit1"
    assert (run / "wandb" / "run_id").read_text() == "explicit1\n"
    # DDP: rank 0 constructed first; rank 1 reads its id and never writes
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert wandb_logger(run).version == "explicit1"
    assert wandb_logger(run, id="explicit2").version == "explicit2"
    assert (run / "wandb" / "run_id").read_text() == "explicit1\n"
    assert wandb_logger(tmp_path / "new").version is None and not (tmp_path / "new" / "wandb").exists()


@pytest.mark.parametrize(("mode", "best"), [("min", 3.0), ("max", 5.0)])
def test_wandb_summary_holds_the_best_value_of_the_monitored_metric(tmp_path, mode, best):
    logger = wandb_logger(tmp_path, monitor="val/fid", mode=mode)
    for step, value in enumerate([5.0, 3.0, 4.0]):
        logger.log_metrics({"val/fid": value, "train/loss": value}, step=step)
    wandb.finish()
    summary = final_summary(offline_runs(tmp_path)[0])
    assert summary["val/fid"] == {mode: best}  # shown as val/fid.min (val/fid.max), not the last 4.0
    assert summary["train/loss"] == 4.0  # other metrics keep W&B's default: the last value
    metrics = [r.metric for r in wandb_records(next(offline_runs(tmp_path)[0].glob("run-*.wandb")))
               if r.WhichOneof("record_type") == "metric" and r.metric.name == "val/fid"]
    assert [(m.step_metric, getattr(m.summary, mode)) for m in metrics] == [("trainer/global_step", True)]


def test_wandb_mode_must_be_min_or_max(tmp_path):
    with pytest.raises(ValueError, match="logger.wandb.mode"):
        wandb_logger(tmp_path, monitor="val/fid", mode="best")


# ----------------------------------------------------------------------------------------------- TensorBoard
def hparams_content(log_dir: str) -> tuple[EventAccumulator, dict[str, bytes]]:
    events = EventAccumulator(log_dir)
    events.Reload()
    return events, events.PluginTagToContent(metadata.PLUGIN_NAME)


@pytest.mark.parametrize(("status", "expected"), [("preempted", api_pb2.STATUS_UNKNOWN),
                                                  ("finished", api_pb2.STATUS_SUCCESS),
                                                  ("failed", api_pb2.STATUS_FAILURE),
                                                  ("interrupted", api_pb2.STATUS_UNKNOWN)])
def test_tensorboard_hparams_tab_lists_the_run_and_its_end_status(tmp_path, status, expected):
    logger = TensorBoardLogger(save_dir=tmp_path, name=None, version="", monitor="val/fid")
    logger.log_hyperparams({"model": {"optimizer_g": {"lr": 2e-4}, "channels": [64, 128], "ema_decay": None},
                            "seed": 12345, "tags": ["dev"]})
    logger.log_metrics({"val/fid": 41.5}, step=7)
    logger.finalize("success")  # Lightning closes the writer before train.py ends the session
    events, content = hparams_content(logger.log_dir)
    assert metadata.SESSION_END_INFO_TAG not in content  # no premature "success"

    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert [m.name.tag for m in experiment.metric_infos] == ["val/fid"]
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model/optimizer_g/lr"].number_value == 2e-4
    assert start.hparams["model/channels"].string_value == "[64, 128]"
    assert start.hparams["model/ema_decay"].string_value == "None"
    assert start.hparams["seed"].number_value == 12345
    assert {h.name for h in experiment.hparam_infos} == set(start.hparams)
    # val/fid only as training logged it: no placeholder at step 0, and no hp_metric
    assert [(e.step, e.value) for e in events.Scalars("val/fid")] == [(7, 41.5)]
    assert events.Tags()["scalars"] == ["val/fid"]
    # Lightning's hparams.yaml keeps the nested values
    assert "lr: 0.0002" in (Path(logger.log_dir) / "hparams.yaml").read_text()

    logger.end_session(status)  # after finalize: a new event file in the same folder
    assert len(list(Path(logger.log_dir).glob("events.out.tfevents.*"))) == 2
    _, content = hparams_content(logger.log_dir)
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == expected
    assert metadata.EXPERIMENT_TAG in content and metadata.SESSION_START_INFO_TAG in content


def test_tensorboard_end_session_refuses_an_unknown_status(tmp_path):
    with pytest.raises(ValueError, match="'crashed'"):
        TensorBoardLogger(save_dir=tmp_path, monitor="val/fid").end_session("crashed")


# ----------------------------------------------------------------------------------------------- hparams once
@pytest.mark.slow
def test_lightning_logs_no_module_hyperparameters_and_checkpoints_keep_them(tmp_path):
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from pytorch_lightning.loggers import Logger

    from tests.hydra_helpers import compose_train

    class Spy(Logger):
        name, version = "spy", 0

        def __init__(self):
            super().__init__()
            self.hyperparameters = []

        def log_hyperparams(self, params, *args, **kwargs):
            self.hyperparameters.append(params)

        def log_metrics(self, metrics, step=None):
            pass

    cfg = compose_train(["model=dcgan", "logger=csv"], tmp_path)
    model, spy = instantiate(cfg.model), Spy()
    trainer = pl.Trainer(logger=spy, max_epochs=1, limit_train_batches=2, limit_val_batches=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=instantiate(cfg.data))
    assert trainer.global_step == 4  # two batches of two optimizer steps ran
    assert spy.hyperparameters == []  # the module's hparams reach loggers only inside train.py's config

    trainer.save_checkpoint(tmp_path / "model.ckpt")
    saved = torch.load(tmp_path / "model.ckpt", weights_only=True)["hyper_parameters"]
    assert saved["latent_dim"] == 100 and saved["n_critic"] == 1 and "optimizer_g" not in saved
