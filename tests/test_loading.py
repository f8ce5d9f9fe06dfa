"""``<Module>.load_from_checkpoint(path)`` for every family (issue 31): the model of a short real run comes back
with its weights and its outputs, in its run folder or copied away from it, from an old checkpoint through its
run folder; a checkpoint of another family is one line naming it; a ``_target_`` outside the allowlist is
refused before anything runs."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning import Trainer

from tests.hydra_helpers import compose_train, families, run_train
from utils.errors import InputError, MissingFileError, UntrustedConfigError

pytestmark = pytest.mark.usefixtures("single_thread")

#: a tiny budget for every family: one epoch of two batches, one validation batch, no test, no FID
TINY = ["logger=csv", "callbacks.evaluation=null", "callbacks.parzen=null", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "test=false"]
#: family -> (its module class, the overrides of a few seconds' run)
FAMILIES = {
    "gan": ("lightning_modules.gan.module.AdversarialModule",
            ["model=dcgan", "optimized_metric=val/g_loss", "model.generator.base_width=8",
             "model.discriminator.base_width=8"]),
    "colorization": ("lightning_modules.colorization.module.ColorizationModule",
                     ["model=colorizer_gan", "data=photos", "data.image_size=32", "data.batch_size=4",
                      "model.generator.base_width=8", "model.discriminator.base_width=8",
                      "optimized_metric=val/l1"]),
    "dcign": ("lightning_modules.dcign.module.DCIGNModule",
              ["model=dcign", "data=faces3d", "data.image_size=32", "data.train_batches=2", "data.val_batches=4",
               "data.test_batches=4", "data.train_identities=20", "data.val_identities=20",
               "data.test_identities=20", "data.eval_batch_ratio=[1,0,0,0]", "model.encoder.widths=[8,8,8]",
               "model.encoder.latent_dim=16"]),
    "deep_gmm": ("lightning_modules.deep_gmm.module.DeepGMMModule",
                 ["model=deep_gmm", "data=patches", "data.patch_size=4", "data.dim=15", "data.train_patches=600",
                  "data.val_patches=200", "data.test_patches=200", "data.batch_size=300", "model.components=[3,2]",
                  "model.lbfgs_iterations=5", "callbacks.gmm_baseline=null"]),
    "pixelcnn": ("lightning_modules.pixelcnn.module.PixelCNNModule",
                 ["model=gated_pixelcnn", "data=digits", "model.levels=17", "model.binarize=none",
                  "model.network.hidden=8", "model.network.layers=2", "model.num_fixed=2"]),
}


def test_every_family_has_a_tiny_run():
    assert sorted(FAMILIES) == families()


def module_class(family: str) -> type:
    from hydra.utils import get_object

    return get_object(FAMILIES[family][0])


def outputs(model, family: str) -> torch.Tensor:
    """What the model makes from a fixed seed: samples (GAN, PixelCNN), colours of a fixed lightness
    (colorization), decoded fixed codes (DC-IGN), log-likelihoods of fixed patches (deep GMM)."""
    model.eval()
    seed = torch.Generator().manual_seed(7)
    with torch.no_grad():
        if family in ("gan", "pixelcnn"):
            return model.sample(3, generator=seed)
        if family == "colorization":
            return model.colorize(torch.rand(2, 1, 32, 32, generator=seed) * 2 - 1)
        if family == "dcign":
            return model.decode(torch.randn(2, model.decoder.latent_dim, generator=seed))
        return model.gmm.log_prob(torch.randn(5, model.hparams.dim, generator=seed))


@dataclass
class Trained:
    family: str
    run: Path  # the run folder: checkpoints/last.ckpt and .hydra/
    model: torch.nn.Module  # the module as training left it, in memory

    @property
    def ckpt(self) -> Path:
        return self.run / "checkpoints" / "last.ckpt"


def train_and_keep_model(overrides: list[str], run: Path):
    """Train in this process as ``train.py`` does; returns the LightningModule ``trainer.fit`` trained. The
    run folder gets the ``.hydra/`` files the CLI writes (an in-process run has none)."""
    seen = {}
    fit = Trainer.fit

    def keep(self, model, *args, **kwargs):
        seen["model"] = model
        return fit(self, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "fit", keep)
        run_train(overrides, run)
    cfg = compose_train(overrides, run)
    (run / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), run / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": cfg.hydra}, run / ".hydra" / "hydra.yaml")
    return seen["model"]


#: family -> its short run, trained once for the whole module
_RUNS: dict[str, Trained] = {}


def trained_family(family: str, tmp_path_factory) -> Trained:
    """The family's short run (trained on first use)."""
    if family not in _RUNS:
        run = tmp_path_factory.mktemp(family) / "run"
        _RUNS[family] = Trained(family, run, train_and_keep_model([*FAMILIES[family][1], *TINY], run))
    return _RUNS[family]


