"""AdversarialModule pieces: the conditioning, sampling protocol and the max-norm constraint."""

import pytest
import torch
from hydra.utils import instantiate

from tests.hydra_helpers import compose_train


def build(tmp_path, *overrides):
    return instantiate(compose_train(["logger=csv", *overrides], tmp_path).model)


def test_max_col_norm_bounds_every_unit(tmp_path):
    model = build(tmp_path, "model=gan", "model.max_col_norm=1.9365")  # the TFD configs' value
    assert model.hparams.max_col_norm == pytest.approx(1.9365)
    linears = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for m in linears:
            m.weight.mul_(100.0)
    small = linears[-1].weight.detach().clone() / 1e4  # a row already within the bound stays as it is
    with torch.no_grad():
        linears[-1].weight.copy_(small)
    model.constrain(model.discriminator)
    for m in linears:
        norms = m.weight.norm(dim=1)
        assert norms.max().item() <= 1.9365 * (1 + 1e-5)
    assert torch.equal(linears[-1].weight, small)
    assert max(m.weight.norm(dim=1).max().item() for m in linears[:-1]) == pytest.approx(1.9365, rel=1e-5)


def test_conditioning_and_sampling_protocol(tmp_path):
    model = build(tmp_path, "model=cgan", "data=digits")
    model.eval()
    cond = model.condition(torch.tensor([3, 0]))
    assert cond.tolist() == [[0.0, 0.0, 0.0, 1.0] + [0.0] * 6, [1.0] + [0.0] * 9]
    with pytest.raises(ValueError, match="unlabelled"):
        model.condition(torch.tensor([-1, 2]))
    images = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8) and images.abs().max() <= 1.0
    again = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again)  # the same seed gives the same samples
    assert model.fixed_labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    # the class changes what is generated from the same z
    z = model.fixed_z[:1].repeat(2, 1)
    a, b = model.generate(z, torch.tensor([0, 1]))
    assert (a - b).abs().max() > 1e-4


def test_unconditional_model_ignores_labels(tmp_path):
    model = build(tmp_path, "model=dcgan")
    assert model.condition(torch.tensor([1, 2])) is None and model.random_labels(3) is None
    z = model.fixed_z[:2]
    model.eval()
    assert torch.equal(model.generate(z, torch.tensor([0, 1])), model.generate(z))
