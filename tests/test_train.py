"""train.py end to end on embedded real data: every preset, resume, DDP on the CPU, multirun, loggers."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from tests.fixtures_data import write_celeba_faces
from tests.hydra_helpers import compose_train, presets, run_cli, run_train

PRESETS = presets("gan")  # every GAN-family preset in conf/model/
FDR = ["debug=fdr", "logger=csv", "callbacks.evaluation.feature_epochs=1"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_fast_dev_run(preset, tmp_path):
    # one batch: a preset with n_critic > 1 (wgan, wgan_gp, sngan) takes a critic step only, the others a
    # generator step too
    critic_only = compose_train([f"model={preset}"], tmp_path / "cfg").model.n_critic > 1
    metrics = run_train([f"model={preset}", *FDR], tmp_path)
    train_keys = ("train/d_loss",) if critic_only else ("train/d_loss", "train/g_loss")
    if "wgan" in preset:
        train_keys += ("train/wasserstein",)
    assert critic_only == ("train/g_loss" not in metrics)
    for key in (*train_keys, "val/fid", "val/kid_mean", "test/fid", "test/parzen_ll"):
        assert key in metrics, f"{key} missing from {sorted(metrics)}"
        assert torch.isfinite(torch.tensor(metrics[key])), f"{key} = {metrics[key]}"
    # a Parzen log-likelihood of 784-dim images in [0, 1] is a density: finite, and below the
    # log-density of the narrowest kernel on the grid at its own centre
    assert metrics["test/parzen_ll"] < -784 / 2 * torch.log(torch.tensor(2 * torch.pi * 0.1**2)).item()
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["interpolation_epoch_000.png", "samples_epoch_000.png"]


@pytest.mark.slow
def test_lsgan_pearson_and_conditional_wgan_on_digits(tmp_path):
    metrics = run_train(["model=lsgan", "model/objective=lsgan_pearson", "model.gradient_clip_val=0.5", *FDR],
                        tmp_path / "a")
    assert "train/d_real" in metrics
    metrics = run_train(["model=wgan", "model.conditional=true", "data=digits", *FDR], tmp_path / "b")
    assert "train/wasserstein" in metrics and "val/fid" in metrics


def test_samples_grid_shows_one_class_per_column(tmp_path):
    from PIL import Image

    run_train(["model=cgan", "data=digits", *FDR, "callbacks.interpolation=null", "callbacks.samples.max_images=null"],
              tmp_path)
    grid = Image.open(tmp_path / "samples" / "samples_epoch_000.png")
    # 100 fixed samples of 8x8, 10 per row (one column per class), padding 2
    assert grid.size == (10 * 10 + 2, 10 * 10 + 2)


def test_conditional_without_labels_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="data.num_classes is 0"):
        run_train(["model=cgan", "data.num_classes=0", *FDR], tmp_path)


def test_bad_n_critic_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="n_critic"):
        run_train(["model=wgan", "model.n_critic=0", *FDR], tmp_path)


def _epochs_in_csv(run_dir: Path) -> list[int]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/fid")})


@pytest.mark.slow
def test_resume_from_last_checkpoint_goes_on_at_the_right_epoch(tmp_path):
    common = ["model=dcgan", "debug=limit", "logger=csv", "callbacks.evaluation.feature_epochs=1",
              "callbacks.parzen=null", "test=false"]
    first = tmp_path / "first"
    run_train([*common, "trainer.max_epochs=2"], first)
    last = first / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # checkpoints hold plain values only: they load with weights_only=True
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 2 * 5 * 2
    assert len(list((first / "checkpoints").glob("epoch_*.ckpt"))) == 1  # the best by val/fid

    second = tmp_path / "second"
    run_train([*common, "trainer.max_epochs=4", f"ckpt_path={last}"], second)
    assert _epochs_in_csv(first) == [0, 1]
    assert _epochs_in_csv(second) == [2, 3]
    resumed = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert resumed["epoch"] == 3 and resumed["global_step"] == 4 * 5 * 2
    # the optimizers' state came along: Adam's step count went on from 10 to 20 updates
    assert resumed["optimizer_states"][0]["state"][0]["step"].item() == 20


@pytest.mark.slow
def test_wandb_offline_and_csv_by_default(tmp_path):
    run_train(["model=dcgan", "debug=limit", "trainer.max_epochs=1", "callbacks.parzen=null",
               "callbacks.evaluation.feature_epochs=1"], tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "no offline W&B run in the run folder"
    # the sample grids went to W&B too
    media = sorted(p.name for p in runs[0].rglob("*.png"))
    assert any(name.startswith("fixed_noise") for name in media), media  # key samples/fixed_noise
    assert any(name.startswith("interpolation") for name in media), media
    assert (tmp_path / "csv" / "metrics.csv").is_file()
    # hyper-parameters with parameter counts
    import yaml

    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    from hydra.utils import instantiate

    generator = instantiate(compose_train(["model=dcgan"], tmp_path / "c").model.generator)
    assert hparams["model/params/generator"] == sum(p.numel() for p in generator.parameters())
    assert hparams["model"]["_target_"] == "lightning_modules.gan.module.AdversarialModule"


def _checkout_state() -> str:
    import subprocess

    from tests.hydra_helpers import ROOT

    return subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.slow
def test_train_cli_ddp_sim(tmp_path):
    """DDP on the CPU from another working directory, with W&B: every rank's files go under the run folder
    (the sample images reach its W&B run), nothing into the working directory or the checkout."""
    from tests.hydra_helpers import ROOT

    out, cwd = tmp_path / "ddp", tmp_path / "cwd"
    cwd.mkdir()
    before = _checkout_state()
    run_cli([str(ROOT / "train.py"), "trainer=ddp_sim", "debug=limit", "logger=wandb", "trainer.max_epochs=1",
             "callbacks.parzen.num_samples=200", "callbacks.evaluation.feature_epochs=1",
             f"hydra.run.dir={out}"], cwd=cwd)
    assert list(cwd.iterdir()) == []
    assert _checkout_state() == before
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "config_tree.log").is_file() and (out / ".hydra" / "config.yaml").is_file()
    media = [p.name for p in (out / "wandb").glob("offline-run-*/files/media/images/samples/*.png")]
    assert any(name.startswith("fixed_noise") for name in media), media
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    # 2 processes x 5 batches each; each process counts its own 5 batches x 2 optimizer steps
    assert checkpoint["global_step"] == 10


def test_config_groups_compose(tmp_path):
    for overrides in (["trainer=ddp"], ["trainer=gpu"], ["logger=many"], ["logger=tensorboard"],
                      ["experiment=wgan_celeba"], ["experiment=gan_mnist"], ["hydra/launcher=slurm"],
                      ["debug=profiler"], ["debug=overfit"], ["callbacks=none"]):
        cfg = compose_train(overrides, tmp_path)
        assert cfg.model._target_.endswith("AdversarialModule")
    cfg = compose_train(["experiment=wgan_celeba"], tmp_path)
    assert cfg.model.n_critic == 5 and cfg.model.objective.clip_value == 0.01
    assert cfg.model.optimizer_d._target_ == "torch.optim.RMSprop" and cfg.model.optimizer_d.lr == 5e-5
    assert cfg.data.image_size == 64 and cfg.model.generator.image_size == 64
    cfg = compose_train(["hydra/launcher=slurm"], tmp_path)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    cfg = compose_train(["logger=many"], tmp_path)
    assert sorted(cfg.logger) == ["csv", "tensorboard", "wandb"]


def test_trainer_flags_need_no_plus_and_default_to_lightnings(tmp_path):
    """The Trainer flags people type are in conf/trainer/default.yaml: `trainer.<flag>=...` composes without
    `+`, and each one genforge does not choose on purpose holds Lightning's own default."""
    import inspect

    import pytorch_lightning as pl
    from hydra.utils import instantiate

    flags = {"limit_train_batches": 3, "limit_val_batches": 2, "limit_test_batches": 0.5,
             "limit_predict_batches": 1, "val_check_interval": 2, "check_val_every_n_epoch": 2,
             "log_every_n_steps": 5, "precision": "bf16-mixed", "deterministic": True, "benchmark": True,
             "num_sanity_val_steps": 0, "profiler": "simple", "max_time": "00:00:10:00", "fast_dev_run": 2,
             "overfit_batches": 1}
    cfg = compose_train([f"trainer.{k}={v}" for k, v in flags.items()], tmp_path)
    assert {k: cfg.trainer[k] for k in flags} == flags
    defaults = compose_train([], tmp_path).trainer
    lightning = inspect.signature(pl.Trainer).parameters
    ours = {"max_epochs", "max_steps", "precision", "devices", "log_every_n_steps", "default_root_dir",
            "min_epochs", "deterministic", "benchmark"}  # chosen on purpose, commented in the file
    assert {k: defaults[k] for k in defaults if k not in ours and k != "_target_"} == {
        k: lightning[k].default for k in defaults if k not in ours and k != "_target_"}
    trainer = instantiate(compose_train(["trainer.limit_train_batches=3", "trainer.limit_val_batches=0",
                                         "trainer.accelerator=cpu"], tmp_path).trainer,
                          default_root_dir=str(tmp_path), logger=False)
    assert trainer.limit_train_batches == 3 and trainer.limit_val_batches == 0
    assert trainer.num_sanity_val_steps == 2 and trainer.check_val_every_n_epoch == 1


