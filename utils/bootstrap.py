"""Start-up shared by the entry points ``train.py``, ``evaluate.py`` and ``colorize.py``: :func:`bootstrap`.

Each script calls it once, at import time (module level), so that the processes ``ddp_spawn`` starts,
which import the script again as ``__mp_main__``, get the same set-up.

The scripts live in the repository root, and Python puts a script's folder first on ``sys.path``
(``python /abs/path/train.py`` from any working directory), so ``utils`` is importable before anything is
set up; a ``ddp_spawn`` child inherits its parent's ``sys.path``, and Lightning's ``ddp`` launcher runs the
script again by its absolute path. Nothing here changes ``sys.path``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from utils.config import register_resolvers
from utils.quiet import silence_known_noise

#: the repository root: the folder of the entry points and of ``conf/``
ROOT = Path(__file__).resolve().parents[1]


def bootstrap() -> logging.Logger:
    """Set up an entry point's process; returns genforge's logger (``logging.getLogger("genforge")``).

    1. ``GENFORGE_ROOT`` defaults to :data:`ROOT` (an explicit value is kept, e.g. a test's folder):
       it is ``paths.root_dir`` (``conf/paths/default.yaml``), so ``data/`` and ``outputs/`` are the
       repository's whatever the working directory of ``python /abs/path/train.py``; child processes
       (DDP ranks, Slurm jobs) inherit it through the environment.
    2. Registers genforge's OmegaConf resolvers (:func:`utils.config.register_resolvers`), which the
       configs use before ``@hydra.main`` calls the script's function.
    3. Silences the known console noise (:func:`utils.quiet.silence_known_noise`).

    Idempotent: a second call (a re-imported script) changes nothing. Raises nothing.
    """
    os.environ.setdefault("GENFORGE_ROOT", str(ROOT))
    register_resolvers()
    silence_known_noise()
    return logging.getLogger("genforge")
