"""Shared by the benchmarks: compose genforge's config as train.py would, print a table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GENFORGE_ROOT", str(ROOT))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.hydra_helpers import compose_train


def compose(overrides: list[str], output_dir: Path):
    """The config ``python train.py <overrides>`` runs, writing into ``output_dir``, without the hydra node."""
    from omegaconf import open_dict

    from utils.config import register_resolvers

    register_resolvers()
    cfg = compose_train(overrides, output_dir)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
