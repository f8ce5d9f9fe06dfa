"""Writers of tiny datasets in the exact on-disk layouts the genforge readers expect.

Each ``write_*`` function writes into a folder and returns what it wrote (numpy arrays, names), so tests
can compare what a DataModule serves with the truth. Other test modules may import these too.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

# ----------------------------------------------------------------------------------------------- MNIST


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file (LeCun et al. 1998) of a uint8 array: magic 0x0000 08 D, D big-endian sizes, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def mnist_arrays(n_train: int = 30, n_test: int = 10, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """Random MNIST-shaped images and labels (0-9 cycling); image 0 of each set has pixel (0, 0) = 255
    and pixel (0, 1) = 0 so the value mapping can be checked exactly."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 255, 0
        out[f"{prefix}-images-idx3-ubyte"] = images
        out[f"{prefix}-labels-idx1-ubyte"] = (np.arange(n) % 10).astype(np.uint8)
    return out


def write_mnist(folder: Path, gz: bool = False, arrays: dict[str, np.ndarray] | None = None, **kw) -> dict:
    """Write the four MNIST idx files (raw, or ``.gz`` when ``gz``) into ``folder``."""
    arrays = arrays or mnist_arrays(**kw)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


# ----------------------------------------------------------------------------------------------- CIFAR-10


class Py2StylePickler(pickle._Pickler):
    """Writes pickles the way Python 2's cPickle wrote the CIFAR-10 batches: protocol 2, every ``str`` and
    ``bytes`` as a byte string (``BINSTRING``), numpy globals spelled ``numpy.core.multiarray``."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def cifar_batch(n: int, seed: int, label_offset: int = 0) -> dict:
    """A CIFAR-10 batch dict of the real structure (keys as Python 2 byte strings)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[0, 0], data[0, 1] = 255, 0
    return {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int((i + label_offset) % 10) for i in range(n)],
        b"data": data,
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def write_cifar10(root: Path, n_per_batch: int = 10, py2_style: bool = True, protocol: int | None = None
                  ) -> dict[str, dict]:
    """Write ``root/cifar-10-batches-py/{data_batch_1..5, test_batch}``; returns ``{name: batch dict}``.
    ``py2_style``: as the original download (Python 2, numpy 1.x); else re-saved by this Python with pickle
    ``protocol`` (default: Python's; protocol 2 spells bytes as ``_codecs.encode``)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = cifar_batch(n_per_batch, seed=i, label_offset=i)
        with open(folder / name, "wb") as f:
            if py2_style:
                Py2StylePickler(f).dump(batch)
            else:
                pickle.dump(batch, f, protocol=protocol)
        batches[name] = batch
    return batches


# ----------------------------------------------------------------------------------------------- images


def solid_image(colour: tuple[int, int, int], width: int, height: int) -> Image.Image:
    """An RGB image of one colour."""
    return Image.new("RGB", (width, height), colour)


def encode(image: Image.Image, fmt: str) -> bytes:
    """``image`` encoded as ``fmt`` (PNG/JPEG/WEBP...); WebP is lossless, JPEG quality 95."""
    buf = io.BytesIO()
    options = {"WEBP": {"lossless": True}, "JPEG": {"quality": 95}}.get(fmt, {})
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Bald", "Male", "Smiling", "Young"]


def write_celeba(root: Path, n: int = 9, width: int = 20, height: int = 24) -> dict:
    """Write ``img_align_celeba/00000k.jpg`` (solid colours), ``list_eval_partition.txt`` (splits cycling
    0, 0, 1, 2 ...) and ``list_attr_celeba.txt`` (5 attributes, -1/1) into ``root``."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names, colours, splits = [], [], []
    attrs = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRIBUTES)))
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        colour = (int(20 * i) % 256, 255, 0) if i else (255, 255, 255)
        solid_image(colour, width, height).save(images / name, quality=95)
        names.append(name)
        colours.append(colour)
        splits.append((0, 0, 1, 2)[i % 4])
    (root / "list_eval_partition.txt").write_text("".join(f"{a} {s}\n" for a, s in zip(names, splits)))
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, attrs)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return {"names": names, "colours": colours, "splits": splits, "attrs": attrs}


