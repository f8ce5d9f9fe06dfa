"""DataModules on tiny datasets written in their real on-disk layouts (see ``fixtures_data.py``)."""

from __future__ import annotations

import gzip
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules import download as download_module
from datamodules.images import mnist as mnist_module
from datamodules.images.celeba import CelebADataModule
from datamodules.images.cifar10 import CIFAR10DataModule, read_cifar_batch
from datamodules.images.digits import DigitsDataModule
from datamodules.images.image_folder import ImageFolderDataModule
from datamodules.images.lsun import LSUNDataModule
from datamodules.images.mnist import MNISTDataModule, read_idx
from datamodules.images.mnist5k import MNIST5kDataModule
from datamodules.images.tfd import TFDDataModule
from datamodules.safe_pickle import load_restricted_pickle
from tests.fixtures_data import (
    CELEBA_ATTRIBUTES,
    listing,
    mnist_arrays,
    write_celeba,
    write_cifar10,
    write_image_folder,
    write_lsun,
    write_mnist,
    write_tfd,
)
from utils.errors import InputError

CONF = Path(__file__).resolve().parents[3] / "conf" / "data"
TOL = 1e-6


def stack(dataset, indices=None):
    """All items of ``dataset`` as ``(images, labels)`` tensors."""
    items = [dataset[i] for i in (range(len(dataset)) if indices is None else indices)]
    return torch.stack([x for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Float [-1, 1] back to uint8 values (exact for images that came from uint8)."""
    return ((images + 1) * 127.5).round().to(torch.uint8).numpy()


def check_batch(dm, split, shape, label_shape=()):
    loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[split]()
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and tuple(x.shape[1:]) == shape
    assert x.min() >= -1 and x.max() <= 1
    assert tuple(y.shape[1:]) == label_shape
    return x, y


# ================================================================================================ MNIST


@pytest.mark.parametrize("gz, sub", [(False, ""), (True, "MNIST/raw")])
def test_mnist_reads_idx_files_and_splits_last_val(tmp_path, gz, sub):
    arrays = write_mnist(tmp_path / sub if sub else tmp_path, gz=gz, n_train=30, n_test=10)
    before = listing(tmp_path)
    dm = MNISTDataModule(root=str(tmp_path), val_size=8, batch_size=4)
    dm.setup()
    train_x, train_y = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [22, 8, 10]
    x, y = stack(dm.dataset("train"))
    assert x.shape == (22, 1, 28, 28) and y.dtype == torch.int64
    assert (to_pixels(x)[:, 0] == train_x[:22]).all() and (y.numpy() == train_y[:22]).all()
    assert x[0, 0, 0, 0].item() == 1.0 and x[0, 0, 0, 1].item() == -1.0  # 255 -> 1, 0 -> -1
    vx, vy = stack(dm.dataset("val"))  # val = the LAST val_size training images
    assert (to_pixels(vx)[:, 0] == train_x[22:]).all() and (vy.numpy() == train_y[22:]).all()
    tx, ty = stack(dm.dataset("test"))
    assert (to_pixels(tx)[:, 0] == arrays["t10k-images-idx3-ubyte"]).all()
    assert (ty.numpy() == arrays["t10k-labels-idx1-ubyte"]).all()
    check_batch(dm, "train", (1, 28, 28))
    assert listing(tmp_path) == before


def test_mnist_resizes_and_converts_channels(tmp_path):
    write_mnist(tmp_path, n_train=12, n_test=4)
    dm = MNISTDataModule(root=str(tmp_path), val_size=2, image_size=32, channels=3, batch_size=4)
    x, _ = check_batch(dm, "val", (3, 32, 32))
    assert torch.equal(x[:, 0], x[:, 1])


def test_mnist_missing_files_lists_them(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")  # one present, three missing
    with pytest.raises(FileNotFoundError) as err:
        MNISTDataModule(root=str(tmp_path)).setup()
    msg = str(err.value)
    assert str(tmp_path) in msg and "MNIST/raw" in msg
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in msg


@pytest.mark.parametrize("cls", [MNISTDataModule, CIFAR10DataModule, CelebADataModule, LSUNDataModule,
                                 ImageFolderDataModule, TFDDataModule])
def test_missing_root_names_path_and_layout(tmp_path, cls):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        cls(root=str(missing)).setup()
    assert str(missing) in str(err.value) and "expects" in str(err.value)
    assert not missing.exists()


def test_mnist_bad_magic_number(tmp_path):
    arrays = write_mnist(tmp_path, n_train=12, n_test=4)
    # labels written where images belong: magic 2049 instead of 2051
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes((tmp_path / "t10k-labels-idx1-ubyte").read_bytes())
    with pytest.raises(ValueError, match="magic number 2049, expected 2051") as err:
        MNISTDataModule(root=str(tmp_path), val_size=2).setup()
    assert str(path) in str(err.value)
    assert arrays  # fixture written


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_truncated_file(tmp_path, gz):
    write_mnist(tmp_path, gz=gz, n_train=12, n_test=4)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 50])
    with pytest.raises(ValueError, match="truncated") as err:
        MNISTDataModule(root=str(tmp_path), val_size=2).setup()
    assert str(path) in str(err.value)


def test_mnist_label_count_mismatch(tmp_path):
    arrays = mnist_arrays(n_train=12, n_test=4)
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:11]
    write_mnist(tmp_path, arrays=arrays)
    with pytest.raises(ValueError, match="12 images but .* 11 labels"):
        MNISTDataModule(root=str(tmp_path), val_size=2).setup()


def test_mnist_wrong_num_classes(tmp_path):
    write_mnist(tmp_path, n_train=12, n_test=4)
    with pytest.raises(ValueError, match="num_classes=5"):
        MNISTDataModule(root=str(tmp_path), val_size=2, num_classes=5).setup()


def test_read_idx_header_shape(tmp_path):
    arrays = write_mnist(tmp_path, n_train=12, n_test=4, size=7)
    images = read_idx(tmp_path / "train-images-idx3-ubyte", 2051)
    labels = read_idx(tmp_path / "train-labels-idx1-ubyte", 2049)
    assert images.shape == (12, 7, 7) and (images == arrays["train-images-idx3-ubyte"]).all()
    assert labels.shape == (12,)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local ``file://`` MNIST mirror with tiny .gz files, their MD5s patched in."""
    folder = tmp_path / "mirror"
    write_mnist(folder, gz=True, n_train=12, n_test=4)
    md5s = {name: download_module.md5sum(folder / f"{name}.gz") for name in mnist_module.MNIST_FILES}
    monkeypatch.setattr(mnist_module, "MNIST_FILES", md5s)
    monkeypatch.setattr(mnist_module, "MNIST_MIRRORS", ((tmp_path / "dead").as_uri() + "/", folder.as_uri() + "/"))
    return folder


def test_mnist_download_from_mirror_with_md5(tmp_path, mirror):
    root = tmp_path / "data" / "mnist"
    dm = MNISTDataModule(root=str(root), val_size=2, download=True)
    dm.setup()  # the first (dead) mirror fails, the second serves
    assert len(dm.dataset("train")) == 10 and len(dm.dataset("test")) == 4
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{n}.gz" for n in mnist_module.MNIST_FILES)


def test_mnist_download_bad_md5_leaves_nothing(tmp_path, mirror, monkeypatch):
    monkeypatch.setitem(mnist_module.MNIST_FILES, "t10k-labels-idx1-ubyte", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(OSError) as err:
        MNISTDataModule(root=str(root), val_size=2, download=True).setup()
    msg = str(err.value)
    assert "MD5" in msg and "t10k-labels-idx1-ubyte.gz" in msg and str(root) in msg
    assert not (root / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_mnist_download_network_failure_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise download_module.urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
    root = tmp_path / "data"
    with pytest.raises(OSError) as err:
        MNISTDataModule(root=str(root), download=True).setup()
    msg = str(err.value)
    assert "network is unreachable" in msg and f"in {root}/" in msg
    for name in mnist_module.MNIST_FILES:
        assert f"{name}.gz" in msg
    assert list(root.iterdir()) == []


# ================================================================================================ CIFAR-10


@pytest.mark.parametrize("py2_style, protocol", [(True, None), (False, None), (False, 2)])
def test_cifar10_reads_batches(tmp_path, py2_style, protocol):
    batches = write_cifar10(tmp_path, n_per_batch=10, py2_style=py2_style, protocol=protocol)
    if protocol == 2:  # a batch re-saved by Python 3 with protocol 2 builds its bytes with _codecs.encode
        assert b"_codecs\nencode" in (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    before = listing(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), val_size=7, batch_size=4)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [43, 7, 10]
    all_x = np.concatenate([batches[f"data_batch_{k}"][b"data"] for k in range(1, 6)]).reshape(-1, 3, 32, 32)
    all_y = np.concatenate([batches[f"data_batch_{k}"][b"labels"] for k in range(1, 6)])
    tx, ty = stack(dm.dataset("train"))
    vx, vy = stack(dm.dataset("val"))
    # train and val partition the 50 training images: match each served image to its source row
    served = np.concatenate([to_pixels(tx), to_pixels(vx)]).reshape(50, -1)
    order = [int(np.flatnonzero((all_x.reshape(50, -1) == row).all(1))[0]) for row in served]
    assert sorted(order) == list(range(50))
    assert (np.concatenate([ty, vy]) == all_y[order]).all()
    test_x, test_y = stack(dm.dataset("test"))
    assert (to_pixels(test_x) == batches["test_batch"][b"data"].reshape(-1, 3, 32, 32)).all()
    assert test_y.tolist() == batches["test_batch"][b"labels"]
    assert test_x[0, 0, 0, 0].item() == 1.0 and test_x[0, 0, 0, 1].item() == -1.0
    # channel layout: the first 1024 values are red, row-major
    red = batches["test_batch"][b"data"][3, :1024].reshape(32, 32)
    assert (to_pixels(test_x[3])[0] == red).all()
    check_batch(dm, "train", (3, 32, 32))
    assert listing(tmp_path) == before
    # the same seed gives the same split
    dm2 = CIFAR10DataModule(root=str(tmp_path), val_size=7)
    assert torch.equal(stack(dm2.dataset("val"))[0], vx)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    write_cifar10(tmp_path, n_per_batch=10)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Exploit(marker)]}, f, protocol=4)
    with pytest.raises(pickle.UnpicklingError) as err:
        CIFAR10DataModule(root=str(tmp_path), val_size=5).setup()
    assert str(path) in str(err.value) and "system" in str(err.value)
    assert not marker.exists()
    # the plain unpickler would have run it: proof the test pickle is a real exploit
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=5))  # _frombuffer
    with pytest.raises(pickle.UnpicklingError, match="_frombuffer"):
        load_restricted_pickle(path)
    path.write_bytes(pickle.dumps({"x": Path("a")}))
    with pytest.raises(pickle.UnpicklingError, match="pathlib"):
        load_restricted_pickle(path)


