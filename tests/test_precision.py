"""``trainer.precision=bf16-mixed`` for every method family under ``debug=fdr`` on the CPU: the run ends
with finite losses and metrics, and bfloat16 autocast was really on inside the training step (seen by a
callback wrapping ``training_step`` and hooking every module's forward: autocast enabled with dtype
bfloat16, and a layer's output in bfloat16)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback
from torch import nn

from tests.hydra_helpers import families, run_train

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.slow]  # every test here trains

FDR = ["debug=fdr", "logger=csv", "callbacks.evaluation.feature_epochs=1", "trainer.precision=bf16-mixed",
       "+callbacks.autocast_probe._target_=tests.test_precision.AutocastProbe"]
#: one preset per family (``lightning_modules/<family>/``), shrunk where its default size costs minutes
FAMILIES = {
    "gan": ["model=dcgan", "data=mnist5k"],
    "colorization": ["model=colorizer_l1", "data=photos", "data.image_size=32"],
    "dcign": ["model=dcign", "data=faces3d", "data.image_size=32", "data.train_batches=4", "data.val_batches=4",
              "data.test_batches=4", "data.train_identities=30", "data.val_identities=20",
              "data.test_identities=20", "model.encoder.widths=[8,8,8]", "model.encoder.latent_dim=16"],
    "deep_gmm": ["model=deep_gmm", "data=patches", "data.patch_size=4", "data.dim=15", "data.train_patches=1000",
                 "data.val_patches=300", "data.test_patches=300", "data.batch_size=500", "model.components=[3,2]",
                 "model.lbfgs_iterations=20"],
    "pixelcnn": ["model=gated_pixelcnn", "data=mnist5k", "model.network.hidden=8", "model.network.layers=2"],
}
#: families whose training computes in float64 (Deep GMM's EM on float64 patches), which autocast leaves alone
FLOAT64_FAMILIES = {"deep_gmm"}


class AutocastProbe(Callback):
    """Records, for every module forward during training batches, whether CPU autocast is on, its dtype and
    the dtypes of the outputs, and writes them to ``path`` (JSON rows ``[module class, enabled, autocast
    dtype, [output dtypes]]``) when fitting ends (Hydra imports this module apart from pytest's copy)."""

    def __init__(self, path: str) -> None:
        self.path, self.training_batch, self.records = Path(path), False, []

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":  # train.py tests after fitting: keep what the training batches recorded
            return
        for module in pl_module.modules():
            module.register_forward_hook(self._record)
        step = pl_module.training_step  # Deep GMM's EM calls no module forward: its step itself is recorded

        def recorded_step(*args, **kwargs):
            self.records.append(["training_step", torch.is_autocast_enabled("cpu"),
                                 str(torch.get_autocast_dtype("cpu")), []])
            return step(*args, **kwargs)

        pl_module.training_step = recorded_step

    def on_fit_end(self, trainer, pl_module) -> None:
        self.path.write_text(json.dumps(self.records))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.training_batch = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.training_batch = False

    def _record(self, module: nn.Module, inputs, output) -> None:
        if not self.training_batch:
            return
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        dtypes = {o.dtype for o in outputs if isinstance(o, torch.Tensor)}
        self.records.append([type(module).__name__, torch.is_autocast_enabled("cpu"),
                             str(torch.get_autocast_dtype("cpu")), sorted(str(d) for d in dtypes)])


def test_every_family_is_covered():
    assert sorted(FAMILIES) == families()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bf16_mixed_under_fdr(tmp_path, family):
    probe = tmp_path / "autocast.json"
    metrics = run_train([*FAMILIES[family], *FDR, f"+callbacks.autocast_probe.path={probe}"], tmp_path / "run")
    assert metrics, "no metric logged"
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    assert not bad, f"non-finite metrics under bf16-mixed: {bad}"
    assert any(k.startswith("train/") for k in metrics) and any(k.startswith("test/") for k in metrics), metrics
    records = json.loads(probe.read_text())
    assert records, "no module forward ran during a training batch"
    assert any(on and dtype == "torch.bfloat16" for _, on, dtype, _ in records), "bf16 autocast was off"
    if family not in FLOAT64_FAMILIES:
        cast = {name for name, _, _, dtypes in records if "torch.bfloat16" in dtypes}
        assert cast, "no layer computed in bfloat16 inside a training step"
