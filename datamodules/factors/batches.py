"""Mini-batches that vary one factor, the data DC-IGN trains on (Kulkarni et al. 2015, Sec. 3.1-3.2).

DC-IGN's training procedure shows the network batches in which exactly one factor of variation changes
— the azimuth, the elevation, the light, or the intrinsic properties (the identity) — and everything else
is fixed. A dataset here is therefore a dataset of *batches*: item ``i`` is a whole mini-batch

    ``(images, factors, batch_type)``

- ``images``: float32 ``(B, C, H, W)`` in ``[-1, 1]``;
- ``factors``: float32 ``(B, F)``, the true factor values in the order of the data's ``factor_names``
  (angles in radians, identities as integer ids stored as floats);
- ``batch_type``: int64 0-dim tensor, the index into the data's ``batch_types`` of what varies.

The loaders serve these with ``batch_size=None`` (no further collation), so Lightning's samplers,
shuffling and distributed sampling act on whole batches. Batch types are drawn at random in the
configured ratio (the paper's 1:1:1:10 for azimuth : elevation : light : intrinsic), by a seeded
generator so that a split is the same in every run.

Batch ``i``'s content depends only on ``(seed, i)``, so a split can serve new batches for ever: with
``data.redraw_train_batches`` (the default) epoch ``e`` trains on batches ``e * n ... e * n + n - 1``
(:class:`RedrawSampler`), new renders or new draws from the image collection each epoch, as the paper
trains on about 12,000 distinct batches (Sec. 4.1) rather than ``n`` batches seen again and again.
Validation and test keep their fixed ``n`` batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.base import ImageDataModule
from utils.errors import InputError

#: The batch type in which the identity (shape, texture) varies and the extrinsic factors are fixed.
INTRINSIC = "intrinsic"


def batch_type_schedule(n: int, ratio: Sequence[float], seed: int) -> torch.Tensor:
    """Draw ``n`` batch types at random in the ratio ``ratio`` (Kulkarni et al. 2015, Sec. 3.2: 1:1:1:10).

    Args:
        n: number of batches.
        ratio: one non-negative weight per batch type, not all zero.
        seed: seed of the draw; the same ``(n, ratio, seed)`` always gives the same schedule.

    Returns:
        int64 ``(n,)`` with values in ``[0, len(ratio))``.

    Raises:
        InputError: on a negative, non-finite or all-zero ratio (names ``data.batch_ratio``).
    """
    weights = torch.as_tensor(list(ratio), dtype=torch.float64)
    if weights.dim() != 1 or len(weights) == 0 or not torch.isfinite(weights).all() or (weights < 0).any() \
            or weights.sum() <= 0:
        raise InputError(f"data.batch_ratio must be non-negative weights, not all zero, got {list(ratio)}")
    if n <= 0:
        return torch.zeros(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def check_one_factor_varies(factors: torch.Tensor, varying: Sequence[int], names: Sequence[str],
                            where: str) -> None:
    """Raise unless only the columns ``varying`` of ``factors`` (``(B, F)``) change within the batch.

    Args:
        factors: float ``(B, F)`` factor values of one batch.
        varying: the column indices allowed to change.
        names: the ``F`` factor names, for the message.
        where: what to call the batch in the message (a file and batch id).

    Raises:
        InputError: naming ``where`` and every other factor that changes.
    """
    changing = [names[j] for j in range(factors.shape[1])
                if j not in varying and bool((factors[:, j] != factors[0, j]).any())]
    if changing:
        allowed = ", ".join(names[j] for j in varying)
        raise InputError(f"{where}: a batch may vary only {allowed}, but {', '.join(changing)} also vary")


class FactorBatches(Dataset):
    """Base of the datasets of one-factor batches: item ``i`` is ``(images, factors, batch_type)``.

    Subclasses set ``batch_types`` (and the ``schedule`` of each item's type) and implement
    :meth:`make_batch`.

    Args:
        num_batches: the number of batches (items) in this split.
        batch_types: names of the batch types, e.g. ``("azimuth", "elevation", "light", "intrinsic")``.
        ratio: the weight of each batch type (same length).
        seed: seed of the batch-type schedule and of each batch's content.
    """

    def __init__(self, num_batches: int, batch_types: Sequence[str], ratio: Sequence[float], seed: int) -> None:
        if len(ratio) != len(batch_types):
            raise InputError(f"data.batch_ratio has {len(ratio)} weights but data.batch_types names "
                             f"{len(batch_types)} types {list(batch_types)}")
        if num_batches < 1:
            raise InputError(f"a split needs at least one batch, got {num_batches}")
        self.batch_types = tuple(batch_types)
        self.seed, self.ratio = seed, tuple(ratio)
        self.schedule = batch_type_schedule(num_batches, ratio, seed)
        self._later_block: tuple[int, torch.Tensor] | None = None

    @property
    def redrawable(self) -> bool:
        """Whether batches past ``len(self)`` can be drawn (a later epoch's new batches)."""
        return True

    def __len__(self) -> int:
        return len(self.schedule)

    def batch_type_index(self, index: int) -> int:
        """The batch type (an index into ``batch_types``) of batch ``index >= 0``.

        Indices ``0 ... n - 1`` follow ``schedule``; each later block of ``n`` (a later epoch's new
        batches, see :class:`RedrawSampler`) has its own schedule in the same ratio (Kulkarni et al. 2015,
        Sec. 3.2: 1:1:1:10). Returns an int in ``[0, len(batch_types))``.
        """
        block, offset = divmod(index, len(self.schedule))
        if block == 0:
            return int(self.schedule[offset])
        if self._later_block is None or self._later_block[0] != block:
            seed = 10_000_019 * block + self.seed  # apart from the batches' own seeds (seed * 1_000_003 + i)
            self._later_block = (block, batch_type_schedule(len(self.schedule), self.ratio, seed))
        return int(self._later_block[1][offset])

    def generator(self, index: int) -> torch.Generator:
        """The seeded generator of batch ``index``: a batch's content depends only on (seed, index)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + index)

    def make_batch(self, index: int, batch_type: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images (B, C, H, W) in [-1, 1], factors (B, F))`` of batch ``index``."""
        raise NotImplementedError

    def __getitem__(self, index: int):
        if index < 0 or (index >= len(self) and not self.redrawable):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        kind = self.batch_type_index(index)
        images, factors = self.make_batch(index, self.batch_types[kind])
        return images, factors, torch.tensor(kind, dtype=torch.long)


class GroupedFactorBatches(FactorBatches):
    """One-factor batches drawn from a fixed collection of factor-labelled images (chairs, a CSV folder).

    For a batch type, the images are grouped by every factor that must stay fixed; a batch is up to
    ``batch_size`` members of one group (a group of at least two images), drawn without replacement.
    E.g. an azimuth batch of the chairs is one chair at one elevation under several azimuths, and an
    intrinsic batch is several chairs seen from the same azimuth and elevation.

    Args:
        images: a Dataset whose item ``j`` is ``(image (C, H, W) in [-1, 1], anything)`` — or a float
            ``(N, C, H, W)`` tensor in ``[-1, 1]``.
        factors: float ``(N, F)`` factor values of the ``N`` images.
        factor_names: the ``F`` column names.
        varying: batch type name -> the factor names that vary in a batch of that type.
        batch_size: images per batch (fewer when a group is smaller).
        num_batches, batch_types, ratio, seed: as :class:`FactorBatches`.
        fixed_batches: optional explicit batches (lists of image indices, from the user's ``batch``
            column); each is checked to vary only its type's factors. When given, ``num_batches`` and
            the ratio are ignored and these batches are served in order.
        batch_kinds: with ``fixed_batches``, the batch type name of each.
        source: what to call the data in errors (a path).

    Raises:
        InputError: when a batch type names an unknown factor, has no group of two or more images, or a
            fixed batch varies another factor (naming ``source``).
    """

    def __init__(self, images, factors: torch.Tensor, factor_names: Sequence[str],
                 varying: Mapping[str, Sequence[str]], batch_size: int, num_batches: int,
                 batch_types: Sequence[str], ratio: Sequence[float], seed: int,
                 fixed_batches: Sequence[Sequence[int]] | None = None,
                 batch_kinds: Sequence[str] | None = None, source: str = "the data") -> None:
        super().__init__(num_batches if fixed_batches is None else len(fixed_batches), batch_types, ratio, seed)
        if factors.dim() != 2 or factors.shape[1] != len(factor_names):
            raise InputError(f"{source}: factors must be (N, {len(factor_names)}) for {list(factor_names)}, "
                             f"got {tuple(factors.shape)}")
        self.images, self.factors = images, factors.float()
        self.factor_names, self.batch_size, self.source = tuple(factor_names), batch_size, source
        self.varying = {}
        for kind in self.batch_types:
            names = varying.get(kind)
            unknown = [n for n in (names or []) if n not in self.factor_names]
            if not names or unknown:
                raise InputError(f"{source}: batch type {kind!r} must vary some of the factors "
                                 f"{list(self.factor_names)}, got {names}")
            self.varying[kind] = [self.factor_names.index(n) for n in names]
        if fixed_batches is not None:
            self._init_fixed(fixed_batches, batch_kinds)
        else:
            self.fixed = None
            self.groups = {kind: self._groups(cols) for kind, cols in self.varying.items()}
            for kind, groups in self.groups.items():
                if not groups and bool((self.schedule == self.batch_types.index(kind)).any()):
                    raise InputError(f"{source}: no two images differ only in {self.varying_names(kind)}, "
                                     f"so no {kind!r} batch can be made")

    def varying_names(self, kind: str) -> list[str]:
        """The factor names that vary in a batch of type ``kind``."""
        return [self.factor_names[j] for j in self.varying[kind]]

    def _groups(self, varying_cols: Sequence[int]) -> list[torch.Tensor]:
        fixed_cols = [j for j in range(len(self.factor_names)) if j not in varying_cols]
        if not fixed_cols:
            return [torch.arange(len(self.factors))]
        _, inverse = torch.unique(self.factors[:, fixed_cols], dim=0, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse)
        groups = torch.split(order, counts.tolist())
        return [g for g in groups if len(g) >= 2]

    def _init_fixed(self, batches: Sequence[Sequence[int]], kinds: Sequence[str] | None) -> None:
        if kinds is None or len(kinds) != len(batches):
            raise InputError(f"{self.source}: each fixed batch needs its batch type")
        for b, (members, kind) in enumerate(zip(batches, kinds)):
            if kind not in self.varying:
                raise InputError(f"{self.source}: batch {b} has type {kind!r}, not one of {list(self.batch_types)}")
            check_one_factor_varies(self.factors[list(members)], self.varying[kind], self.factor_names,
                                    f"{self.source}, batch {b} ({kind})")
        self.fixed = [torch.as_tensor(list(m), dtype=torch.long) for m in batches]
        self.schedule = torch.tensor([self.batch_types.index(k) for k in kinds], dtype=torch.long)

    @property
    def redrawable(self) -> bool:
        """False for the user's fixed list of batches, which are served as they are."""
        return self.fixed is None

    def members(self, index: int) -> torch.Tensor:
        """int64 indices of the images in batch ``index``."""
        if self.fixed is not None:
            return self.fixed[index]
        groups = self.groups[self.batch_types[self.batch_type_index(index)]]
        g = self.generator(index)
        group = groups[int(torch.randint(len(groups), (1,), generator=g))]
        pick = torch.randperm(len(group), generator=g)[: self.batch_size]
        return group[pick]

    def make_batch(self, index: int, batch_type: str):
        idx = self.members(index)
        if isinstance(self.images, torch.Tensor):
            images = self.images[idx]
        else:
            images = torch.stack([self.images[int(j)][0] for j in idx])
        return images, self.factors[idx]


class RedrawSampler(Sampler[int]):
    """Training batch indices that are new every epoch: epoch ``e`` yields ``e * n ... e * n + n - 1`` in a
    random order, so a :class:`FactorBatches` split renders or draws ``n`` new batches per epoch.

    Lightning calls :meth:`set_epoch` at the start of every epoch (also through its distributed wrapper),
    so a resumed run continues with the batches of its epoch. Why: Kulkarni et al. 2015 (Sec. 4.1) train
    on about 12,000 distinct batches of faces, not a few hundred seen again and again.

    Args:
        num_batches: ``n``, batches per epoch.
        seed: seed of the order within an epoch.
    """

    def __init__(self, num_batches: int, seed: int) -> None:
        self.num_batches, self.seed, self.epoch = int(num_batches), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of epoch ``epoch`` (>= 0) next."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        order = torch.randperm(self.num_batches, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        return iter((self.epoch * self.num_batches + order).tolist())


class FactorDataModule(ImageDataModule):
    """Base DataModule of the factor-labelled datasets (faces3d, chairs, factor_folder).

    Serves :class:`FactorBatches` with ``batch_size=None``: each loader item is one whole one-factor
    batch ``(images (B, C, H, W) in [-1, 1], factors (B, F), batch_type ())``.

    Args:
        factor_names: the factor columns of ``factors``, in order (``data.factor_names``).
        batch_types: the batch types (``data.batch_types``); the extrinsic ones are factor names, the
            intrinsic one is ``"intrinsic"``.
        batch_ratio: one weight per batch type (``data.batch_ratio``), the paper's ``[1, 1, 1, 10]``.
        eval_batch_ratio: the ratio of the validation and test splits (``None``: ``batch_ratio``); an even
            ratio gives every factor's evaluation as many batches.
        train_batches, val_batches, test_batches: batches per split (per epoch for train).
        redraw_train_batches: train on ``train_batches`` new batches every epoch (:class:`RedrawSampler`);
            False: the same batches every epoch, shuffled. Splits given as a fixed list of batches (a
            ``batch`` column) always serve those.
        **kwargs: :class:`datamodules.base.ImageDataModule` (``batch_size`` is images per batch).

    Raises:
        InputError: when the batch types and ratio disagree in length, or an extrinsic batch type is not
            a factor name.
        InputError: when ``redraw_train_batches`` is not a bool.
    """

    def __init__(self, factor_names: Sequence[str], batch_types: Sequence[str], batch_ratio: Sequence[float],
                 eval_batch_ratio: Sequence[float] | None = None, train_batches: int = 500,
                 val_batches: int = 20, test_batches: int = 50, redraw_train_batches: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if self.load_size is not None or self.hflip:
            raise InputError("data.load_size and data.hflip do not apply to one-factor batches (a mirror changes the "
                             "azimuth): leave them null/false")
        if not isinstance(redraw_train_batches, bool):
            raise InputError(f"data.redraw_train_batches must be true or false, got {redraw_train_batches!r}")
        self.redraw_train_batches = redraw_train_batches
        self.factor_names, self.batch_types = tuple(factor_names), tuple(batch_types)
        self.batch_ratio = tuple(float(r) for r in batch_ratio)
        self.eval_batch_ratio = self.batch_ratio if eval_batch_ratio is None else \
            tuple(float(r) for r in eval_batch_ratio)
        for key, ratio in (("batch_ratio", self.batch_ratio), ("eval_batch_ratio", self.eval_batch_ratio)):
            if len(ratio) != len(self.batch_types):
                raise InputError(f"data.{key} {list(ratio)} needs one weight per batch type of "
                                 f"data.batch_types {list(self.batch_types)}")
        unknown = [t for t in self.batch_types if t != INTRINSIC and t not in self.factor_names]
        if unknown:
            raise InputError(f"data.batch_types {unknown} are neither {INTRINSIC!r} nor factors of "
                             f"data.factor_names {list(self.factor_names)}")
        self.num_batches = {"train": train_batches, "val": val_batches, "test": test_batches}
        for split, count in self.num_batches.items():
            if count < 1:
                raise InputError(f"data.{split}_batches={count}: every split needs at least one batch")

    def split_seed_of(self, split: str) -> int:
        """A distinct seed per split, derived from ``split_seed``."""
        return self.split_seed * 10 + ("train", "val", "test").index(split) + 1

    def ratio_of(self, split: str) -> tuple[float, ...]:
        """The batch-type ratio of ``split``: ``batch_ratio`` for train, ``eval_batch_ratio`` otherwise."""
        return self.batch_ratio if split == "train" else self.eval_batch_ratio

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = None
        if split == "train" and self.redraw_train_batches and dataset.redrawable:
            sampler, shuffle = RedrawSampler(len(dataset), self.split_seed_of(split)), False
        return DataLoader(dataset, batch_size=None, shuffle=shuffle, sampler=sampler, **self.loader_options(dataset))
