"""The decoded-image cache (datamodules/decoded_cache.py): same items as decoding, keyed by the files and the
transform, built once by concurrent processes, atomic under kill -9, memory-mapped; and the loader defaults."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import decoded_cache, image_files
from datamodules.images.celeba import CelebADataModule
from tests.fixtures_data import (
    write_bsds300_folder,
    write_celeba_faces,
    write_chairs,
    write_factor_folder,
    write_image_folder,
    write_lsun,
    write_tfd,
    write_tiny_images,
)
from tests.hydra_helpers import ROOT


def _celeba(root: Path, cache_dir: Path, **kw) -> CelebADataModule:
    kw = {"image_size": 32, "crop_size": 140, "batch_size": 4, "cache_dir": str(cache_dir), **kw}
    return CelebADataModule(root=str(root), **kw)


def _items(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    write_celeba_faces(root, n=20)
    return root


def test_cached_items_are_the_decoded_items_and_a_second_setup_decodes_nothing(faces, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = len(decoded_cache.USED)
    dm = _celeba(faces, cache)
    dm.setup()
    uses = decoded_cache.USED[first:]
    assert [u.built for u in uses] == [True, True, True] and sum(u.images for u in uses) == 20
    assert all(u.images * 3 * 32 * 32 < u.bytes < u.images * 3 * 32 * 32 + 4096 for u in uses)  # pixels + header
    lazy = _celeba(faces, cache, cache=False)
    for split in ("train", "val", "test"):
        assert isinstance(dm.dataset(split).array, np.memmap)
        assert _same(_items(dm.dataset(split)), _items(lazy.dataset(split)))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image")

    monkeypatch.setattr(image_files, "_decode", no_decoding)
    again = _celeba(faces, cache)
    again.setup()
    assert [u.built for u in decoded_cache.USED[-3:]] == [False, False, False]
    images, labels = next(iter(again.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32 and labels.tolist() == [-1] * 4
    assert -1.0 <= images.min() < images.max() <= 1.0
    with pytest.raises(AssertionError, match="decoded an image"):
        lazy.dataset("train")[0]


def test_the_key_follows_the_files_and_the_transform(faces, tmp_path):
    import shutil

    root = tmp_path / "celeba"
    shutil.copytree(faces, root)
    cache = tmp_path / "cache"
    _celeba(root, cache).setup()
    files = {p.name for p in cache.glob("*.npy")}
    assert len(files) == 3
    _celeba(root, cache).setup()
    assert {p.name for p in cache.glob("*.npy")} == files and not any(u.built for u in decoded_cache.USED[-3:])
    # a replaced image (new content, new time) is seen: its split's cache is rebuilt, with the new pixels
    jpeg = root / "img_align_celeba" / "000001.jpg"
    from PIL import Image

    Image.new("RGB", (178, 218), (250, 10, 10)).save(jpeg, quality=95)
    dm = _celeba(root, cache)
    dm.setup()
    assert [u.built for u in decoded_cache.USED[-3:]] == [True, False, False]
    assert dm.dataset("train")[0][0][0].mean() > 0.9 and dm.dataset("train")[0][0][1].mean() < -0.8
    # another size is another file
    _celeba(root, cache, image_size=16).setup()
    assert len(list(cache.glob("*.npy"))) == 3 + 1 + 3


def test_jpegs_are_decoded_at_reduced_scale_when_the_target_is_much_smaller(faces):
    from datamodules.image_files import decode_image, decode_square, square_image

    jpeg = faces / "img_align_celeba" / "000003.jpg"
    full = decode_image(jpeg, 3)
    assert full.shape == (3, 218, 178)
    # a 140 crop to 32 pixels: Pillow's DCT scaling decodes 1/4 of the size (still >= 32 pixels in the crop)
    assert decode_image(jpeg, 3, out_size=32, crop_size=140).shape == (3, 55, 45)
    # a 140 crop to 64: 1/2 scale; to 100: full scale (140 < 2 x 100)
    assert decode_image(jpeg, 3, out_size=64, crop_size=140).shape == (3, 109, 89)
    assert decode_image(jpeg, 3, out_size=100, crop_size=140).shape == (3, 218, 178)
    reference = square_image(full, 32, 3, 140).float()
    drafted = decode_square(jpeg, 32, 3, 140).float()
    assert drafted.shape == (3, 32, 32)
    assert (drafted - reference).abs().mean() < 4.0  # grey levels of 255: the same picture


def _build_in_another_process(root: str, cache: str, queue) -> None:
    torch.set_num_threads(1)  # a forked process must not use the parent's OpenMP pool (as DataLoader workers do)
    first = len(decoded_cache.USED)
    dm = CelebADataModule(root=root, image_size=32, crop_size=140, cache_dir=cache)
    dm.setup()
    queue.put([u.built for u in decoded_cache.USED[first:]])


def test_concurrent_processes_build_each_file_once(faces, tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_build_in_another_process, args=(str(faces), str(tmp_path / "c"), queue))
               for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    # each of the three split files was built by exactly one of the two processes, the other reused it
    assert [a + b for a, b in zip(*results)] == [1, 1, 1]


SLOW_BUILD = """
import sys, time
sys.path.insert(0, {root!r})
from datamodules import image_files
decode = image_files._decode
def slow(*a, **k):
    time.sleep(0.5)
    return decode(*a, **k)
