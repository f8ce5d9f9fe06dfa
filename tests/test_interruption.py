"""A run on a cluster, on real processes: `train.py` sent SIGTERM, Ctrl-C (SIGINT) and the Slurm requeue signal
in the middle of an epoch keeps a checkpoint of that step, exits 143 / 130 / 140 and tells every logger; a
resume into the same folder continues the step, the W&B run and the CSV history; budgets say when they stop."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.hydra_helpers import ROOT
from tests.wandb_records import ending, run_files

pytestmark = pytest.mark.slow

#: a DCGAN on mnist5k, 2 epochs of 30 batches, without the FID/Parzen evaluation (val/d_loss ranks checkpoints)
FAST = ["train.py", "model=dcgan", "data=mnist5k", "model.max_generator_steps=null", "trainer.max_epochs=2",
        "++trainer.limit_train_batches=30", "++trainer.limit_val_batches=2", "++trainer.limit_test_batches=2",
        "callbacks.evaluation=null", "callbacks.parzen=null", "callbacks.interpolation=null",
        "optimized_metric=val/d_loss", "data.num_workers=0"]


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", **extra}


def _train(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env or _env(), capture_output=True, text=True,
                          timeout=600)


def _rows(run: Path) -> list[dict]:
    path = run / "csv" / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _generator_steps(rows: list[dict]) -> list[int]:
    return [int(float(row["train/generator_steps"])) for row in rows if row.get("train/generator_steps")]


def _signal_mid_epoch(args: list[str], run: Path, signum: int, env: dict | None = None,
                      after: int = 5) -> subprocess.CompletedProcess:
    """Start ``train.py``, wait until it has taken ``after`` generator iterations (its metrics.csv is
    written every step), send ``signum`` and wait for it to exit."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_generator_steps(_rows(run))) >= after:
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"train.py ended before the signal:\n{proc.communicate()[1][-3000:]}"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stopped_line(proc: subprocess.CompletedProcess, name: str) -> re.Match:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if f"{name}: stopped at" in line]
    assert len(lines) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = re.search(rf"{name}: stopped at generator iteration (\d+) \(global step (\d+), epoch 0\); saved ([^;]+);",
                      lines[0])
    assert match, lines[0]
    return match


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _tensorboard_session_status(run: Path) -> int | None:
    """The status of the last HPARAMS session-end summary in the run's TensorBoard files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    status = None
    for path in sorted((run / "tensorboard").rglob("events.out.tfevents.*"), key=os.path.getmtime):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_end_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    status = data.session_end_info.status
    return status


def test_sigterm_mid_epoch_saves_its_step_and_a_resume_continues_it(tmp_path):
    from tensorboard.plugins.hparams import api_pb2

    run = tmp_path / "run"
    args = [*FAST, "logger=many", f"hydra.run.dir={run}"]
    proc = _signal_mid_epoch(args, run, signal.SIGTERM)
    assert proc.returncode == 143, proc.stderr[-3000:]
    match = _stopped_line(proc, "SIGTERM")
    steps, global_step, saved = int(match[1]), int(match[2]), Path(match[3])
    assert saved == run / "checkpoints" / "last.ckpt" and 5 <= steps < 30  # inside the first epoch
    checkpoint = _checkpoint(saved)
    assert checkpoint["generator_steps"] == steps and checkpoint["global_step"] == global_step == 2 * steps
    assert checkpoint["critic_steps"] == 0 and len(checkpoint["optimizer_states"]) == 2
    assert checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == steps
    assert _generator_steps(_rows(run))[-1] == steps  # the checkpoint is of the last step taken
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["exit_code"], status["signal"]) == ("preempted", 143, "SIGTERM")
    assert status["generator_steps"] == steps and status["checkpoint"] == str(saved)
    [first] = run_files(run)
    assert ending(first) | {"run_id": None} == {"run_id": None, "exit_code": 143, "preempting": True}
    assert _tensorboard_session_status(run) == api_pb2.STATUS_UNKNOWN  # the plugin has no "aborted"
    assert not list((run / "checkpoints").glob("*.tmp"))

    resumed = _train([*args, "ckpt_path=last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = _rows(run)
    assert _generator_steps(rows) == list(range(1, 61))  # one history: each iteration once, in order
    kinds = ["test" if any(v for k, v in row.items() if k.startswith("test/")) else "other" for row in rows]
    assert kinds.count("test") == 1 and kinds[-1] == "test"
    assert [int(row["step"]) for row in rows] == sorted(int(row["step"]) for row in rows)
    assert _checkpoint(run / "checkpoints" / "last.ckpt")["generator_steps"] == 60
    first_run, second_run = run_files(run)
    assert ending(first_run)["run_id"] == ending(second_run)["run_id"] == (run / "wandb" / "run_id").read_text().strip()
    assert ending(second_run) | {"run_id": None} == {"run_id": None, "exit_code": 0, "preempting": False}
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert _tensorboard_session_status(run) == api_pb2.STATUS_SUCCESS


def test_ctrl_c_mid_epoch_saves_its_step_and_exits_130(tmp_path):
    run = tmp_path / "run"
    proc = _signal_mid_epoch([*FAST, "logger=wandb", f"hydra.run.dir={run}"], run, signal.SIGINT)
    assert proc.returncode == 130, proc.stderr[-3000:]
    match = _stopped_line(proc, "SIGINT")
    assert _checkpoint(Path(match[3]))["generator_steps"] == int(match[1]) == _generator_steps(_rows(run))[-1]
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["exit_code"], status["signal"]) == ("interrupted", 130, "SIGINT")
    assert ending(run_files(run)[0]) | {"run_id": None} == {"run_id": None, "exit_code": 130, "preempting": False}


def test_slurm_requeue_signal_requeues_the_job_which_resumes_by_itself(tmp_path):
    run, calls, bin_dir = tmp_path / "run", tmp_path / "scontrol.calls", tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = _env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_NTASKS="1",
               SLURM_JOB_NAME="genforge", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0",
               SLURM_NODELIST="localhost")
    args = [*FAST, "logger=csv", f"hydra.run.dir={run}"]
    proc = _signal_mid_epoch(args, run, signal.SIGUSR2, env=env)
    assert proc.returncode == 128 + signal.SIGUSR2, proc.stderr[-3000:]
    match = _stopped_line(proc, "SIGUSR2")
    assert "requeued the Slurm job" in match.string
    assert calls.read_text() == "requeue 4242\n"
    steps = int(match[1])
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["requeued"], status["generator_steps"]) == ("preempted", True, steps)

    requeued = _train(args, env=env)  # Slurm runs the same command again: no ckpt_path
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert f"Slurm job 4242: resuming from {run / 'checkpoints' / 'last.ckpt'}" in requeued.stdout + requeued.stderr
    assert _generator_steps(_rows(run)) == list(range(1, 61))
    assert calls.read_text() == "requeue 4242\n"  # nothing more to requeue


def test_a_budget_says_when_it_stops_also_on_a_resume_with_nothing_left(tmp_path):
    run = tmp_path / "run"
    args = [*FAST, "model.max_generator_steps=8", "logger=csv", f"hydra.run.dir={run}"]
    first = _train(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stopped: budget of 8 generator iterations reached (model.max_generator_steps)" in first.stdout + first.stderr
    assert _generator_steps(_rows(run)) == list(range(1, 9))

    again = _train([*args, "ckpt_path=last"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert ("stopped: budget of 8 generator iterations already reached by the checkpoint "
            "(model.max_generator_steps); raise it to train on, e.g. model.max_generator_steps=16") in again.stdout + again.stderr
    assert _generator_steps(_rows(run)) == list(range(1, 9))  # not one step more

    more = _train([*args, "model.max_generator_steps=12", "ckpt_path=last"])
    assert more.returncode == 0, more.stderr[-3000:]
    rows = _rows(run)
    assert _generator_steps(rows) == list(range(1, 13))
    tested = [i for i, row in enumerate(rows) if any(v for k, v in row.items() if k.startswith("test/"))]
    assert tested == [len(rows) - 1]  # the earlier runs' test rows do not sit between training rows


def test_sigterm_to_every_ddp_rank_stops_them_at_the_same_batch(tmp_path):
    # Slurm signals every task; Lightning 2.6's own handler broadcast from inside the signal handler and
    # deadlocked the ranks here. trainer=ddp on the CPU: rank 0 is train.py, rank 1 the script re-launched.
    run = tmp_path / "run"
    args = [*FAST, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.log_every_n_steps=1",
            "logger=wandb", f"hydra.run.dir={run}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(_generator_steps(_rows(run))) < 5:
        time.sleep(0.2)
    ranks = subprocess.run(["pgrep", "-f", f"hydra.run.dir={run}"], capture_output=True, text=True).stdout.split()
    assert len(ranks) == 2, ranks
    for pid in ranks:
        os.kill(int(pid), signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    match = _stopped_line(subprocess.CompletedProcess(args, 143, out, err), "SIGTERM")
    assert _checkpoint(Path(match[3]))["generator_steps"] == int(match[1])
    assert json.loads((run / "status.json").read_text())["status"] == "preempted"
    assert ending(run_files(run)[0]) | {"run_id": None} == {"run_id": None, "exit_code": 143, "preempting": True}


def test_the_slurm_launcher_preset_asks_slurm_for_the_requeue_signal_and_requeues(tmp_path, monkeypatch):
    """conf/hydra/launcher/slurm.yaml through submitit, as Hydra's submitit launcher passes it (a stand-in
    srun on PATH: submitit looks for one): the sbatch script asks for USR2 120 s before the time limit (the
    signal train.py's requeue_signal handles) and lets Slurm requeue the job."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from tests.hydra_helpers import compose_train

    (tmp_path / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_train(["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path / "run")
    assert cfg.requeue_signal == "USR2"
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    for key in ("_target_", "submitit_folder"):
        params.pop(key)
    # the launcher's own mapping (hydra_submitit_launcher.submitit_launcher.BaseSubmititLauncher.launch)
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items() if v is not None})
    script = executor._executor._make_submission_file_text("python train.py", "uid").splitlines()
    assert "#SBATCH --signal=USR2@120" in script and "#SBATCH --requeue" in script
    assert executor._executor.max_num_timeout == 3
