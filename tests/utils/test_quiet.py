"""utils.quiet: each known message is dropped at its real source, and a near-identical one still shows; the
checkpoint folder's warning is dropped only for a run resuming from a checkpoint in it."""

from __future__ import annotations

import logging
import os
import warnings

import pytest
import torch
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import RichModelSummary
from torch.utils.data import DataLoader, TensorDataset

from callbacks.checkpoint import ModelCheckpoint
from utils.quiet import LEAF_SPEC, LOG_FILTERS, silence_known_noise

pytestmark = pytest.mark.usefixtures("single_thread")


class Collect(logging.Handler):
    """The messages a logger lets through."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def loud():
    """No logging filters of ours before or after the test (they are process-wide); a collecting handler
    on a logger, its level set to INFO: ``loud(name) -> Collect``."""
    def remove():
        for name, dropper in LOG_FILTERS.items():
            logging.getLogger(name).removeFilter(dropper)

    added = []

    def collect(name: str) -> Collect:
        logger, handler = logging.getLogger(name), Collect()
        added.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return handler

    remove()
    yield collect
    for logger, handler, level in added:
        logger.removeHandler(handler)
        logger.setLevel(level)
    remove()


def make_trainer(**kwargs) -> Trainer:
    """A Trainer on the CPU without logger, checkpoints or progress bar (constructing one logs the tip)."""
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu",
                   devices=1, **kwargs)


def test_the_litlogger_tip_and_the_summary_notice_are_dropped_other_lightning_info_is_not(loud):
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    seen = loud(rank_zero.name)
    make_trainer(callbacks=[RichModelSummary()])
    assert any(m.startswith("💡 Tip: For seamless cloud logging") for m in seen.messages)  # the real source
    assert any(m.startswith("Trainer already configured with model summary callbacks") for m in seen.messages)

    seen.messages.clear()
    silence_known_noise()
    silence_known_noise()  # idempotent
    assert rank_zero.filters.count(LOG_FILTERS[rank_zero.name]) == 1
    make_trainer(callbacks=[RichModelSummary()])
    assert any(m.startswith("GPU available: ") for m in seen.messages)  # the same logger, another INFO line
    assert not any("litlogger" in m or "model summary callbacks" in m for m in seen.messages)
    rank_zero.info("💡 Tip: something else")
    assert seen.messages[-1] == "💡 Tip: something else"


def test_the_leafspec_deprecation_from_lightning_is_dropped_other_warnings_are_not():
    from pytorch_lightning.utilities._pytree import _tree_flatten

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tree_flatten(torch.zeros(1))
        assert [str(w.message) for w in caught] == [LEAF_SPEC]  # the real source, without the filter
        caught.clear()

        silence_known_noise()
        silence_known_noise()
        assert sum("LeafSpec" in str(f[1] and f[1].pattern) for f in warnings.filters) == 1  # idempotent
        _tree_flatten(torch.zeros(1))
        module = "pytorch_lightning.utilities._pytree"
        warnings.warn_explicit("another deprecation", DeprecationWarning, "_pytree.py", 30, module=module)
        warnings.warn_explicit("another future change", FutureWarning, "_pytree.py", 30, module=module)
        warnings.warn_explicit(LEAF_SPEC, FutureWarning, "mine.py", 1, module="mine")  # someone else's code
    assert [(str(w.message), w.category) for w in caught] == [
        ("another deprecation", DeprecationWarning), ("another future change", FutureWarning),
        (LEAF_SPEC, FutureWarning)]


def test_alembic_lines_of_an_optuna_storage_are_dropped_others_are_not(loud):
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    seen = loud("alembic.runtime.migration")
    with create_engine("sqlite://").connect() as connection:
        MigrationContext.configure(connection)  # what Optuna's RDB storage does
        assert seen.messages == ["Context impl SQLiteImpl.", "Will assume non-transactional DDL."]
        seen.messages.clear()
        silence_known_noise()
        MigrationContext.configure(connection)
    assert seen.messages == []
    migration = logging.getLogger("alembic.runtime.migration")
    migration.info("Context impl PostgresqlImpl.")
    migration.info("Will assume transactional DDL.")
    migration.info("Running upgrade  -> v3.0.0.a, initial")
    assert len(seen.messages) == 3

    plugins = loud("alembic.runtime.plugins")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "alembic.autogenerate.schemas")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "myproject.comparators")
    assert plugins.messages == ["setup plugin myproject.comparators"]


class Tiny(LightningModule):
    """A linear model with a made-up loss."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit_warnings(dirpath, max_epochs=1, ckpt_path=None) -> list[str]:
    """The warnings of a short fit checkpointing ``last.ckpt`` into ``dirpath``."""
    loader = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
    checkpoint = ModelCheckpoint(dirpath=dirpath, filename="last", save_top_k=1, enable_version_counter=False)
    trainer = Trainer(max_epochs=max_epochs, logger=False, callbacks=[checkpoint], enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", devices=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Tiny(), train_dataloaders=loader, ckpt_path=ckpt_path)
    return [str(w.message) for w in caught]


def not_empty(dirpath) -> str:
    """Lightning's warning for ``dirpath``."""
    return f"Checkpoint directory {os.path.realpath(dirpath)} exists and is not empty."


def test_the_checkpoint_folder_warning_is_dropped_only_when_resuming_from_it(tmp_path):
    own, other = tmp_path / "run" / "checkpoints", tmp_path / "other"
    assert not_empty(own) not in fit_warnings(own)  # a fresh run into a new folder
    assert (own / "last.ckpt").exists()

    # resuming from the run's own checkpoint, into its folder: silent
    assert not_empty(own) not in fit_warnings(own, max_epochs=2, ckpt_path=own / "last.ckpt")
    # a fresh run into the non-empty folder: warned
    assert not_empty(own) in fit_warnings(own)
    # resuming from a checkpoint elsewhere into the non-empty folder: warned
    fit_warnings(other)
    assert not_empty(own) in fit_warnings(own, max_epochs=2, ckpt_path=other / "last.ckpt")
