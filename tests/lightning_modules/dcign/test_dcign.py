"""DC-IGN: clamping and replaced gradients, the batch-type ratio, the networks, the disentanglement
metrics, the faces3d batches, and the presets end to end under debug=fdr."""

from __future__ import annotations

import pytest
import torch

from datamodules.factors.batches import batch_type_schedule
from lightning_modules.dcign.disentanglement import (
    correlation_scores,
    largest_variance_latent,
    swap_latents,
    within_batch_variance,
)
from lightning_modules.dcign.invariance import clamp_inactive
from lightning_modules.dcign.module import default_latent_groups
from lightning_modules.dcign.networks import DCIGNDecoder, DCIGNEncoder, pooled_sizes
from tests.hydra_helpers import presets, run_train
from utils.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")

FACES = ["data=faces3d", "data.image_size=32", "data.train_batches=4", "data.val_batches=4",
         "data.test_batches=8", "data.train_identities=30", "data.val_identities=20", "data.test_identities=20",
         "model.encoder.widths=[8,8,8]", "model.encoder.latent_dim=16"]


# ---------------------------------------------------------------------- clamping, replaced gradients
def _clamp_with_grad(mode: str):
    z = torch.tensor([[1.0, 2.0, -1.0], [3.0, 6.0, 5.0]], requires_grad=True)
    active = torch.tensor([True, False, False])
    out = clamp_inactive(z, active, lam=0.01, mode=mode)
    upstream = torch.tensor([[0.5, 7.0, 3.0], [-1.0, 9.0, 4.0]])
    out.backward(upstream)
    return out.detach(), z.grad


def test_clamp_to_batch_mean_and_replaced_gradient_by_hand():
    out, grad = _clamp_with_grad("mean")
    # inactive columns replaced by their batch means (4, 2); the active column passes
    assert torch.equal(out, torch.tensor([[1.0, 4.0, 2.0], [3.0, 4.0, 2.0]]))
    # active: the upstream gradient; inactive: lambda * (z - mean), the upstream 7, 9, 3, 4 discarded
    expected = torch.tensor([[0.5, 0.01 * (2 - 4), 0.01 * (-1 - 2)], [-1.0, 0.01 * (6 - 4), 0.01 * (5 - 2)]])
    torch.testing.assert_close(grad, expected)


def test_first_variant_clamps_to_the_first_image_with_zero_gradient():
    out, grad = _clamp_with_grad("first")
    assert torch.equal(out, torch.tensor([[1.0, 2.0, -1.0], [3.0, 2.0, -1.0]]))
    assert torch.equal(grad, torch.tensor([[0.5, 0.0, 0.0], [-1.0, 0.0, 0.0]]))


def test_reference_clamp_to_the_first_image_and_its_gradient_by_hand():
    """modules/SelectiveOutputClamp.lua copies input[1] into every row; modules/SelectiveGradientFilter.lua
    gives a clamped entry invariance_strength * (x_i - batch mean) as a gradient of the maximised bound,
    i.e. -lambda * (x_i - mean) of our minimised loss."""
    out, grad = _clamp_with_grad("reference")
    assert torch.equal(out, torch.tensor([[1.0, 2.0, -1.0], [3.0, 2.0, -1.0]]))
    # batch means of the inactive columns: 4 and 2; the upstream 7, 9, 3, 4 discarded
    expected = torch.tensor([[0.5, -0.01 * (2 - 4), -0.01 * (-1 - 2)],
                             [-1.0, -0.01 * (6 - 4), -0.01 * (5 - 2)]])
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(grad, torch.tensor([[0.5, 0.02, 0.03], [-1.0, -0.02, -0.03]]))


@pytest.mark.parametrize("mode,factor", [("mean", 1 - 0.1 * 0.5), ("reference", 1 + 0.1 * 0.5),
                                         ("first", 1.0)])
