"""The colorization presets end to end on the embedded photos, and their shared pieces."""

from __future__ import annotations

import pytest
import torch

from tests.hydra_helpers import compose_train, presets, run_train

OBJECTIVES = ["gan", "lsgan", "ebgan", "wgan"]
PRESETS = presets("colorization")  # every colorizer preset in conf/model/
FDR = ["data=photos", "debug=fdr", "logger=csv"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_colorizer_preset_fast_dev_run(preset, tmp_path):
    metrics = run_train([f"model={preset}", *FDR], tmp_path)
    # one batch: WGAN's n_critic = 5 means a critic step only
    train_keys = ("train/wasserstein",) if "wgan" in preset else ("train/l1", "train/g_loss")
    for key in (*train_keys, "val/l1", "test/psnr", "test/ssim", "test/auc", "test/colourfulness",
                "test/gray_psnr", "test/gray_auc"):
        assert key in metrics and torch.isfinite(torch.tensor(metrics[key])), key
    assert ("train/d_loss" in metrics) == (preset != "colorizer_l1")
    # the grayscale baseline (ab = 0) has (almost) no colour; the true photos do
    assert metrics["test/gray_colourfulness"] < 1.0 < metrics["test/true_colourfulness"]
    assert 0.0 <= metrics["test/auc"] <= 1.0 and 0.0 < metrics["test/ssim"] <= 1.0
    assert (tmp_path / "samples" / "colorization_epoch_000.png").is_file()
    assert not (tmp_path / "samples" / "samples_epoch_000.png").exists()  # the GAN grid skips this method


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_colorizer_objectives_are_the_gan_familys_own(objective, tmp_path):
    colorizer = compose_train([f"model=colorizer_{objective}", "data=photos"], tmp_path).model
    # the plain GAN objective is DCGAN's (the gan preset uses its paper code's mean cost, gan_mean)
    family = compose_train([f"model={'dcgan' if objective == 'gan' else objective}"], tmp_path).model
    assert colorizer.objective == family.objective
    assert colorizer.n_critic == family.n_critic
    if objective == "wgan":  # WGAN's RMSprop comes along; the others use pix2pix's Adam
        assert colorizer.optimizer_d == family.optimizer_d


def test_colorizer_ranks_checkpoints_by_val_l1(tmp_path):
    cfg = compose_train(["model=colorizer_lsgan", "data=photos"], tmp_path)
    assert cfg.optimized_metric == "val/l1" and cfg.callbacks.model_checkpoint.monitor == "val/l1"
    assert compose_train(["model=dcgan"], tmp_path).optimized_metric == "val/fid"


def test_grayscale_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="grayscale"):
        run_train(["model=colorizer_lsgan", "data=digits", "debug=fdr", "logger=csv"], tmp_path)


def test_colorize_rgb_uses_only_lightness(tmp_path):
    from hydra.utils import instantiate

    model = instantiate(compose_train(["model=colorizer_l1", "data=photos", "data.image_size=32"], tmp_path).model)
    model.eval()
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    colour = gray.expand(-1, 3, -1, -1).clone()
    assert torch.allclose(model.colorize_rgb(gray), model.colorize_rgb(colour), atol=1e-6)
    assert model.colorize_rgb(gray).shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_colorize_command_on_a_true_grayscale_photo(tmp_path):
    from PIL import Image
    from skimage.data import camera

    from tests.hydra_helpers import run_cli

    run = tmp_path / "run"
    run_cli(["train.py", "model=colorizer_l1", "data=photos", "data.image_size=32", "debug=limit",
             "trainer.max_epochs=1", "logger=csv", "test=false", f"hydra.run.dir={run}"])
    photos = tmp_path / "photos"
    photos.mkdir()
    gray = Image.fromarray(camera()).resize((100, 75))  # mode "L": a true black-and-white photograph
    gray.save(photos / "camera.png")
    Image.fromarray(camera()[:40, :50]).convert("P").save(photos / "palette.gif")
    Image.fromarray(camera()[:30, :20]).convert("RGBA").save(photos / "alpha.png")  # alpha is dropped
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    run_cli(["colorize.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"input={photos}",
             "sheet_height=64", f"hydra.run.dir={out}"])
    colour = Image.open(out / "camera_color.png")
    assert colour.mode == "RGB" and colour.size == (100, 75)  # any size: padded for the U-Net, cropped back
    assert Image.open(out / "palette_color.png").size == (50, 40)
    assert Image.open(out / "alpha_color.png").size == (20, 30)  # smaller than the U-Net's 32: padded
    sheet = Image.open(out / "sheet.png")
    assert sheet.size[1] == 3 * 64  # one row per image
    # the README's command names scikit-image's camera (512x512 grayscale): the same input, as RGB
    from colorize import read_inputs

    [(name, image)] = read_inputs("skimage:camera")
    assert name == "camera" and image.shape == (3, 512, 512) and image.dtype == torch.uint8
    assert torch.equal(image[0], torch.from_numpy(camera())) and torch.equal(image[0], image[2])
    with pytest.raises(ValueError, match="no photo named 'nothing'"):
        read_inputs("skimage:nothing")


def test_colorize_bad_inputs(tmp_path):
    from colorize import input_images, read_inputs
    from utils.errors import InputError, MissingFileError

    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no image files"):
        input_images(tmp_path / "empty")
    with pytest.raises(MissingFileError, match="does not exist"):
        input_images(tmp_path / "missing.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="broken.png"):
        read_inputs(str(bad))
    with pytest.raises(InputError, match="no photo named"):
        read_inputs("skimage:no_such_photo")


@pytest.mark.slow
@pytest.mark.parametrize("spec, message", [("missing.png", "input=.*missing.png does not exist"),
                                           ("skimage:camerra", "scikit-image has no photo named 'camerra'")])
def test_colorize_command_reports_a_bad_input_in_one_line(tmp_path, spec, message):
    import re
    import subprocess
    import sys

    from tests.hydra_helpers import ROOT

    spec = str(tmp_path / spec) if not spec.startswith("skimage:") else spec
    proc = subprocess.run([sys.executable, "colorize.py", f"ckpt_path={tmp_path / 'nothing.ckpt'}", f"input={spec}",
                           f"hydra.run.dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert re.search(message, line), line
