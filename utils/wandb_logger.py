"""Lightning's W&B logger with one W&B run per run folder and the best value of the optimized metric as the
run's summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import _DummyExperiment
from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger
from pytorch_lightning.utilities import rank_zero_only

from utils.io import atomic_path

#: the file in ``<save_dir>`` that keeps the run folder's W&B run id
RUN_ID_FILE = Path("wandb") / "run_id"


class WandbLogger(_LightningWandbLogger):
    """:class:`pytorch_lightning.loggers.WandbLogger` (same arguments) that adds:

    - **one W&B run per run folder**: the run id is kept in ``<save_dir>/wandb/run_id`` (one line, written
      atomically by rank 0 only). Without an explicit ``id``/``version``, a folder that has the file continues
      its W&B run (``resume="allow"``: resuming a run into its own folder,
      ``ckpt_path=... hydra.run.dir=<run>``, logs into the same W&B run); a folder without it gets a new id
      (W&B's ``generate_id``), which is written. An explicit ``id``/``version`` wins and is written too.
      Processes of rank > 0 only read the file.
    - **the best value as summary**: with ``monitor`` set (e.g. ``val/fid``), the run's summary holds the best
      value of that metric, ``{"val/fid": {"min": 3.0}}`` (shown as ``val/fid.min``; ``mode="max"``:
      ``{"max": ...}``), instead of the last one (W&B's ``define_metric(monitor, summary=mode)``).

    Args:
        monitor: the metric whose best value the summary holds; ``None``: W&B's default (the last value).
        mode: ``"min"`` or ``"max"``, which value of ``monitor`` is the best.
        name, save_dir, version, id, ..., **kwargs: as :class:`pytorch_lightning.loggers.WandbLogger`.

    Raises:
        ValueError: ``mode`` is not ``"min"`` or ``"max"`` (names ``logger.wandb.mode``).
    """

    def __init__(self, name: str | None = None, save_dir: str | os.PathLike = ".", version: str | None = None,
                 offline: bool = False, dir: str | os.PathLike | None = None, id: str | None = None,
                 monitor: str | None = None, mode: str = "min", **kwargs: Any) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"logger.wandb.mode must be 'min' or 'max', got {mode!r}")
        self._monitor, self._mode, self._metric_defined = monitor, mode, False
        folder = save_dir or dir or "."  # the folder Lightning gives wandb.init
        run_id = version or id or self._kept_run_id(Path(folder))
        if run_id is None and rank_zero_only.rank == 0:
            from wandb.sdk.lib.runid import generate_id  # secrets-based: a seeded run still gets a new id

            run_id = generate_id()
        elif run_id is not None and not (version or id):
            kwargs.setdefault("resume", "allow")
        if run_id is not None and rank_zero_only.rank == 0:
            with atomic_path(Path(folder) / RUN_ID_FILE) as tmp:
                tmp.write_text(f"{run_id}\n")
        super().__init__(name=name, save_dir=save_dir, offline=offline, dir=dir, id=run_id, **kwargs)
        # Lightning passes anonymous=None, which W&B >= 0.19 answers with "The anonymous setting has no
        # effect and will be removed in a future version." on every run; None is W&B's default anyway
        if self._wandb_init.get("anonymous", 0) is None:
            self._wandb_init.pop("anonymous")

    @staticmethod
    def _kept_run_id(folder: Path) -> str | None:
        """The W&B run id kept in ``folder/wandb/run_id``, or ``None`` when there is none."""
        path = folder / RUN_ID_FILE
        return (path.read_text().strip() or None) if path.is_file() else None

    @property
    def experiment(self):
        """The W&B run (Lightning's), on which ``monitor``'s summary is defined once (rank 0)."""
        experiment = super().experiment
        if (self._monitor and not self._metric_defined and rank_zero_only.rank == 0
                and not isinstance(experiment, _DummyExperiment)):
            # the x-axis Lightning's "*" definition gives every metric
            step = "global_step" if self._wandb_init.get("sync_tensorboard") else "trainer/global_step"
            experiment.define_metric(self._monitor, step_metric=step, step_sync=True, summary=self._mode)
            self._metric_defined = True
        return experiment

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_metric_defined"] = False  # the experiment is not pickled: define the metric on the next one
        return state