def test_a_descent_step_pulls_towards_or_pushes_away_from_the_batch_mean(mode, factor):
    """One gradient-descent step (learning rate 0.1, lambda 0.5) on the clamped entries: the paper's rule
    shrinks their deviations from the batch mean by 1 - 0.05, the reference's widens them by 1 + 0.05,
    first leaves them; the batch mean itself does not move."""
    torch.manual_seed(0)
    x = torch.randn(6, 4, requires_grad=True)
    active = torch.tensor([True, False, False, False])
    clamp_inactive(x, active, lam=0.5, mode=mode).pow(2).sum().backward()
    stepped = (x - 0.1 * x.grad).detach()
    before, after = x.detach()[:, 1:], stepped[:, 1:]
    torch.testing.assert_close(after - after.mean(0), factor * (before - before.mean(0)))
    torch.testing.assert_close(after.mean(0), before.mean(0))


def test_clamp_rejects_bad_arguments():
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="model.clamp must be one of mean, reference, first, got 'median'"):
        clamp_inactive(z, torch.ones(3, dtype=torch.bool), mode="median")
    with pytest.raises(ValueError, match="bool mask of shape"):
        clamp_inactive(z, torch.ones(2, dtype=torch.bool))


def test_module_decoder_sees_clamped_code_and_encoder_gets_replaced_gradient():
    from lightning_modules.dcign.module import DCIGNModule

    torch.manual_seed(0)
    encoder, decoder = DCIGNEncoder(16, 1, 6, (4, 4)), DCIGNDecoder(16, 1, 6, (4, 4))
    module = DCIGNModule(encoder, decoder, optimizer=None, batch_types=["azimuth", "intrinsic"],
                         factor_names=["azimuth", "identity"], latent_groups=None)
    seen = {}
    decoder.register_forward_pre_hook(lambda m, args: seen.setdefault("z", args[0].detach().clone()))
    images = torch.rand(5, 1, 16, 16) * 2 - 1
    module.elbo_terms(images, torch.tensor(0))
    z = seen["z"]
    assert not torch.allclose(z[:, 0], z[0, 0].expand(5))  # azimuth latent varies
    assert torch.allclose(z[:, 1:], z[:1, 1:].expand(5, -1))  # all intrinsic latents equal their mean
    # the baseline (no batch type) decodes the raw sample
    module.hparams.invariance = False
    seen.clear()
    module.elbo_terms(images, torch.tensor(0))
    assert not torch.allclose(seen["z"][:, 1:], seen["z"][:1, 1:].expand(5, -1))


def test_clamped_latents_get_only_the_replaced_gradient_not_the_kl():
    """Sec. 3.1: a clamped latent's gradient is lambda * (z_i - mean_i) alone; the KL of the active group
    still trains it, and the KL value counts every latent."""
    from lightning_modules.dcign.module import DCIGNModule

    mu = torch.tensor([[1.0, 2.0, -1.0], [3.0, 6.0, 5.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, 0.5, -0.5], [1.0, 0.0, 0.2]], requires_grad=True)
    active = torch.tensor([True, False, False])
    kl = DCIGNModule.kl_divergence(mu, logvar, active)
    full = DCIGNModule.kl_divergence(mu, logvar)
    # value: 0.5 * sum(mu^2 + e^logvar - 1 - logvar) / B over all six entries
    by_hand = 0.5 * sum(m * m + torch.tensor(v).exp().item() - 1 - v for m, v in
                        zip([1.0, 2.0, -1.0, 3.0, 6.0, 5.0], [0.0, 0.5, -0.5, 1.0, 0.0, 0.2])) / 2
    torch.testing.assert_close(kl, torch.tensor(by_hand))
    torch.testing.assert_close(kl, full)
    kl.backward()
    # d/dmu = mu / B and d/dlogvar = (e^logvar - 1) / (2B) in the active column, 0 in the clamped ones
    torch.testing.assert_close(mu.grad, torch.tensor([[0.5, 0.0, 0.0], [1.5, 0.0, 0.0]]))
    e = torch.tensor([0.0, 1.0]).exp()
    torch.testing.assert_close(logvar.grad[:, 0], (e - 1) / 4)
    assert torch.equal(logvar.grad[:, 1:], torch.zeros(2, 2))


