"""CIE LAB conversion (``datamodules/lab.py``) and the embedded colour photographs (``datamodules/images/photos.py``)."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from datamodules.embedded_photos import PHOTO_NAMES, load_photo, load_photos
from datamodules.images.photos import PhotosDataModule
from datamodules.lab import AB_SCALE, lab_scaled_to_rgb, rgb_to_lab_scaled
from datamodules.transforms import to_signed

CONF = Path(__file__).resolve().parents[3] / "conf" / "data" / "photos.yaml"


@pytest.fixture(scope="module")
def photos():
    return load_photos()


@pytest.fixture(scope="module")
def datamodule():
    dm = PhotosDataModule(batch_size=8, crops_per_image=4, eval_crops_per_image=3)
    dm.setup()
    return dm


def _photo_crops(photo: torch.Tensor, size: int = 96, n: int = 4) -> torch.Tensor:
    """``n`` float ``[-1, 1]`` crops along the photo's diagonal, ``(n, 3, size, size)``."""
    h, w = photo.shape[-2:]
    tops = torch.linspace(0, h - size, n).long().tolist()
    lefts = torch.linspace(0, w - size, n).long().tolist()
    return torch.stack([to_signed(photo[:, t : t + size, s : s + size]) for t, s in zip(tops, lefts)])


# ------------------------------------------------------------------------------------------- LAB
def test_round_trip_on_real_photos(photos):
    worst = 0.0
    for name in ("astronaut", "coffee", "china", "flower"):
        rgb = _photo_crops(photos[name])
        L, ab = rgb_to_lab_scaled(rgb)
        assert L.shape == (4, 1, 96, 96) and ab.shape == (4, 2, 96, 96)
        back = lab_scaled_to_rgb(L, ab)
        assert back.shape == rgb.shape
        worst = max(worst, (back - rgb).abs().max().item())
    assert worst < 1e-3, worst


def test_gray_has_zero_chroma():
    levels = torch.linspace(-1, 1, 11).view(11, 1, 1, 1)
    gray = levels.expand(11, 3, 5, 7).contiguous()
    L, ab = rgb_to_lab_scaled(gray)
    assert ab.abs().max().item() < 1e-4
    assert torch.all(L[1:].mean((1, 2, 3)) > L[:-1].mean((1, 2, 3)))  # lightness increases with the level


def test_white_and_black_lightness():
    white, black = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)
    L_white, ab_white = rgb_to_lab_scaled(white)
    L_black, ab_black = rgb_to_lab_scaled(black)
    assert torch.allclose(L_white, torch.ones_like(L_white), atol=1e-4)  # L* = 100
    assert torch.allclose(L_black, -torch.ones_like(L_black), atol=1e-4)  # L* = 0
    assert ab_white.abs().max() < 1e-4 and ab_black.abs().max() < 1e-4
    assert torch.allclose(lab_scaled_to_rgb(L_white, ab_white), white, atol=1e-4)
    assert torch.allclose(lab_scaled_to_rgb(L_black, ab_black), black, atol=1e-4)


def test_known_colour_sign():
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    _, ab = rgb_to_lab_scaled(red)
    a, b = (ab[0, :, 0, 0] * AB_SCALE).tolist()
    assert a == pytest.approx(80.1, abs=0.5) and b == pytest.approx(67.2, abs=0.5)  # sRGB red, D65


def test_scaled_ranges_on_all_photos(photos):
    for name, photo in photos.items():
        rgb = to_signed(photo[:, ::2, ::2]).unsqueeze(0)
        L, ab = rgb_to_lab_scaled(rgb)
        assert L.min() >= -1 - 1e-5 and L.max() <= 1 + 1e-5, name
        assert ab.abs().max() < 1.0, name


