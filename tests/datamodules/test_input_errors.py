"""Every error a user's config or files cause in a DataModule is an :class:`~utils.errors.InputError` (or
:class:`~utils.errors.MissingFileError`) naming the config key or the file, so ``train.py`` prints it as one
``Error: ...`` line: in-process for each kind of error, and through ``train.py`` for the two reported cases."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from datamodules.base import fixed_split
from datamodules.factors.chairs import ChairsDataModule
from datamodules.factors.factor_folder import FactorFolderDataModule
from datamodules.images.celeba import CelebADataModule
from datamodules.images.cifar10 import CIFAR10DataModule, read_cifar_batch
from datamodules.images.digits import DigitsDataModule
from datamodules.images.image_folder import ImageFolderDataModule
from datamodules.images.lsun import LSUNDataModule
from datamodules.images.mnist import MNISTDataModule
from datamodules.images.photos import PhotosDataModule
from datamodules.images.tfd import TFDDataModule
from datamodules.patches.bsds300 import BSDS300DataModule
from datamodules.patches.tiny_images import TinyImagesDataModule
from datamodules.safe_pickle import PickleFileError
from tests.fixtures_data import (
    write_bsds300_folder,
    write_bsds300_hdf5,
    write_celeba,
    write_chairs,
    write_cifar10,
    write_factor_folder,
    write_image_folder,
    write_lsun,
    write_mnist,
    write_tfd,
    write_tiny_images,
)
from tests.hydra_helpers import ROOT, compose_train
from utils.errors import InputError, MissingFileError, input_error_in

CHAIR_ARGS = {"train_chairs": 2, "val_chairs": 1, "crop_size": None, "image_size": 16}
FACTOR_ARGS = {"factor_names": ["azimuth", "elevation", "light", "identity"],
               "batch_types": ["azimuth", "intrinsic"], "batch_ratio": [1, 1], "image_size": 16}

# (name, make the DataModule from tmp_path, write the fixture into tmp_path, the config key the message names)
CONSTRUCTION = [
    ("channels", lambda r: MNISTDataModule(root=r, channels=2), r"data\.channels"),
    ("batch_size", lambda r: MNISTDataModule(root=r, batch_size=0), r"data\.batch_size"),
    ("num_workers", lambda r: MNISTDataModule(root=r, num_workers=-1), r"data\.num_workers"),
    ("load_size", lambda r: MNISTDataModule(root=r, load_size=8), r"data\.load_size=8"),
    ("mnist_val_size", lambda r: MNISTDataModule(root=r, val_size=-3), r"data\.val_size"),
    ("tfd_resolution", lambda r: TFDDataModule(root=r, resolution=50), r"data\.resolution"),
    ("tfd_fold", lambda r: TFDDataModule(root=r, fold=7), r"data\.fold"),
    ("tfd_classes", lambda r: TFDDataModule(root=r, num_classes=3), r"data\.num_classes"),
    ("folder_fractions", lambda r: ImageFolderDataModule(root=r, val_fraction=0.9, test_fraction=0.2),
     r"data\.val_fraction"),
    ("val_chairs", lambda r: ChairsDataModule(root=r, train_chairs=5, val_chairs=0), r"data\.val_chairs"),
    ("chair_batch_types", lambda r: ChairsDataModule(root=r, batch_types=["light", "intrinsic"]),
     r"data\.batch_types"),
    ("chair_factor_names", lambda r: ChairsDataModule(root=r, factor_names=["azimuth", "light", "identity"]),
     r"data\.factor_names"),
    ("train_batches", lambda r: ChairsDataModule(root=r, train_batches=0), r"data\.train_batches"),
    ("batch_ratio", lambda r: ChairsDataModule(root=r, batch_ratio=[1]), r"data\.batch_ratio"),
    ("redraw", lambda r: ChairsDataModule(root=r, redraw_train_batches="yes"), r"data\.redraw_train_batches"),
    ("hflip", lambda r: ChairsDataModule(root=r, hflip=True), r"data\.load_size and data\.hflip"),
    ("intrinsic_factors", lambda r: FactorFolderDataModule(root=r, intrinsic_factors=["age"], **FACTOR_ARGS),
     r"data\.intrinsic_factors"),
    ("factor_ranges", lambda r: FactorFolderDataModule(root=r, factor_ranges={"light": [1, 0]}, **FACTOR_ARGS),
     r"data\.factor_ranges"),
    ("source_size", lambda r: FactorFolderDataModule(root=r, source_size=[0, 4], **FACTOR_ARGS),
     r"data\.source_size"),
    ("bsds_counts", lambda r: BSDS300DataModule(root=r, train_patches=0), r"data\.train_patches"),
    ("bsds_format", lambda r: BSDS300DataModule(root=r, format="zip"), r"data\.format"),
    ("patch_size", lambda r: BSDS300DataModule(root=r, patch_size=1), r"data\.patch_size"),
    ("tiny_resample", lambda r: TinyImagesDataModule(root=r, resample="cubic"), r"data\.resample"),
    ("photos_channels", lambda r: PhotosDataModule(channels=1), r"data\.channels"),
    ("photos_scale", lambda r: PhotosDataModule(max_scale=0.5), r"data\.max_scale"),
]


@pytest.mark.parametrize("make, key", [c[1:] for c in CONSTRUCTION], ids=[c[0] for c in CONSTRUCTION])
def test_invalid_settings_are_input_errors(tmp_path, make, key):
    with pytest.raises(InputError, match=key):
        make(str(tmp_path))


def _mnist(root: Path) -> None:
    write_mnist(root)


def _truncated_mnist(root: Path) -> None:
    write_mnist(root)
    path = root / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:12])


def _cifar_bad_data(root: Path) -> None:
    batches = write_cifar10(root)
    path = root / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({**batches["data_batch_1"], b"data": np.zeros((10, 5), np.uint8)}, protocol=4))


def _cifar_global(root: Path) -> None:
    write_cifar10(root)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"x": Path("a")}))


def _celeba_bad_line(root: Path) -> None:
    write_celeba(root)
    (root / "list_eval_partition.txt").write_text("000001.jpg 7\n")


def _chairs_bad_name(root: Path) -> None:
    info = write_chairs(root, n_chairs=3)
    (root / info["chairs"][1] / "renders" / "render.png").write_bytes(b"")


def _tfd_no_labels(root: Path) -> None:
    write_tfd(root, drop="labs_ex")


def _bsds_hdf5_missing(root: Path) -> None:
    write_bsds300_hdf5(root / "BSDS300.hdf5", drop="validation")


def _bsds_hdf5_nan(root: Path) -> None:
    write_bsds300_hdf5(root / "BSDS300.hdf5", bad="train")


def _factor_csv_text(text: str):
    def write(root: Path) -> None:
        write_factor_folder(root, identities=3)
        (root / "factors.csv").write_text(text)
    return write


def _empty_folder(root: Path) -> None:
    (root / "empty").mkdir()


# (name, fixture writer, DataModule, the exception type, what the message names)
SETUP = [
    ("mnist_val_size", _mnist, lambda r: MNISTDataModule(root=r), InputError, r"data\.val_size=10000"),
    ("mnist_classes", _mnist, lambda r: MNISTDataModule(root=r, val_size=5, num_classes=3), InputError,
     r"data\.num_classes=3"),
    ("mnist_missing", lambda r: None, lambda r: MNISTDataModule(root=r), MissingFileError,
     r"MNIST files missing in .*train-images-idx3-ubyte"),
    ("mnist_truncated", _truncated_mnist, lambda r: MNISTDataModule(root=r, val_size=5), InputError,
     r"train-labels-idx1-ubyte"),
    ("cifar_val_size", write_cifar10, lambda r: CIFAR10DataModule(root=r), InputError, r"data\.val_size=5000"),
    ("cifar_missing", lambda r: None, lambda r: CIFAR10DataModule(root=r), MissingFileError,
     r"CIFAR-10 files missing in .*cifar-10-batches-py: data_batch_1"),
    ("cifar_data", _cifar_bad_data, lambda r: CIFAR10DataModule(root=r, val_size=5), InputError,
     r"data_batch_1: 'data' must be a uint8 array \(N, 3072\)"),
    ("cifar_global", _cifar_global, lambda r: CIFAR10DataModule(root=r, val_size=5), PickleFileError,
     r"test_batch: refusing to load global 'pathlib"),
    ("celeba_crop", write_celeba, lambda r: CelebADataModule(root=r, crop_size=500), InputError,
     r"smaller than the crop of 500x500 \(data\.crop_size\)"),
    ("celeba_attributes", write_celeba, lambda r: CelebADataModule(root=r, attributes=["Wings"], num_classes=1),
     InputError, r"data\.attributes"),
    ("celeba_partition", _celeba_bad_line, lambda r: CelebADataModule(root=r), InputError,
     r"list_eval_partition\.txt, line 1"),
    ("lsun_test_size", write_lsun, lambda r: LSUNDataModule(root=r), InputError, r"data\.test_size=10000"),
    ("tfd_arrays", _tfd_no_labels, lambda r: TFDDataModule(root=r), InputError, r"TFD_48x48\.mat lacks"),
    ("folder_classes", write_image_folder, lambda r: ImageFolderDataModule(root=r, num_classes=4), InputError,
     r"data\.num_classes=4"),
    ("folder_empty", _empty_folder, lambda r: ImageFolderDataModule(root=str(Path(r) / "empty")), InputError,
     r"no image files found in .*empty"),
    ("train_chairs", lambda r: write_chairs(r, n_chairs=3), lambda r: ChairsDataModule(root=r), InputError,
     r"has 3 chairs, but data\.train_chairs=1200"),
    ("chair_render_name", _chairs_bad_name, lambda r: ChairsDataModule(root=r, **CHAIR_ARGS), InputError,
     r"render\.png is not a render named"),
    ("factor_csv", lambda r: write_factor_folder(r, identities=3),
     lambda r: FactorFolderDataModule(root=r, csv="other.csv", **FACTOR_ARGS), MissingFileError, r"\(data\.csv\)"),
    ("factor_header", _factor_csv_text("file,azimuth\n"), lambda r: FactorFolderDataModule(root=r, **FACTOR_ARGS),
     InputError, r"factors\.csv: the header lacks"),
    ("factor_value", _factor_csv_text("file,azimuth,elevation,light,identity\nx.png,left,0,0,0\n"),
     lambda r: FactorFolderDataModule(root=r, **FACTOR_ARGS), InputError, r"column azimuth: 'left' is not a number"),
    ("val_images", lambda r: write_bsds300_folder(r, n_train=10), lambda r: BSDS300DataModule(root=r), InputError,
     r"data\.val_images=20 leaves no training image of the 10"),
    ("bsds_hdf5_arrays", _bsds_hdf5_missing, lambda r: BSDS300DataModule(root=r), InputError, r"lacks the array"),
    ("bsds_hdf5_values", _bsds_hdf5_nan, lambda r: BSDS300DataModule(root=r), InputError, r"NaN"),
    ("tiny_val_images", write_tiny_images, lambda r: TinyImagesDataModule(root=r, val_images=100), InputError,
     r"data\.val_images=100"),
    ("tiny_counts", write_tiny_images, lambda r: TinyImagesDataModule(root=r, val_images=0), InputError,
     r"data\.val_images must be a count"),
    ("tiny_missing", lambda r: None, lambda r: TinyImagesDataModule(root=str(Path(r) / "nowhere")),
     MissingFileError, r"data\.root=.*nowhere"),
    ("digits_val_size", lambda r: None, lambda r: DigitsDataModule(val_size=2000), InputError,
     r"data\.val_size and data\.test_size = 2000 \+ 200"),
    ("photos_val_photos", lambda r: None, lambda r: PhotosDataModule(val_photos=100), InputError,
     r"data\.val_photos"),
    ("photos_crops", lambda r: None, lambda r: PhotosDataModule(crops_per_image=0), InputError,
     r"data\.crops_per_image"),
]


@pytest.mark.parametrize("write, make, error, match", [c[1:] for c in SETUP], ids=[c[0] for c in SETUP])
def test_data_that_does_not_fit_is_an_input_error(tmp_path, write, make, error, match):
    write(tmp_path)
    datamodule = make(str(tmp_path))
    with pytest.raises(error, match=match):
        datamodule.setup()


def test_fixed_split_names_the_keys():
    with pytest.raises(InputError, match=r"data\.val_size and data\.test_size = -2 \+ 1"):
        fixed_split(10, (-1, -2, 1), 0, "data.val_size and data.test_size")
    with pytest.raises(InputError, match=r"= 5 \+ 5 must be >= 0 and leave at least one of the 10"):
        fixed_split(10, (-1, 5, 5), 0, "data.val_size and data.test_size")
    assert [len(p) for p in fixed_split(10, (-1, 4, 5), 0, "data.val_size and data.test_size")] == [1, 4, 5]


def test_instantiate_wrapped_errors_are_found(tmp_path):
    cfg = compose_train(["data=mnist", f"data.root={tmp_path}", "data.channels=2"], tmp_path / "run")
    with pytest.raises(InstantiationException) as caught:
        instantiate(cfg.data)
    found = input_error_in(caught.value)
    assert isinstance(found, InputError) and str(found) == "data.channels must be 1 or 3, got 2"


class _Unreadable(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        raise MissingFileError(f"image file /data/{index}.png does not exist")


def test_worker_errors_are_found_without_the_worker_traceback():
    with pytest.raises(MissingFileError) as caught:
        next(iter(DataLoader(_Unreadable(), batch_size=2, num_workers=1)))
    assert "Original Traceback" in str(caught.value)  # what PyTorch re-raises in the main process
    found = input_error_in(caught.value)
    assert isinstance(found, MissingFileError) and str(found) == "image file /data/0.png does not exist"


def test_cifar10_batches_with_str_keys(tmp_path):
    """A batch loaded with ``encoding="latin1"`` and re-saved by Python 3 has str keys; its values are read."""
    batches = write_cifar10(tmp_path, n_per_batch=10)
    folder = tmp_path / "cifar-10-batches-py"
    for name in batches:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        assert set(batch) == {"batch_label", "labels", "data", "filenames"}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    images, labels = read_cifar_batch(folder / "test_batch")
    truth = batches["test_batch"]
    assert (images == truth[b"data"].reshape(-1, 3, 32, 32)).all() and labels.tolist() == truth[b"labels"]
    datamodule = CIFAR10DataModule(root=str(tmp_path), val_size=5)
    datamodule.setup()
    test_images = torch.stack([datamodule.dataset("test")[i][0] for i in range(10)])
    pixels = ((test_images + 1) * 127.5).round().to(torch.uint8).numpy()
    assert (pixels == truth[b"data"].reshape(-1, 3, 32, 32)).all()
    assert [int(datamodule.dataset("test")[i][1]) for i in range(10)] == truth[b"labels"]
    assert len(datamodule.dataset("train")) + len(datamodule.dataset("val")) == 50


def test_cifar10_without_data_names_both_key_types(tmp_path):
    write_cifar10(tmp_path, n_per_batch=10)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({"labels": [0]}, protocol=4))
    with pytest.raises(InputError, match=r"keys b'data' and b'labels' \(or 'data' and 'labels'.*got 'labels'$"):
        read_cifar_batch(path)


def _train_cli(*overrides: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env_overrides = [f"hydra.run.dir={tmp_path / 'run'}", "logger=csv", "debug=fdr"]
    return subprocess.run([sys.executable, "train.py", *overrides, *env_overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["chairs", "bsds300"])
def test_train_prints_one_error_line(tmp_path, case):
    """The two reported cases: train.py ends with one ``Error:`` line naming the key, no traceback."""
    if case == "chairs":
        write_chairs(tmp_path / "chairs", n_chairs=3)
        args, key = ["model=dcign", "data=chairs", f"data.root={tmp_path / 'chairs'}"], "data.train_chairs=1200"
    else:
        write_bsds300_folder(tmp_path / "bsds", n_train=10)
        args, key = ["model=deep_gmm", "data=bsds300", f"data.root={tmp_path / 'bsds'}"], "data.val_images=20"
    proc = _train_cli(*args, tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and key in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