def write_lsun(root: Path, category: str = "bedroom", n_train: int = 12, n_val: int = 3) -> dict:
    """Write ``root/{category}_train_lmdb`` and ``root/{category}_val_lmdb``: lmdb databases whose keys
    are hex ids and values lossless-WebP images (LSUN's format), 24x32 solid colours."""
    import hashlib

    import lmdb

    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", n_val)):
        env = lmdb.open(str(root / f"{category}_{split}_lmdb"), map_size=1 << 24)
        colours = []
        with env.begin(write=True) as txn:
            for i in range(n):
                colour = (10 * i, 255 if split == "train" else 0, 128)
                key = hashlib.sha1(f"{split}{i}".encode()).hexdigest().encode()
                txn.put(key, encode(solid_image(colour, 32, 24), "WEBP"))
                colours.append(colour)
        env.close()
        out[split] = colours
    return out


def write_image_folder(root: Path, classes: dict[str, int] | None = None, nested: bool = True) -> dict:
    """Write PNGs of varied sizes: ``root/<class>/i.png`` (and ``root/<class>/sub/i.png`` when
    ``nested``) for each class, or flat ``root/i.png`` when ``classes`` is None (unlabeled)."""
    root.mkdir(parents=True, exist_ok=True)
    written = []
    groups = classes or {"": 6}
    for c, (name, count) in enumerate(sorted(groups.items())):
        for i in range(count):
            folder = root / name / ("sub" if nested and classes and i % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            colour = (255, 40 * c, 10 * i)
            path = folder / f"{i}.png"
            solid_image(colour, 16 + 2 * i, 12).save(path)
            written.append((path, c if classes else -1, colour))
    return {"files": written}


# ----------------------------------------------------------------------------------------------- TFD


def write_tfd(root: Path, n: int = 30, resolution: int = 48, drop: str | None = None) -> dict:
    """Write ``root/TFD_{R}x{R}.mat`` with ``images`` (N, R, R) uint8, ``folds`` (N, 5) and ``labs_ex``
    (N, 1); one third of the images unlabeled (folds 0, labs_ex -1). ``drop`` omits that array."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, resolution, resolution), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 255, 0
    labeled = np.arange(n) % 3 != 0
    folds = np.zeros((n, 5), dtype=np.uint8)
    for f in range(5):
        folds[labeled, f] = (np.arange(labeled.sum()) + f) % 3 + 1  # 1 train, 2 valid, 3 test
    labs_ex = np.where(labeled, np.arange(n) % 7 + 1, -1).astype(np.int16).reshape(-1, 1)
    arrays = {"images": images, "folds": folds, "labs_ex": labs_ex,
              "labs_id": np.arange(n, dtype=np.int32).reshape(-1, 1)}
    if drop:
        arrays.pop(drop)
    root.mkdir(parents=True, exist_ok=True)
    savemat(str(root / f"TFD_{resolution}x{resolution}.mat"), arrays)
    return {"images": images, "folds": folds, "labs_ex": labs_ex.reshape(-1)}


def listing(folder: Path) -> list[tuple[str, int, int]]:
    """Every file below ``folder`` with its size and mtime, to prove a reader wrote nothing."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*"))


# ----------------------------------------------------------------------------------------------- factor datasets


def stripe_image(codes: list[int], size: int = 40, border: int = 4, alpha: bool = False) -> Image.Image:
    """A gray image whose pixels encode factor values: a white border of ``border`` pixels (the background)
    around ``len(codes)`` vertical stripes of gray levels ``codes``. With ``alpha`` it is RGBA and the border
    is transparent black, as in renders that carry alpha."""
    inner = size - 2 * border
    width = inner // len(codes)
    array = np.full((size, size), 255, dtype=np.uint8)
    for j, code in enumerate(codes):
        right = border + inner if j == len(codes) - 1 else border + (j + 1) * width
        array[border : border + inner, border + j * width : right] = code
    if not alpha:
        return Image.fromarray(array, "L").convert("RGB")
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., :3], rgba[..., 3] = array[..., None], 255
    rgba[:border], rgba[-border:], rgba[:, :border], rgba[:, -border:] = 0, 0, 0, 0
    return Image.fromarray(rgba, "RGBA")