def test_cifar10_corrupt_and_malformed_batches(tmp_path):
    batches = write_cifar10(tmp_path, n_per_batch=10)
    folder = tmp_path / "cifar-10-batches-py"
    data = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(data[:100])
    with pytest.raises(pickle.UnpicklingError, match="corrupt or truncated") as err:
        read_cifar_batch(folder / "test_batch")
    assert str(folder / "test_batch") in str(err.value)
    bad = {**batches["data_batch_1"], b"data": np.zeros((10, 1024), np.uint8)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=4))
    with pytest.raises(ValueError, match=r"\(N, 3072\)") as err:
        read_cifar_batch(folder / "data_batch_1")
    assert str(folder / "data_batch_1") in str(err.value)
    (folder / "data_batch_2").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_2") as err:
        CIFAR10DataModule(root=str(tmp_path)).setup()
    assert str(folder) in str(err.value)


# ================================================================================================ CelebA


def test_celeba_lazy_partition_and_crop(tmp_path):
    info = write_celeba(tmp_path, n=9)
    before = listing(tmp_path)
    dm = CelebADataModule(root=str(tmp_path), crop_size=16, image_size=8, batch_size=2)
    dm.setup()
    splits = np.array(info["splits"])
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [int((splits == k).sum()) for k in range(3)]
    train = dm.dataset("train")
    assert [p.name for p in train.paths] == [n for n, s in zip(info["names"], splits) if s == 0]
    x, y = stack(train)
    assert x.shape == (len(train), 3, 8, 8) and (y == -1).all()
    colours = np.array([c for c, s in zip(info["colours"], splits) if s == 0], dtype=np.float32)
    assert np.abs(to_pixels(x).mean((2, 3)) - colours).max() <= 3  # JPEG of a solid colour
    assert (x[0] > 1 - 3 / 127.5).all()  # image 1 is white
    check_batch(dm, "val", (3, 8, 8))
    assert listing(tmp_path) == before