def _azimuth_batch(clamped_kl: bool, clamp: str = "mean") -> dict[str, torch.Tensor]:
    """One azimuth batch (B = 5, latent 0 active, 1..5 clamped, lambda 0.01) through a small DCIGNModule,
    backward through ``nll + kl``: the encoder's ``mu``, ``logvar`` and their gradients, the noise ``eps``
    the module drew, the code ``z`` the decoder saw and the ``kl`` value."""
    from lightning_modules.dcign.module import DCIGNModule

    torch.manual_seed(0)
    encoder, decoder = DCIGNEncoder(16, 1, 6, (4, 4)), DCIGNDecoder(16, 1, 6, (4, 4))
    module = DCIGNModule(encoder, decoder, optimizer=None, batch_types=["azimuth", "intrinsic"],
                         factor_names=["azimuth", "identity"], latent_groups=None, invariance_lambda=0.01,
                         clamped_kl=clamped_kl, clamp=clamp)
    kept = {}

    def keep(_module, _args, out):
        for t in out:
            t.retain_grad()
        kept["mu"], kept["logvar"] = out

    def keep_code(_module, args):
        kept["z"] = args[0].detach().clone()  # returns None: the decoder's input stays in the graph

    encoder.register_forward_hook(keep)
    decoder.register_forward_pre_hook(keep_code)
    images = torch.rand(5, 1, 16, 16) * 2 - 1
    torch.manual_seed(1)
    nll, kl, _, _ = module.elbo_terms(images, torch.tensor(0))
    (nll + kl).backward()
    mu, logvar = kept["mu"], kept["logvar"]
    torch.manual_seed(1)
    eps = torch.randn_like(mu)  # the same noise as elbo_terms drew
    return {"mu": mu.detach(), "logvar": logvar.detach(), "mu_grad": mu.grad, "logvar_grad": logvar.grad,
            "eps": eps, "z": kept["z"], "kl": kl.detach()}


def test_module_gives_a_clamped_latent_only_the_replaced_gradient():
    out = _azimuth_batch(clamped_kl=False)
    mu, grad = out["mu"], out["mu_grad"]
    z = mu + out["eps"] * (0.5 * out["logvar"]).exp()  # the raw sample
    # a clamped latent's mean receives exactly lambda / B * (z - mean(z)) of the raw sample: the loss is
    # the batch mean, the paper's lambda is relative to the sum over the batch (B = 5)
    torch.testing.assert_close(grad[:, 1:], 0.01 / 5 * (z[:, 1:] - z[:, 1:].mean(0)))
    assert grad[:, 0].abs().min() > 1e-4  # the active latent gets reconstruction + KL
    # model.clamped_kl=true adds the KL's pull d/dmu = mu / B
    out = _azimuth_batch(clamped_kl=True)
    mu, grad = out["mu"], out["mu_grad"]
    z = mu + out["eps"] * (0.5 * out["logvar"]).exp()
    torch.testing.assert_close(grad[:, 1:], 0.01 / 5 * (z[:, 1:] - z[:, 1:].mean(0)) + mu[:, 1:] / 5)


