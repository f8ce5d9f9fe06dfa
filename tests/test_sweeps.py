"""Sweeps: every preset's Optuna search space (conf/hparams_search/), the job folders' names
(utils/job_dirname.py) and the summary every multirun leaves (utils/sweep_summary.py)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.hydra_helpers import CONF, compose_train, families, presets, run_cli
from utils.job_dirname import MAX_LENGTH, fixed_keys, job_dirname, register_resolver
from utils.sweep_summary import JOB_RECORD, collect_rows, first_line, markdown_table, write_summary

FAMILIES = families()
EVERY_PRESET = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


# ---------------------------------------------------------------------- job folder names
def test_job_dirname_names_a_job_by_its_overrides():
    assert job_dirname(3, ["model=lsgan", "model.n_critic=5"]) == "3_model=lsgan,model.n_critic=5"
    # noise: Hydra's settings, paths (by key or by value), the excluded keys; a group's '/' becomes '.'
    assert job_dirname(0, ["hydra.verbose=true", "paths.log_dir=x", "ckpt_path=last", "data.root=data/x",
                           "run_config=/abs/cfg.yaml", "model/objective=lsgan", "seed=1", "logger=csv"],
                       exclude_keys=["logger"]) == "0_model.objective=lsgan,seed=1"
    # '/' in a value, unsafe characters, the prefixes of overrides that add or delete
    overrides = ["optimized_metric=val/l1", "trainer.max_time=00:01:00", "+x='a b'", "~model.ema"]
    expected = "1_optimized_metric=val.l1,trainer.max_time=00_01_00,+x=_a_b_,_model.ema"
    assert job_dirname(1, overrides) == expected
    # Optuna's long floats are rounded in the name (the exact value stays in .hydra/overrides.yaml)
    assert job_dirname(2, ["model.optimizer_g.lr=0.00012345678901", "seed=123456789012"]) \
        == "2_model.optimizer_g.lr=0.0001235,seed=123456789012"
    assert job_dirname(7, ["hydra.job.chdir=false"]) == "7"  # nothing left: the number alone
    assert job_dirname(4, ["model.components=[8,4,2]"]) == "4_model.components=[8,4,2]"


def test_long_job_dirnames_are_bounded_and_differ_by_a_hash():
    long_a = [f"model.knob_{i}=value_{i}" for i in range(30)]
    long_b = [*long_a[:-1], "model.knob_29=other"]  # differs only after the cut
    a, b = job_dirname(12, long_a), job_dirname(12, long_b)
    assert len(a) == len(b) == MAX_LENGTH and a != b and a[:-8] == b[:-8]
    assert a.startswith("12_model.knob_0=value_0,") and all(c not in a for c in "/ :'\"")
    with pytest.raises(ValueError, match="max_length"):
        job_dirname(1, long_a, max_length=10)


def test_fixed_keys_are_the_overrides_that_do_not_sweep():
    assert fixed_keys(["model=gan,lsgan", "model.n_critic=0,1", "debug=fdr", "+trainer.x=1",
                       "model.optimizer_g.lr=tag(log, interval(1e-5, 1e-3))", "seed=range(3)"]) \
        == ["debug", "trainer.x"]


def test_sweep_subdir_resolves_to_the_job_name(tmp_path):
    """conf/hydra/default.yaml names each job folder by gf.job_dirname; the fixed keys stay out."""
    from omegaconf import open_dict, read_write

    cfg = compose_train(["model=lsgan"], tmp_path)
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.job.num = 3
        cfg.hydra.overrides.task = ["model=lsgan", "model.n_critic=5", "debug=fdr", "hydra.verbose=true",
                                    "seed=3"]
        cfg.hydra.job.config.override_dirname.exclude_keys = ["seed"]
    register_resolver(fixed=["debug"])
    assert cfg.hydra.sweep.subdir == "3_model=lsgan,model.n_critic=5"
    register_resolver()
    assert cfg.hydra.sweep.subdir == "3_model=lsgan,model.n_critic=5,debug=fdr"
    assert cfg.hydra.callbacks.sweep_summary._target_ == "utils.sweep_summary.SweepSummary"
    assert dict(cfg.hydra.sweeper.params) == {}  # the basic sweeper sweeps the command line only


def test_the_callback_unpickled_in_a_launchers_process_installs_the_resolver():
    """A launcher that runs jobs in other processes (submitit) unpickles the callback there: the job folders
    are named as in the launching process."""
    import pickle

    from utils.sweep_summary import SweepSummary

    callback = SweepSummary()
    callback._fixed = ["debug"]  # as on_multirun_start leaves it
    blob = pickle.dumps(callback)
    register_resolver()  # a fresh process knows no fixed keys
    cfg = OmegaConf.create({"task": ["model=gan", "debug=fdr"], "none": [],
                            "name": "${gf.job_dirname:1,${task},${none}}"})
    assert cfg.name == "1_model=gan,debug=fdr"
    pickle.loads(blob)
    assert cfg.name == "1_model=gan"
    register_resolver()


# ---------------------------------------------------------------------- search spaces
@pytest.mark.parametrize("preset", EVERY_PRESET)
def test_every_preset_has_a_search_space_over_its_own_knobs(preset, tmp_path):
    cfg = compose_train([f"model={preset}", "hparams_search=optuna"], tmp_path)
    space = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    assert space and space == OmegaConf.to_container(cfg.search_space)
    for key, spec in space.items():
        assert key.startswith("model.") and OmegaConf.select(cfg, key) is not None, key  # a real knob
        (override,) = OverridesParser.create().parse_overrides([f"{key}={spec}"])
        assert override.is_sweep_override(), (key, spec)
    # its own metric, in its direction
    assert cfg.optimized_metric == cfg.model.get("monitor", "val/fid")
    assert cfg.hydra.sweeper.direction == {"min": "minimize", "max": "maximize"}[cfg.optimized_mode]
    assert cfg.hydra.sweeper.storage is None


def test_each_family_sweeps_its_own_knobs(tmp_path):
    def space(preset):
        return set(compose_train([f"model={preset}"], tmp_path).search_space)

    assert {"model.optimizer_g.lr", "model.optimizer_d.lr", "model.n_critic"} <= space("gan") & space("wgan")
    assert "model.objective.clip_value" in space("wgan") and "model.objective.margin" in space("ebgan")
    assert "model.optimizer_d.lr" not in space("colorizer_l1")  # the U-Net alone has no discriminator
    assert {"model.lambda_1", "model.optimizer_d.lr"} <= space("colorizer_wgan_l2")
    assert space("dcign") - space("dcign_baseline") == {"model.invariance_lambda"}
    assert {"model.components", "model.reg_covar"} <= space("deep_gmm")
    assert space("pixelcnn") == space("gated_pixelcnn") < space("pixelcnn_autoencoder")
    cfg = compose_train(["model=deep_gmm", "hparams_search=optuna"], tmp_path)
    assert (cfg.optimized_metric, cfg.hydra.sweeper.direction) == ("val/log_likelihood", "maximize")


# ---------------------------------------------------------------------- the summary
def _job(sweep, name, overrides, record=None, status=None, metrics=None):
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if record is not None:
        (folder / JOB_RECORD).write_text(json.dumps(record))
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))
    if metrics is not None:
        (folder / "csv").mkdir()
        (folder / "csv" / "metrics.csv").write_text(metrics)
    return folder


def test_summary_reads_every_job_folder(tmp_path):
    sweep = tmp_path / "sweep"
    base = {"metric": "val/fid", "mode": "min", "started": 100.0}
    _job(sweep, "10_seed=3", ["seed=3", "debug=fdr"], {**base, "ended": 112.5, "status": "finished",
                                                         "return_value": 7.0},
         metrics="epoch,step,val/fid,train/loss\n0,9,30.5,\n0,9,,1.0\n1,19,12.25,\n2,29,20.0,\n")
    _job(sweep, "2_seed=2", ["seed=2", "debug=fdr"], {**base, "ended": 101.0, "status": "failed",
                                                        "error": "model.n_critic must be >= 1, got 0"},
         status={"status": "failed", "error": "Error in call to target 'x':"})
    _job(sweep, "1_seed=1", ["seed=1", "debug=fdr"], {**base, "ended": 104.0, "status": "finished",
                                                        "return_value": 3.5}, status={"global_step": 2})
    _job(sweep, "3_seed=4", ["seed=4", "debug=fdr"], {**base, "metric": "val/log_likelihood", "mode": "max"},
         status={"status": "preempted", "global_step": 8},
         metrics="step,val/log_likelihood\n3,-5.0\n7,nan\n8,-2.0\n")
    _job(sweep, "4_seed=5", ["seed=5", "debug=fdr"], {**base})  # started, never ended: killed
    (sweep / ".submitit").mkdir()
    (sweep / "not_a_job").mkdir()
    rows = collect_rows(sweep)
    assert [r.job for r in rows] == [1, 2, 3, 4, 10]
    one, two, three, four, ten = rows
    assert (one.best, one.step, one.status, one.wall_s) == (3.5, 2, "finished", 4.0)  # the return value
    assert (two.best, two.status, two.error) == (None, "failed", "model.n_critic must be >= 1, got 0")
    assert (three.best, three.step, three.status) == (-2.0, 8, "preempted")  # max of the CSV, nan skipped
    assert three.wall_s is not None and three.wall_s > 0  # ended: status.json's time
    assert (four.status, four.wall_s) == ("running", None)
    assert (ten.best, ten.step, ten.wall_s) == (12.25, 19, 12.5)  # the CSV's best beats the return value
    csv_path, md_path = write_summary(sweep, rows, fixed=["debug"])
    with open(csv_path, newline="") as file:
        table = list(csv.DictReader(file))
    assert [r["folder"] for r in table] == ["1_seed=1", "2_seed=2", "3_seed=4", "4_seed=5", "10_seed=3"]
    assert table[0]["overrides"] == "seed=1 debug=fdr" and float(table[0]["best"]) == 3.5
    assert table[3]["best"] == "" and table[1]["error"] == "model.n_critic must be >= 1, got 0"
    md = md_path.read_text()
    assert "Every job: `debug=fdr`" in md
    assert "| 2 | `seed=2` | val/fid (min) |  |  | failed: model.n_critic" in md
    assert "| 10 | `seed=3` | val/fid (min) | 12.25 | 19 | finished | 12.5 |" in md
    assert markdown_table([]).count("\n") == 2


def test_first_line_unwraps_hydras_instantiation_error():
    from hydra.errors import InstantiationException

    try:
        try:
            raise ValueError("model.n_critic must be >= 1, got 0\nmore")
        except ValueError as cause:
            raise InstantiationException("Error in call to target 'x':\nValueError(...)") from cause
    except InstantiationException as error:
        assert first_line(error) == "model.n_critic must be >= 1, got 0"
    assert first_line(RuntimeError("")) == "RuntimeError"


# ---------------------------------------------------------------------- end to end
FDR = ["debug=fdr", "logger=csv", "callbacks.evaluation.feature_epochs=1"]
#: a preset of each family and the overrides that make its debug=fdr run small (no swept knob among them)
FAMILY_RUNS = {
    "gan": ["model=wgan", "callbacks.parzen=null"],
    "colorization": ["model=colorizer_gan", "data=photos"],
    "dcign": ["model=dcign", "data=faces3d", "data.image_size=32", "data.train_batches=4",
              "data.val_batches=4", "data.test_batches=8", "data.train_identities=30",
              "data.val_identities=20", "data.test_identities=20", "data.eval_batch_ratio=[1,0,0,0]",
              "model.encoder.widths=[8,8,8]"],
    "deep_gmm": ["model=deep_gmm", "data=patches", "data.train_patches=2000", "data.val_patches=500",
                 "data.test_patches=500", "data.batch_size=1000", "callbacks.gmm_baseline=null"],
    # sampling pixel by pixel (the grids) is what takes the time
    "pixelcnn": ["model=pixelcnn", "model.num_fixed=2", "callbacks.samples=null",
                 "callbacks.embedding_interpolation=null"],
}


def test_every_family_has_a_run():
    assert set(FAMILY_RUNS) == set(FAMILIES) and all(presets(f) for f in FAMILIES)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_optuna_sweep_of_each_family_optimizes_its_own_metric(family, tmp_path):
    """``python train.py -m hparams_search=optuna model=<preset>``: two trials over the preset's own knobs;
    the best value is the best of the trials' values in the metric's own direction."""
    overrides = FAMILY_RUNS[family]
    sweep = tmp_path / "optuna"
    proc = run_cli(["train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.sampler.n_startup_trials=2", *FDR, *overrides, f"hydra.sweep.dir={sweep}"])
    cfg = compose_train([*overrides, "hparams_search=optuna"], tmp_path / "composed")
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == set(cfg.search_space)
    assert math.isfinite(result["best_value"])
    with open(sweep / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert {r["metric"] for r in rows} == {cfg.optimized_metric}
    values = [float(r["best"]) for r in rows]
    assert result["best_value"] == pytest.approx((max if cfg.optimized_mode == "max" else min)(values))
    assert f"Directions: ['{cfg.optimized_mode}imize']" in proc.stdout + proc.stderr
    # the job folders are named by the trial's knobs only (the fixed overrides are the same in every job)
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [n.split("_", 1)[0] for n in names] == ["0", "1"]
    assert all("debug=fdr" not in n and n.split("_", 1)[1].startswith("model.") for n in names), names


@pytest.mark.slow
def test_a_single_run_writes_no_sweep_records(tmp_path):
    run_cli(["train.py", "model=lsgan", *FDR, f"hydra.run.dir={tmp_path / 'run'}"])
    assert (tmp_path / "run" / "status.json").is_file()
    assert not (tmp_path / "run" / JOB_RECORD).exists() and not (tmp_path / "run" / "summary.csv").exists()


@pytest.mark.parametrize("value", ["outputs/train/runs/2026-12-05_03-51-29-102683",
                                   "/tmp/sweep/1_model=lsgan,model.n_critic=5", "/tmp/it's a [dir]$x"])
def test_override_argument_reads_back_through_the_shell_and_hydra(value):
    """The resume hint's hydra.run.dir=<job folder>: a folder named by its overrides parses (it did not)."""
    import subprocess

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from utils.job_dirname import override_argument

    argument = subprocess.run(["bash", "-c", f"printf %s {override_argument('hydra.run.dir', value)}"],
                              capture_output=True, text=True, check=True).stdout  # as a shell reads it
    (parsed,) = OverridesParser.create().parse_overrides([argument])
    assert parsed.key_or_group == "hydra.run.dir" and parsed.value() == value