def test_celeba_attributes(tmp_path):
    info = write_celeba(tmp_path, n=9)
    wanted = ["Smiling", "5_o_Clock_Shadow"]
    dm = CelebADataModule(root=str(tmp_path), attributes=wanted, num_classes=2, crop_size=None, image_size=8,
                          channels=1, batch_size=2)
    _, y = stack(dm.dataset("test"))
    rows = [i for i, s in enumerate(info["splits"]) if s == 2]
    expected = (info["attrs"][rows][:, [CELEBA_ATTRIBUTES.index(a) for a in wanted]] + 1) / 2
    assert y.dtype == torch.float32 and np.array_equal(y.numpy(), expected)
    check_batch(dm, "test", (1, 8, 8), (2,))
    with pytest.raises(ValueError, match="num_classes=1"):
        CelebADataModule(root=str(tmp_path), attributes=wanted, num_classes=1).setup()
    with pytest.raises(ValueError, match="Smilling") as err:
        CelebADataModule(root=str(tmp_path), attributes=["Smilling"], num_classes=1).setup()
    assert "Smiling" in str(err.value) and str(tmp_path / "list_attr_celeba.txt") in str(err.value)
    (tmp_path / "list_attr_celeba.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        CelebADataModule(root=str(tmp_path), attributes=wanted, num_classes=2).setup()


def test_celeba_bad_inputs(tmp_path):
    info = write_celeba(tmp_path, n=8)
    partition = tmp_path / "list_eval_partition.txt"
    text = partition.read_text()
    partition.write_text(text + "000099.jpg 0\n")
    with pytest.raises(FileNotFoundError, match="000099.jpg") as err:
        CelebADataModule(root=str(tmp_path)).setup()
    assert str(tmp_path / "img_align_celeba") in str(err.value)
    partition.write_text(text + "000001.jpg train\n")
    with pytest.raises(ValueError, match="line 9") as err:
        CelebADataModule(root=str(tmp_path)).setup()
    assert str(partition) in str(err.value)
    partition.unlink()
    with pytest.raises(FileNotFoundError, match="img_align_celeba") as err:
        CelebADataModule(root=str(tmp_path)).setup()
    assert str(partition) in str(err.value)
    partition.write_text(text)
    corrupt = tmp_path / "img_align_celeba" / info["names"][0]
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    # with the decoded-image cache, setup (before any training step) names the corrupt file; nothing is cached
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="cannot read image") as err:
        CelebADataModule(root=str(tmp_path), crop_size=16, image_size=8, cache_dir=str(cache)).setup()
    assert str(corrupt) in str(err.value) and "nothing was cached" in str(err.value)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    # without it, the item that reads the file does
    dm = CelebADataModule(root=str(tmp_path), crop_size=16, image_size=8, cache=False)
    dm.setup()
    with pytest.raises(ValueError, match="cannot read image") as err:
        dm.dataset("train")[0]
    assert str(corrupt) in str(err.value)
    dm = CelebADataModule(root=str(tmp_path), crop_size=100, image_size=8, cache=False)
    with pytest.raises(ValueError, match="crop_size") as err:
        dm.dataset("train")[1]
    assert info["names"][1] in str(err.value)


