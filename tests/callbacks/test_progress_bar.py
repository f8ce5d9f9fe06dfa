"""The progress bar's description (generator iterations, epochs, steps) and the optimized metric beside it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from callbacks.progress_bar import ProgressBar

pytestmark = pytest.mark.usefixtures("single_thread")


def description(module, max_epochs, max_steps=-1, global_step=0, epoch=3) -> str:
    """The training description of a bar on a stand-in trainer (the attributes the bar reads)."""
    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=max_epochs, max_steps=max_steps, global_step=global_step,
                                   lightning_module=module)
    return bar._get_train_description(epoch)


def test_a_generator_budget_counts_generator_iterations():
    gan = SimpleNamespace(generator_steps=186, max_generator_steps=1240)
    assert description(gan, max_epochs=-1) == "Epoch 3 · generator iterations 186/1,240"
    assert description(gan, max_epochs=20) == "Epoch 3/19 · generator iterations 186/1,240"


def test_an_epoch_budget_counts_epochs():
    assert description(object(), max_epochs=20) == "Epoch 3/19"
    gan_by_epochs = SimpleNamespace(generator_steps=186, max_generator_steps=None)
    assert description(gan_by_epochs, max_epochs=20) == "Epoch 3/19"


@pytest.mark.parametrize("max_epochs", [-1, None])
def test_no_epoch_budget_shows_the_epoch_alone(max_epochs):
    text = description(object(), max_epochs=max_epochs)
    assert text.rstrip() == "Epoch 3" and len(text) == len("Validation")  # padded like Lightning's


def test_a_step_budget_counts_steps():
    by_steps = description(object(), max_epochs=-1, max_steps=1000, global_step=120)
    assert by_steps == "Epoch 3 · step 120/1,000"
    # an epoch budget beside max_steps stays the epochs
    assert description(object(), max_epochs=20, max_steps=1000, global_step=120) == "Epoch 3/19"


class Counting(LightningModule):
    """A linear model that counts its steps as generator iterations, stopping at ``max_generator_steps``,
    and logs ``val/score`` = epoch + 0.5 after validation."""

    def __init__(self, max_generator_steps: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.generator_steps, self.max_generator_steps = 0, max_generator_steps

    def training_step(self, batch, batch_idx):
        self.generator_steps += 1
        if self.generator_steps >= self.max_generator_steps:
            self.trainer.should_stop = True
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        self.log("val/score", self.current_epoch + 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Record(Callback):
    """After every training batch (after the bar's hook): the bar's description and its metrics' texts."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar, self.seen = bar, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        task = self.bar.progress.tasks[self.bar.train_progress_bar_id]
        self.seen.append((task.description, list(self.bar._metric_component._generate_metrics_texts())))


def test_the_description_follows_generator_iterations_and_the_metric_appears_once_logged(tmp_path):
    bar = ProgressBar(monitor="val/score")
    record = Record(bar)
    loader = DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4)  # 3 batches an epoch
    trainer = Trainer(max_epochs=-1, num_sanity_val_steps=1, limit_val_batches=1, logger=False,
                      callbacks=[bar, record], enable_checkpointing=False, enable_model_summary=False,
                      accelerator="cpu", devices=1, default_root_dir=tmp_path)
    trainer.fit(Counting(max_generator_steps=5), train_dataloaders=loader, val_dataloaders=loader)

    descriptions = [d for d, _ in record.seen]
    assert descriptions == [f"Epoch {i // 3} · generator iterations {i + 1}/5" for i in range(5)]
    first_epoch, second_epoch = [m for _, m in record.seen[:3]], [m for _, m in record.seen[3:]]
    # not the sanity check's value: only after the first validation
    assert all(not any(t.startswith("val/score") for t in texts) for texts in first_epoch)
    for texts in second_epoch:  # after the first validation, in the bar's format (".3f") like train/loss
        assert "val/score: 0.500" in texts and any(t.startswith("train/loss: ") for t in texts)


def test_the_monitor_is_read_at_validation_end_not_at_every_step():
    bar = ProgressBar(monitor="val/fid")
    trainer = SimpleNamespace(callback_metrics={}, progress_bar_metrics={"train/loss": 0.5}, loggers=[])
    bar._read_monitor(trainer)
    assert bar.get_metrics(trainer, None) == {"train/loss": 0.5}  # not logged yet
    trainer.callback_metrics["val/fid"] = torch.tensor(12.5)
    assert "val/fid" not in bar.get_metrics(trainer, None)  # a training step does not read it
    bar._read_monitor(trainer)  # what validation's end does
    assert bar.get_metrics(trainer, None) == {"train/loss": 0.5, "val/fid": 12.5}
    assert ProgressBar()._monitored is None
