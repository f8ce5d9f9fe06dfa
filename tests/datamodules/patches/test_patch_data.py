"""Patch data of the Deep GMM: the BSDS300 protocol, ``patches`` (embedded photos), ``bsds300`` (Berkeley
folder or preprocessed HDF5) and ``tiny_images``, on fixtures in the real layouts (``fixtures_data.py``)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler, default_collate

try:
    from tests.fixtures_data import write_bsds300_folder, write_bsds300_hdf5, write_tiny_images
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from fixtures_data import write_bsds300_folder, write_bsds300_hdf5, write_tiny_images

from datamodules.patches.bsds300 import BSDS300DataModule, read_bsds300_hdf5
from datamodules.patches.photo_patches import PATCH_PHOTO_NAMES, PatchesDataModule
from datamodules.patches.protocol import (
    PatchDataset,
    check_patches,
    collate_patches,
    cut_patches,
    dequantize,
    extract_patches,
    patch_dim,
    patch_positions,
    patches_from_images,
    spread_counts,
    to_grayscale,
)
from datamodules.patches.tiny_images import TinyImagesDataModule

pytestmark = pytest.mark.usefixtures("single_thread")

CONF = Path(__file__).resolve().parents[3] / "conf" / "data"
DEFAULT_SPLIT = {
    "train": ["camera", "moon", "coins", "grass", "gravel", "brick", "page", "clock", "cell", "rocket",
              "immunohistochemistry"],
    "val": ["coffee", "chelsea", "motorcycle"],
    "test": ["text", "astronaut", "hubble_deep_field", "retina"],
}


def full_patches(x: np.ndarray) -> np.ndarray:
    """Put the dropped last pixel back: the centred patch sums to 0, so it is minus the sum of the rest."""
    return np.concatenate([x, -x.sum(axis=1, keepdims=True)], axis=1)


def ramp() -> np.ndarray:
    """An 8x8 ramp: pixel (i, j) = 4 (8 i + j), values 0, 4, ..., 252, mean 126."""
    return (4 * np.arange(64)).reshape(8, 8).astype(np.uint8)


# ================================================================================================ protocol


def test_patch_dim():
    assert patch_dim() == 63 and patch_dim(8) == 63 and patch_dim(4) == 15
    with pytest.raises(ValueError, match="patch_size"):
        patch_dim(1)


def test_dequantize_adds_noise_in_0_1_before_dividing_by_256():
    pixels = np.random.default_rng(3).integers(0, 256, size=(500, 64)).astype(np.uint8)
    values = dequantize(pixels, np.random.default_rng(0))
    assert values.dtype == np.float64 and values.min() >= 0 and values.max() < 1
    noise = values * 256 - pixels
    assert noise.min() >= 0 and noise.max() < 1
    assert 0.45 < noise.mean() < 0.55  # uniform, not constant


def test_ramp_patch_by_hand():
    x = extract_patches(ramp(), 1, np.random.default_rng(0))
    assert x.shape == (1, 63) and x.dtype == np.float64
    # x * 256 = pixel - 126 (the patch mean) + (noise - its mean), the noise term within (-1, 1)
    expected = 4 * np.arange(63) - 126.0
    assert np.abs(x[0] * 256 - expected).max() < 1
    assert -127 < x[0, 0] * 256 < -125 and 121 < x[0, 62] * 256 < 123
    # the dropped bottom-right pixel (252) is minus the sum of the others
    assert 125 < -x[0].sum() * 256 < 127
    # the same numbers written out: positions (the only one, (0, 0)), then noise, /256, centre, drop
    rng = np.random.default_rng(0)
    rng.integers(0, 1, size=1), rng.integers(0, 1, size=1)
    v = (4 * np.arange(64) + rng.random((1, 64))) / 256
    np.testing.assert_array_equal(x, (v - v.mean())[:, :63])


def test_constant_image_leaves_only_centred_noise():
    image = np.full((40, 50), 100, dtype=np.uint8)
    x = extract_patches(image, 300, np.random.default_rng(1))
    assert x.shape == (300, 63)
    assert np.abs(x).max() < 1 / 256
    full = full_patches(x)
    assert np.abs(full.mean(axis=1)).max() < 1e-15
    assert np.abs(full * 256).max() < 1 and full.std() * 256 > 0.2  # centred U[0, 1): std ~0.29


def test_positions_cover_the_image_and_cut_the_right_pixels():
    h, w = 20, 30
    rng = np.random.default_rng(0)
    positions = patch_positions(h, w, 2000, rng)
    assert positions.dtype == np.int64 and positions.shape == (2000, 2)
    assert positions[:, 0].min() == 0 and positions[:, 0].max() == h - 8
    assert positions[:, 1].min() == 0 and positions[:, 1].max() == w - 8
    coded = np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]  # pixel (i, j) -> 1000 i + j
    patches = cut_patches(coded, positions[:5])
    for (top, left), patch in zip(positions[:5], patches):
        np.testing.assert_array_equal(patch, coded[top : top + 8, left : left + 8].reshape(-1))


def test_real_photo_values_and_means():
    photo = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)))
    x = extract_patches(photo, 1000, np.random.default_rng(0))
    assert x.min() > -1 and x.max() < 1
    assert np.abs(full_patches(x).sum(axis=1)).max() < 1e-12


def test_colour_images_are_converted_with_pillow():
    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(to_grayscale(rgb), gray)
    np.testing.assert_array_equal(extract_patches(rgb, 20, np.random.default_rng(5)),
                                  extract_patches(gray, 20, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="uint8"):
        to_grayscale(rgb.astype(np.float32))


def test_seed_determines_patches():
    image = np.random.default_rng(0).integers(0, 256, (50, 60), dtype=np.uint8)
    a = extract_patches(image, 100, np.random.default_rng(7))
    b = extract_patches(image, 100, np.random.default_rng(7))
    c = extract_patches(image, 100, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_patch_size_is_configurable():
    x = extract_patches(np.zeros((10, 10), np.uint8), 5, np.random.default_rng(0), patch_size=4)
    assert x.shape == (5, 15)


def test_small_image_error_names_it():
    with pytest.raises(ValueError, match=r"tiny\.png is 5x9"):
        extract_patches(np.zeros((5, 9), np.uint8), 1, np.random.default_rng(0), name="tiny.png")


def test_spread_counts_and_owners():
    assert spread_counts(10, 3) == [4, 3, 3] and sum(spread_counts(60000, 11)) == 60000
    images = [("a", np.zeros((10, 10), np.uint8)), ("b", np.full((10, 10), 200, np.uint8))]
    x, owners = patches_from_images(images, [3, 2], np.random.default_rng(0))
    assert x.shape == (5, 63) and owners.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="2 images for 3 patch counts"):
        patches_from_images(images, [1, 1, 1], np.random.default_rng(0))


@pytest.mark.parametrize("array, match", [
    (np.zeros(63), r"src\.h5\['train'\]: expected float \(N, 63\).*got shape \(63,\)"),
    (np.zeros((4, 48)), r"src\.h5\['train'\]: expected float \(N, 63\).*got shape \(4, 48\)"),
    (np.zeros((0, 63)), r"src\.h5\['train'\].*no rows"),
    (np.where(np.eye(4, 63) > 0, np.nan, 0.0), r"src\.h5\['train'\]: holds 4 NaN and 0 infinite"),
    (np.where(np.eye(4, 63) > 0, -np.inf, 0.0), r"src\.h5\['train'\]: holds 0 NaN and 4 infinite"),
])
def test_check_patches_errors(array, match):
    with pytest.raises(ValueError, match=match):
        check_patches(array, "src.h5['train']", 63)


def test_patch_dataset_items_and_batches():
    x = np.random.default_rng(0).standard_normal((25, 63)) * 0.1
    dataset = PatchDataset(x, "toy", 63)
    item, index = dataset[7]
    assert item.dtype == torch.float64 and index.dtype == torch.int64 and index.item() == 7
    np.testing.assert_array_equal(item.numpy(), x[7])
    batch = dataset.__getitems__([4, 2, 9])
    fast, slow = collate_patches(batch), default_collate(batch)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)
    loader = DataLoader(dataset, batch_size=10, collate_fn=collate_patches)
    xb, ib = next(iter(loader))
    assert xb.shape == (10, 63) and xb.dtype == torch.float64 and ib.tolist() == list(range(10))
    with pytest.raises(IndexError):
        dataset[25]


# ================================================================================================ patches


@pytest.fixture(scope="module")
def default_patches():
    dm = PatchesDataModule()
    dm.setup()
    return dm


def test_patches_default_split_names():
    dm = PatchesDataModule()
    names = dm.split_names()
    assert names == DEFAULT_SPLIT
    assert sorted(itertools.chain(*names.values())) == sorted(PATCH_PHOTO_NAMES) and len(PATCH_PHOTO_NAMES) == 18
    other = PatchesDataModule(split_seed=1).split_names()
    assert other != names and {len(v) for v in other.values()} == {11, 3, 4}
    with pytest.raises(ValueError, match="leaves no train photo"):
        PatchesDataModule(val_photos=9, test_photos=9)


def test_patches_splits_by_photograph(default_patches):
    dm = default_patches
    assert dm.dim == 63
    sizes = {split: len(dm.dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 60000, "val": 10000, "test": 20000}
    seen = {}
    for split, names in DEFAULT_SPLIT.items():
        ds = dm.dataset(split)
        assert ds.source_names == names
        seen[split] = {ds.source_names[i] for i in ds.owners.unique().tolist()}
        assert seen[split] == set(names)  # every photo of the split contributes, none of another split
        counts = torch.bincount(ds.owners).tolist()
        assert max(counts) - min(counts) <= 1  # spread evenly
        x = ds.x
        assert x.dtype == torch.float64 and x.shape[1] == 63
        assert x.min() > -1 and x.max() < 1 and x.mean().abs() < 0.01
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])


def test_patches_batches_and_determinism(default_patches):
    dm = default_patches
    x, index = next(iter(dm.val_dataloader()))
    assert x.shape == (10000, 63) and x.dtype == torch.float64 and index.dtype == torch.int64
    assert index.tolist() == list(range(10000))
    x, index = next(iter(dm.train_dataloader()))
    assert index.tolist() != list(range(10000))  # shuffled
    assert torch.equal(x, dm.dataset("train").x[index])  # index = position in the split's dataset
    again = PatchesDataModule(train_patches=60000, val_patches=10, test_patches=10)
    x2, index2 = next(iter(again.train_dataloader()))  # same seed: same patches, same order
    assert torch.equal(index, index2) and torch.equal(x, x2)
    first_epoch, second_epoch = (next(iter(loader))[1] for loader in [dm.train_dataloader()] * 2)
    assert not torch.equal(first_epoch, second_epoch)  # a new order every epoch


def test_patches_loader_under_distributed_sampler(default_patches):
    from pytorch_lightning.utilities.data import _update_dataloader

    dm = default_patches
    seen = []
    for rank in (0, 1):  # what Lightning does under DDP: re-create the plain loader with its sampler
        sampler = DistributedSampler(dm.dataset("train"), num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = _update_dataloader(dm.train_dataloader(), sampler)
        batches = list(loader)
        assert all(x.shape[1] == 63 for x, _ in batches)
        seen.append(torch.cat([index for _, index in batches]))
    assert len(seen[0]) == len(seen[1]) == 30000
    assert torch.cat(seen).unique().numel() == 60000


def test_patches_options_and_errors():
    dm = PatchesDataModule(train_patches=110, val_patches=30, test_patches=40, patch_size=4, batch_size=16)
    assert dm.dim == 15 and dm.dataset("train").x.shape == (110, 15)
    with pytest.raises(ValueError, match=r"data.dim=63 but data.patch_size=4"):
        PatchesDataModule(patch_size=4, dim=63)
    with pytest.raises(ValueError, match="data.train_patches"):
        PatchesDataModule(train_patches=0)


@pytest.mark.parametrize("name, cls, root", [
    ("patches", PatchesDataModule, None),
    ("bsds300", BSDS300DataModule, "bsds300"),
    ("tiny_images", TinyImagesDataModule, "tiny_images"),
])
def test_configs_instantiate(tmp_path, name, cls, root):
    from hydra.utils import instantiate

    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")},
                            "data": OmegaConf.load(CONF / f"{name}.yaml")})
    dm = instantiate(cfg.data)
    assert type(dm) is cls and dm.dim == 63 and dm.patch_size == 8 and dm.batch_size == 10000
    if root:
        assert dm.root == tmp_path / root
        assert dm.cache is True and dm.cache_dir == tmp_path / "cache" / "decoded"


# ================================================================================================ bsds300


def test_bsds300_folder(tmp_path):
    written = write_bsds300_folder(tmp_path, n_train=10, n_test=4)
    dm = BSDS300DataModule(root=str(written["folder"]), train_patches=800, val_patches=200, test_patches=400,
                           val_images=2, batch_size=128)
    assert {s: len(dm.dataset(s)) for s in ("train", "val", "test")} == {"train": 800, "val": 200, "test": 400}
    train, val = set(dm.split_images["train"]), set(dm.split_images["val"])
    assert len(train) == 8 and len(val) == 2 and not train & val and train | val == set(written["train"])
    assert dm.split_images["test"] == written["test"]
    # the test split is the protocol on the test JPEGs, in sorted order, converted with Pillow, seed [0, 2]
    folder = written["folder"] / "images" / "test"
    images = [(n, np.asarray(Image.open(folder / n).convert("L"))) for n in written["test"]]
    expected, _ = patches_from_images(images, spread_counts(400, 4), np.random.default_rng([0, 2]))
    np.testing.assert_array_equal(dm.dataset("test").x.numpy(), expected)
    x, index = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 63) and x.dtype == torch.float64 and index.dtype == torch.int64
    assert x.min() > -1 and x.max() < 1
    again = BSDS300DataModule(root=str(tmp_path), train_patches=800, val_patches=200, test_patches=400,
                              val_images=2)  # the folder holding BSDS300/ works too, with the same result
    assert torch.equal(again.dataset("train").x, dm.dataset("train").x)


def test_bsds300_hdf5(tmp_path):
    arrays = write_bsds300_hdf5(tmp_path / "BSDS300" / "BSDS300.hdf5", n=40, dtype="float32")
    for root in (tmp_path / "BSDS300" / "BSDS300.hdf5", tmp_path / "BSDS300", tmp_path):
        dm = BSDS300DataModule(root=str(root), batch_size=8)
        for key, split in (("train", "train"), ("validation", "val"), ("test", "test")):
            served = dm.dataset(split).x
            assert served.dtype == torch.float64
            np.testing.assert_array_equal(served.numpy(), arrays[key].astype(np.float64))
    x, index = next(iter(dm.test_dataloader()))
    assert x.shape == (8, 63) and index.tolist() == list(range(8))


def test_bsds300_both_layouts_need_format(tmp_path):
    write_bsds300_folder(tmp_path, n_train=3, n_test=2)
    arrays = write_bsds300_hdf5(tmp_path / "BSDS300" / "BSDS300.hdf5", n=8)
    with pytest.raises(ValueError, match="holds both images/ and BSDS300.hdf5; set data.format"):
        BSDS300DataModule(root=str(tmp_path / "BSDS300")).setup()
    dm = BSDS300DataModule(root=str(tmp_path / "BSDS300"), format="hdf5")
    np.testing.assert_array_equal(dm.dataset("val").x.numpy(), arrays["validation"])
    dm = BSDS300DataModule(root=str(tmp_path / "BSDS300"), format="images", train_patches=20, val_patches=5,
                           test_patches=6, val_images=1)
    assert len(dm.dataset("test")) == 6


def test_bsds300_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"data.root={tmp_path / 'nowhere'} does not exist"):
        BSDS300DataModule(root=str(tmp_path / "nowhere")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no BSDS300 data.*images/train"):
        BSDS300DataModule(root=str(tmp_path / "empty")).setup()
    written = write_bsds300_folder(tmp_path, n_train=3, n_test=2)
    train = written["folder"] / "images" / "train"
    with pytest.raises(ValueError, match="val_images=3 leaves no training image of the 3"):
        BSDS300DataModule(root=str(written["folder"]), val_images=3).setup()
    for name in written["train"]:
        (train / name).unlink()
    with pytest.raises(ValueError, match=f"no images in {train}"):
        BSDS300DataModule(root=str(written["folder"])).setup()
    train.rmdir()
    with pytest.raises(FileNotFoundError, match=f"{train} does not exist"):
        BSDS300DataModule(root=str(written["folder"])).setup()
    write_bsds300_folder(tmp_path, n_train=3, n_test=2)
    (train / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        BSDS300DataModule(root=str(written["folder"]), val_images=1, train_patches=5, val_patches=5,
                          test_patches=5).setup()


@pytest.mark.parametrize("kwargs, match", [
    ({"drop": "validation"}, r"lacks the array\(s\) \['validation'\]; found keys \['test', 'train'\]"),
    ({"drop": "train"}, r"lacks the array\(s\) \['train'\]; found keys \['test', 'validation'\]"),
    ({"dim": 48}, r"BSDS300\.hdf5\['train'\]: expected float \(N, 63\).*got shape \(40, 48\)"),
    ({"bad": "test"}, r"BSDS300\.hdf5\['test'\]: holds 1 NaN"),
    ({"bad": "validation", "bad_value": float("inf")}, r"BSDS300\.hdf5\['validation'\]: holds 0 NaN and 1 inf"),
])
def test_bsds300_hdf5_errors(tmp_path, kwargs, match):
    path = tmp_path / "BSDS300.hdf5"
    write_bsds300_hdf5(path, n=40, **kwargs)
    with pytest.raises(ValueError, match=match):
        BSDS300DataModule(root=str(path)).setup()


def test_bsds300_hdf5_other_errors(tmp_path, monkeypatch):
    path = tmp_path / "BSDS300.hdf5"
    write_bsds300_hdf5(path, n=8)
    with pytest.raises(ValueError, match=r"BSDS300\.hdf5\['train'\]: expected float \(N, 15\)"):
        BSDS300DataModule(root=str(path), patch_size=4).setup()
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"this is not HDF5")
    with pytest.raises(ValueError, match=f"cannot read {junk} as an HDF5 file"):
        BSDS300DataModule(root=str(junk)).setup()
    with pytest.raises(FileNotFoundError, match="missing.hdf5 does not exist"):
        read_bsds300_hdf5(tmp_path / "missing.hdf5")
    import h5py

    grouped = tmp_path / "grouped.hdf5"
    with h5py.File(grouped, "w") as f:
        f.create_group("train")
        f.create_dataset("validation", data=np.zeros((2, 63)))
        f.create_dataset("test", data=np.zeros((2, 63)))
    with pytest.raises(ValueError, match=r"grouped\.hdf5: \['train'\] are HDF5 groups"):
        read_bsds300_hdf5(grouped)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="pip install h5py"):
        read_bsds300_hdf5(path)


# ================================================================================================ tiny_images


def test_tiny_images(tmp_path):
    written = write_tiny_images(tmp_path, n=12)["files"]
    dm = TinyImagesDataModule(root=str(tmp_path), val_images=2, test_images=0.25, batch_size=4)
    sizes = {s: len(dm.dataset(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 7, "val": 2, "test": 3}
    files = {s: set(dm.split_files[s]) for s in sizes}
    assert files["train"] | files["val"] | files["test"] == set(written)  # README.txt, .thumb.png skipped
    assert sum(len(f) for f in files.values()) == 12
    for split in sizes:
        ds = dm.dataset(split)
        for i in range(len(ds)):
            levels = written[ds.source_of(i)].astype(np.float64).reshape(-1)
            centred = levels - levels.mean()  # BOX of constant 4x4 blocks is exact; then only noise is added
            assert np.abs(ds.x[i].numpy() * 256 - centred[:63]).max() < 1
    x, index = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 63) and x.dtype == torch.float64 and index.dtype == torch.int64
    again = TinyImagesDataModule(root=str(tmp_path), val_images=2, test_images=0.25, resample="lanczos")
    assert again.dataset("train").x.shape == (7, 63)
    assert dm.split_files == again.split_files


def test_tiny_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"data.root={tmp_path / 'nowhere'} is not a directory"):
        TinyImagesDataModule(root=str(tmp_path / "nowhere")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"no image files found in {tmp_path / 'empty'}"):
        TinyImagesDataModule(root=str(tmp_path / "empty")).setup()
    with pytest.raises(ValueError, match="data.resample"):
        TinyImagesDataModule(root=str(tmp_path), resample="nearest")
    write_tiny_images(tmp_path / "imgs", n=6)
    with pytest.raises(ValueError, match=r"leave no training file of the 6"):
        TinyImagesDataModule(root=str(tmp_path / "imgs"), val_images=3, test_images=3).setup()
    with pytest.raises(ValueError, match=r"data.test_images must be a count >= 1 or a fraction"):
        TinyImagesDataModule(root=str(tmp_path / "imgs"), test_images=1.5).setup()
    (tmp_path / "imgs" / "a" / "000.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"cannot read image .*000\.png"):
        TinyImagesDataModule(root=str(tmp_path / "imgs"), val_images=1, test_images=1).setup()