@pytest.mark.slow
def test_wgan_on_a_folder_in_celeba_layout(tmp_path):
    root = tmp_path / "celeba"
    write_celeba_faces(root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    # the decoded-image cache built ahead, as on a login node before a Slurm job
    prepared = run_cli(["-m", "datamodules.prepare", "data=celeba", f"data.root={root}",
                        f"hydra.run.dir={tmp_path / 'prepare'}"]).stdout
    assert prepared.count("│ built ") == 3 and "3 files, 40 images" in prepared, prepared
    # then every JPEG is garbage of the same size and modification time: the run must not decode one
    for jpeg in (root / "img_align_celeba").iterdir():
        stat = jpeg.stat()
        jpeg.write_bytes(b"\0" * stat.st_size)
        os.utime(jpeg, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    out = tmp_path / "run"
    run_cli(["train.py", "model=wgan", "data=celeba", f"data.root={root}", "data.batch_size=8",
             "debug=limit", "trainer.max_epochs=1", "logger=csv", "callbacks.parzen.num_samples=100",
             "callbacks.evaluation.feature_epochs=1", f"hydra.run.dir={out}"])
    assert (out / "train.log").read_text().count("decoded-image cache: reusing") == 3
    assert (out / "checkpoints" / "last.ckpt").is_file()
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(row.get("train/wasserstein") for row in rows) and any(row.get("test/fid") for row in rows)
    from PIL import Image

    # 100 fixed samples of 64x64 RGB
    assert Image.open(out / "samples" / "samples_epoch_000.png").size == (10 * 66 + 2, 10 * 66 + 2)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the dataset


def test_evaluate_without_run_config_is_a_clear_error(tmp_path):
    from utils.checkpoints import find_run_config

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="run_config="):
        find_run_config(ckpt, None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_run_config(tmp_path / "missing.ckpt", None)


@pytest.mark.slow
def test_multirun_goes_on_after_a_failed_job(tmp_path):
    import subprocess
    import sys

    from tests.hydra_helpers import ROOT

    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "train.py", "--multirun", "model=gan,lsgan", "model.n_critic=0,1",
                           "debug=fdr", "logger=csv", "callbacks.evaluation.feature_epochs=1",
                           f"hydra.sweep.dir={sweep}"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "model.n_critic must be >= 1, got 0" in proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    # a folder per job, the failed ones too, named by what varies
    assert [p.name for p in jobs] == ["0_model=gan,model.n_critic=0", "1_model=gan,model.n_critic=1",
                                      "2_model=lsgan,model.n_critic=0", "3_model=lsgan,model.n_critic=1"]
    ran = {}
    for job in jobs:
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        model = "lsgan" if "model=lsgan" in overrides else "gan"
        ran[model, "model.n_critic=1" in overrides] = (job / "samples" / "samples_epoch_000.png").is_file()
    # the jobs after each failure ran, each with its own model; the failed ones wrote no samples
    assert ran == {("gan", False): False, ("gan", True): True, ("lsgan", False): False, ("lsgan", True): True}
    # a failed run's status.json names the error itself, not Hydra's wrapper around it
    import json

    assert json.loads((jobs[0] / "status.json").read_text())["error"] == "model.n_critic must be >= 1, got 0"
    # the summary keeps a row per job: the failed ones with their error, the others with val/fid and its step
    with open(sweep / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "failed"), ("1", "finished"), ("2", "failed"),
                                                       ("3", "finished")]
    assert all(r["error"] == "model.n_critic must be >= 1, got 0" for r in rows if r["status"] == "failed")
    for row in rows:
        assert row["metric"] == "val/fid" and float(row["wall_s"]) > 0
        assert row["overrides"].startswith("model=")
        if row["status"] == "finished":
            assert 0 < float(row["best"]) < float("inf") and int(row["step"]) >= 1
    table = (sweep / "summary.md").read_text()
    assert "Every job: `debug=fdr logger=csv callbacks.evaluation.feature_epochs=1`" in table
    assert table.count("| failed: model.n_critic must be >= 1, got 0 |") == 2
    assert "Sweep summary (4 jobs)" in proc.stdout


@pytest.mark.slow
def test_optuna_sweep_returns_the_optimized_metric(tmp_path):
    import yaml

    sweep = tmp_path / "optuna"
    run_cli(["train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
             "hydra.sweeper.sampler.n_startup_trials=2", "debug=fdr", "logger=csv",
             "callbacks.evaluation.feature_epochs=1", "callbacks.parzen=null", f"hydra.sweep.dir={sweep}"])
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["name"] == "optuna" and result["best_value"] > 0  # a finite val/fid
    assert set(result["best_params"]) == {"model.optimizer_g.lr", "model.optimizer_d.lr", "model.n_critic",
                                          "model.latent_dim", "model.generator.base_width",
                                          "model.discriminator.base_width"}  # dcgan's space


@pytest.mark.slow
def test_simultaneous_gan_update_under_ddp(tmp_path):
    """model=gan (simultaneous update: both gradients from one forward) trains under DDP: 2 processes x 3
    batches, each a discriminator and a generator step; two backward passes through both networks used to
    stop DDP's reducer ("Expected to have finished reduction in the prior iteration")."""
    out = tmp_path / "ddp"
    run_cli(["train.py", "model=gan", "trainer=ddp_sim", "debug=limit", "logger=csv", "trainer.max_epochs=1",
             "trainer.limit_train_batches=3", "callbacks.parzen=null", "callbacks.evaluation.feature_epochs=1",
             f"hydra.run.dir={out}"])
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 6
