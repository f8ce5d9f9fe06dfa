"""utils.bootstrap: the entry points' one start-up call, and the scripts run from another working directory."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from utils.bootstrap import ROOT, bootstrap
from utils.quiet import LOG_FILTERS

REPO = Path(__file__).resolve().parents[2]


def test_bootstrap_sets_the_root_registers_resolvers_and_silences(monkeypatch):
    monkeypatch.delenv("GENFORGE_ROOT", raising=False)
    log = bootstrap()
    assert ROOT == REPO and (ROOT / "train.py").is_file() and (ROOT / "conf" / "train.yaml").is_file()
    assert os.environ["GENFORGE_ROOT"] == str(REPO)
    assert log is logging.getLogger("genforge")
    assert all(OmegaConf.has_resolver(name) for name in ("gf.if", "gf.wandb_offline", "gf.user_cache"))
    assert OmegaConf.create({"a": "${gf.if:false,1,2}"}).a == 2
    for name, dropper in LOG_FILTERS.items():
        assert logging.getLogger(name).filters.count(dropper) == 1, name
    # idempotent, and an explicit GENFORGE_ROOT (a test's folder, a user's) is kept
    monkeypatch.setenv("GENFORGE_ROOT", "/somewhere/else")
    bootstrap()
    assert os.environ["GENFORGE_ROOT"] == "/somewhere/else"
    for name, dropper in LOG_FILTERS.items():
        assert logging.getLogger(name).filters.count(dropper) == 1, name


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "colorize.py"])
def test_each_entry_point_starts_from_another_directory(tmp_path, script):
    """``python /abs/path/<script> --help`` from a folder outside the checkout, GENFORGE_ROOT unset: the
    script's imports resolve (the repository is sys.path[0]), Hydra finds ``conf/`` and the resolvers."""
    env = {k: v for k, v in os.environ.items() if k not in ("GENFORGE_ROOT", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, str(REPO / script), "--help"], check=False, cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Powered by Hydra" in proc.stdout
    assert list(tmp_path.iterdir()) == []
