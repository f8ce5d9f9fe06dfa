"""A run whose monitored metric nothing logs stops before training, in one line (utils.monitor): e.g.
``callbacks.evaluation=null`` with ``optimized_metric=val/fid``; ``optimized_metric=null`` then runs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

from callbacks.evaluation import FeatureDistanceEvaluation, ParzenEvaluation
from tests.hydra_helpers import ROOT
from tests.test_reliability import assert_one_line_error, cli
from utils.errors import InputError
from utils.monitor import check_monitored_metric, configured_loggers, declared_metrics


class _Sampler:
    """What FID applies to: the Samples protocol."""

    sample_metrics, has_ema = True, False

    def sample(self, num_samples, labels=None, **kwargs):  # pragma: no cover - never called here
        raise NotImplementedError


class _Colorizer:
    """A module that does not sample, logging its own ``monitor``."""

    hparams = {"monitor": "val/l1"}


def _evaluation():
    return FeatureDistanceEvaluation(cache_dir="unused")


class _Ranker:
    """What ranks by the metric: a checkpoint callback's ``monitor``."""

    def __init__(self, monitor="val/fid"):
        self.monitor = monitor


def test_a_removed_callback_is_named_with_what_to_type_instead():
    with pytest.raises(InputError) as info:
        check_monitored_metric("val/fid", [ParzenEvaluation(), _Ranker()], _Sampler())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("optimized_metric=val/fid is never logged")
    assert "callbacks.evaluation (callbacks.evaluation.FeatureDistanceEvaluation)" in message
    assert "optimized_metric=null" in message


def test_a_present_callback_that_does_not_apply_is_named():
    with pytest.raises(InputError, match="FeatureDistanceEvaluation does not apply to _Colorizer") as info:
        check_monitored_metric("val/fid", [_evaluation(), _Ranker()], _Colorizer())
    assert "optimized_metric=<one of val/l1>" in str(info.value)  # the module's own val/ metric


@pytest.mark.parametrize("metric, callbacks, module", [
    ("val/fid", "evaluation", _Sampler()),        # logged by the callback
    ("val/l1", "", _Colorizer()),                 # the module's own monitor
    ("val/d_loss", "", _Sampler()),               # declared by nobody: the module may log it undeclared
    (None, "", _Sampler()),                       # nothing monitored
])
def test_logged_or_undeclared_metrics_pass(metric, callbacks, module):
    check_monitored_metric(metric, [_Ranker(metric), *([_evaluation()] if callbacks else [])], module)


def test_nothing_ranking_by_the_metric_outside_a_sweep_is_not_checked():
    """callbacks=none: no checkpoint or progress bar ranks by val/fid and no sweeper waits for it."""
    check_monitored_metric("val/fid", [ParzenEvaluation()], _Sampler())
    with pytest.raises(InputError):
        check_monitored_metric("val/fid", [ParzenEvaluation(), _Ranker()], _Sampler())


@pytest.mark.slow
def test_callbacks_none_under_fdr_runs(tmp_path):
    """debug=fdr's callback settings without their callbacks (callbacks=none) are skipped, in one log line."""
    proc = cli(["train.py", "callbacks=none", "debug=fdr", "logger=csv", f"hydra.run.dir={tmp_path}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "train.log").read_text()
    assert "callbacks.evaluation, callbacks.parzen" in log and "settings without a _target_" in log
    assert not (tmp_path / "samples").exists()


def test_declarations():
    assert "val/fid" in declared_metrics(FeatureDistanceEvaluation)
    assert "val/fid_feature_quality" in declared_metrics(FeatureDistanceEvaluation)
    assert "test/parzen_ll" in declared_metrics(ParzenEvaluation)
    assert declared_metrics(_Colorizer()) == ("val/l1",)
    assert configured_loggers("val/fid_no_ema") == [
        "callbacks.evaluation (callbacks.evaluation.FeatureDistanceEvaluation)"]


def test_fid_off_stops_before_anything_trains(tmp_path, monkeypatch):
    from tests.hydra_helpers import run_train

    def no_fit(*args, **kwargs):
        raise AssertionError("trainer.fit was called")

    monkeypatch.setattr(pl.Trainer, "fit", no_fit)
    with pytest.raises(InputError, match="optimized_metric=val/fid is never logged"):
        run_train(["model=dcgan", "debug=fdr", "logger=csv", "callbacks.evaluation=null"], tmp_path)


@pytest.mark.slow
def test_fid_off_is_one_line_from_the_cli(tmp_path):
    proc = cli(["train.py", "model=dcgan", "debug=fdr", "callbacks.evaluation=null",
                f"hydra.run.dir={tmp_path}"], cwd=ROOT)
    assert_one_line_error(proc, "optimized_metric=val/fid", "callbacks.evaluation", "optimized_metric=null")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_fid_off_with_optimized_metric_null_runs(tmp_path):
    """Checkpoints unranked (the latest epoch) and last.ckpt, the progress bar, train.py's return value."""
    proc = cli(["train.py", "model=dcgan", "debug=limit", "trainer.max_epochs=1", "logger=csv",
                "callbacks.evaluation=null", "callbacks.parzen=null", "optimized_metric=null",
                f"hydra.run.dir={tmp_path}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "epoch_000.ckpt").is_file()
    assert "Traceback" not in proc.stderr