image_files._decode = slow
from datamodules.images.celeba import CelebADataModule
CelebADataModule(root={faces!r}, image_size=32, crop_size=140, cache_dir={cache!r}).setup()
"""


@pytest.mark.slow
def test_a_build_killed_midway_leaves_no_cache_and_the_next_build_completes(faces, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_BUILD.format(root=str(ROOT), faces=str(faces),
                                                                     cache=str(cache))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(cache.glob(".*.tmp")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a few images into the file
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = list(cache.glob(".*.tmp"))
    assert len(orphans) == 1 and not list(cache.glob("*.npy"))  # half-written, and not under the cache's name
    dm = _celeba(faces, cache)
    dm.setup()
    assert [u.built for u in decoded_cache.USED[-3:]] == [True, True, True]
    assert not list(cache.glob(".*.tmp")) and len(list(cache.glob("*.npy"))) == 3
    assert _same(_items(dm.dataset("train")), _items(_celeba(faces, cache, cache=False).dataset("train")))


def test_workers_share_the_memory_map(faces, tmp_path):
    dm = _celeba(faces, tmp_path / "cache")
    train = dm.dataset("train")
    assert train.array.nbytes == len(train) * 3 * 32 * 32
    blob = pickle.dumps(train)  # what a spawned DataLoader worker receives
    assert len(blob) < 2_000 + 200 * len(train)  # names and labels, not the pixels
    copy = pickle.loads(blob)
    assert isinstance(copy.array, np.memmap) and _same(_items(copy), _items(train))
    loader = torch.utils.data.DataLoader(train, batch_size=len(train), num_workers=1)
    assert torch.equal(next(iter(loader))[0], torch.stack([x for x, _ in _items(train)]))


def _datamodule(kind: str, root: Path, cache: bool, cache_dir: Path):
    kw = {"cache": cache, "cache_dir": str(cache_dir)}
    if kind == "lsun":
        from datamodules.images.lsun import LSUNDataModule

        write_lsun(root) if not root.exists() else None
        return LSUNDataModule(root=str(root), image_size=16, test_size=2, **kw)
    if kind == "image_folder":
        from datamodules.images.image_folder import ImageFolderDataModule

        write_image_folder(root, {"a": 3, "b": 4, "c": 3}) if not root.exists() else None
        return ImageFolderDataModule(root=str(root), image_size=16, num_classes=3, val_fraction=0.2, test_fraction=0.2,
                                     **kw)
    if kind == "chairs":
        from datamodules.factors.chairs import ChairsDataModule

        write_chairs(root) if not root.exists() else None
        return ChairsDataModule(root=str(root), image_size=16, train_chairs=6, val_chairs=2, batch_size=4,
                                train_batches=3, val_batches=2, test_batches=2, crop_size=None, **kw)
    if kind == "factor_folder":
        from datamodules.factors.factor_folder import FactorFolderDataModule

        write_factor_folder(root) if not root.exists() else None
        return FactorFolderDataModule(root=str(root), factor_names=["azimuth", "elevation", "identity"],
                                      intrinsic_factors=["identity"], batch_types=["azimuth", "intrinsic"],
                                      batch_ratio=[1, 1], image_size=16, batch_size=3, train_batches=3,
                                      val_batches=2, test_batches=2, val_fraction=0.2, test_fraction=0.2, **kw)
    if kind == "tfd":
        from datamodules.images.tfd import TFDDataModule

        write_tfd(root) if not root.exists() else None
        return TFDDataModule(root=str(root), image_size=24, **kw)
    if kind == "tiny_images":
        from datamodules.patches.tiny_images import TinyImagesDataModule

        write_tiny_images(root) if not root.exists() else None
        return TinyImagesDataModule(root=str(root), val_images=2, test_images=2, **kw)
    from datamodules.patches.bsds300 import BSDS300DataModule

    folder = write_bsds300_folder(root)["folder"] if not root.exists() else root / "BSDS300"
    return BSDS300DataModule(root=str(folder), train_patches=60, val_patches=20, test_patches=30, val_images=2, **kw)


@pytest.mark.parametrize("kind", ["lsun", "image_folder", "chairs", "factor_folder", "tfd", "tiny_images",
                                  "bsds300"])
def test_every_on_disk_dataset_serves_the_same_items_from_its_cache(kind, tmp_path):
    root, cache = tmp_path / kind, tmp_path / "cache"
    first = len(decoded_cache.USED)
    cached = _datamodule(kind, root, True, cache)
    cached.setup()
    assert decoded_cache.USED[first:] and all(u.built for u in decoded_cache.USED[first:])
    middle = len(decoded_cache.USED)
    reused = _datamodule(kind, root, True, cache)
    reused.setup()
    assert len(decoded_cache.USED[middle:]) == middle - first and not any(u.built for u in decoded_cache.USED[middle:])
    decoded = _datamodule(kind, root, False, cache)
    for split in ("train", "val", "test"):
        a, b, c = cached.dataset(split), reused.dataset(split), decoded.dataset(split)
        count = min(len(a), 4)
        assert len(a) == len(c) and count > 0
        assert _same([a[i] for i in range(count)], [c[i] for i in range(count)])
        assert _same([b[i] for i in range(count)], [c[i] for i in range(count)])


def test_loader_defaults_fit_the_machine(faces, tmp_path):
    from datamodules.base import default_workers

    cpus = decoded_cache.available_cpus()
    assert default_workers() == max(1, min(8, cpus - 1))
    dm = _celeba(faces, tmp_path / "cache", num_workers=None)
    options = dm.loader_options()
    assert options == {"num_workers": default_workers(), "pin_memory": False, "persistent_workers": True}
    # a cached split is read in this process (microseconds an image); a decoded one by workers
    assert dm.train_dataloader().num_workers == 0
    decoded = _celeba(faces, tmp_path / "cache", num_workers=None, cache=False)
    assert decoded.train_dataloader().num_workers == default_workers() and decoded.train_dataloader().persistent_workers
    assert _celeba(faces, tmp_path / "cache", num_workers=0).loader_options()["persistent_workers"] is False
    assert _celeba(faces, tmp_path / "cache", pin_memory=True).loader_options()["pin_memory"] is True
    with pytest.raises(ValueError, match="data.num_workers"):
        _celeba(faces, tmp_path / "cache", num_workers=-1)


def test_random_crops_and_flips_are_drawn_per_item_from_the_cached_array(faces, tmp_path, monkeypatch):
    dm = _celeba(faces, tmp_path / "cache", image_size=24, load_size=32, hflip=True)
    dm.setup()
    monkeypatch.setattr(image_files, "_decode", None)  # from here on, decoding would fail
    train, val = dm.dataset("train"), dm.dataset("val")
    cached = train.dataset.array  # the memory-mapped 32 x 32 images the crops come from
    assert cached.shape[-2:] == (32, 32) and len(train) == len(cached)
    full = torch.from_numpy(np.array(cached[0])).float().div(127.5).sub(1.0)
    windows = {(t, l, f): (full.flip(-1) if f else full)[:, t:t + 24, l:l + 24] for t in range(9) for l in range(9)
               for f in (False, True)}
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        image, label = train[0]
        assert image.shape == (3, 24, 24) and label == -1
        match = [k for k, w in windows.items() if torch.equal(w, image)]
        assert match, "a training item is not a crop of its cached image"
        seen.add(match[0])
    assert len(seen) > 20 and {f for _, _, f in seen} == {False, True}  # fresh positions and mirrors per access
    centre = torch.from_numpy(np.array(val.dataset.array[0])).float().div(127.5).sub(1.0)[:, 4:28, 4:28]
    assert torch.equal(val[0][0], centre) and torch.equal(val[0][0], val[0][0])
    with pytest.raises(ValueError, match="data.load_size=16 must be at least data.image_size=24"):
        _celeba(faces, tmp_path / "cache", image_size=24, load_size=16)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_cached_loader_serves_the_batches_of_the_float_dataset(faces, tmp_path, workers):
    from datamodules.cached_loader import SignedLoader

    dm = _celeba(faces, tmp_path / "cache", num_workers=workers, batch_size=5)
    loader = dm.val_dataloader()
    assert isinstance(loader, SignedLoader)  # uint8 from the workers (a quarter of the bytes), float here
    batches = list(loader)
    val = dm.dataset("val")
    assert [len(x) for x, _ in batches] == [3] and batches[0][0].dtype == torch.float32
    assert torch.equal(batches[0][0], torch.stack([val[i][0] for i in range(3)]))
    assert torch.equal(batches[0][1], torch.stack([val[i][1] for i in range(3)]))
    train = list(dm.train_dataloader())  # 14 images, batches of 5, shuffled, the last incomplete one dropped
    assert [len(x) for x, _ in train] == [5, 5]
    seen = torch.cat([x for x, _ in train])
    every = torch.stack([x for x, _ in _items(dm.dataset("train"))])
    assert all(any(torch.equal(s, e) for e in every) for s in seen)


def test_workers_hand_batches_over_a_shared_ring_without_overwriting_one(faces, tmp_path):
    """7 batches an epoch through 4 ring slots per worker (prefetch 2 + 2 spare), 2 workers, a consumer that
    stalls while the workers run ahead, an epoch abandoned midway: every batch is the float dataset's."""
    import time

    from datamodules.cached_loader import RingBatch, SignedLoader, Uint8Batches, first

    dm = _celeba(faces, tmp_path / "cache")
    dm.setup()
    train = dm.dataset("train")  # 14 images
    expected = torch.stack([x for x, _ in _items(train)])
    batches = Uint8Batches(train)
    loader = SignedLoader(batches, batch_size=2, num_workers=2, persistent_workers=True, collate_fn=first)
    for epoch in range(3):
        got = []
        for i, (images, labels) in enumerate(loader):
            if i in (1, 4):
                time.sleep(0.3)  # the workers fill every slot they may
            got.append(images.clone())
            if epoch == 1 and i == 2:
                break  # the next epoch drains what was prefetched
        want = expected[: 2 * len(got)]
        assert torch.equal(torch.cat(got), want), f"epoch {epoch}"
    assert batches.ring is not None and tuple(batches.ring.shape) == (2, 4, 2, 3, 32, 32)
    assert isinstance(batches.__getitems__([0, 1])[0], tuple) and not isinstance(
        batches.__getitems__([0, 1])[0], RingBatch)  # in this process: a plain read


