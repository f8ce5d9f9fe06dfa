"""The training monitor: learning rates, momenta and images/s in metrics.csv, for several families."""

from __future__ import annotations

import csv
import logging

import pytest
import torch
from hydra.utils import instantiate
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from callbacks.training_monitor import TrainingMonitor, count_examples
from tests.hydra_helpers import compose_train
from utils.csv_logger import CSVLogger

pytestmark = pytest.mark.usefixtures("single_thread")

BATCHES, BATCH_SIZE, BATCH_SECONDS = 3, 16, 0.5


class FakeClock:
    """A clock that moves only when told (picklable, so it travels into ``ddp_spawn`` processes)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Advance(Callback):
    """Moves the fake clock ``BATCH_SECONDS`` per training batch and 100 s per validation batch."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.clock.now += BATCH_SECONDS

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.clock.now += 100.0  # validation must not count


def fit(module, tmp_path, datamodule=None, loader=None, val_batches=1, **trainer_kw):
    """Two epochs of ``BATCHES`` training batches under a fake clock; metrics.csv's rows with a value of the
    monitor's, keyed by epoch, and the trainer."""
    monitor, clock = TrainingMonitor(), FakeClock()
    monitor.clock = clock
    trainer = Trainer(max_epochs=2, limit_train_batches=BATCHES, limit_val_batches=val_batches,
                      num_sanity_val_steps=0, logger=CSVLogger(tmp_path, name="csv"),
                      callbacks=[monitor, Advance(clock)],
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      log_every_n_steps=1, **{"accelerator": "cpu", "devices": 1, **trainer_kw})
    trainer.fit(module, datamodule=datamodule, train_dataloaders=loader)
    path = next(tmp_path.rglob("metrics.csv"))
    rows = [{k: v for k, v in row.items() if v} for row in csv.DictReader(path.open())]
    ours = {int(r["epoch"]): {k: float(v) for k, v in r.items()} for r in rows
            if any(k.startswith(("train/lr/", "train/images_per_sec")) for k in r)}
    return ours, trainer


def preset(tmp_path, *overrides):
    cfg = compose_train([*overrides, f"data.batch_size={BATCH_SIZE}"], tmp_path)
    return instantiate(cfg.model), instantiate(cfg.data)


def test_dcgan_logs_its_adam_rates_and_images_per_second_without_validation_time(tmp_path):
    module, data = preset(tmp_path, "model=dcgan", "data=mnist5k", "model.generator.base_width=8",
                          "model.discriminator.base_width=8")
    logged, trainer = fit(module, tmp_path, data)
    assert sorted(logged) == [0, 1]
    for epoch in (0, 1):
        row = logged[epoch]
        assert row["train/lr/generator"] == row["train/lr/discriminator"] == pytest.approx(2e-4, rel=1e-6)
        assert row["train/momentum/generator"] == row["train/momentum/discriminator"] == 0.5
        # 16 images per 0.5 s batch; the 100 s of validation excluded
        assert row["train/images_per_sec"] == pytest.approx(BATCH_SIZE / BATCH_SECONDS, rel=1e-6)
    ours = ("train/lr", "train/momentum", "train/images")
    assert not [k for k in trainer.callback_metrics if k.startswith(ours)]


def test_gan_schedules_move_the_logged_rate_and_momentum(tmp_path):
    # the reference schedules made visible in 3 updates an epoch: lr / 1.1 per update, momentum 0.5 -> 0.7
    # over epochs 1-3 (simultaneous steps: one generator and one discriminator update per batch)
    module, data = preset(tmp_path, "model=gan", "data=mnist5k",
                          "model.scheduler_g.lr_decay.decay_factor=1.1",
                          "model.scheduler_g.momentum.saturate=3")
    logged, _ = fit(module, tmp_path, data)
    for epoch in (0, 1):
        # the epoch's last batch makes update t = 3 (epoch + 1): lr_t = 0.1 / 1.1 ** (t - 1)
        lr = 0.1 / 1.1 ** (BATCHES * (epoch + 1) - 1)
        momentum = 0.5 + (0.7 - 0.5) * epoch / (3 - 1)  # MomentumAdjustor during epoch (from 1) epoch + 1
        for network in ("generator", "discriminator"):
            assert logged[epoch][f"train/lr/{network}"] == pytest.approx(lr, rel=1e-6)
            assert logged[epoch][f"train/momentum/{network}"] == pytest.approx(momentum, rel=1e-6)
        assert logged[epoch]["train/images_per_sec"] == pytest.approx(BATCH_SIZE / BATCH_SECONDS, rel=1e-6)


