"""Nothing lost, nothing run that should not be (issue 20): atomic checkpoints under kill -9, the divergence
guard keeps the last good checkpoint, saved run configs cannot run code, bad input is one line."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.hydra_helpers import ROOT, compose_train, run_train
from utils.errors import InputError, UntrustedConfigError

QUICK = ["debug=limit", "logger=csv", "callbacks.evaluation=null", "callbacks.parzen=null",
         "optimized_metric=val/g_loss"]


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    """A run folder of one short DCGAN epoch: ``<run>/checkpoints/last.ckpt`` and ``<run>/.hydra/``."""
    run = tmp_path_factory.mktemp("dcgan") / "run"
    cfg_overrides = ["model=dcgan", *QUICK, "trainer.max_epochs=1", "test=false"]
    run_train(cfg_overrides, run)
    # the in-process run has no .hydra/ folder: write it as train.py does
    cfg = compose_train(cfg_overrides, run)
    (run / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), run / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": cfg.hydra}, run / ".hydra" / "hydra.yaml")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    return run


def cli(args: list[str], cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """rc 1, no traceback, one ``Error:`` line on stderr holding every fragment; returns that line."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.slow
def test_unreadable_checkpoints_and_another_models_checkpoint_are_one_line_errors(dcgan_run, tmp_path):
    last = dcgan_run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["genforge"]["preset"] == "dcgan"  # every checkpoint says which model it holds
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3 was the good one\n")
    common = ["train.py", *QUICK, "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'out'}"]
    proc = cli([*common, "model=dcgan", f"ckpt_path={truncated}"])
    assert_one_line_error(proc, f"ckpt_path={truncated}", "not a readable checkpoint", "truncated")
    with pytest.raises(InputError, match=f"ckpt_path={text} .* is not a readable checkpoint"):
        run_train(["model=dcgan", *QUICK, f"ckpt_path={text}"], tmp_path / "text")
    proc = cli([*common, "model=wgan", f"ckpt_path={last}"])
    assert_one_line_error(proc, "holds a checkpoint of model=dcgan", "not of this run's model=wgan",
                          "resume it with model=dcgan")
    # the error went to the run's log file too
    assert "holds a checkpoint of model=dcgan" in (tmp_path / "out" / "train.log").read_text()


