"""Shared fixtures: every test writes into tmp folders, W&B stays offline, feature networks are cached
once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ["GENFORGE_ROOT"] = str(ROOT)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("PYTHONHASHSEED", "0")

from utils.config import register_resolvers

register_resolvers()


@pytest.fixture(scope="session", autouse=True)
def session_dirs(tmp_path_factory):
    """Outputs and caches of the whole session go to tmp folders, never into the repository."""
    cache = tmp_path_factory.mktemp("cache")
    outputs = tmp_path_factory.mktemp("outputs")
    old = {k: os.environ.get(k) for k in ("GENFORGE_CACHE", "GENFORGE_OUTPUTS")}
    os.environ["GENFORGE_CACHE"] = str(cache)
    os.environ["GENFORGE_OUTPUTS"] = str(outputs)
    yield {"cache": cache, "outputs": outputs}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a test module of small networks: on a shared 2-core machine two OpenMP
    threads per process thrash (measured 10 s vs 66 s for one mnist5k epoch under load). Use it with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