def test_reference_clamp_in_the_module_clamps_mean_and_logvar_then_draws_fresh_noise():
    """monovariant_main.lua with config.lua's init_network2_150_mv: mean and log-variance clamped to the
    first image's, Reparametrize draws noise per image, the KL is computed on the clamped outputs, and the
    filter adds its term in both backward passes (reconstruction, KL): -2 * lambda / B * (x - mean) here."""
    out = _azimuth_batch(clamped_kl=False, clamp="reference")
    mu, logvar, eps = out["mu"], out["logvar"], out["eps"]
    clamped_mu = torch.cat([mu[:, :1], mu[:1, 1:].expand(5, -1)], 1)
    clamped_logvar = torch.cat([logvar[:, :1], logvar[:1, 1:].expand(5, -1)], 1)
    torch.testing.assert_close(out["z"], clamped_mu + eps * (0.5 * clamped_logvar).exp())
    # fresh noise per image: the decoded code's clamped latents still differ across the batch
    assert (out["z"][:, 1:] - out["z"][:1, 1:]).abs()[1:].min() > 1e-6
    kl_clamped = 0.5 * (clamped_mu.pow(2) + clamped_logvar.exp() - 1 - clamped_logvar).sum() / 5
    torch.testing.assert_close(out["kl"], kl_clamped)
    for name, x in (("mu", mu), ("logvar", logvar)):
        torch.testing.assert_close(out[f"{name}_grad"][:, 1:], -2 * 0.01 / 5 * (x[:, 1:] - x[:, 1:].mean(0)))
    assert out["mu_grad"][:, 0].abs().min() > 1e-4 and out["logvar_grad"][:, 0].abs().min() > 1e-6
    # model.clamped_kl=true: the KL of the unclamped outputs passes its gradient, the term enters once
    out = _azimuth_batch(clamped_kl=True, clamp="reference")
    mu, logvar = out["mu"], out["logvar"]
    torch.testing.assert_close(out["mu_grad"][:, 1:],
                               -0.01 / 5 * (mu[:, 1:] - mu[:, 1:].mean(0)) + mu[:, 1:] / 5)
    torch.testing.assert_close(out["logvar_grad"][:, 1:], -0.01 / 5 * (logvar[:, 1:] - logvar[:, 1:].mean(0))
                               + (logvar[:, 1:].exp() - 1) / 10)


def test_clamped_kl_must_be_a_bool():
    from lightning_modules.dcign.module import DCIGNModule

    with pytest.raises(TypeError, match="model.clamped_kl must be true or false, got 'maybe'"):
        DCIGNModule(DCIGNEncoder(16, 1, 6, (4,)), DCIGNDecoder(16, 1, 6, (4,)), optimizer=None,
                    batch_types=["azimuth", "intrinsic"], factor_names=["azimuth", "identity"], clamped_kl="maybe")


def test_default_latent_groups_follow_the_paper():
    groups = default_latent_groups(["azimuth", "elevation", "light", "intrinsic"], 200)
    assert groups == {"azimuth": [0, 1], "elevation": [1, 2], "light": [2, 3], "intrinsic": [3, 200]}
    assert default_latent_groups(["azimuth", "intrinsic"], 10) == {"azimuth": [0, 1], "intrinsic": [1, 10]}


# ---------------------------------------------------------------------- batch types
def test_batch_type_ratio_over_many_draws():
    n = 130_000
    types = batch_type_schedule(n, [1, 1, 1, 10], seed=3)
    freq = torch.bincount(types, minlength=4).double() / n
    # binomial standard error ~0.0007 at p = 1/13: 6 standard errors
    torch.testing.assert_close(freq, torch.tensor([1, 1, 1, 10], dtype=torch.float64) / 13, atol=0.005, rtol=0)
    assert torch.equal(types, batch_type_schedule(n, [1, 1, 1, 10], seed=3))
    assert not torch.equal(types, batch_type_schedule(n, [1, 1, 1, 10], seed=4))
    with pytest.raises(ValueError, match="data.batch_ratio"):
        batch_type_schedule(5, [1, -1], seed=0)


