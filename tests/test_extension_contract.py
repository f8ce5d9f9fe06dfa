"""The extension contract: a researcher adds a method of their own without changing a file of genforge.

In a temporary folder outside the project, a package ``mylab`` holds a new adversarial objective (with a
penalty through the objective hook) and a new LightningModule with a third network, an encoder (a VAE-GAN,
Larsen et al. 2016, reduced to its three players); a ``conf/`` folder on Hydra's search path holds their
configs, composed from genforge's ``dcgan`` preset. The test trains it as a user would (``train.py`` in a
subprocess): ``debug=fdr``, then a short run with checkpoints, a resume of that run, and ``evaluate.py``
with ``trusted_packages=[mylab]`` -- and checks that no file of the project changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.hydra_helpers import ROOT, run_cli

OBJECTIVE = '''
"""A user's objective: the non-saturating GAN loss with softplus, plus Karras et al. 2018's drift penalty."""
import torch.nn.functional as F

from lightning_modules.objectives import AdversarialObjective


class DriftObjective(AdversarialObjective):
    """L_D = E softplus(-D(x)) + E softplus(D(G(z))) + drift * E D(x)^2; L_G = E softplus(-D(G(z)))."""

    def __init__(self, drift: float = 1e-3, r1_gamma: float = 0.0):
        super().__init__(r1_gamma=r1_gamma)
        self.drift = drift

    def discriminator_loss(self, real_out, fake_out):
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean(), {}

    def generator_loss(self, fake_out):
        return F.softplus(-fake_out).mean(), {}

    def penalty(self, discriminate, real, fake, labels):
        base, logs = super().penalty(discriminate, real, fake, labels)
        drift = self.drift * discriminate(real, labels).pow(2).mean()
        return (drift if base is None else base + drift), {**logs, "drift": drift.detach()}
'''

MODULE = '''
"""A user's method: a VAE-GAN's three players on genforge's adversarial module."""
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.gan.module import AdversarialModule


class Encoder(nn.Module):
    """x (B, C, H, W) in [-1, 1] -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, channels: int, image_size: int, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, 16, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(16 * (image_size // 2) ** 2, 2 * latent_dim))

    def forward(self, x):
        return self.net(x).chunk(2, dim=1)


class VAEGAN(AdversarialModule):
    """The discriminator steps on real vs sampled images, the encoder on reconstruction + KL, the generator
    on the adversarial loss + reconstruction."""

    def __init__(self, encoder, optimizer_e, kl_weight: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.optimizer_e = optimizer_e
        self.save_plain_hyperparameters()

    def optimizer_plan(self):
        return [*super().optimizer_plan(), ("encoder", self.encoder.parameters(), self.optimizer_e, None)]

    def training_step(self, batch, batch_idx):
        real, labels = batch
        players = self.players()
        fake = self.generator_output(self.noise(real.shape[0], device=self.device))
        with self.toggled_optimizer(players["discriminator"]):
            self.discriminator_step(players["discriminator"], self.discriminate, real, fake.detach(), labels)
        self.count_critic_step()
        with self.toggled_optimizer(players["encoder"]):
            mu, logvar = self.encoder(real)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
            e_loss = F.mse_loss(self.generator_output(z), real) + self.hparams.kl_weight * kl
            self.update(players["encoder"], e_loss, "encoder")
        with self.toggled_optimizer(players["generator"]):
            g_adv, _ = self.objective.generator_loss(self.discriminate(fake))
            g_loss = g_adv + F.mse_loss(self.generator_output(z.detach()), real)
            self.update(players["generator"], g_loss, "generator")
        self.log_dict({"train/e_loss": e_loss.detach(), "train/g_loss": g_loss.detach()})
'''

MODEL_CONFIG = '''
# mylab's VAE-GAN: genforge's dcgan preset with mylab's objective and a third network
defaults:
  - dcgan
  - override objective: drift
  - _self_

_target_: mylab.vaegan.VAEGAN
encoder:
  _target_: mylab.vaegan.Encoder
  channels: ${data.channels}
  image_size: ${data.image_size}
  latent_dim: ${..latent_dim}
optimizer_e:
  _target_: torch.optim.Adam
  _partial_: true
  lr: 0.0002
  betas: [0.5, 0.999]
kl_weight: 0.01
'''

OBJECTIVE_CONFIG = '''
_target_: mylab.objectives.DriftObjective
drift: 0.001
r1_gamma: 0.0
'''


def write_user_project(root: Path) -> Path:
    """``root/mylab`` (the package) and ``root/conf`` (its configs); returns the config folder."""
    files = {"mylab/__init__.py": "", "mylab/objectives.py": OBJECTIVE, "mylab/vaegan.py": MODULE,
             "conf/model/vaegan.yaml": MODEL_CONFIG, "conf/model/objective/drift.yaml": OBJECTIVE_CONFIG}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root / "conf"


def project_state() -> str:
    """What git sees of the project: modified and untracked files (ignored outputs and caches excluded)."""
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_users_method_trains_resumes_and_evaluates_without_changing_the_project(tmp_path, monkeypatch):
    conf = write_user_project(tmp_path / "user")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "user"))
    before = project_state()
    user = [f"hydra.searchpath=[file://{conf}]", "model=vaegan", "data=mnist5k", "logger=csv",
            "trainer.accelerator=cpu", "data.num_workers=0"]

    # 1. the smoke test of seconds
    smoke = run_cli([str(ROOT / "train.py"), *user, "debug=fdr", f"hydra.run.dir={tmp_path / 'fdr'}"], cwd=tmp_path)
    assert "Traceback" not in smoke.stderr

    # 2. a short run with checkpoints: 1 epoch of 3 batches, then resumed in its own folder for a second
    run = tmp_path / "run"
    short = [*user, "debug=limit", "trainer.limit_train_batches=3", "callbacks.parzen=null",
             f"hydra.run.dir={run}"]
    run_cli([str(ROOT / "train.py"), *short, "trainer.max_epochs=1"], cwd=tmp_path)
    first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert first["epoch"] == 0 and first["generator_steps"] == 3
    assert {"kl_weight", "latent_dim"} <= set(first["hyper_parameters"])
    assert not {"encoder", "optimizer_e", "objective"} & set(first["hyper_parameters"])  # by value
    encoder_keys = [k for k in first["state_dict"] if k.startswith("encoder.")]
    assert encoder_keys and len(first["optimizer_states"]) == 3  # generator, discriminator, encoder

    run_cli([str(ROOT / "train.py"), *short, "trainer.max_epochs=2", "ckpt_path=last"], cwd=tmp_path)
    second = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert second["epoch"] == 1 and second["generator_steps"] == 6  # went on, not from scratch
    moved = [not torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in encoder_keys]
    assert any(moved)  # the encoder trained in the resumed epoch
    assert (run / "csv" / "metrics.csv").read_text().count("train/e_loss") == 1  # one history

    # 3. evaluate.py refuses the user's classes until the user's package is trusted
    evaluate = ["evaluate.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "num_samples=8",
                "trainer.accelerator=cpu"]
    refused = subprocess.run([sys.executable, *evaluate, f"hydra.run.dir={tmp_path / 'refused'}"], cwd=ROOT,
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "trusted_packages=[mylab]" in refused.stdout + refused.stderr
    out = tmp_path / "evaluated"
    run_cli([*evaluate, "trusted_packages=[mylab]", f"hydra.run.dir={out}"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 8 and len(list((out / "samples").glob("sample_*.png"))) == 8
    assert metrics["test/fid"] > 0

    assert project_state() == before  # no file of genforge was changed or added