def test_pixelcnn_epoch_scheduler_logs_the_rate_each_epoch_used(tmp_path):
    # Lightning steps an epoch scheduler of an automatically optimized module before the last batch's end:
    # the value logged must still be the one the epoch trained with (1e-3, then 5e-4)
    module, data = preset(tmp_path, "model=gated_pixelcnn", "data=digits", "model.network.hidden=8",
                          "model.network.layers=2", "model.num_fixed=2",
                          "+model.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,"
                          "step_size:1,gamma:0.5}")
    logged, _ = fit(module, tmp_path, data)
    assert [logged[e]["train/lr/model"] for e in (0, 1)] == pytest.approx([1e-3, 5e-4], rel=1e-6)
    assert [logged[e]["train/momentum/model"] for e in (0, 1)] == [0.9, 0.9]  # Adam's beta1
    assert logged[1]["train/images_per_sec"] == pytest.approx(BATCH_SIZE / BATCH_SECONDS, rel=1e-6)


def test_deep_gmm_placeholder_optimizer_gets_no_rate_and_patches_are_counted(tmp_path, caplog):
    module, data = preset(tmp_path, "model=deep_gmm", "data=patches", "data.patch_size=4", "data.dim=15",
                          "data.train_patches=300", "data.val_patches=50", "data.test_patches=50",
                          "model.components=[2,1]", "model.lbfgs_iterations=5")
    with caplog.at_level(logging.INFO, logger="genforge"):
        logged, _ = fit(module, tmp_path, data)
    assert [r for r in caplog.messages if "TrainingMonitor: DeepGMMModule" in r and "placeholder" in r]
    for epoch in (0, 1):
        assert not any(k.startswith(("train/lr", "train/momentum")) for k in logged[epoch])
        assert logged[epoch]["train/images_per_sec"] == pytest.approx(BATCH_SIZE / BATCH_SECONDS, rel=1e-6)


class Plain(LightningModule):
    """Not a ConfiguredModule: SGD with momentum 0.9, batches ``{"x": (B, 2), "y": (B,)}``."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch["x"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.25, momentum=0.9)


def plain_loader(n: int = 4 * BATCHES) -> DataLoader:
    dataset = [{"x": x, "y": y} for x, y in TensorDataset(torch.randn(n, 2), torch.zeros(n))]
    return DataLoader(dataset, batch_size=4)


def test_a_plain_module_falls_back_to_optimizer_index_names(tmp_path):
    logged, _ = fit(Plain(), tmp_path, loader=plain_loader(), val_batches=0)
    assert logged[1]["train/lr/optimizer_0"] == 0.25
    assert logged[1]["train/momentum/optimizer_0"] == pytest.approx(0.9)
    assert logged[1]["train/images_per_sec"] == pytest.approx(4 / BATCH_SECONDS, rel=1e-6)


def test_a_configured_module_without_a_plan_falls_back_and_says_why(tmp_path, caplog):
    from lightning_modules.optimization import ConfiguredModule

    class Unplanned(Plain, ConfiguredModule):  # Plain's configure_optimizers, the base's optimizer_plan
        pass

    with caplog.at_level(logging.INFO, logger="genforge"):
        logged, _ = fit(Unplanned(), tmp_path, loader=plain_loader(), val_batches=0)
    assert logged[0]["train/lr/optimizer_0"] == 0.25
    assert [m for m in caplog.messages if m.startswith("TrainingMonitor: Unplanned: optimizer_plan() raised")]


def test_the_real_clock_gives_a_positive_rate_and_the_default_callbacks_include_the_monitor(tmp_path):
    trainer = Trainer(max_epochs=1, logger=CSVLogger(tmp_path, name="csv"), callbacks=[TrainingMonitor()],
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", log_every_n_steps=1)
    trainer.fit(Plain(), train_dataloaders=plain_loader())
    rows = csv.DictReader(next(tmp_path.rglob("metrics.csv")).open())
    row = next(r for r in rows if r["train/images_per_sec"])
    assert 0 < float(row["train/images_per_sec"]) < float("inf")
    callbacks = compose_train([], tmp_path).callbacks
    assert isinstance(instantiate(callbacks.training_monitor), TrainingMonitor)


@pytest.mark.slow
def test_ddp_spawn_sums_the_processes_rates(tmp_path):
    logged, _ = fit(Plain(), tmp_path, loader=plain_loader(8 * BATCHES), val_batches=0, devices=2,
                    strategy="ddp_spawn")
    assert logged[1]["train/lr/optimizer_0"] == 0.25
    assert logged[1]["train/images_per_sec"] == pytest.approx(2 * 4 / BATCH_SECONDS, rel=1e-6)  # 2 processes


def test_count_examples_of_each_family_batch():
    images, labels = torch.zeros(5, 1, 8, 8), torch.zeros(5)
    assert count_examples((images, labels)) == 5                                    # GAN, PixelCNN
    assert count_examples([images, torch.zeros(5, 4), torch.tensor(2)]) == 5      # DC-IGN's factor batches
    assert count_examples((torch.zeros(7, 15), torch.arange(7))) == 7              # Deep GMM: patches
    assert count_examples({"x": images}) == 5 and count_examples(torch.tensor(1.0)) == 1
    assert count_examples(["a", 3]) is None
