"""Compose genforge's Hydra config in-process, as ``python train.py <overrides>`` would, and run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def preset_target(name: str, group: str = "model") -> str | None:
    """The ``_target_`` a preset ``conf/<group>/<name>.yaml`` composes to: its own, else that of the preset
    of the same group it extends (its defaults list), read from the files without composing."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / group / f"{name}.yaml")
    parents = [d for d in cfg.get("defaults", []) if isinstance(d, str) and (CONF / group / f"{d}.yaml").is_file()]
    return cfg.get("_target_") or next((preset_target(d, group) for d in parents), None)


def presets(family: str) -> list[str]:
    """Every model preset in ``conf/model/`` whose LightningModule is in ``lightning_modules/<family>/``,
    found by listing the folder, so a new preset is tested without editing a test."""
    return [p.stem for p in sorted((CONF / "model").glob("*.yaml"))
            if (preset_target(p.stem) or "").startswith(f"lightning_modules.{family}.")]


def families() -> list[str]:
    """The method families: every folder ``lightning_modules/<family>/`` with a ``module.py`` and at least one
    preset in ``conf/model/``, found by listing, so a new family is tested without editing a test."""
    return [p.parent.name for p in sorted((ROOT / "lightning_modules").glob("*/module.py"))
            if presets(p.parent.name)]


def compose_train(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """The config ``train.py`` would run with ``overrides``, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def run_train(overrides: list[str], output_dir: Path) -> dict[str, float]:
    """Run ``train.run`` in this process; returns the logged metrics."""
    import train

    cfg = compose_train(overrides, output_dir)
    with open_dict(cfg):
        del cfg["hydra"]
    return train.run(cfg)


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python <args>`` as a user would, in a subprocess; raises with its output on failure."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, *args], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}")
    return proc
