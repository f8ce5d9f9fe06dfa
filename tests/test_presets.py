"""Every preset in ``conf/model/`` and ``conf/experiment/`` is found and tested without editing a test."""

from __future__ import annotations

import pytest
from hydra.utils import get_object

from tests.hydra_helpers import CONF, compose_train, families, preset_target, presets

FAMILIES = families()


def test_the_families_are_found_by_listing_lightning_modules():
    assert FAMILIES == ["colorization", "dcign", "deep_gmm", "gan", "pixelcnn"]


def test_every_model_preset_belongs_to_one_family_whose_smoke_test_lists_it():
    every = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    found = [name for family in FAMILIES for name in presets(family)]
    assert sorted(found) == every, {name: preset_target(name) for name in set(every) ^ set(found)}
    assert len(found) == len(set(found)) and len(every) >= 21
    for name in every:
        assert get_object(preset_target(name)).__module__.endswith(".module")  # the family's LightningModule


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_composes_to_a_family_module_and_a_datamodule(experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    module, data = get_object(cfg.model._target_), get_object(cfg.data._target_)
    assert any(cfg.model._target_.startswith(f"lightning_modules.{f}.") for f in FAMILIES), cfg.model._target_
    assert module.__name__.endswith("Module") and data.__name__.endswith("DataModule")