def test_faces3d_batches_vary_one_factor_with_disjoint_identities():
    from datamodules.factors.faces3d import Faces3DDataModule

    dm = Faces3DDataModule(batch_size=6, image_size=32, batch_types=["azimuth", "elevation", "light", "intrinsic"],
                           batch_ratio=[1, 1, 1, 1], train_batches=40, val_batches=8, test_batches=8,
                           train_identities=20, val_identities=8, test_identities=8)
    heads = {}
    seen_types = set()
    for split in ("train", "val", "test"):
        ds = dm.dataset(split)
        heads[split] = set()
        for i in range(len(ds)):
            images, factors, kind = ds[i]
            assert images.shape == (6, 1, 32, 32) and -1 <= images.min() and images.max() <= 1
            kind = int(kind)
            seen_types.add(kind)
            changing = [j for j in range(4) if (factors[:, j] != factors[0, j]).any()]
            assert changing == [3 if kind == 3 else kind], (split, i, changing)
            heads[split] |= set(factors[:, 3].long().tolist())
    assert seen_types == {0, 1, 2, 3}
    assert not heads["train"] & heads["val"] and not heads["train"] & heads["test"] and not heads["val"] & heads["test"]
    # the same batch in a fresh DataModule: deterministic
    again = Faces3DDataModule(batch_size=6, image_size=32, batch_types=["azimuth", "elevation", "light", "intrinsic"],
                              batch_ratio=[1, 1, 1, 1], train_batches=40, val_batches=8, test_batches=8,
                              train_identities=20, val_identities=8, test_identities=8)
    assert torch.equal(again.dataset("train")[5][0], dm.dataset("train")[5][0])


def _faces3d(**kw):
    from datamodules.factors.faces3d import Faces3DDataModule

    return Faces3DDataModule(**{"batch_size": 4, "image_size": 16, "batch_ratio": [1, 1, 1, 1],
                                "batch_types": ["azimuth", "elevation", "light", "intrinsic"], "train_batches": 12,
                                "val_batches": 4, "test_batches": 4, "train_identities": 10, "val_identities": 4,
                                "test_identities": 4, **kw})


def _contents(loader) -> set[tuple[float, ...]]:
    """Each batch's factor values, as a set: which batches the loader served (in any order)."""
    return {tuple(factors.flatten().tolist()) for _, factors, _ in loader}


def test_redraw_sampler_serves_the_next_block_of_batches_each_epoch():
    from datamodules.factors.batches import RedrawSampler

    sampler = RedrawSampler(5, seed=1)
    first = list(sampler)
    sampler.set_epoch(3)
    assert sorted(sampler) == [15, 16, 17, 18, 19] and len(sampler) == 5
    sampler.set_epoch(0)
    assert list(sampler) == first and sorted(first) == [0, 1, 2, 3, 4] and first != [0, 1, 2, 3, 4]


def test_faces3d_trains_on_new_batches_every_epoch_and_evaluates_on_fixed_ones():
    from datamodules.factors.batches import RedrawSampler

    dm = _faces3d()
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, RedrawSampler)
    first = _contents(loader)
    loader.sampler.set_epoch(1)
    second = _contents(loader)
    assert len(first) == len(second) == 12 and not first & second  # 12 new batches
    loader.sampler.set_epoch(0)
    assert _contents(loader) == first  # an epoch's batches are reproducible (a resumed run)
    train = dm.dataset("train")
    assert len(train._cached) == 12  # only the first epoch's renders are kept
    for index in range(12, 24):  # later batches still vary one factor, of the training heads
        _, factors, kind = train[index]
        kind = int(kind)
        assert [j for j in range(4) if (factors[:, j] != factors[0, j]).any()] == [3 if kind == 3 else kind]
    # later epochs draw the batch types in the configured ratio: 6,000 draws, 5 standard errors
    types = torch.tensor([train.batch_type_index(i) for i in range(12, 12 * 501)])
    torch.testing.assert_close(torch.bincount(types, minlength=4).double() / len(types),
                               torch.full((4,), 0.25, dtype=torch.float64), atol=0.03, rtol=0)
    assert _contents(dm.val_dataloader()) == _contents(dm.val_dataloader())
    assert not isinstance(dm.val_dataloader().sampler, RedrawSampler)
    # switched off: the same 12 batches every epoch, reshuffled
    fixed = _faces3d(redraw_train_batches=False).train_dataloader()
    assert not isinstance(fixed.sampler, RedrawSampler) and _contents(fixed) == first == _contents(fixed)
    with pytest.raises(InputError, match="data.redraw_train_batches must be true or false, got 'yes'"):
        _faces3d(redraw_train_batches="yes")


