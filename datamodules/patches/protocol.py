"""The BSDS300 patch protocol of RNADE and the Deep GMM, shared by every patch reader.

Sources: Uria, Murray & Larochelle 2013, "RNADE: The real-valued neural autoregressive density-estimator",
Sec. 4.2 (BSDS300 8x8 patches); van den Oord & Schrauwen 2014, "Factoring Variations in Natural Images
with Deep Gaussian Mixture Models", Sec. 4 (same data and preprocessing). The preprocessed BSDS300 set of
the density-estimation literature (MAF, Papamakarios et al. 2017) follows it too.

From a grayscale uint8 image ``(H, W)`` (colour images converted with Pillow ``convert("L")``, see
:func:`to_grayscale`):

1. take ``count`` square ``patch_size x patch_size`` patches whose top-left corners are uniform over the
   valid positions (:func:`patch_positions`, drawn from a seeded ``numpy.random.Generator``);
2. dequantize: add uniform noise ``U[0, 1)`` to the integer pixel values and divide by 256, so every
   value lies in ``[0, 1)`` (:func:`dequantize`);
3. subtract each patch's mean (the patch's DC component carries no texture);
4. drop the last pixel in row-major order (the bottom-right one): after step 3 the pixels sum to 0, so it
   is determined by the others and keeping it would make the density degenerate (steps 3-4:
   :func:`center_and_drop`).

The result is float64 ``(count, patch_size**2 - 1)`` (63 dims for the default 8x8), every value in
``(-1, 1)`` (in practice mostly within ``[-0.5, 0.5]``). The noise is drawn ONCE, from the same seeded
generator as the positions, so a dataset is the same in every epoch and every run.
Order of draws from the generator per image: the rows of the positions, their columns, then the noise
``(count, patch_size**2)`` (see :func:`extract_patches`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from utils.errors import InputError

#: Default patch side of the protocol (8x8 patches -> 63 dims).
PATCH_SIZE = 8


def patch_dim(patch_size: int = PATCH_SIZE) -> int:
    """The dimension of a preprocessed patch: ``patch_size**2 - 1`` (63 for 8x8).

    Raises:
        utils.errors.InputError: if ``patch_size < 2`` (a 1x1 patch has no dimension left after dropping a
            pixel), naming ``data.patch_size``.
    """
    if int(patch_size) != patch_size or patch_size < 2:
        raise InputError(f"data.patch_size must be an integer >= 2, got {patch_size}")
    return int(patch_size) ** 2 - 1


def to_grayscale(image: np.ndarray | Image.Image, name: str = "image") -> np.ndarray:
    """A uint8 grayscale ``(H, W)`` array from a grayscale ``(H, W)``, RGB ``(H, W, 3)`` or RGBA
    ``(H, W, 4)`` uint8 array or a Pillow image; colour is converted with Pillow ``convert("L")``
    (ITU-R 601-2 luma: ``L = 0.299 R + 0.587 G + 0.114 B``, rounded), as the BSDS300 protocol does.

    Raises:
        ValueError: if the array is not uint8 or not of one of those shapes; names the image.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: expected a uint8 image, got {array.dtype} {array.shape}")
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.asarray(Image.fromarray(np.ascontiguousarray(array)).convert("L"), dtype=np.uint8)
    raise ValueError(f"{name}: expected a uint8 image (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")


def patch_positions(height: int, width: int, count: int, rng: np.random.Generator,
                    patch_size: int = PATCH_SIZE, name: str = "image") -> np.ndarray:
    """Top-left corners of ``count`` patches, uniform over an ``(height, width)`` image.

    Draws the rows ``rng.integers(0, height - patch_size + 1, count)``, then the columns likewise.

    Returns:
        int64 ``(count, 2)``: ``(top, left)`` with ``0 <= top <= height - patch_size`` and
        ``0 <= left <= width - patch_size``.

    Raises:
        utils.errors.InputError: if the image is smaller than a patch (names it and ``data.patch_size``).
        ValueError: if ``count < 0``.
    """
    if count < 0:
        raise ValueError(f"{name}: the patch count must be >= 0, got {count}")
    if height < patch_size or width < patch_size:
        raise InputError(f"{name} is {height}x{width}, smaller than a {patch_size}x{patch_size} patch "
                         f"(data.patch_size)")
    top = rng.integers(0, height - patch_size + 1, size=count, dtype=np.int64)
    left = rng.integers(0, width - patch_size + 1, size=count, dtype=np.int64)
    return np.stack([top, left], axis=1)


def cut_patches(image: np.ndarray, positions: np.ndarray, patch_size: int = PATCH_SIZE) -> np.ndarray:
    """The pixels of the patches at ``positions`` (int ``(N, 2)`` top-left corners) of a ``(H, W)`` image.

    Returns:
        ``(N, patch_size * patch_size)`` of the image's dtype, each patch flattened row-major.
    """
    offsets = np.arange(patch_size)
    rows = positions[:, 0, None, None] + offsets[None, :, None]
    cols = positions[:, 1, None, None] + offsets[None, None, :]
    return image[rows, cols].reshape(len(positions), patch_size * patch_size)