def test_checkpoint_without_record_is_judged_by_its_weights(dcgan_run, tmp_path):
    checkpoint = torch.load(dcgan_run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    del checkpoint["genforge"]
    foreign = tmp_path / "elsewhere" / "model.ckpt"  # no run folder around it
    foreign.parent.mkdir()
    torch.save(checkpoint, foreign)
    with pytest.raises(InputError, match=r"holds the weights of another model, which do not fit this run's "
                                         r"model=wgan: .*generator"):
        run_train(["model=wgan", "model/generator=mlp", *QUICK, f"ckpt_path={foreign}"], tmp_path / "w")


def test_wrong_value_types_name_the_key(tmp_path):
    with pytest.raises(InputError, match=r"trainer.max_epochs='abc': expected Optional\[int\] \(the max_epochs "
                                         r"argument of pytorch_lightning.Trainer\)"):
        run_train(["model=dcgan", *QUICK, "trainer.max_epochs=abc"], tmp_path)


@pytest.mark.slow
def test_run_accepts_a_config_composed_with_the_hydra_node(tmp_path):
    """The Lightning+Hydra template's test pattern: compose(return_hydra_config=True), set HydraConfig, run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True,
                      overrides=["model=dcgan", *QUICK, "trainer.max_epochs=1", "test=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    HydraConfig().set_config(cfg)
    assert OmegaConf.is_missing(cfg.hydra.job, "num")  # what used to crash resolving
    metrics = train.run(cfg)
    assert "train/d_loss" in metrics and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "hydra" in cfg  # the caller's config is left as it was


def test_xdg_cache_folder_is_the_default_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("GENFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = compose_train(["model=dcgan"], tmp_path / "run")
    assert cfg.paths.cache_dir == str(tmp_path / "xdg" / "genforge")
    assert cfg.callbacks.evaluation.cache_dir == str(tmp_path / "xdg" / "genforge" / "features")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compose_train(["model=dcgan"], tmp_path / "run").paths.cache_dir == str(
        Path.home() / ".cache" / "genforge")
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path / "mine"))
    assert compose_train(["model=dcgan"], tmp_path / "run").paths.cache_dir == str(tmp_path / "mine")


# ---------------------------------------------------------------------------------- saved run configs


def test_allowlist_refuses_what_is_not_a_class_of_an_allowed_module():
    from utils.target_allowlist import check_target, check_targets

    for ok in ("torch.optim.Adam", "torch.nn.Tanh", "pytorch_lightning.Trainer",
               "pytorch_lightning.callbacks.LearningRateMonitor", "lightning_modules.gan.module.AdversarialModule",
               "callbacks.divergence.DivergenceGuard"):
        check_target(ok, "k", "f.yaml")
    refusals = {"torch.load": "outside the allowlist", "os.system": "outside the allowlist",
                "builtins.eval": "outside the allowlist", "torch.nn.functional.torch.load": "not a class",
                "torch.nn.modules.module.torch.serialization.pickle.Unpickler": "resolves to _pickle.Unpickler",
                "utils.io.atomic_torch_save": "is a function, not a class", "torch.optim.Nope": "cannot be located",
                "torch.optim.Adam; import os": "not a dotted class name"}
    for target, why in refusals.items():
        with pytest.raises(UntrustedConfigError, match=why) as error:
            check_target(target, "model.generator._target_", "run/.hydra/config.yaml")
        assert "run/.hydra/config.yaml: model.generator._target_=" in str(error.value)
    # targets hidden in lists and behind interpolations are found too
    hidden = OmegaConf.create({"model": {"_target_": "torch.nn.Sequential",
                                         "_args_": [{"_target_": "torch.nn.Tanh"}, "${oc.create:${evil}}"]},
                               "evil": {"_target_": "os.system", "command": "true"}})
    with pytest.raises(UntrustedConfigError, match=r"os.system"):
        check_targets(hidden, "x.yaml")
    assert check_targets(OmegaConf.create({"a": [{"_target_": "torch.nn.Tanh"}]}), "x.yaml") == 1


@pytest.mark.slow
def test_a_crafted_run_folder_cannot_run_code(dcgan_run, tmp_path):
    from utils.checkpoints import load_run

    run = tmp_path / "downloaded_run"
    shutil.copytree(dcgan_run, run)
    marker = tmp_path / "pwned"
    payload = tmp_path / "weights.pt"
    payload.write_bytes(pickle.dumps(_Exploit(marker)))
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    config.model.generator = {"_target_": "torch.load", "f": str(payload), "weights_only": False}
    OmegaConf.save(config, run / ".hydra" / "config.yaml")
    ckpt = run / "checkpoints" / "last.ckpt"
    proc = cli(["evaluate.py", f"ckpt_path={ckpt}", "num_samples=4", f"hydra.run.dir={tmp_path / 'eval'}"])
    assert_one_line_error(proc, f"{run / '.hydra' / 'config.yaml'}: model.generator._target_='torch.load'",
                          "outside the allowlist", "trust_run_config=true")
    assert not marker.exists()
    # trusted on purpose, the same folder does run its code: proof the payload is real
    with pytest.raises(Exception):
        load_run(ckpt, None, None, config.paths, trust_run_config=True)
    assert marker.exists()


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ------------------------------------------------------------------------------- kill -9 during writes

SAVER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, sys.argv[2])
    from utils.io import atomic_torch_save
    weights = torch.arange(10_000_000, dtype=torch.float32)  # 40 MB
    i = 0
    while True:
        i += 1
        atomic_torch_save({"i": i, "weights": weights + i}, sys.argv[1])
""")