def test_lightning_sets_the_epoch_of_the_redraw_sampler():
    from pytorch_lightning import LightningModule, Trainer

    class Record(LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen: list[tuple[int, tuple[float, ...]]] = []

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, tuple(batch[1].flatten().tolist())))
            return self.weight.sum() * 0 + self.weight.pow(2).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm, module = _faces3d(train_batches=3), Record()
    Trainer(max_epochs=2, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, accelerator="cpu").fit(module, datamodule=dm)
    epochs = [{c for e, c in module.seen if e == k} for k in (0, 1)]
    assert len(epochs[0]) == len(epochs[1]) == 3 and not epochs[0] & epochs[1]
    loader = _faces3d(train_batches=3).train_dataloader()
    loader.sampler.set_epoch(1)
    assert _contents(loader) == epochs[1]


def test_faces3d_rejects_other_factor_names():
    from datamodules.factors.faces3d import Faces3DDataModule

    with pytest.raises(ValueError, match="data.factor_names of faces3d"):
        Faces3DDataModule(factor_names=["azimuth", "identity"], batch_types=["azimuth"], batch_ratio=[1])


# ---------------------------------------------------------------------- networks
@pytest.mark.parametrize("size,sizes", [(150, (150, 75, 38, 19)), (64, (64, 32, 16, 8))])
def test_encoder_decoder_shapes_at_paper_and_small_size(size, sizes):
    assert pooled_sizes(size, 3) == sizes
    encoder, decoder = DCIGNEncoder(size, 1, 200, (6, 5, 4)), DCIGNDecoder(size, 1, 200, (6, 5, 4))
    mu, logvar = encoder(torch.rand(2, 1, size, size))
    assert mu.shape == logvar.shape == (2, 200)
    out = decoder(mu)
    assert out.shape == (2, 1, size, size) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match=f"expected images of shape \\(B, 1, {size}, {size}\\)"):
        encoder(torch.rand(2, 1, size + 1, size))


# ---------------------------------------------------------------------- metrics
def test_correlation_scores_on_known_relations():
    truth = torch.linspace(-1.2, 1.2, 50)
    scores = correlation_scores(2 * truth + 1, truth)
    assert scores["pearson"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)
    assert scores["r2"] == pytest.approx(1.0)
    scores = correlation_scores(-truth.pow(3), truth)
    assert scores["spearman"] == pytest.approx(-1.0)
    # Pearson of x and -x^3 on a symmetric grid, by numpy's formula; R^2 of a line is r^2
    import numpy as np

    r = np.corrcoef(-truth.double().numpy() ** 3, truth.double().numpy())[0, 1]
    assert scores["pearson"] == pytest.approx(r, abs=1e-6) and scores["r2"] == pytest.approx(r**2, abs=1e-6)
    assert correlation_scores(torch.zeros(10), truth[:10]) == {"pearson": 0.0, "spearman": 0.0, "r2": 0.0}


def test_within_batch_variance_and_largest_variance_latent_by_hand():
    a = torch.tensor([[0.0, 1.0, 5.0], [2.0, 1.0, 5.0]])  # variances 1, 0, 0
    b = torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 3.0]])  # variances 0, 4, 1
    assert within_batch_variance([a, b], torch.tensor([False, True, True])) == pytest.approx((0 + 0 + 4 + 1) / 4)
    assert largest_variance_latent([a, b]) == 1  # means 0.5, 2, 0.5


def test_swap_latents_takes_the_view_latent_from_each_target():
    codes = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    swapped = swap_latents(codes, torch.tensor([True, False]))
    assert torch.equal(swapped, torch.tensor([[2.0, 10.0], [3.0, 10.0]]))