# ================================================================================================ LSUN


def test_lsun_reads_lmdb_lazily_and_writes_nothing(tmp_path):
    colours = write_lsun(tmp_path, n_train=12, n_val=3)
    before = listing(tmp_path)
    dm = LSUNDataModule(root=str(tmp_path), category="bedroom", test_size=4, image_size=8, batch_size=2)
    dm.setup()
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [8, 3, 4]
    train, test = dm.dataset("train"), dm.dataset("test")
    assert not set(train.indices) & set(test.indices)  # test is held out of train
    vx, vy = stack(dm.dataset("val"))
    assert vx.shape == (3, 3, 8, 8) and (vy == -1).all()
    # values are lossless WebP of solid colours; keys are listed in lmdb's sorted key order
    got = sorted(tuple(int(v) for v in to_pixels(x)[:, 0, 0]) for x in vx)
    assert got == sorted(colours["val"])
    check_batch(dm, "train", (3, 8, 8))
    dm_small = LSUNDataModule(root=str(tmp_path), max_images=6, test_size=2, image_size=8)
    assert len(dm_small.dataset("train")) == 4
    assert listing(tmp_path) == before


def test_lsun_in_dataloader_workers(tmp_path):
    write_lsun(tmp_path, n_train=6, n_val=2)
    dm = LSUNDataModule(root=str(tmp_path), test_size=2, image_size=8, batch_size=2, num_workers=1)
    val = dm.dataset("val")
    first = val[0][0]  # read in the main process before the worker forks
    clone = pickle.loads(pickle.dumps(val))  # what spawn-started workers receive
    assert clone._env is None and torch.equal(clone[0][0], first)
    batches = list(dm.val_dataloader())
    assert torch.equal(batches[0][0][0], first) and sum(len(b[0]) for b in batches) == 2