def test_kill_during_atomic_saves_leaves_the_previous_file_loadable(tmp_path):
    target, tmpdir = tmp_path / "ckpt" / "last.ckpt", tmp_path / "TMPDIR"
    tmpdir.mkdir()
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(ROOT)],
                                env={**os.environ, "TMPDIR": str(tmpdir)})
        try:
            deadline = time.monotonic() + 120
            # kill while a temporary file is being written (the moment the old code lost last.ckpt)
            while not list(target.parent.glob(".last.ckpt.*.tmp")) or not target.exists():
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.001)
            time.sleep(0.01 * attempt)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        checkpoint = torch.load(target, weights_only=True, map_location="cpu")
        i = checkpoint["i"]
        assert i >= 1 and checkpoint["weights"][0].item() == i and checkpoint["weights"][-1].item() == 9_999_999 + i
    orphans = list(target.parent.glob(".last.ckpt.*.tmp"))
    assert orphans, "the kill left no temporary file: the test did not kill during a save"
    assert list(tmpdir.iterdir()) == []  # nothing staged in $TMPDIR
    from utils.io import atomic_torch_save

    atomic_torch_save({"i": 0}, target)  # the next save removes what the killed writers left
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_train_killed_at_any_moment_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["train.py", "model=dcgan", *QUICK, "trainer.max_epochs=100", "test=false", f"hydra.run.dir={run}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    last = run / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 300
        while not (last.exists() and torch.load(last, weights_only=True, map_location="cpu")["epoch"] >= 0):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        while not list(last.parent.glob(".last.ckpt.*.tmp")):  # the next save has begun
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.0005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    epoch = torch.load(last, weights_only=True, map_location="cpu")["epoch"]
    assert epoch >= 0
    metrics = run_train(["model=dcgan", *QUICK, f"trainer.max_epochs={epoch + 2}", "test=false",
                         f"ckpt_path={last}"], tmp_path / "resumed")
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert resumed["epoch"] == epoch + 1 and "train/g_loss" in metrics
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir() if p.name.startswith("."))== []


# ------------------------------------------------------------------------------------------ divergence


class Sabotage:
    """Test callback: at the start of epoch 1 remember ``last.ckpt``'s bytes, then make training diverge:
    ``explode`` multiplies every learning rate by 1e6 (losses grow huge but stay finite), ``nan`` sets the
    discriminator's weights to NaN."""

    def __init__(self, how: str):
        self.how, self.before = how, None

    def __getattr__(self, name):  # every other Callback hook does nothing
        if name.startswith("on_") or name in ("setup", "teardown", "state_dict", "load_state_dict"):
            return lambda *args, **kwargs: {} if name == "state_dict" else None
        raise AttributeError(name)

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch != 1:
            return
        last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        self.before = hashlib.sha256(last.read_bytes()).hexdigest()
        if self.how == "explode":
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] *= 1e6
        else:
            with torch.no_grad():
                for p in pl_module.discriminator.parameters():
                    p.fill_(float("nan"))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["explode", "nan"])
def test_divergence_stops_and_keeps_the_last_good_checkpoint(how, tmp_path, caplog, monkeypatch):
    import pytorch_lightning as pl

    import train

    sabotage = type("SabotageCallback", (Sabotage, pl.Callback), {})(how)
    real = train.run_callbacks
    monkeypatch.setattr(train, "run_callbacks", lambda cfg: [*real(cfg), sabotage])
    with caplog.at_level("ERROR", logger="genforge"):
        run_train(["model=dcgan", *QUICK, "trainer.max_epochs=4", "callbacks.divergence_guard.check_every_n_steps=1"],
                  tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert hashlib.sha256(last.read_bytes()).hexdigest() == sabotage.before  # not overwritten
    assert torch.load(last, weights_only=True, map_location="cpu")["epoch"] == 0
    best = list((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    assert [p.name for p in best] == ["epoch_000.ckpt"]
    message = next(r.getMessage() for r in caplog.records if "training diverged" in r.getMessage())
    assert "at epoch 1, batch" in message and "global step" in message and "train/" in message
    assert ("not finite" if how == "nan" else "> max_loss=1e+06") in message
    assert _csv_epochs(tmp_path) == [0, 1]  # stopped in epoch 1, not run to max_epochs=4 (test rows excluded)


def _csv_epochs(run: Path) -> list[int]:
    import csv

    with open(run / "csv" / "metrics.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f) if row.get("train/d_loss")})
