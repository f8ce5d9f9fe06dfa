"""A checkpoint's hyper-parameters are chosen by value, not by name: a new constructor argument holding a
network or a partial optimizer stays out of them, so the checkpoint still loads with
``torch.load(weights_only=True)``."""

from __future__ import annotations

import pickle
from functools import partial

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from lightning_modules.optimization import ConfiguredModule, NotPlain, plain_value


class WithEncoder(ConfiguredModule):
    """A module with argument names no list knows: ``encoder`` (a network), ``optimizer_e`` (a partial)."""

    def __init__(self, encoder: nn.Module, optimizer_e, beta: float = 0.5, layers: list | None = None,
                 weight=None, hook=None, options=None) -> None:
        super().__init__()
        self.encoder = encoder
        self.save_plain_hyperparameters()


class Deeper(WithEncoder):
    """A subclass whose own arguments (``gamma``, a network ``critic``) join its parent's."""

    def __init__(self, critic: nn.Module, gamma: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.critic = critic


def test_only_plain_values_become_hyperparameters(tmp_path):
    model = WithEncoder(encoder=nn.Linear(2, 2), optimizer_e=partial(torch.optim.Adam, lr=1e-3), beta=0.25,
                        layers=OmegaConf.create([16, 32]), weight=torch.ones(2), hook=lambda x: x)
    assert dict(model.hparams) == {"beta": 0.25, "layers": [16, 32], "options": None}
    assert type(model.hparams.layers) is list  # Hydra's ListConfig made a plain list
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save(checkpoint, tmp_path / "model.ckpt")
    loaded = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert loaded["hyper_parameters"] == {"beta": 0.25, "layers": [16, 32], "options": None}
    assert torch.equal(loaded["state_dict"]["encoder.weight"], model.encoder.weight)
    # what the by-name list let through before: a partial under a new name breaks weights_only loading
    torch.save({"hyper_parameters": {"optimizer_e": partial(torch.optim.Adam, lr=1e-3)}}, tmp_path / "old.ckpt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "old.ckpt", weights_only=True)


def test_nested_containers_and_a_subclass(tmp_path):
    options = OmegaConf.create({"sizes": [1, 2], "name": "x", "inner": {"rate": "${..ratio}"}, "ratio": 0.5})
    model = Deeper(critic=nn.Linear(2, 1), gamma=np.float64(3.0), encoder=nn.Linear(2, 2),
                   optimizer_e=partial(torch.optim.SGD, lr=0.1), layers=(np.int64(4), 8), options=options)
    assert dict(model.hparams) == {"gamma": 3.0, "beta": 0.5, "layers": (4, 8), "weight": None, "hook": None,
                                   "options": {"sizes": [1, 2], "name": "x", "inner": {"rate": 0.5},
                                               "ratio": 0.5}}
    assert type(model.hparams.gamma) is float and type(model.hparams.layers[0]) is int
    assert model.hparams_initial == model.hparams
    torch.save({"hyper_parameters": dict(model.hparams)}, tmp_path / "deeper.ckpt")
    assert torch.load(tmp_path / "deeper.ckpt", weights_only=True)["hyper_parameters"] == dict(model.hparams)
    # a container holding one object is not plain as a whole
    with pytest.raises(NotPlain, match="Linear"):
        plain_value({"layers": [1, nn.Linear(1, 1)]})
    with pytest.raises(NotPlain, match="partial"):
        plain_value([partial(torch.optim.SGD, lr=0.1)])