def test_novel_view_mse_against_the_unswapped_reconstruction_by_hand():
    from lightning_modules.dcign.module import DCIGNModule

    class GrayFromFirstLatent(torch.nn.Module):
        """Decodes a flat 2x2 image whose gray value in [0, 1] is z_1."""
        latent_dim = 2

        def forward(self, z, logits=False):
            gray = z[:, :1].clamp(0, 1).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
            return gray.logit() if logits else gray

    module = DCIGNModule(DCIGNEncoder(16, 1, 2, (4,)), GrayFromFirstLatent(), optimizer=None,
                         batch_types=["azimuth", "intrinsic"], factor_names=["azimuth", "identity"])
    gray = torch.tensor([0.2, 0.5, 0.9])
    images = (gray * 2 - 1).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    codes = torch.stack([gray, torch.tensor([7.0, 8.0, 9.0])], 1)
    swapped, unswapped = module._novel_view_mse([(images, codes)])
    # the azimuth latent carries the view: swapping it in renders views 2 and 3 exactly
    assert swapped == pytest.approx(0.0, abs=1e-12)
    # view 1's own reconstruction (0.2) against views 2 and 3: ((0.3)^2 + (0.7)^2) / 2
    assert unswapped == pytest.approx((0.3**2 + 0.7**2) / 2)