@pytest.fixture(scope="module", params=list(FAMILIES))
def trained(request, tmp_path_factory, single_thread) -> Trained:
    return trained_family(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def gan(tmp_path_factory, single_thread) -> Trained:
    return trained_family("gan", tmp_path_factory)


def assert_same_model(loaded, trained: Trained, ckpt: Path) -> None:
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    state = loaded.state_dict()
    assert type(loaded) is type(trained.model)
    assert sorted(state) == sorted(saved)
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    expected, got = outputs(trained.model, trained.family), outputs(loaded, trained.family)
    assert got.shape == expected.shape and torch.isfinite(got).all()
    assert torch.equal(got, expected)


def without_model_record(ckpt: Path, target: Path) -> Path:
    """``ckpt`` as a checkpoint from before the record held the model config (its ``genforge`` record
    names the preset and targets only), written to ``target``."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    del checkpoint["genforge"]["model"]
    torch.save(checkpoint, target)
    return target


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_loads_in_its_run_folder_and_copied_away(trained, tmp_path):
    cls = module_class(trained.family)
    loaded = cls.load_from_checkpoint(trained.ckpt)
    assert loaded.training  # as Lightning returns it
    assert_same_model(loaded, trained, trained.ckpt)
    # a checkpoint copied out of its run folder carries everything needed (its record)
    away = tmp_path / "elsewhere" / "model.ckpt"
    away.parent.mkdir()
    shutil.copy(trained.ckpt, away)
    assert_same_model(cls.load_from_checkpoint(away, map_location="cpu"), trained, away)
    # the shared base loads it too, as the class the checkpoint holds
    from pytorch_lightning import LightningModule

    assert type(cls.load_from_checkpoint(away)) is cls and issubclass(cls, LightningModule)


@pytest.mark.slow
def test_an_old_checkpoint_loads_from_its_run_folder(trained, tmp_path):
    """Checkpoints written before the record held the model config: built from ``<run>/.hydra/config.yaml``;
    away from the run, one line says which file to pass (and passing it works)."""
    cls = module_class(trained.family)
    run = tmp_path / "run"
    shutil.copytree(trained.run, run)
    old = without_model_record(trained.ckpt, run / "checkpoints" / "last.ckpt")
    assert_same_model(cls.load_from_checkpoint(old), trained, old)
    away = shutil.copy(old, tmp_path / "old.ckpt")
    with pytest.raises(MissingFileError, match=r"no training config at .* for checkpoint_path=.*old.ckpt; "
                                               r"pass hparams_file=<run>/.hydra/config.yaml") as error:
        cls.load_from_checkpoint(away)
    assert "\n" not in str(error.value)
    loaded = cls.load_from_checkpoint(away, hparams_file=run / ".hydra" / "config.yaml")
    assert_same_model(loaded, trained, Path(away))


@pytest.mark.slow
def test_another_familys_checkpoint_is_one_line_naming_it(trained):
    cls = module_class(trained.family)
    preset = FAMILIES[trained.family][1][0].removeprefix("model=")
    for other in FAMILIES:
        if other == trained.family:
            continue
        wrong = module_class(other)
        with pytest.raises(InputError) as error:
            wrong.load_from_checkpoint(trained.ckpt)
        message = str(error.value)
        assert "\n" not in message
        assert message == (f"checkpoint_path={trained.ckpt} holds a checkpoint of model={preset} "
                           f"({cls.__module__}.{cls.__name__}), not of {wrong.__name__}; load it with "
                           f"{cls.__name__}.load_from_checkpoint (from {cls.__module__} import {cls.__name__})")


@pytest.mark.slow
def test_a_target_outside_the_allowlist_is_refused(trained, tmp_path):
    checkpoint = torch.load(trained.ckpt, map_location="cpu", weights_only=True)
    checkpoint["genforge"]["model"]["_target_"] = "os.system"
    checkpoint["genforge"]["model"]["command"] = f"touch {tmp_path / 'pwned'}"
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    with pytest.raises(UntrustedConfigError, match=r"model._target_='os.system' is outside the allowlist"):
        module_class(trained.family).load_from_checkpoint(crafted)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_a_network_payload_in_the_record_never_runs(gan, tmp_path):
    from lightning_modules.gan.module import AdversarialModule

    marker = tmp_path / "pwned"
    payload = tmp_path / "weights.pt"
    payload.write_bytes(pickle.dumps(_Exploit(marker)))
    checkpoint = torch.load(gan.ckpt, map_location="cpu", weights_only=True)
    checkpoint["genforge"]["model"]["generator"] = {"_target_": "torch.load", "f": str(payload),
                                                     "weights_only": False}
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    with pytest.raises(UntrustedConfigError, match=r"model.generator._target_='torch.load' is outside"):
        AdversarialModule.load_from_checkpoint(crafted)
    assert not marker.exists()
    # a checkpoint holding more than plain data is refused by torch.load(weights_only=True)
    checkpoint["genforge"]["model"] = _Exploit(marker)
    torch.save(checkpoint, crafted)
    with pytest.raises(InputError, match="not a readable checkpoint"):
        AdversarialModule.load_from_checkpoint(crafted)
    assert not marker.exists()


@pytest.mark.slow
def test_lightnings_arguments_and_keyword_overrides(gan, tmp_path):
    from lightning_modules.gan.module import AdversarialModule

    model = AdversarialModule.load_from_checkpoint(gan.ckpt, map_location=torch.device("cpu"), strict=True,
                                                   n_critic=3)
    assert model.hparams.n_critic == 3 and model.n_critic == 3 and model.hparams.latent_dim == gan.model.hparams.latent_dim
    assert model.device == torch.device("cpu")
    with pytest.raises(InputError, match="weights_only=True only"):
        AdversarialModule.load_from_checkpoint(gan.ckpt, weights_only=False)
    # strict=False loads what fits (a network config changed by an override), strict=True says what does not
    with pytest.raises(InputError, match=f"checkpoint {gan.ckpt} does not fit"):
        AdversarialModule.load_from_checkpoint(gan.ckpt, generator={"base_width": 4})
    with pytest.warns(UserWarning, match="missing"):
        AdversarialModule.load_from_checkpoint(gan.ckpt, strict=False, ema_decay=0.5)
    with pytest.raises(MissingFileError, match="checkpoint_path=.*nothing.ckpt does not exist"):
        AdversarialModule.load_from_checkpoint(tmp_path / "nothing.ckpt")


@pytest.mark.slow
def test_lightnings_resume_still_reads_the_record(gan, tmp_path):
    """``trainer.fit(ckpt_path=...)`` resumes a checkpoint that carries the model config, and its own
    checkpoints carry it too."""
    run_train([*FAMILIES["gan"][1], *TINY, "trainer.max_epochs=2", f"ckpt_path={gan.ckpt}"], tmp_path / "resumed")
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    before = torch.load(gan.ckpt, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == before["epoch"] + 1
    assert resumed["genforge"]["model"] == before["genforge"]["model"]


@pytest.mark.slow
def test_the_readme_example(gan, tmp_path):
    """The README's five lines (/tmp/gf/loading_readme.md), as written there, on a real checkpoint."""
    from PIL import Image

    ckpt = shutil.copy(gan.ckpt, tmp_path / "last.ckpt")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(README_EXAMPLE.replace("outputs/train/runs/<time>/checkpoints/last.ckpt", str(ckpt)), {})
    finally:
        os.chdir(cwd)
    grid = Image.open(tmp_path / "samples.png")
    assert grid.size == (4 * (28 + 2) + 2, 4 * (28 + 2) + 2)


README_EXAMPLE = """\
from lightning_modules.gan.module import AdversarialModule
from utils.images import save_image_grid
model = AdversarialModule.load_from_checkpoint("outputs/train/runs/<time>/checkpoints/last.ckpt").eval()
images = model.sample(16)  # (16, C, H, W) in [-1, 1]
save_image_grid(images, "samples.png", nrow=4)
"""


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)