def test_a_parallel_build_fills_every_row_and_stops_at_a_corrupt_file(faces, tmp_path, monkeypatch):
    import shutil

    from utils.errors import InputError

    monkeypatch.setattr(decoded_cache, "CHUNK", 4)  # 14 training images: 4 tasks for 2 worker processes
    dm = _celeba(faces, tmp_path / "cache", cache_workers=2)
    dm.setup()
    assert _same(_items(dm.dataset("train")), _items(_celeba(faces, tmp_path / "cache", cache=False).dataset("train")))
    root = tmp_path / "celeba"
    shutil.copytree(faces, root)
    bad = root / "img_align_celeba" / "000011.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match=f"cannot read image {bad}"):
        _celeba(root, tmp_path / "other", cache_workers=2).setup()
    assert not list((tmp_path / "other").glob("*.npy")) and not list((tmp_path / "other").glob(".*.tmp"))


def test_prepare_refuses_what_it_cannot_cache_in_one_line(tmp_path):
    from omegaconf import OmegaConf

    from datamodules.prepare import prepare
    from utils.errors import InputError, MissingFileError

    with pytest.raises(InputError, match="data=MNIST5kDataModule is held in memory"):
        prepare(OmegaConf.create({"data": {"_target_": "datamodules.images.mnist5k.MNIST5kDataModule"}}))
    celeba = {"_target_": "datamodules.images.celeba.CelebADataModule", "root": str(tmp_path / "none"), "cache": False}
    with pytest.raises(InputError, match="data.cache=false: nothing to prepare"):
        prepare(OmegaConf.create({"data": celeba}))
    # a missing data.root is an input error (one line from the entry points), still a FileNotFoundError
    with pytest.raises(MissingFileError, match=f"data.root={tmp_path / 'none'} is not a directory") as err:
        prepare(OmegaConf.create({"data": {**celeba, "cache": True, "cache_dir": str(tmp_path / "c")}}))
    assert isinstance(err.value, FileNotFoundError)