def test_out_of_gamut_ab_is_clamped():
    L = torch.zeros(1, 1, 3, 3)
    ab = torch.full((1, 2, 3, 3), 5.0)
    rgb = lab_scaled_to_rgb(L, ab)
    assert rgb.min() >= -1 and rgb.max() <= 1


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"grayscale image\) where a 3-channel RGB colour image"):
        rgb_to_lab_scaled(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"colour image\) where the 1-channel grayscale lightness"):
        lab_scaled_to_rgb(torch.zeros(2, 3, 8, 8), torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match=r"batch \(B, 3, H, W\)"):
        rgb_to_lab_scaled(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="ab must have 2 channel"):
        lab_scaled_to_rgb(torch.zeros(2, 1, 8, 8), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="share batch size"):
        lab_scaled_to_rgb(torch.zeros(2, 1, 8, 8), torch.zeros(2, 2, 4, 8))
    with pytest.raises(ValueError, match="float"):
        rgb_to_lab_scaled(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# ------------------------------------------------------------------------------------------- photos
def test_embedded_photos_are_real_colour_photos(photos):
    assert list(photos) == list(PHOTO_NAMES) and len(photos) == 10
    for name, photo in photos.items():
        assert photo.dtype == torch.uint8 and photo.shape[0] == 3 and min(photo.shape[1:]) >= 300, name
        assert (photo[0].float() - photo[1].float()).abs().mean() > 1.0, f"{name} looks grayscale"
    with pytest.raises(KeyError, match="unknown photo"):
        load_photo("colorwheel")


def test_split_by_photograph(datamodule):
    names = datamodule.split_names()
    assert names == {
        "train": ["coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle", "flower"],
        "val": ["astronaut", "china"],
        "test": ["chelsea", "retina"],
    }
    recorded = {split: set(datamodule.dataset(split).photo_names) for split in ("train", "val", "test")}
    assert recorded == {split: set(v) for split, v in names.items()}
    assert not recorded["train"] & recorded["val"]
    assert not recorded["train"] & recorded["test"]
    assert not recorded["val"] & recorded["test"]
    assert set().union(*recorded.values()) == set(PHOTO_NAMES)
    val = datamodule.dataset("val")
    assert {val.photo_of(i) for i in range(len(val))} == recorded["val"]


def test_shapes_and_ranges(datamodule):
    assert len(datamodule.dataset("train")) == 6 * 4
    assert len(datamodule.dataset("val")) == 2 * 3 and len(datamodule.dataset("test")) == 2 * 3
    for split, loader in (("train", datamodule.train_dataloader()), ("val", datamodule.val_dataloader())):
        images, labels = next(iter(loader))
        assert images.shape == (8, 3, 64, 64) if split == "train" else images.shape == (6, 3, 64, 64)
        assert images.dtype == torch.float32 and images.min() >= -1 and images.max() <= 1
        assert labels.dtype == torch.long and torch.all(labels == -1)


def test_val_crops_fixed_train_crops_random(datamodule):
    other = PhotosDataModule(crops_per_image=4, eval_crops_per_image=3)
    other.setup()
    for split in ("val", "test"):
        a = torch.stack([datamodule.dataset(split)[i][0] for i in range(6)])
        b = torch.stack([other.dataset(split)[i][0] for i in range(6)])
        assert torch.equal(a, b), split
        assert not torch.equal(a[0], a[1])  # distinct crops, not one repeated
    train = datamodule.dataset("train")
    first, second = train[0][0], train[0][0]
    assert first.shape == (3, 64, 64) and not torch.equal(first, second)
    assert train.photo_of(0) == "coffee" and train.photo_of(len(train) - 1) == "flower"


def test_instantiate_from_config():
    cfg = OmegaConf.load(CONF)
    cfg.crops_per_image = 2
    cfg.eval_crops_per_image = 2
    dm = hydra.utils.instantiate(cfg)
    assert isinstance(dm, PhotosDataModule)
    assert (dm.image_size, dm.channels, dm.num_classes, dm.batch_size) == (64, 3, 0, 16)
    dm.setup()
    assert len(dm.dataset("train")) == 12 and dm.dataset("test")[0][0].shape == (3, 64, 64)


def test_bad_options_raise_clear_errors():
    cfg = OmegaConf.load(CONF)
    cfg.channels = 1
    with pytest.raises(InstantiationException, match=r"data\.channels=1.*must be 3"):
        hydra.utils.instantiate(cfg)  # Hydra wraps the ValueError, keeping its message
    with pytest.raises(ValueError, match=r"data\.channels=1.*must be 3"):
        PhotosDataModule(channels=1)
    with pytest.raises(ValueError, match="num_classes"):
        PhotosDataModule(num_classes=10)
    too_big = PhotosDataModule(image_size=320)  # chelsea is 300x451, the smallest
    with pytest.raises(ValueError, match=r"photo 'chelsea' is 300x451, smaller than the 320x320 crop"):
        too_big.setup()
    with pytest.raises(ValueError, match="leaves no train photo"):
        PhotosDataModule(val_photos=5, test_photos=5).setup()