def test_lsun_bad_inputs(tmp_path, monkeypatch):
    write_lsun(tmp_path, category="church_outdoor", n_train=6, n_val=2)
    with pytest.raises(FileNotFoundError, match="bedroom_train_lmdb") as err:
        LSUNDataModule(root=str(tmp_path), category="bedroom").setup()
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ValueError, match="test_size=6"):
        LSUNDataModule(root=str(tmp_path), category="church_outdoor", test_size=6).setup()
    monkeypatch.setitem(sys.modules, "lmdb", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install genforge\[lsun\]"):
        LSUNDataModule(root=str(tmp_path), category="church_outdoor", test_size=2).setup()


# ================================================================================================ image folder


def test_image_folder_classes_from_subfolders(tmp_path):
    written = write_image_folder(tmp_path, {"dogs": 4, "cats": 5})["files"]
    before = listing(tmp_path)
    dm = ImageFolderDataModule(root=str(tmp_path), num_classes=2, val_fraction=0.2, test_fraction=0.1,
                               image_size=12, batch_size=2)
    dm.setup()
    assert dm.classes == ["cats", "dogs"]
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [6, 2, 1]
    truth = {p: (label, colour) for p, label, colour in written}
    seen = []
    for split in ("train", "val", "test"):
        subset = dm.dataset(split)
        for i, index in enumerate(subset.indices):
            path = subset.dataset.paths[index]
            x, y = subset[i]
            label, colour = truth[path]
            assert y.item() == label
            assert x.shape == (3, 12, 12) and (to_pixels(x).reshape(3, -1).T == colour).all()  # PNG: exact
            seen.append(path)
    assert sorted(seen) == sorted(truth)
    check_batch(dm, "train", (3, 12, 12))
    assert listing(tmp_path) == before


def test_image_folder_unlabeled_and_forced(tmp_path):
    write_image_folder(tmp_path / "flat", None)
    dm = ImageFolderDataModule(root=str(tmp_path / "flat"), val_fraction=0.2, test_fraction=0.2, image_size=8,
                               channels=1)
    x, y = stack(dm.dataset("train"))
    assert x.shape == (4, 1, 8, 8) and (y == -1).all()
    write_image_folder(tmp_path / "classes", {"a": 2, "b": 2})
    dm = ImageFolderDataModule(root=str(tmp_path / "classes"), labeled=False, val_fraction=0, test_fraction=0)
    assert (stack(dm.dataset("train"))[1] == -1).all() and len(dm.dataset("train")) == 4


def test_image_folder_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files") as err:
        ImageFolderDataModule(root=str(empty)).setup()
    assert str(empty) in str(err.value)
    root = tmp_path / "classes"
    write_image_folder(root, {"a": 2, "b": 3, "c": 2})
    with pytest.raises(ValueError, match=r"3 classes.*data.num_classes=3"):
        ImageFolderDataModule(root=str(root), num_classes=2).setup()
    broken = root / "b" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError, match=f"cannot read image {broken}"):
        ImageFolderDataModule(root=str(root), num_classes=3).setup()
    dm = ImageFolderDataModule(root=str(root), num_classes=3, val_fraction=0, test_fraction=0, cache=False)
    dataset = dm.dataset("train").dataset
    with pytest.raises(ValueError, match="cannot read image") as err:
        dataset[dataset.paths.index(broken)]
    assert str(broken) in str(err.value)


# ================================================================================================ TFD


def test_tfd_folds_and_labels(tmp_path):
    truth = write_tfd(tmp_path, n=30)
    before = listing(tmp_path)
    fold = 2
    column = truth["folds"][:, fold]
    for include_unlabeled, num_classes in ((True, 7), (False, 0)):
        dm = TFDDataModule(root=str(tmp_path), fold=fold, include_unlabeled=include_unlabeled,
                           num_classes=num_classes, batch_size=4)
        train_rows = np.flatnonzero(np.isin(column, (1, 0) if include_unlabeled else (1,)))
        for split, rows in (("train", train_rows), ("val", np.flatnonzero(column == 2)),
                            ("test", np.flatnonzero(column == 3))):
            x, y = stack(dm.dataset(split))
            assert x.shape == (len(rows), 1, 48, 48)
            assert (to_pixels(x)[:, 0] == truth["images"][rows]).all()
            labels = np.where(truth["labs_ex"][rows] > 0, truth["labs_ex"][rows] - 1, -1)
            assert (y.numpy() == (labels if num_classes else -1)).all()
        check_batch(dm, "train", (1, 48, 48))
    x, _ = TFDDataModule(root=str(tmp_path), fold=fold).dataset("train")[0]  # image 0: unlabeled, so in train
    assert x[0, 0, 0].item() == 1.0 and x[0, 0, 1].item() == -1.0
    assert listing(tmp_path) == before


