"""The PixelCNN LightningModule: quantization and binarization, the likelihood it logs, presets in train.py."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from lightning_modules.pixelcnn.module import PixelCNNModule
from lightning_modules.pixelcnn.networks import GatedPixelCNN
from tests.hydra_helpers import presets, run_train

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = ["model.network.hidden=8", "model.network.layers=2", "model.num_fixed=2", "logger=csv"]


def module(**kw) -> PixelCNNModule:
    args = {"network": functools.partial(GatedPixelCNN, hidden=4, layers=1, kernel_size=3),
            "optimizer": functools.partial(torch.optim.Adam, lr=1e-3), "levels": 2, "channels": 1,
            "image_size": 4, "num_fixed": 2, **kw}
    return PixelCNNModule(**args)


def test_quantization_recovers_the_digits_17_levels():
    m = module(levels=17, binarize="none")
    levels = torch.arange(17).float().reshape(1, 1, 1, 17)
    images = torch.round(levels * 255 / 16) / 255 * 2 - 1   # how 0..16 arrive as uint8 then [-1, 1]
    assert torch.equal(m.quantize(images, stochastic=False), torch.arange(17).reshape(1, 1, 1, 17))


def test_fixed_binarization_depends_on_the_image_not_the_batch():
    m = module(binarize="fixed")
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 4, 4, generator=g) * 2 - 1
    alone = m.quantize(images[2:3], stochastic=True)
    assert torch.equal(m.quantize(images, stochastic=True)[2:3], alone)
    assert torch.equal(m.quantize(images.flip(0), stochastic=False)[3:4], alone)
    assert set(alone.unique().tolist()) <= {0, 1}
    # a pixel of intensity p is 1 with probability p: 256 images of intensity 0.3 told apart by their
    # first pixel; ~30% ones among the 256 x 15 others
    grey = torch.full((256, 1, 4, 4), 0.3 * 2 - 1)
    grey[:, 0, 0, 0] = torch.arange(256) / 255 * 2 - 1
    share = m.quantize(grey, stochastic=False).flatten(1)[:, 1:].float().mean()
    assert 0.27 < float(share) < 0.33


def test_dynamic_binarization_is_fresh_in_training_and_fixed_in_evaluation():
    m = module(binarize="dynamic")
    images = torch.zeros(64, 1, 4, 4)   # intensity 0.5 everywhere
    assert not torch.equal(m.quantize(images, stochastic=True), m.quantize(images, stochastic=True))
    assert torch.equal(m.quantize(images, stochastic=False), m.quantize(images, stochastic=False))


def test_uniform_network_scores_log2_levels_bits_per_dim():
    m = module(levels=17, binarize="none")
    for p in m.network.parameters():
        torch.nn.init.zeros_(p)
    images = torch.rand(3, 1, 4, 4) * 2 - 1
    nll = m.nll(images, None)
    torch.testing.assert_close(nll, torch.full((3,), 16 * math.log(17)))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="model.binarize=dynamic needs model.levels=2"):
        module(levels=256, binarize="dynamic")
    with pytest.raises(ValueError, match="model.binarize must be one of"):
        module(binarize="otsu")
    with pytest.raises(ValueError, match="data.num_classes is 0"):
        module(conditional=True, num_classes=0)


@pytest.mark.parametrize("preset", [p for p in presets("pixelcnn") if p != "pixelcnn_autoencoder"])  # the
# auto-encoder: test_autoencoder_conditions_on_the_code_of_the_image_and_samples_from_validation_codes
def test_presets_fast_dev_run_on_binarized_mnist(preset, tmp_path):
    metrics = run_train([f"model={preset}", "data=mnist5k", "debug=fdr", *TINY], tmp_path)
    # an untrained model is near 1 bit per binary pixel; after one step still finite and positive
    assert 0.2 < metrics["test/bits_per_dim"] < 2.0
    assert metrics["test/nll"] == pytest.approx(metrics["test/bits_per_dim"] * 784 * math.log(2), rel=1e-4)


def test_class_conditional_digits_with_17_levels_writes_a_sample_grid(tmp_path):
    metrics = run_train(["model=gated_pixelcnn", "data=digits", "model.levels=17", "model.binarize=none",
                         "model.conditional=true", "trainer.max_epochs=1", "model.num_fixed=10", *TINY[:2],
                         "logger=csv", "callbacks.evaluation=null", "callbacks.parzen=null"], tmp_path)
    assert 0 < metrics["test/bits_per_dim"] < math.log2(17) + 0.5
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["embedding_interpolation_epoch_000.png", "samples_epoch_000.png"]


def test_autoencoder_conditions_on_the_code_of_the_image_and_samples_from_validation_codes(tmp_path):
    metrics = run_train(["model=pixelcnn_autoencoder", "data=digits", "model.levels=17", "model.binarize=none",
                         "trainer.max_epochs=1", "model.num_fixed=4", *TINY[:2], "logger=csv",
                         "model.encoder.widths=[8]"], tmp_path)
    assert 0 < metrics["test/bits_per_dim"] < math.log2(17) + 0.5
    assert (tmp_path / "samples" / "samples_epoch_000.png").is_file()
    assert (tmp_path / "samples" / "embedding_interpolation_epoch_000.png").is_file()


def test_autoencoder_code_changes_the_likelihood():
    from lightning_modules.dcign.networks import DCIGNEncoder

    torch.manual_seed(0)
    m = module(levels=17, binarize="none", encoder=DCIGNEncoder(4, 1, latent_dim=3, widths=[4], variational=False))
    images = torch.rand(2, 1, 4, 4) * 2 - 1
    levels = m.quantize(images, stochastic=False)
    assert m.condition(None, levels).shape == (2, 3)
    with torch.no_grad():
        before = m.nll(images, None)
        m.encoder.mu.bias += 1.0          # another code for the same image: another likelihood
        after = m.nll(images, None)
    assert (before - after).abs().min() > 1e-4
    with pytest.raises(ValueError, match="condition on the class or on a code"):
        module(conditional=True, num_classes=10, encoder=DCIGNEncoder(4, 1, latent_dim=3, widths=[4]))


def test_embedding_pairs_are_two_different_classes():
    m = module(conditional=True, num_classes=10, levels=2)
    start, end = m.embedding_pairs(50, torch.Generator().manual_seed(0))
    assert start.shape == end.shape == (50, 10)
    assert (start.argmax(1) != end.argmax(1)).all() and torch.equal(start.sum(1), torch.ones(50))
    assert module().embedding_pairs(3) is None   # unconditional: nothing to interpolate


def test_condition_one_hot_unlabelled_and_vector_labels():
    m = module(conditional=True, num_classes=4)
    h = m.condition(torch.tensor([2, -1, 0]))
    assert torch.equal(h, torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]))
    attributes = torch.tensor([[1, 0, 1, 1], [0, 1, 0, 0]])         # multi-hot, e.g. CelebA attributes
    assert torch.equal(m.condition(attributes), attributes.float())
    with pytest.raises(ValueError, match="width 3 but data.num_classes=4"):
        m.condition(torch.ones(2, 3))


@pytest.mark.parametrize(("overrides", "conditional"), [
    (["model=gated_pixelcnn", "data=mnist5k"], True),                 # labelled data: class-conditional
    (["model=pixelcnn", "data=digits"], True),
    (["model=gated_pixelcnn", "data=celeba"], False),                 # no labels: unconditional
    (["model=gated_pixelcnn", "data=mnist5k", "model.conditional=false"], False),
    (["model=pixelcnn_autoencoder", "data=mnist5k"], False),          # the code conditions, not the class
])
def test_presets_condition_on_the_class_when_the_data_has_labels(overrides, conditional, tmp_path):
    from tests.hydra_helpers import compose_train

    assert compose_train(overrides, tmp_path).model.conditional is conditional


def test_colour_256_levels_on_a_cifar10_folder(tmp_path):
    from tests.fixtures_data import write_cifar10

    write_cifar10(tmp_path / "cifar10", n_per_batch=10)
    metrics = run_train(["model=gated_pixelcnn", "data=cifar10", f"data.root={tmp_path / 'cifar10'}",
                         "data.val_size=10", "model.levels=256", "model.binarize=none", "debug=fdr",
                         "model.network.hidden=6", *TINY[1:]], tmp_path / "run")
    # R -> G -> B softmaxes over 256 levels, class-conditional: about 8 bits per sub-pixel untrained
    assert 7.0 < metrics["test/bits_per_dim"] < 9.0
    assert metrics["test/nll"] == pytest.approx(metrics["test/bits_per_dim"] * 3 * 32 * 32 * math.log(2), rel=1e-4)


def test_celeba_multi_hot_attributes_condition_the_model(tmp_path):
    from tests.fixtures_data import CELEBA_ATTRIBUTES, write_celeba

    write_celeba(tmp_path / "celeba", n=12)
    metrics = run_train(["model=gated_pixelcnn", "data=celeba", f"data.root={tmp_path / 'celeba'}",
                         f"data.attributes=[{CELEBA_ATTRIBUTES[0]},{CELEBA_ATTRIBUTES[1]}]", "data.num_classes=2",
                         "data.image_size=8", "data.batch_size=4", "data.num_workers=0", "data.crop_size=16",
                         "model.levels=256", "model.binarize=none", "debug=fdr", "model.network.hidden=6",
                         *TINY[1:]], tmp_path / "run")
    assert 7.0 < metrics["test/bits_per_dim"] < 9.0
