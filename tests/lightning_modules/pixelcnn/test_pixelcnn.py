"""The PixelCNN LightningModule: quantization and binarization, the likelihood it logs, presets in train.py."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from lightning_modules.pixelcnn.module import PixelCNNModule
from lightning_modules.pixelcnn.networks import GatedPixelCNN, PixelCNN
from tests.hydra_helpers import compose_train, presets, run_cli, run_train

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
@pytest.mark.slow
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
    # -log p(x | h = f(x)) is logged as a reconstruction likelihood, never as the models' bits/dim
    assert 0 < metrics["test/reconstruction_bits_per_dim"] < math.log2(17) + 0.5
    assert metrics["test/reconstruction_nll"] == pytest.approx(
        metrics["test/reconstruction_bits_per_dim"] * 64 * math.log(2), rel=1e-4)
    assert not [key for key in metrics if key.endswith(("/bits_per_dim", "/nll", "/nll_step", "/nll_epoch"))]
    # the best checkpoint was ranked by it (optimized_metric = model.monitor; an unlogged monitor stops the run)
    assert (tmp_path / "checkpoints" / "epoch_000.ckpt").is_file()
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
    assert compose_train(overrides, tmp_path).model.conditional is conditional


@pytest.mark.slow
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


# ----------------------------------------------------------------------------- every preset, grey and RGB


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory):
    """A tiny CIFAR-10 in its on-disk layout (the Gated PixelCNN paper's own dataset, 3 colour channels)."""
    from tests.fixtures_data import write_cifar10

    root = tmp_path_factory.mktemp("cifar10")
    write_cifar10(root, n_per_batch=10)
    return root


@pytest.mark.parametrize("preset", presets("pixelcnn"))
@pytest.mark.parametrize("colour", [False, True], ids=["digits_grey", "cifar10_rgb"])
def test_every_preset_trains_a_batch_on_grey_and_colour_data_as_shipped(preset, colour, cifar10_root, tmp_path):
    """Each preset composed as train.py would, with its own network width, trains one batch on 1-channel and on
    3-channel data (the colour groups of the R -> G -> B ordering need a width divisible by 3)."""
    from hydra.utils import instantiate

    data = (["data=cifar10", f"data.root={cifar10_root}", "data.val_size=10", "model.levels=256",
             "model.binarize=none"] if colour else ["data=digits"])
    cfg = compose_train([f"model={preset}", *data], tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.train_dataloader()))
    model = instantiate(cfg.model)
    channels = 3 if colour else 1
    groups = channels * (2 if isinstance(model.network, PixelCNN) else 1)
    assert model.network.hidden % groups == 0 and model.network.hidden - cfg.model.network.hidden < groups
    optimizer = model.configure_optimizers()
    before = [p.detach().clone() for p in model.network.parameters()]
    loss = model.nll(images[:2], labels[:2], stochastic=True).mean()
    loss.backward()
    optimizer.step()
    # untrained: near log2(L) bits per sub-pixel (1 binarized, 8 at 256 levels); and the step moved the weights
    bits = float(loss.detach()) / (model.dims * math.log(2))
    assert abs(bits - math.log2(cfg.model.levels)) < 0.5, bits
    assert any(not torch.equal(a, b) for a, b in zip(before, model.network.parameters()))


def test_network_widths_round_up_to_equal_colour_groups():
    assert GatedPixelCNN(channels=1, hidden=32).hidden == 32
    assert GatedPixelCNN(channels=3, hidden=32).hidden == 33
    assert GatedPixelCNN(channels=3, hidden=384).hidden == 384          # the paper's width is kept
    assert GatedPixelCNN(channels=3, hidden=32, head_hidden=40).head_hidden == 42
    assert PixelCNN(channels=3, hidden=32).hidden == 36                 # 2h -> h: a multiple of 2 C
    assert PixelCNN(channels=1, hidden=63).hidden == 64
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        GatedPixelCNN(channels=3, hidden=0)


# ------------------------------------------------------------------------- eq. 5: s = m(h) from the config