def test_tfd_bad_inputs(tmp_path):
    write_tfd(tmp_path, n=12, drop="folds")
    path = tmp_path / "TFD_48x48.mat"
    with pytest.raises(ValueError, match="lacks the arrays \\['folds'\\]") as err:
        TFDDataModule(root=str(tmp_path)).setup()
    assert str(path) in str(err.value) and "labs_ex" in str(err.value)
    with pytest.raises(FileNotFoundError, match="TFD_96x96.mat"):
        TFDDataModule(root=str(tmp_path), resolution=96, image_size=96).setup()
    path.write_bytes(b"MATLAB 5.0 MAT-file, garbage" * 3)
    with pytest.raises(ValueError, match="cannot read it as a MATLAB file") as err:
        TFDDataModule(root=str(tmp_path)).setup()
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="fold"):
        TFDDataModule(root=str(tmp_path), fold=5)
    with pytest.raises(ValueError, match="num_classes"):
        TFDDataModule(root=str(tmp_path), num_classes=10)


# ================================================================================================ embedded


@pytest.mark.parametrize("cls, sizes, shape", [(MNIST5kDataModule, (4000, 500, 500), (1, 28, 28)),
                                               (DigitsDataModule, (1397, 200, 200), (1, 8, 8))])
def test_embedded_datasets_splits_and_range(cls, sizes, shape):
    dm = cls(batch_size=64)
    dm.setup()
    assert tuple(len(dm.dataset(s)) for s in ("train", "val", "test")) == sizes
    images = dm.dataset("val").images
    assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == shape
    x, y = check_batch(dm, "val", shape)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert y.min() >= 0 and y.max() <= 9


# ================================================================================================ configs


@pytest.mark.parametrize("name, cls, geometry", [
    ("mnist5k", MNIST5kDataModule, (28, 1, 10)),
    ("digits", DigitsDataModule, (8, 1, 10)),
    ("mnist", MNISTDataModule, (28, 1, 10)),
    ("cifar10", CIFAR10DataModule, (32, 3, 10)),
    ("celeba", CelebADataModule, (64, 3, 0)),
    ("lsun", LSUNDataModule, (64, 3, 0)),
    ("image_folder", ImageFolderDataModule, (64, 3, 0)),
    ("tfd", TFDDataModule, (48, 1, 0)),
])
def test_config_instantiates(tmp_path, name, cls, geometry):
    from hydra.utils import instantiate

    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")},
                            "data": OmegaConf.load(CONF / f"{name}.yaml")})
    for key in ("image_size", "channels", "num_classes", "batch_size"):
        assert key in cfg.data
    dm = instantiate(cfg.data)
    assert type(dm) is cls
    assert (dm.image_size, dm.channels, dm.num_classes) == geometry
    if cfg.data.root is not None:
        assert dm.root == tmp_path / name.replace("image_folder", "images")
    if name in ("celeba", "lsun", "image_folder", "tfd"):  # the decoded ones: into the cache under paths.cache_dir
        assert dm.cache is True and dm.cache_dir == tmp_path / "cache" / "decoded"


def test_mnist_config_end_to_end(tmp_path):
    from hydra.utils import instantiate

    write_mnist(tmp_path / "mnist" / "MNIST" / "raw", gz=True, n_train=20, n_test=5)
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(CONF / "mnist.yaml")})
    cfg.data.val_size, cfg.data.batch_size = 5, 4
    dm = instantiate(cfg.data)
    check_batch(dm, "train", (1, 28, 28))
    assert len(dm.dataset("val")) == 5


def test_gz_fixture_is_real_gzip(tmp_path):
    write_mnist(tmp_path, gz=True, n_train=12, n_test=4)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz") as f:
        assert f.read()[:4] == b"\x00\x00\x08\x01"
