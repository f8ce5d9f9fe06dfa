"""``chairs``: the rendered 3D chairs of Aubry et al. (CVPR 2014), served as DC-IGN's one-factor batches.

Expected layout of ``data.root``, the extracted ``rendered_chairs/`` folder of
https://www.di.ens.fr/willow/research/seeing3Dchairs/ (Aubry et al. 2014)::

    root/<chair_dir>/renders/image_NNN_pPPP_tTTT_rDDD.png   one folder per chair model; NNN the view
                                                             (000-061), PPP the elevation in degrees
                                                             (020 or 030), TTT the azimuth in degrees
                                                             (000-348, 31 values), DDD the distance (096)
    root/all_chair_names.mat, ...                            other top-level files are ignored

1393 chairs (1357 in some versions) of 62 renders each, 600x600 RGB (some versions RGBA) on a white
background. Kulkarni et al. (2015, Sec. 4.2) train DC-IGN on these in grayscale with batches in which only
the azimuth, or only the chair (the intrinsic properties), changes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules.base import fixed_split
from datamodules.factors.batches import INTRINSIC, FactorDataModule, GroupedFactorBatches
from datamodules.image_files import ImageFileDataset
from utils.errors import InputError, MissingFileError

#: The factors of a render, in the order of ``factors`` columns: radians, radians, chair index.
FACTOR_NAMES = ("azimuth", "elevation", "identity")
#: A render's file name: view, elevation (degrees), azimuth (degrees), distance.
RENDER_NAME = re.compile(r"image_(\d{3})_p(\d{3})_t(\d{3})_r(\d{3})\.png")
RENDERS = "renders"
#: The batch types of the chairs and the factor that varies in each.
BATCH_TYPES = {"azimuth": ["azimuth"], "elevation": ["elevation"], INTRINSIC: ["identity"]}
LAYOUT = (
    f"the rendered_chairs/ folder of Aubry et al. 2014 (https://www.di.ens.fr/willow/research/seeing3Dchairs/): "
    f"data.root/<chair_dir>/{RENDERS}/image_NNN_pPPP_tTTT_r096.png (or data.root/rendered_chairs/<chair_dir>/...), "
    f"NNN the view, PPP the elevation and TTT "
    f"the azimuth in degrees"
)


def rendered_chairs_folder(root: Path) -> Path:
    """The ``rendered_chairs/`` folder for ``data.root``: ``root`` itself, or ``root/rendered_chairs`` when
    ``root`` is the folder the archive was extracted into (both spellings of the README's layout work)."""
    inner = root / "rendered_chairs"
    if inner.is_dir() and not (root / "rendered_chairs" / RENDERS).is_dir():
        return inner
    return root


def scan_rendered_chairs(root: Path) -> tuple[list[str], list[Path], torch.Tensor]:
    """Find every render of the ``rendered_chairs/`` layout (Aubry et al. 2014) and parse its factors.

    Chair folders are the non-hidden subfolders of ``root``, sorted by name; top-level files are ignored.
    In ``<chair>/renders/`` hidden files are ignored and every other entry must be a render
    ``image_NNN_pPPP_tTTT_rDDD.png``.

    Args:
        root: the ``rendered_chairs/`` folder, or the folder holding it (see :func:`rendered_chairs_folder`).

    Returns:
        ``(chairs, paths, factors)``: the sorted chair folder names; the N render paths (chair by chair,
        sorted by file name); float32 ``(N, 3)`` factors ``[azimuth, elevation, identity]``: azimuth
        ``TTT`` and elevation ``PPP`` converted from degrees to radians (azimuth in ``[0, 2 pi)``), identity
        the chair's index in ``chairs`` (``0 .. len(chairs) - 1``, as a float).

    Raises:
        MissingFileError: when ``root`` is not a folder, or a chair folder has no ``renders/`` folder.
        InputError: when there are no chair folders, a file in ``renders/`` does not match the render name
            pattern (names the file), a chair has no renders, or two renders of one chair have the same
            azimuth and elevation. Every message names the path and the expected layout.
    """
    if not root.is_dir():
        raise MissingFileError(f"data.root={root} is not a directory; chairs expects {LAYOUT}")
    root = rendered_chairs_folder(root)
    chairs = sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir())
    if not chairs:
        raise InputError(f"{root} has no chair folders; expected {LAYOUT}")
    paths: list[Path] = []
    rows: list[tuple[float, float, float]] = []
    for identity, chair in enumerate(chairs):
        renders = root / chair / RENDERS
        if not renders.is_dir():
            raise MissingFileError(f"chair folder {root / chair} has no {RENDERS}/ folder; expected {LAYOUT}")
        seen: dict[tuple[int, int], str] = {}
        for name in sorted(os.listdir(renders)):
            if name.startswith("."):
                continue
            match = RENDER_NAME.fullmatch(name)
            if match is None:
                raise InputError(f"{renders / name} is not a render named image_NNN_pPPP_tTTT_rDDD.png; "
                                 f"expected {LAYOUT}")
            elevation, azimuth = int(match.group(2)), int(match.group(3))
            if (elevation, azimuth) in seen:
                raise InputError(f"{renders / name} and {renders / seen[elevation, azimuth]} are both elevation "
                                 f"{elevation}, azimuth {azimuth} degrees; expected one render per view")
            seen[elevation, azimuth] = name
            paths.append(renders / name)
            rows.append((math.radians(azimuth), math.radians(elevation), float(identity)))
        if not seen:
            raise InputError(f"chair folder {root / chair} has no renders in {renders}; expected {LAYOUT}")
    return chairs, paths, torch.tensor(rows, dtype=torch.float32)