def stripe_codes(image: np.ndarray, count: int, inner: int = 32) -> list[int]:
    """Read back the ``count`` stripe codes of a uint8 ``(H, W)`` image of :func:`stripe_image`, cropped to
    its ``inner`` square (the border removed)."""
    width = inner // count
    return [int(image[inner // 2, j * width + width // 2]) for j in range(count)]


CHAIR_AZIMUTHS = (0, 116, 232, 348)
CHAIR_ELEVATIONS = (20, 30)


def chair_codes(azimuth: int, elevation: int, identity: int) -> list[int]:
    """Gray levels that encode a chair render's azimuth, elevation (degrees) and identity."""
    return [azimuth // 2, 4 * elevation, 10 * identity + 5]


def write_chairs(root: Path, n_chairs: int = 8, size: int = 40, alpha: bool = False) -> dict:
    """Write the ``rendered_chairs/`` layout of Aubry et al. 2014 into ``root``:
    ``<chair>/renders/image_NNN_pPPP_tTTT_r096.png`` for :data:`CHAIR_AZIMUTHS` x :data:`CHAIR_ELEVATIONS`,
    chair folders named by hashes (so their sorted order is not the writing order), plus the top-level
    ``all_chair_names.mat`` and a hidden ``.DS_Store`` in a renders folder. Each render is a
    :func:`stripe_image` of :func:`chair_codes` (identity = index among the sorted chair names)."""
    names = sorted(f"{(c * 2654435761) % 16 ** 8:08x}{c:024x}" for c in range(1, n_chairs + 1))
    root.mkdir(parents=True, exist_ok=True)
    (root / "all_chair_names.mat").write_bytes(b"MATLAB 5.0 MAT-file placeholder")
    renders = []
    for identity, name in enumerate(names):
        folder = root / name / "renders"
        folder.mkdir(parents=True, exist_ok=True)
        view = 0
        for elevation in CHAIR_ELEVATIONS:
            for azimuth in CHAIR_AZIMUTHS:
                path = folder / f"image_{view:03d}_p{elevation:03d}_t{azimuth:03d}_r096.png"
                stripe_image(chair_codes(azimuth, elevation, identity), size, alpha=alpha).save(path)
                renders.append((path, azimuth, elevation, identity))
                view += 1
    (root / names[0] / "renders" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return {"chairs": names, "renders": renders}


def factor_codes(values: list[float]) -> list[int]:
    """Gray levels that encode factor values ``[..., identity]``: ``100 + 100 x`` for a factor in [-1, 1],
    ``10 identity + 5`` for the last (the identity)."""
    return [100 + round(100 * v) for v in values[:-1]] + [10 * int(values[-1]) + 5]


def write_factor_folder(root: Path, identities: int = 6, azimuths=(-0.5, 0.0, 0.5), elevations=(0.0, 0.3),
                        lights=(0.0, 0.2), size: int = 40, csv: str = "factors.csv",
                        extra_columns: dict | None = None) -> dict:
    """Write ``root/faces/<id>/a<az>_e<el>_l<light>.png`` (a :func:`stripe_image` of :func:`factor_codes`
    of ``[azimuth, elevation, light, identity]``) for every combination, and ``root/<csv>`` with the header
    ``file,azimuth,elevation,light,identity`` plus ``extra_columns`` (name -> function of the row dict giving
    the value). Returns ``{"csv": path, "rows": [row dict, ...]}`` in CSV order."""
    rows = []
    for identity in range(identities):
        folder = root / "faces" / f"{identity:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for azimuth in azimuths:
            for elevation in elevations:
                for light in lights:
                    file = f"faces/{identity:03d}/a{azimuth:+.2f}_e{elevation:.2f}_l{light:.2f}.png"
                    values = [azimuth, elevation, light, identity]
                    stripe_image(factor_codes(values), size).save(root / file)
                    rows.append({"file": file, "azimuth": azimuth, "elevation": elevation, "light": light,
                                 "identity": identity})
    extra = extra_columns or {}
    header = ["file", "azimuth", "elevation", "light", "identity", *extra]
    lines = [",".join(header)]
    for row in rows:
        row.update({name: fn(row) for name, fn in extra.items()})
        lines.append(",".join(str(row[h]) for h in header))
    (root / csv).write_text("\n".join(lines) + "\n")
    return {"csv": root / csv, "rows": rows}


# ----------------------------------------------------------------------------------------------- patches (Deep GMM)


def write_bsds300_folder(root: Path, n_train: int = 10, n_test: int = 4, size: tuple[int, int] = (24, 32),
                         seed: int = 0) -> dict:
    """Write the Berkeley layout ``root/BSDS300/images/{train,test}/<id>.jpg`` (real colour JPEGs, quality
    95, of smooth random textures; landscape and portrait alternating like BSDS300's 481x321 / 321x481)
    plus ``iids_train.txt`` / ``iids_test.txt``. Returns ``{"folder": root/BSDS300, "train": [names],
    "test": [names]}`` (sorted names)."""
    rng = np.random.default_rng(seed)
    folder = root / "BSDS300"
    out: dict = {"folder": folder}
    for split, n, base in (("train", n_train, 100000), ("test", n_test, 300000)):
        directory = folder / "images" / split
        directory.mkdir(parents=True, exist_ok=True)
        names = []
        for i in range(n):
            h, w = size if i % 2 == 0 else size[::-1]
            coarse = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
            image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
            name = f"{base + 7919 * i}.jpg"
            image.save(directory / name, quality=95)
            names.append(name)
        (folder / f"iids_{split}.txt").write_text("".join(f"{n[:-4]}\n" for n in names))
        out[split] = sorted(names)
    return out


def write_bsds300_hdf5(path: Path, n: int = 40, dim: int = 63, drop: str | None = None, bad: str | None = None,
                       bad_value: float = float("nan"), dtype: str = "float64") -> dict[str, np.ndarray]:
    """Write a preprocessed ``BSDS300.hdf5`` like the MAF data archive's: datasets ``train`` (n, dim),
    ``validation`` (n // 4, dim) and ``test`` (n // 2, dim) of small zero-mean floats. ``drop`` omits that
    dataset; ``bad`` puts ``bad_value`` (NaN by default) at row 1, column 2 of that dataset. Returns the
    arrays written."""
    import h5py

    rng = np.random.default_rng(1)
    arrays = {key: (0.05 * rng.standard_normal((rows, dim))).astype(dtype)
              for key, rows in (("train", n), ("validation", max(1, n // 4)), ("test", max(1, n // 2)))}
    if bad:
        arrays[bad][1, 2] = bad_value
    if drop:
        arrays.pop(drop)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, array in arrays.items():
            f.create_dataset(key, data=array)
    return arrays


def write_tiny_images(root: Path, n: int = 12, size: int = 32, patch_size: int = 8, seed: int = 0) -> dict:
    """Write ``n`` gray ``size x size`` PNGs (stored as RGB with equal channels, so ``convert("L")`` is exact)
    whose ``(size / patch_size)``-pixel blocks are constant, so Pillow's BOX downsampling to ``patch_size``
    gives the block levels exactly. Files alternate between ``root/a/i.png`` and ``root/b/sub/i.png``;
    ``root/README.txt`` and a hidden ``root/.thumb.png`` are written too (readers must skip them).
    Returns ``{"files": {relative path: uint8 (patch_size, patch_size) levels}}``."""
    rng = np.random.default_rng(seed)
    block = size // patch_size
    files = {}
    for i in range(n):
        relative = Path("a" if i % 2 == 0 else "b/sub") / f"{i:03d}.png"
        levels = rng.integers(0, 256, size=(patch_size, patch_size)).astype(np.uint8)
        gray = np.kron(levels, np.ones((block, block), dtype=np.uint8))
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([gray] * 3, axis=-1)).save(root / relative)
        files[str(relative)] = levels
    (root / "README.txt").write_text("not an image\n")
    Image.new("RGB", (size, size)).save(root / ".thumb.png")
    return {"files": files}


def write_celeba_faces(root: Path, n: int = 40) -> None:
    """A CelebA-layout folder of real faces (scikit-image's LFW subset, upscaled to CelebA's 178x218):
    ``img_align_celeba/NNNNNN.jpg`` and ``list_eval_partition.txt`` (70% train, 15% val, 15% test)."""
    from PIL import Image
    from skimage.data import lfw_subset

    faces = lfw_subset()[:n]
    (root / "img_align_celeba").mkdir(parents=True)
    lines = []
    for i, face in enumerate(faces):
        name = f"{i + 1:06d}.jpg"
        gray = Image.fromarray((face * 255).round().astype("uint8")).resize((178, 218), Image.BICUBIC)
        gray.convert("RGB").save(root / "img_align_celeba" / name, quality=95)
        lines.append(f"{name} {0 if i < 0.7 * n else 1 if i < 0.85 * n else 2}\n")
    (root / "list_eval_partition.txt").write_text("".join(lines))
