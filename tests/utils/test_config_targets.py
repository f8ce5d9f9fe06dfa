"""The one walk over a config's ``_target_``s (utils/config_targets.py) and the allowlist built on it
(utils/target_allowlist.py), with the packages a user trusts (``trusted_packages`` of conf/trust.yaml)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.hydra_helpers import compose_train
from utils.checkpoints import load_run, model_targets
from utils.config_targets import UnresolvedTargetError, iter_targets
from utils.errors import InputError, UntrustedConfigError
from utils.target_allowlist import check_target, check_targets, trusted

SOURCE = "run/.hydra/config.yaml"


def test_every_target_is_found_once_with_its_key_path():
    cfg = OmegaConf.create({"model": {
        "_target_": "lightning_modules.gan.module.AdversarialModule",
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
        "scheduler_d": "${.scheduler_g}",  # an interpolated config is followed, under its own key
        "scheduler_g": {"decay": {"_target_": "lightning_modules.schedules.ExponentialDecay"}},
        "layers": [{"_target_": "torch.nn.Tanh"}, "???", {"_target_": "???"}],  # missing values: skipped
        "missing": "???", "nothing": None, "unresolved": "${no.such.key}", "latent_dim": 8}})
    found = [(path, target) for path, _, target in iter_targets(cfg)]
    assert found == [("model", "lightning_modules.gan.module.AdversarialModule"),
                     ("model.optimizer", "torch.optim.Adam"),
                     ("model.scheduler_d.decay", "lightning_modules.schedules.ExponentialDecay"),
                     ("model.scheduler_g.decay", "lightning_modules.schedules.ExponentialDecay"),
                     ("model.layers[0]", "torch.nn.Tanh")]
    # the node is the config that instantiate would call the target with
    partial = [node.get("_partial_") for path, node, _ in iter_targets(cfg) if path == "model.optimizer"]
    assert partial == [True]
    # model_targets (the identity each checkpoint records) is the same walk, from the model node
    assert model_targets(cfg.model) == dict(found)
    assert check_targets(cfg, SOURCE) == 5


def test_a_target_that_does_not_resolve_is_named():
    cfg = OmegaConf.create({"model": {"net": {"_target_": "${oc.env:GF_NO_SUCH_VARIABLE}"}}})
    with pytest.raises(UnresolvedTargetError, match=r"^model\.net\._target_ does not resolve") as error:
        list(iter_targets(cfg))
    assert error.value.key == "model.net._target_"
    with pytest.raises(UntrustedConfigError, match=rf"^{SOURCE}: model\.net\._target_ does not resolve"):
        check_targets(cfg, SOURCE)


@pytest.fixture
def own_packages(tmp_path, monkeypatch):
    """Real packages on ``sys.path``: ``mylab`` (a network, a function, a re-exported stdlib class) and
    ``mylabx`` (a name that starts like it)."""
    for package, body in {
        "mylab": """
            import subprocess

            import torch

            class Net(torch.nn.Module):
                '''(B, 2) latents -> (B, 3, 4, 4) images in [-1, 1].'''

                def __init__(self):
                    super().__init__()
                    self.linear = torch.nn.Linear(2, 48)

                def sample(self, n, generator=None):
                    return torch.tanh(self.linear(torch.randn(n, 2, generator=generator))).view(n, 3, 4, 4)

            def make():
                return Net()

            Popen = subprocess.Popen
            """,
        "mylabx": """
            class Net:
                pass
            """,
    }.items():
        (tmp_path / "own" / package).mkdir(parents=True)
        (tmp_path / "own" / package / "__init__.py").write_text("")
        (tmp_path / "own" / package / "models.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "own"))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("mylab", "mylabx")]:
        del sys.modules[name]


def test_own_package_is_refused_until_trusted(own_packages):
    with pytest.raises(UntrustedConfigError, match="outside the allowlist") as error:
        check_target("mylab.models.Net", "model._target_", SOURCE)
    assert f"{SOURCE}: model._target_='mylab.models.Net' is outside the allowlist" in str(error.value)
    assert "if mylab is your own code, trust it: trusted_packages=[mylab]" in str(error.value)
    check_target("mylab.models.Net", "model._target_", SOURCE, ("mylab",))
    check_target("mylab.models.Net", "model._target_", SOURCE, ("mylab.models",))
    # trusted is a package and its subpackages, not a prefix of names; and still only classes defined there
    refusals = {"mylabx.models.Net": "is outside the allowlist",
                "mylab.models.make": "is a function, not a class",
                "mylab.models.Popen": "resolves to subprocess.Popen",
                "mylab.models.Nope": "cannot be located"}
    for target, why in refusals.items():
        with pytest.raises(UntrustedConfigError, match=why):
            check_target(target, "model._target_", SOURCE, ("mylab",))
    # no fix is suggested that would trust Python's or a dependency's code
    with pytest.raises(UntrustedConfigError) as error:
        check_target("os.system", "model._target_", SOURCE, ("mylab",))
    assert "trusted_packages=[" not in str(error.value)


def test_trusted_packages_must_be_a_list_of_own_package_names():
    assert trusted(None) == () and trusted(["mylab", "otherlab.models"]) == ("mylab", "otherlab.models")
    assert trusted(OmegaConf.create(["mylab"])) == ("mylab",)
    with pytest.raises(InputError, match=r"trusted_packages='mylab' must be a list .*=\[mylab\]"):
        trusted("mylab")
    for bad, why in {"my-lab": "is not a package name", "": "is not a package name",
                     3: "is not a package name", "os": "is not your own code",
                     "torch.nn": "is not your own code", "subprocess": "is not your own code"}.items():
        with pytest.raises(InputError, match=rf"^trusted_packages: {bad!r} {why}"):
            trusted([bad])
    # checked wherever they are used: a string is not spread into one-letter packages
    with pytest.raises(InputError, match="must be a list"):
        check_target("m.Net", "model._target_", SOURCE, "mylab")
    with pytest.raises(InputError, match="'os' is not your own code"):
        check_targets(OmegaConf.create({"a": 1}), SOURCE, trusted_packages=["os"])


def _run_folder(tmp_path: Path, run_config: dict) -> Path:
    """A run folder whose model is ``mylab.models.Net``, with a checkpoint of its weights."""
    from mylab.models import Net

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    OmegaConf.save(OmegaConf.create(run_config), run / ".hydra" / "config.yaml")
    torch.manual_seed(0)
    torch.save({"state_dict": Net().state_dict()}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def test_evaluate_runs_an_own_method_when_its_package_is_trusted(own_packages, tmp_path):
    """``python evaluate.py ckpt_path=... trusted_packages=[mylab]``, composed as the command composes it;
    a ``trusted_packages`` written into the run folder's config is not read."""
    import evaluate

    ckpt = _run_folder(tmp_path, {"model": {"_target_": "mylab.models.Net"},
                                  "trusted_packages": ["mylab"]})
    base = [f"ckpt_path={ckpt}", "num_samples=3", "test=false"]
    with pytest.raises(UntrustedConfigError, match=r"trusted_packages=\[mylab\]"):
        evaluate.evaluate(compose_train(base, tmp_path / "refused", config_name="eval"))
    assert not (tmp_path / "refused" / "metrics.json").exists()

    cfg = compose_train([*base, "trusted_packages=[mylab]"], tmp_path / "eval", config_name="eval")
    assert evaluate.evaluate(cfg) == {}
    assert sorted(p.name for p in (tmp_path / "eval" / "samples").iterdir()) == [
        "grid.png", "sample_00000.png", "sample_00001.png", "sample_00002.png"]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics == {"ckpt_path": str(ckpt), "num_samples": 3}


def test_load_run_with_trusted_packages_loads_the_weights(own_packages, tmp_path):
    ckpt = _run_folder(tmp_path, {"model": {"_target_": "mylab.models.Net"}})
    paths = OmegaConf.create({"output_dir": str(tmp_path / "out")})
    with pytest.raises(UntrustedConfigError, match="outside the allowlist"):
        load_run(ckpt, None, None, paths)
    model, run_cfg = load_run(ckpt, None, None, paths, trusted_packages=["mylab"])
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert type(model).__module__ == "mylab.models" and not model.training
    assert torch.equal(model.linear.weight, saved["linear.weight"]) and model.linear.weight.shape == (48, 2)
    assert run_cfg.paths.output_dir == str(tmp_path / "out")