class ChairRenders(ImageFileDataset):
    """The renders, decoded lazily: item ``j`` is ``(image, -1)``, image float32
    ``(channels, image_size, image_size)`` in ``[-1, 1]``: the render composited over white (when it has
    alpha, as some distributions do), centre-cropped to ``crop_size``, resized and converted to ``channels``.

    Args: as :class:`datamodules.image_files.ImageFileDataset` (``background`` is white, 255).

    Raises:
        MissingFileError / InputError: on access, when a render is missing / unreadable / smaller than
            ``crop_size``; names the file.
    """

    def __init__(self, paths, labels=None, image_size: int = 64, channels: int = 1, crop_size: int | None = None,
                 background: int = 255) -> None:
        super().__init__(paths, labels, image_size, channels, crop_size, background)


class ChairsDataModule(FactorDataModule):
    """The rendered 3D chairs (Aubry et al. 2014) as one-factor batches for DC-IGN (Kulkarni et al. 2015,
    Sec. 4.2), split by chair.

    Loader items are whole batches ``(images, factors, batch_type)``: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]`` (white background = 1, grayscale by default as
    in DC-IGN); factors float32 ``(B, 3)`` = ``[azimuth, elevation, identity]`` in the order of
    ``factor_names`` (angles in radians, identity the chair's index among the sorted chair folders);
    batch_type int64 ``()`` indexing ``batch_types``. An ``azimuth`` batch is one chair at one elevation under
    up to ``batch_size`` azimuths; an ``elevation`` batch one chair at one azimuth under both elevations; an
    ``intrinsic`` batch up to ``batch_size`` chairs at one (azimuth, elevation).

    The split is by chair (disjoint identities): a permutation of the sorted chairs seeded with
    ``split_seed``; its first ``train_chairs - val_chairs`` chairs train, the next ``val_chairs`` validate
    (together the ``train_chairs`` training chairs), the rest test.

    Args:
        factor_names: the factors, in column order; the names must be azimuth, elevation and identity.
        batch_types: from ``azimuth``, ``elevation``, ``intrinsic`` (default ``[azimuth, intrinsic]``).
        batch_ratio: one weight per batch type (default ``[1, 1]``).
        train_chairs: chairs for training, validation included (default 1200).
        val_chairs: of those, chairs held out for validation (default 50).
        crop_size: side of the central square cropped from each render before resizing (default 400 of
            the 600x600 renders); ``None`` for the whole image.
        **kwargs: :class:`datamodules.factors.batches.FactorDataModule` and
            :class:`datamodules.base.ImageDataModule` arguments (``image_size`` 64, ``channels`` 1,
            ``batch_size`` 20 images per batch, ``train_batches``, ``val_batches``, ``test_batches``...).

    Raises:
        InputError: (init) when ``factor_names`` are not the chairs' factors, a batch type is not one of
            azimuth, elevation, intrinsic, or the chair counts are invalid;
            (setup) when the dataset has fewer than ``train_chairs + 1`` chairs (names ``data.train_chairs``),
            ``num_classes`` is not 0, or the layout is wrong (see :func:`scan_rendered_chairs`).
        MissingFileError: (setup) when ``root`` or a ``renders/`` folder is missing.
    """

    def __init__(self, factor_names: Sequence[str] = FACTOR_NAMES,
                 batch_types: Sequence[str] = ("azimuth", INTRINSIC), batch_ratio: Sequence[float] = (1, 1),
                 train_chairs: int = 1200, val_chairs: int = 50, crop_size: int | None = 400, **kwargs) -> None:
        kwargs.setdefault("image_size", 64)
        kwargs.setdefault("channels", 1)
        kwargs.setdefault("batch_size", 20)
        super().__init__(factor_names, batch_types, batch_ratio, **kwargs)
        unknown = [t for t in self.batch_types if t not in BATCH_TYPES]
        if unknown:
            raise InputError(f"data.batch_types {unknown} are not batch types of the chairs; use {list(BATCH_TYPES)}")
        if sorted(self.factor_names) != sorted(FACTOR_NAMES):
            raise InputError(f"data.factor_names must name the chairs' factors {list(FACTOR_NAMES)} (in any "
                             f"order), got {list(self.factor_names)}")
        if not 1 <= val_chairs < train_chairs:
            raise InputError(f"data.val_chairs={val_chairs} must be at least 1 and less than "
                             f"data.train_chairs={train_chairs}")
        self.train_chairs, self.val_chairs, self.crop_size = train_chairs, val_chairs, crop_size
        self.chairs: list[str] = []
        self.split_chairs: dict[str, list[str]] = {}

    def build_splits(self) -> dict[str, GroupedFactorBatches]:
        root = self.require_root(LAYOUT)
        self.check_num_classes(0)
        self.chairs, paths, factors = scan_rendered_chairs(root)
        n = len(self.chairs)
        if n < self.train_chairs + 1:
            raise InputError(f"{root} has {n} chairs, but data.train_chairs={self.train_chairs} leaves none to "
                             f"test; set data.train_chairs below {n} (and data.val_chairs={self.val_chairs} below "
                             f"data.train_chairs: they are held out of it)")
        order = [FACTOR_NAMES.index(name) for name in self.factor_names]
        factors = factors[:, order]
        identity = factors[:, self.factor_names.index("identity")].long()
        chosen = fixed_split(n, (self.train_chairs - self.val_chairs, self.val_chairs, -1), self.split_seed)
        splits = {}
        for split, chairs in zip(("train", "val", "test"), chosen):
            self.split_chairs[split] = [self.chairs[int(c)] for c in chairs]
            rows = torch.isin(identity, chairs).nonzero().flatten()
            images = self.decoded(ChairRenders([paths[int(r)] for r in rows], image_size=self.image_size,
                                               channels=self.channels, crop_size=self.crop_size),
                                  f"chairs-{split}-crop{self.crop_size}")
            splits[split] = GroupedFactorBatches(
                images, factors[rows], self.factor_names, BATCH_TYPES, self.batch_size, self.num_batches[split],
                self.batch_types, self.ratio_of(split), self.split_seed_of(split),
                source=f"{root} ({split} chairs)",
            )
        return splits
