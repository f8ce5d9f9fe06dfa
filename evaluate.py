"""Evaluate a checkpoint and write samples: ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``.

Rebuilds the model and data of the training run from its saved config (``<run>/.hydra/config.yaml``),
loads the checkpoint's weights (``torch.load(weights_only=True)``), writes ``num_samples`` generated
images as PNG files plus a grid (methods that sample), tests (FID/KID, Parzen log-likelihood; DC-IGN's
correlations, invariance and novel views with its scatter plots) and saves ``metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from utils.bootstrap import bootstrap
from utils.errors import report_input_errors

log = bootstrap()  # at import: the processes ddp_spawn starts import this file again

EVALUATION_CALLBACKS = ("evaluation", "parzen", "factor_scatter", "gmm_baseline")


def write_samples(model, num_samples: int, out_dir: Path, seed: int, batch_size: int = 256) -> list[Path]:
    """Write ``num_samples`` generated images as ``sample_NNNNN.png`` and all of them as ``grid.png``."""
    from datamodules.transforms import to_uint8
    from utils.images import save_image_grid, save_png

    model.eval()
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([model.sample(min(batch_size, num_samples - i), generator=generator).cpu()
                        for i in range(0, num_samples, batch_size)])
    paths = [save_png(to_uint8(image), out_dir / f"sample_{i:05d}.png") for i, image in enumerate(images)]
    save_image_grid(images, out_dir / "grid.png")
    return paths


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Sample from and test the checkpoint ``cfg.ckpt_path``; returns the test metrics."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from utils.checkpoints import load_run
    from utils.config import instantiate_group
    from utils.io import atomic_path

    ckpt_path = Path(cfg.ckpt_path)
    pl.seed_everything(cfg.seed, workers=True)
    model, run_cfg = load_run(ckpt_path, cfg.get("run_config"), cfg.get("run"), cfg.paths,
                              trust_run_config=bool(cfg.get("trust_run_config", False)),
                              trusted_packages=cfg.get("trusted_packages", ()))
    out_dir = Path(cfg.paths.output_dir)
    if hasattr(model, "sample"):  # generative samplers; DC-IGN and colorization have none
        paths = write_samples(model, cfg.num_samples, out_dir / "samples", cfg.seed)
        log.info(f"wrote {len(paths)} samples to {out_dir / 'samples'}")
    metrics: dict[str, float] = {}
    if cfg.test:
        run_callbacks = OmegaConf.to_container(run_cfg.callbacks, resolve=True) if run_cfg.get("callbacks") else {}
        callbacks_cfg = {k: v for k, v in run_callbacks.items() if k in EVALUATION_CALLBACKS}
        callbacks = instantiate_group(OmegaConf.create(callbacks_cfg), "callbacks")
        trainer = pl.Trainer(logger=False, callbacks=callbacks, default_root_dir=str(out_dir),
                             enable_checkpointing=False, **cfg.trainer)
        trainer.test(model=model, datamodule=instantiate(run_cfg.data))
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps({"ckpt_path": str(ckpt_path), "num_samples": cfg.num_samples, **metrics},
                                  indent=2))
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@report_input_errors
def main(cfg: DictConfig) -> None:
    """Hydra entry point of :func:`evaluate`."""
    metrics = evaluate(cfg)
    for key, value in sorted(metrics.items()):
        print(f"{key}: {value:.6g}")


if __name__ == "__main__":
    main()
