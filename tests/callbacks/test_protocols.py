"""The callback protocols of ``callbacks/protocols.py``: the table in its docstring, checked on every preset."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from callbacks.protocols import (
    Colorizer,
    Embeddings,
    FixedNoise,
    GeneratorSteps,
    LatentPrior,
    ParameterCount,
    Samples,
    ScatteredFactors,
    SplitDatasets,
    Traversable,
    members,
    offers,
)
from tests.hydra_helpers import compose_train, families, presets

PROTOCOLS = (FixedNoise, LatentPrior, Embeddings, Samples, GeneratorSteps, Colorizer, Traversable,
             ScatteredFactors, ParameterCount)
#: family -> (the data its presets are composed with, the protocols its modules offer), as the table says
FAMILIES = {
    "gan": ([], {FixedNoise, LatentPrior, Samples, GeneratorSteps}),
    "colorization": (["data=photos"], {GeneratorSteps, Colorizer}),
    "dcign": (["data=faces3d"], {Traversable, ScatteredFactors}),
    "deep_gmm": (["data=patches"], {ParameterCount}),
    "pixelcnn": ([], {FixedNoise, Embeddings, Samples}),
}


def test_every_family_has_its_protocols_listed():
    assert sorted(FAMILIES) == families()


def test_a_protocol_lists_its_own_and_its_bases_members():
    assert members(FixedNoise) == ("fixed_z", "fixed_labels", "label_classes", "generate")
    assert members(LatentPrior) == ("fixed_z", "fixed_labels", "label_classes", "generate", "noise", "random_labels")
    assert members(Samples) == ("sample_metrics", "has_ema", "sample")
    assert not offers(None, SplitDatasets)


@pytest.mark.parametrize("family,preset", [(f, p) for f in FAMILIES for p in presets(f)])
def test_every_preset_offers_the_protocols_of_its_family(family, preset, tmp_path):
    data, expected = FAMILIES[family]
    cfg = compose_train([f"model={preset}", *data], tmp_path)
    module = instantiate(cfg.model)
    assert {p for p in PROTOCOLS if offers(module, p)} == expected
    datamodule = instantiate(cfg.data)
    assert offers(datamodule, SplitDatasets)
    if offers(module, FixedNoise):  # the sample grid's columns: one per class of a conditional model
        assert module.label_classes == (cfg.model.num_classes if cfg.model.get("conditional") else 0)
    if offers(module, Samples):  # FID/KID and Parzen measure the GAN family only
        assert module.sample_metrics == (family == "gan") and module.has_ema is False