def test_condition_map_is_built_from_the_condition_trained_and_sampled():
    """``model.network.cond_map_channels=K``: the module builds m (class one-hot or auto-encoder code ->
    (B, K, H, W)), the likelihood depends on it and trains it, and sampling passes s = m(h) to the cached
    sampler and the full one alike."""
    from lightning_modules.dcign.networks import DCIGNEncoder
    from lightning_modules.pixelcnn.conditioning import ConditionMap

    torch.manual_seed(0)
    net = functools.partial(GatedPixelCNN, hidden=4, layers=2, kernel_size=3, cond_map_channels=2)
    images = torch.rand(3, 1, 4, 4) * 2 - 1
    for kw, labels in (({"conditional": True, "num_classes": 5}, torch.tensor([0, 3, 4])),
                       ({"encoder": DCIGNEncoder(4, 1, latent_dim=3, widths=[4], variational=False)}, None)):
        m = module(network=net, levels=5, binarize="none", **kw)
        assert isinstance(m.cond_map, ConditionMap) and m.cond_map.out_channels == 2
        h = m.condition(labels, m.quantize(images, stochastic=False))
        assert m.network_conditions(h)[1].shape == (3, 2, 4, 4)
        nll = m.nll(images, labels)
        nll.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.cond_map.parameters())
        with torch.no_grad():
            m.cond_map.net[-1].bias += 1.0                               # another s, another likelihood
            assert (m.nll(images, labels) - nll).abs().min() > 1e-4
        z = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
        cached = m.generate(z, labels)
        m.hparams.cached_sampling = False
        assert torch.equal(cached, m.generate(z, labels))
    # eq. 5 alone (vector_conditioning=false): the network gets no h, only s
    m = module(network=net, conditional=True, num_classes=5, vector_conditioning=False)
    assert m.network.cond_dim == 0 and m.cond_map.cond_dim == 5
    assert m.network_conditions(m.condition(torch.tensor([1, 2])))[0] is None


def test_condition_map_and_monitor_errors_name_the_config_keys():
    from lightning_modules.dcign.networks import DCIGNEncoder

    net = functools.partial(GatedPixelCNN, hidden=4, layers=1, kernel_size=3, cond_map_channels=2)
    with pytest.raises(ValueError, match=r"model.network.cond_map_channels=2 .* model.conditional=true"):
        module(network=net)                                         # unconditional: nothing to map
    with pytest.raises(ValueError, match="model.vector_conditioning=false leaves the condition h unused"):
        module(conditional=True, num_classes=3, vector_conditioning=False)
    # an auto-encoder checkpoint saved before the rename holds monitor=val/bits_per_dim: it still loads
    with pytest.warns(UserWarning, match=r"model.monitor=val/bits_per_dim.* val/reconstruction_bits_per_dim"):
        legacy = module(encoder=DCIGNEncoder(4, 1, latent_dim=3, widths=[4], variational=False),
                        monitor="val/bits_per_dim")
    assert legacy.hparams.monitor == "val/reconstruction_bits_per_dim"
    with pytest.raises(ValueError, match=r"model.monitor=test/reconstruction_nll .* test/nll"):
        module(monitor="test/reconstruction_nll")


def test_autoencoder_preset_ranks_by_its_reconstruction_likelihood(tmp_path):
    cfg = compose_train(["model=pixelcnn_autoencoder"], tmp_path)
    assert cfg.model.monitor == cfg.optimized_metric == "val/reconstruction_bits_per_dim"
    assert cfg.callbacks.model_checkpoint.monitor == "val/reconstruction_bits_per_dim"
    cfg = compose_train(["model=gated_pixelcnn"], tmp_path)
    assert cfg.model.monitor == cfg.optimized_metric == "val/bits_per_dim"


@pytest.mark.slow
def test_cli_trains_and_samples_gated_pixelcnn_with_a_condition_map(tmp_path):
    """``python train.py model=gated_pixelcnn model.network.cond_map_channels=2 debug=fdr``: class-conditional
    on digits through eq. 4 and eq. 5, one batch of training, validation and test, and the sample grids."""
    out = tmp_path / "run"
    proc = run_cli(["train.py", "model=gated_pixelcnn", "data=digits", "model.levels=17", "model.binarize=none",
                    "model.network.cond_map_channels=2", "debug=fdr", *TINY,
                    f"hydra.run.dir={out}"])
    assert "test/bits_per_dim" in proc.stdout, proc.stdout[-3000:]
    assert (out / "samples" / "samples_epoch_000.png").is_file()
    assert (out / "samples" / "embedding_interpolation_epoch_000.png").is_file()