def dequantize(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Step 2 of the protocol: ``(pixels + U[0, 1)) / 256`` with the noise ``rng.random(pixels.shape)``.

    Args:
        pixels: integer values in ``[0, 255]`` (uint8), any shape.

    Returns:
        float64 of the same shape, in ``[0, 1)``; ``256 * result - pixels`` lies in ``[0, 1)``.
    """
    return (pixels.astype(np.float64) + rng.random(pixels.shape)) / 256.0


def center_and_drop(values: np.ndarray) -> np.ndarray:
    """Steps 3-4 of the protocol: subtract each row's mean, then drop its last entry.

    Args:
        values: float ``(N, P*P)``, flattened patches (row-major), e.g. from :func:`dequantize`.

    Returns:
        float64 ``(N, P*P - 1)``; the dropped entry of a row is minus the sum of the kept ones.
    """
    centered = values - values.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(centered[:, :-1], dtype=np.float64)


def preprocess_patches(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Steps 2-4 of the protocol on flattened integer patches.

    Args:
        pixels: uint8 ``(N, P*P)`` (or ``(N, P, P)``), values in ``[0, 255]``.
        rng: the seeded generator the noise ``(N, P*P)`` is drawn from.

    Returns:
        float64 ``(N, P*P - 1)`` in ``(-1, 1)``.
    """
    pixels = np.asarray(pixels).reshape(len(pixels), -1)
    return center_and_drop(dequantize(pixels, rng))


def extract_patches(image: np.ndarray, count: int, rng: np.random.Generator, patch_size: int = PATCH_SIZE,
                    name: str = "image") -> np.ndarray:
    """The whole protocol on one image: ``count`` random patches, dequantized, centred, last pixel dropped.

    Draws from ``rng``, in order: positions (:func:`patch_positions`), then the noise ``(count, P*P)``.
    An image of exactly ``patch_size x patch_size`` gives the image itself as its one position (used for
    downsampled tiny images).

    Args:
        image: uint8 ``(H, W)`` grayscale, or a colour array/Pillow image (see :func:`to_grayscale`).
        count: the number of patches.
        rng: a seeded ``numpy.random.Generator``.
        patch_size: the patch side ``P`` (default 8).
        name: what to call the image in errors.

    Returns:
        float64 ``(count, P*P - 1)`` in ``(-1, 1)``, each row's full patch summing to 0.

    Raises:
        ValueError: if the image is not uint8 grayscale/colour; InputError if smaller than a patch; names it.
    """
    patch_dim(patch_size)
    gray = to_grayscale(image, name)
    positions = patch_positions(gray.shape[0], gray.shape[1], count, rng, patch_size, name)
    return preprocess_patches(cut_patches(gray, positions, patch_size), rng)


def spread_counts(total: int, n: int) -> list[int]:
    """``total`` split as evenly as possible over ``n`` parts (the first ``total % n`` parts get one more).

    Raises:
        ValueError: if ``n < 1`` or ``total < 0``.
    """
    if n < 1 or total < 0:
        raise ValueError(f"cannot spread {total} patches over {n} images")
    base, extra = divmod(int(total), n)
    return [base + (i < extra) for i in range(n)]


def patches_from_images(images: Iterable[tuple[str, np.ndarray]], counts: Sequence[int],
                        rng: np.random.Generator, patch_size: int = PATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`extract_patches` to a sequence of images, in order, with one shared generator.

    Args:
        images: ``(name, image)`` pairs (may be a lazy generator: one image in memory at a time).
        counts: the number of patches of each image (e.g. :func:`spread_counts`).
        rng: the seeded generator, used by the images in order.
        patch_size: the patch side ``P``.

    Returns:
        ``(x, owner)``: float64 ``(sum(counts), P*P - 1)`` patches (the patches of image 0 first), and
        int64 ``(sum(counts),)`` the index of the image each patch comes from.

    Raises:
        ValueError: if there are fewer or more images than counts, or an image is too small (names it).
    """
    dim = patch_dim(patch_size)
    counts = [int(c) for c in counts]
    x = np.empty((sum(counts), dim), dtype=np.float64)
    owner = np.empty(sum(counts), dtype=np.int64)
    start, seen = 0, 0
    for i, (name, image) in enumerate(images):
        if i >= len(counts):
            raise ValueError(f"more images than patch counts ({len(counts)}); first extra: {name}")
        x[start : start + counts[i]] = extract_patches(image, counts[i], rng, patch_size, name)
        owner[start : start + counts[i]] = i
        start, seen = start + counts[i], i + 1
    if seen != len(counts):
        raise ValueError(f"{seen} images for {len(counts)} patch counts")
    return x, owner


def check_patches(x: np.ndarray | torch.Tensor, source: str, dim: int | None) -> np.ndarray:
    """Validate preprocessed patches read from ``source`` and return them as float64 ``(N, dim)``.

    Args:
        x: the array (numpy, torch, or an ``h5py`` dataset already read into memory).
        source: what to name in errors (a file and key, e.g. ``"BSDS300.hdf5['train']"``).
        dim: the expected dimension, ``patch_size**2 - 1`` (63 for 8x8 patches); ``None`` accepts any.

    Returns:
        float64 numpy ``(N, dim)`` (``x`` itself, not a copy, when it already is a float64 numpy array).

    Raises:
        utils.errors.InputError: naming ``source`` and the expectation, if ``x`` is not 2-D, has ``!= dim``
            columns, no rows, is not numeric, or holds NaN or infinite values.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    expected = f"float (N, {'D' if dim is None else dim}) patches (D = patch_size**2 - 1)"
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise InputError(f"{source}: expected {expected}, got shape {tuple(x.shape)}")
    if len(x) == 0:
        raise InputError(f"{source}: expected {expected}, got no rows (shape {tuple(x.shape)})")
    if x.dtype.kind not in "fiu":
        raise InputError(f"{source}: expected {expected}, got dtype {x.dtype}")
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        n_nan, n_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
        raise InputError(f"{source}: holds {n_nan} NaN and {n_inf} infinite values (first at row {bad[0]}, "
                         f"column {bad[1]}); expected finite {expected}")
    return x


class PatchBatch(Sequence):
    """The items of one batch, as :meth:`PatchDataset.__getitems__` fetches them.

    It is the sequence of ``(x_i float64 (D,), index_i int64 ())`` items that ``default_collate`` expects
    (so any collate function works), and it carries them already stacked, ``x`` float64 ``(B, D)`` and
    ``index`` int64 ``(B,)``, which :func:`collate_patches` returns directly: a batch of 10,000 patches then
    costs one fancy index instead of 10,000 item tensors.
    """

    def __init__(self, x: torch.Tensor, index: torch.Tensor) -> None:
        self.x, self.index = x, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.x[i], self.index[i]


def collate_patches(items) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate function of the patch loaders: ``(x float64 (B, D), index int64 (B,))``.

    A :class:`PatchBatch` is returned as its stacked tensors; any other list of ``(x_i, index_i)`` items
    goes through ``torch.utils.data.default_collate``.
    """
    if isinstance(items, PatchBatch):
        return items.x, items.index
    return tuple(default_collate(items))


class PatchDataset(Dataset):
    """Preprocessed patches in memory, served with their index: item ``i`` is ``(x[i], i)``.

    Items: ``x`` float64 ``(D,)`` (``D = patch_size**2 - 1``, values roughly in ``[-1, 1]``) and ``index``
    int64 ``()``, the item's position in this dataset (the Deep GMM keeps per-point state keyed by it).
    Batches from a DataLoader are therefore ``(x float64 (B, D), index int64 (B,))``.
    :meth:`__getitems__` serves a whole batch with one fancy index (a :class:`PatchBatch`; use
    :func:`collate_patches` as the loader's ``collate_fn``), so batches of 10,000 stay cheap.

    Args:
        x: float ``(N, D)`` numpy or torch; held as a float64 torch tensor (validated with
            :func:`check_patches`).
        source: what to name in errors.
        dim: the expected ``D`` (``None``: any).
        owners: int ``(N,)`` the index into ``source_names`` of each patch's image (optional).
        source_names: the names of the images the patches come from.

    Raises:
        ValueError: see :func:`check_patches`; or if ``owners`` does not have N entries.
    """

    def __init__(self, x: np.ndarray | torch.Tensor, source: str = "patches", dim: int | None = None,
                 owners: np.ndarray | None = None, source_names: Sequence[str] = ()) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(check_patches(x, source, dim)))
        if owners is not None and len(owners) != len(self.x):
            raise ValueError(f"{source}: {len(self.x)} patches but {len(owners)} owners")
        self.owners = None if owners is None else torch.as_tensor(np.asarray(owners), dtype=torch.long)
        self.source_names = list(source_names)
        self.source = source

    @property
    def dim(self) -> int:
        """``D``, the dimension of a patch."""
        return self.x.shape[1]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        index %= len(self)
        return self.x[index], torch.tensor(index, dtype=torch.long)

    def __getitems__(self, indices: Sequence[int]) -> PatchBatch:
        """The items at ``indices`` (a DataLoader batch), fetched with one fancy index.

        Returns:
            a :class:`PatchBatch`: the sequence of ``(x_i, index_i)`` items a collate function expects,
            which :func:`collate_patches` turns into the batch without per-item work.
        """
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} patches")
        idx = idx % max(len(self), 1)
        return PatchBatch(self.x[idx], idx)

    def source_of(self, index: int) -> str:
        """The name of the image patch ``index`` was cut from.

        Raises:
            LookupError: if the dataset was built without ``owners``/``source_names``.
        """
        if self.owners is None or not self.source_names:
            raise LookupError(f"{self.source}: no record of which image each patch comes from")
        return self.source_names[int(self.owners[index])]
