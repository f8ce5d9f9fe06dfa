"""utils.run_status: however a run ends, its loggers and its folder say how."""

from __future__ import annotations

import json

import pytest
from pytorch_lightning import Callback

from tests.hydra_helpers import run_train
from tests.wandb_records import ending, run_files
from utils.run_status import RunStatus, end_run


class _Recorder:
    """A logger with ``end_session``, as genforge's TensorBoard logger."""

    def __init__(self):
        self.statuses = []

    def end_session(self, status: str) -> None:
        self.statuses.append(status)


class _Broken:
    def end_session(self, status: str) -> None:
        raise OSError("disk full")


def test_end_run_tells_every_logger_and_writes_status_json(tmp_path, caplog):
    recorder = _Recorder()
    status = RunStatus(status="preempted", exit_code=143, signal="SIGTERM", generator_steps=49)
    end_run(status, [_Broken(), recorder], tmp_path)
    assert recorder.statuses == ["preempted"]  # a logger that fails does not keep the others from it
    assert "could not record the run's status: disk full" in caplog.text
    written = json.loads((tmp_path / "status.json").read_text())
    assert (written["status"], written["exit_code"], written["signal"], written["generator_steps"]) == \
        ("preempted", 143, "SIGTERM", 49)
    assert written["ended"]
    end_run(RunStatus(status="finished", exit_code=0), [], tmp_path, rank=1)  # other ranks write nothing
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "preempted"
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        end_run(RunStatus(status="done"), [], tmp_path)


class _Crash(Callback):
    def on_train_batch_end(self, trainer, *args, **kwargs):
        if trainer.global_step >= 4:
            raise RuntimeError("CUDA error: an illegal memory access\nmore lines")


@pytest.mark.slow
def test_a_run_that_crashes_is_failed_in_wandb_and_in_status_json(tmp_path, monkeypatch):
    import train

    original = train.run_callbacks
    monkeypatch.setattr(train, "run_callbacks", lambda cfg: [*original(cfg), _Crash()])
    with pytest.raises(RuntimeError, match="illegal memory access"):
        run_train(["model=dcgan", "debug=limit", "logger=wandb", "callbacks.evaluation=null", "callbacks.parzen=null",
                   "optimized_metric=val/g_loss"], tmp_path)
    written = json.loads((tmp_path / "status.json").read_text())
    assert (written["status"], written["exit_code"]) == ("failed", 1)
    assert written["error"] == "CUDA error: an illegal memory access" and written["generator_steps"] == 2
    assert ending(run_files(tmp_path)[0]) | {"run_id": None} == {"run_id": None, "exit_code": 1, "preempting": False}
