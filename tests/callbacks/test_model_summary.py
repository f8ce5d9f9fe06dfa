"""The model summary leaves out FLOPs when none were counted, and keeps Lightning's table otherwise."""

from __future__ import annotations

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.utilities.model_summary import summarize
from rich import get_console

from callbacks.model_summary import RichModelSummary


class Net(LightningModule):
    """One linear layer; with ``example``, an ``example_input_array`` for Lightning to count FLOPs on."""

    def __init__(self, example: bool) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 4)
        self.example_input_array = torch.zeros(2, 8) if example else None

    def forward(self, x):
        return self.layer(x)


def printed(module: LightningModule) -> str:
    """What the callback's summary prints for ``module``."""
    summary = summarize(module, max_depth=1)
    with get_console().capture() as capture:
        RichModelSummary.summarize(summary._get_summary_data(), summary.total_parameters,
                                   summary.trainable_parameters, summary.model_size,
                                   summary.total_training_modes, summary.total_flops)
    return capture.get()


def test_no_flops_column_or_total_without_counted_flops():
    text = printed(Net(example=False))
    assert "FLOPs" not in text
    for line in ("Name", "layer", "Linear", "36", "Trainable params: 36", "Total params: 36",
                 "Modules in train mode: "):
        assert line in text


def test_counted_flops_keep_lightning_s_summary():
    text = printed(Net(example=True))
    assert "FLOPs" in text and "Total FLOPs: 128" in text and "In sizes" in text