# ---------------------------------------------------------------------- end to end
@pytest.mark.parametrize("preset", presets("dcign"))
def test_presets_fast_dev_run_on_faces3d(preset, tmp_path):
    metrics = run_train([f"model={preset}", *FACES, "debug=fdr", "logger=csv", "data.eval_batch_ratio=[1,0,0,0]"],
                        tmp_path)
    for key in ("train/loss", "val/loss", "test/loss", "test/recon_mse", "test/pearson/azimuth",
                "test/spearman/azimuth", "test/r2/azimuth", "test/invariance/azimuth", "test/novel_view_mse",
                "test/novel_view_unswapped_mse"):
        assert key in metrics and torch.isfinite(torch.tensor(metrics[key])), (key, sorted(metrics))
    assert 0 < metrics["test/recon_mse"] < 1
    names = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert names == [f"traversal_{f}_epoch_000.png" for f in ("azimuth", "elevation", "light")]
    assert (tmp_path / "plots" / "scatter_azimuth.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("clamp", ["first", "reference"])
def test_clamp_variants_and_gaussian_likelihood_train(clamp, tmp_path):
    metrics = run_train(["model=dcign", *FACES, "debug=fdr", "logger=csv", f"model.clamp={clamp}",
                         "model.likelihood=gaussian", "model.kl_warmup_steps=10",
                         ("model.latent_groups={azimuth:[0,2],elevation:[2,3],light:[3,4],intrinsic:[4,16]}")], tmp_path)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    # the first step of a KL warm-up trains the reconstruction alone
    assert metrics["train/kl_weight"] == 0.0 and metrics["train/loss"] == pytest.approx(metrics["train/nll"])


@pytest.mark.parametrize("override,message", [
    ("model.latent_groups={azimuth:[0,1],elevation:[1,2],light:[2,3],intrinsic:[3,17]}",
     "model.latent_groups.intrinsic"),
    ("model.clamp=median", "model.clamp must be one of mean, reference, first, got 'median'"),
])
def test_bad_model_config_is_a_clear_error(override, message, tmp_path):
    with pytest.raises(Exception, match=message):
        run_train(["model=dcign", *FACES, "debug=fdr", "logger=csv", override], tmp_path)


@pytest.mark.slow
def test_checkpoint_loads_weights_only_resumes_and_evaluates(tmp_path):
    import json

    from tests.hydra_helpers import run_cli

    small = [*FACES, "logger=csv", "trainer.max_epochs=1", "data.eval_batch_ratio=[1,1,1,1]"]
    run_cli(["train.py", "model=dcign_baseline", *small, f"hydra.run.dir={tmp_path / 'run'}"])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)  # plain hyper-parameters only
    assert checkpoint["hyper_parameters"]["batch_types"] == ["azimuth", "elevation", "light", "intrinsic"]
    # the baseline's pose latent, chosen by validation, is kept with the weights
    assert set(checkpoint["dcign"]["factor_latent"]) == {"azimuth", "elevation", "light"}
    # a crashed run resumes from last.ckpt: epoch 1 runs, epoch 0 is not repeated
    run_train(["model=dcign_baseline", *small, "trainer.max_epochs=2", f"ckpt_path={last}"], tmp_path / "resumed")
    assert [p.name for p in sorted((tmp_path / "resumed" / "samples").glob("traversal_azimuth_*"))] == \
        ["traversal_azimuth_epoch_001.png"]
    out = tmp_path / "eval"
    run_cli(["evaluate.py", f"ckpt_path={last}", f"hydra.run.dir={out}"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["test/recon_mse"] < 1 and -1 <= metrics["test/pearson/light"] <= 1
    assert (out / "plots" / "scatter_light.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["chairs", "factor_folder"])
def test_dcign_fast_dev_run_on_the_readers(dataset, tmp_path):
    from tests.fixtures_data import write_chairs, write_factor_folder

    if dataset == "chairs":
        write_chairs(tmp_path / "data" / "rendered_chairs", n_chairs=8)
        data = ["data=chairs", "data.train_chairs=5", "data.val_chairs=2", "data.crop_size=32"]
    else:
        write_factor_folder(tmp_path / "data" / "factors", identities=6)
        data = ["data=factor_folder", "data.val_fraction=0.2", "data.test_fraction=0.2"]
    metrics = run_train(["model=dcign", *data, f"paths.data_dir={tmp_path / 'data'}", "data.image_size=16",
                         "data.batch_size=4", "data.num_workers=0", "model.encoder.widths=[4,4]",
                         "model.encoder.latent_dim=8", "debug=fdr", "logger=csv"], tmp_path / "run")
    assert 0 < metrics["test/recon_mse"] < 1 and torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert (tmp_path / "run" / "samples" / "traversal_azimuth_epoch_000.png").is_file()


@pytest.mark.parametrize("preset", ["dcign", "dcign_baseline"])
def test_the_presets_train_with_the_papers_rmsprop_with_momentum(preset, tmp_path):
    """The paper trains with rmsprop with momentum (the reference code's rmsprop.lua), not torch's RMSprop:
    both presets default to ``model/optimizer=dcign_reference`` (Adam, betas 0.9 and 0.99, lr 5e-4)."""
    from hydra.utils import instantiate

    from tests.hydra_helpers import compose_train

    optimizer = compose_train([f"model={preset}", "data=faces3d"], tmp_path).model.optimizer
    built = instantiate(optimizer)(params=[torch.zeros(1, requires_grad=True)])
    assert type(built) is torch.optim.Adam
    assert built.defaults["betas"] == (0.9, 0.99) and built.defaults["lr"] == 5e-4
    assert built.defaults["eps"] == 1e-8


def test_the_reference_optimizer_config_reproduces_rmsprop_lua():
    """``model/optimizer=dcign_reference`` takes the steps of the reference code's rmsprop.lua
    (momentumDecay 0.1, updateDecay 0.01, bias-corrected; learning rate 5e-4), computed here by hand."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tests.conftest import ROOT

    factory = instantiate(OmegaConf.load(ROOT / "conf" / "model" / "optimizer" / "dcign_reference.yaml"))
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = factory(params=[x])
    grads = torch.tensor([[0.3, -1.2, 2.0], [-0.7, -0.9, 1.5], [0.2, 0.4, -3.0]], dtype=torch.float64)
    ref, m, v = x.detach().clone(), torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        x.grad = g.clone()
        optimizer.step()
        m = 0.9 * m + 0.1 * g  # state.m:mul(1 - b1):add(b1 * dfdx)
        v = 0.99 * v + 0.01 * g * g  # state.v:mul(1 - b2):add(b2 * dfdx^2)
        gamma = (1 - 0.99**t) ** 0.5 / (1 - 0.9**t)
        ref = ref - 5e-4 * gamma * m / (v + 1e-8).sqrt()
        # steps are ~5e-4; the eps placement (inside or outside the root) moves them by < 1e-8
        torch.testing.assert_close(x.detach(), ref, rtol=0, atol=1e-8)
