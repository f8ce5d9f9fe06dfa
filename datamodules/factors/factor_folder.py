"""``factor_folder``: the user's own factor-labelled images, served as DC-IGN's one-factor batches
(Kulkarni et al. 2015, Sec. 3.1-3.2).

Expected layout of ``data.root``::

    root/**/<image>                images in any subfolders, all of one size
    root/factors.csv               (``data.csv``) a header row, then one row per image:

        file,azimuth,elevation,light,identity,split,batch
        faces/007/az-0.50.png,-0.5,0.0,0.0,7,train,b1
        faces/007/az+0.00.png,0.0,0.0,0.0,7,train,b1

- ``file``: the image's path relative to ``data.root``;
- one column per name in ``data.factor_names``: a finite number (angles in radians by convention);
- ``split`` (optional): ``train``, ``val`` or ``test``; without it the rows are split by identity (the
  values of ``data.intrinsic_factors``) with ``data.split_seed``, so the splits have disjoint identities;
- ``batch`` (optional): an explicit batch id; the rows of one id form one batch, in which only the factors
  of one batch type may vary. Without it, batches are drawn by grouping the images on the fixed factors.

Other columns are ignored.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from datamodules.base import SPLITS, fixed_split
from datamodules.factors.batches import INTRINSIC, FactorDataModule, GroupedFactorBatches
from datamodules.image_files import ImageFileDataset
from utils.errors import InputError, MissingFileError

LAYOUT = (
    "data.root holding images (any subfolders) and a CSV (data.csv) with a header row 'file,<one column per "
    "data.factor_names>[,split][,batch]', one row per image: its path relative to data.root, its factor "
    "values, optionally its split (train/val/test) and an explicit batch id"
)


@dataclass
class FactorTable:
    """The rows of a factor CSV, in file order.

    Attributes:
        csv: the CSV's path (for messages).
        paths: the N image paths (``data.root / file``).
        lines: the CSV line number of each row (the header is line 1).
        factors: float32 ``(N, F)`` factor values, columns in the order of ``data.factor_names``.
        splits: each row's split (``train``/``val``/``test``), or ``None`` without a ``split`` column.
        batches: each row's batch id, or ``None`` without a ``batch`` column.
    """

    csv: Path
    paths: list[Path]
    lines: list[int]
    factors: torch.Tensor
    splits: list[str] | None = None
    batches: list[str] | None = None

    def where(self, row: int) -> str:
        """``"<csv>, line <n>"`` of row ``row``, for messages."""
        return f"{self.csv}, line {self.lines[row]}"


def parse_factor(text: str, name: str, where: str, bounds: Sequence[float] | None) -> float:
    """One factor value of the CSV as a float.

    Raises:
        InputError: naming ``where`` (the CSV and line) and the column ``name`` when ``text`` is empty,
            not a number, not finite, or outside ``bounds`` = ``[lo, hi]`` (``data.factor_ranges``).
    """
    text = text.strip()
    if not text:
        raise InputError(f"{where}, column {name}: the value is empty; every factor needs a number")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}, column {name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}, column {name}: {text!r} is not a finite number")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise InputError(f"{where}, column {name}: {value:g} is outside data.factor_ranges.{name} = "
                         f"[{bounds[0]:g}, {bounds[1]:g}]")
    return value


def read_factor_csv(path: Path, root: Path, factor_names: Sequence[str],
                    factor_ranges: Mapping[str, Sequence[float]] | None = None) -> FactorTable:
    """Read and check a factor CSV (see the module docstring for its columns).

    Args:
        path: the CSV file.
        root: the folder the ``file`` column is relative to.
        factor_names: the F factor columns to read, in order.
        factor_ranges: optional ``{name: [lo, hi]}``; a value outside raises.

    Returns:
        The :class:`FactorTable` of the N rows (blank lines skipped).

    Raises:
        MissingFileError: when the CSV or a listed image is missing (names it, its line, and how many more
            are missing).
        InputError: on an empty CSV, a missing ``file`` or factor column (names the missing
            ``data.factor_names``), a row with the wrong number of fields, an empty file name, an empty,
            non-numeric, non-finite or out-of-range factor (see :func:`parse_factor`), a ``split`` other
            than train/val/test, an empty ``batch`` id, or a file listed twice. Each names the CSV, the line
            and the column.
    """
    if not path.is_file():
        raise MissingFileError(f"factor CSV {path} does not exist (data.csv); expected {LAYOUT}")
    ranges = dict(factor_ranges or {})
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise InputError(f"{path} is empty; expected a header row 'file,{','.join(factor_names)}'")
        missing = [name for name in ("file", *factor_names) if name not in header]
        if missing:
            factors = [m for m in missing if m != "file"]
            which = (["the 'file' column"] if "file" in missing else []) + (
                [f"the columns {factors} of data.factor_names"] if factors else [])
            raise InputError(f"{path}: the header lacks {' and '.join(which)}; it has {header}")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise InputError(f"{path}: the header repeats the columns {repeated}")
        column = {name: header.index(name) for name in header}
        paths, lines, rows, splits, batches = [], [], [], [], []
        first_line: dict[str, int] = {}
        for fields in reader:
            if not any(x.strip() for x in fields):
                continue
            where = f"{path}, line {reader.line_num}"
            if len(fields) != len(header):
                raise InputError(f"{where}: {len(fields)} fields, but the header has {len(header)} columns")
            file = fields[column["file"]].strip()
            if not file:
                raise InputError(f"{where}, column file: the image path is empty")
            key = os.path.normpath(file)
            if key in first_line:
                raise InputError(f"{where}, column file: {file} is listed twice (first on line {first_line[key]})")
            first_line[key] = reader.line_num
            rows.append([parse_factor(fields[column[name]], name, where, ranges.get(name))
                         for name in factor_names])
            if "split" in column:
                split = fields[column["split"]].strip().lower()
                if split not in SPLITS:
                    raise InputError(f"{where}, column split: {fields[column['split']]!r} is not one of {SPLITS}")
                splits.append(split)
            if "batch" in column:
                batch = fields[column["batch"]].strip()
                if not batch:
                    raise InputError(f"{where}, column batch: the batch id is empty; with a batch column every "
                                     f"row belongs to a batch")
                batches.append(batch)
            paths.append(root / file)
            lines.append(reader.line_num)
    if not paths:
        raise InputError(f"{path} lists no images; expected {LAYOUT}")
    table = FactorTable(path, paths, lines, torch.tensor(rows, dtype=torch.float32),
                        splits if "split" in column else None, batches if "batch" in column else None)
    absent = [i for i, p in enumerate(paths) if not p.is_file()]
    if absent:
        i = absent[0]
        raise MissingFileError(f"{table.where(i)}, column file: image {paths[i]} does not exist"
                                + (f" ({len(absent) - 1} more listed images are missing)" if len(absent) > 1 else ""))
    return table


def check_image_sizes(table: FactorTable, source_size: Sequence[int] | None = None) -> tuple[int, int]:
    """Check that every image of ``table`` has one size, reading only the file headers (cheap).

    Args:
        table: the CSV's rows.
        source_size: the expected ``[H, W]`` (``data.source_size``); ``None``: the first listed image's.

    Returns:
        The common ``(H, W)`` in pixels.

    Raises:
        InputError: when an image cannot be opened, or has another size; names the file, its line, its size
            and the expected one.
    """
    expected, reference = (tuple(source_size), "data.source_size") if source_size else (None, "")
    for i, path in enumerate(table.paths):
        try:
            with Image.open(path) as img:
                width, height = img.size
        except (OSError, ValueError, SyntaxError) as e:
            raise InputError(f"{table.where(i)}: cannot read image {path}: {type(e).__name__}: {e}") from e
        if expected is None:
            expected, reference = (height, width), f"the size of the first listed image, {path}"
        elif (height, width) != expected:
            raise InputError(f"{table.where(i)}: image {path} is {height}x{width} (HxW) but every image must be "
                             f"{expected[0]}x{expected[1]} ({reference})")
    return expected


def batch_type_of(factors: torch.Tensor, varying: Mapping[str, Sequence[int]], names: Sequence[str],
                  where: str) -> str:
    """The batch type of an explicit batch: the one whose factors are the only ones that vary.

    Args:
        factors: float ``(B, F)`` factor values of the batch's rows.
        varying: batch type -> the column indices that vary in a batch of that type.
        names: the F factor names, for messages.
        where: what to call the batch (the CSV and batch id).

    Returns:
        The batch type (a key of ``varying``). When several fit, the one varying exactly the changing
        factors.

    Raises:
        InputError: naming ``where`` and the changing factors, when no factor varies, when they are not the
            factors of any one batch type (e.g. azimuth and light both vary), or when several types fit.
    """
    changing = {j for j in range(factors.shape[1]) if bool((factors[:, j] != factors[0, j]).any())}
    allowed = "; ".join(f"{kind}: {[names[j] for j in cols]}" for kind, cols in varying.items())
    if not changing:
        raise InputError(f"{where}: no factor varies among its {len(factors)} rows; a batch must vary the "
                         f"factors of one batch type ({allowed})")
    fits = [kind for kind, cols in varying.items() if changing <= set(cols)]
    exact = [kind for kind in fits if set(varying[kind]) == changing]
    if len(fits) == 1 or len(exact) == 1:
        return (exact or fits)[0]
    changed = ", ".join(names[j] for j in sorted(changing))
    if not fits:
        raise InputError(f"{where}: {changed} vary, but a batch may vary only the factors of one batch type "
                         f"({allowed})")
    raise InputError(f"{where}: {changed} vary, which fits several batch types {fits}")


def identity_groups(identity: torch.Tensor, batches: Sequence[str] | None) -> torch.Tensor:
    """Group the rows into units that must stay in one split: rows of one identity, joined with every
    identity they share an explicit batch with (an intrinsic batch links its identities).

    Args:
        identity: int64 ``(N,)`` identity index of each row.
        batches: each row's batch id, or ``None``.

    Returns:
        int64 ``(N,)`` unit index of each row, ``0 .. U-1`` numbered by first appearance.
    """
    parent = list(range(int(identity.max()) + 1))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first: dict[str, int] = {}
    for i, batch in enumerate(batches or []):
        a = find(int(identity[i]))
        b = find(int(identity[first.setdefault(batch, i)]))
        parent[a] = b
    numbering: dict[int, int] = {}
    return torch.tensor([numbering.setdefault(find(int(k)), len(numbering)) for k in identity], dtype=torch.long)


class FactorFolderDataModule(FactorDataModule):
    """The user's factor-labelled images (a folder and a CSV, see the module docstring) as DC-IGN's
    one-factor batches (Kulkarni et al. 2015, Sec. 3.1-3.2).

    Loader items are whole batches ``(images, factors, batch_type)``: images float32
    ``(B, channels, image_size, image_size)`` in ``[-1, 1]``; factors float32 ``(B, F)``, the CSV's values
    in the order of ``factor_names``; batch_type int64 ``()`` indexing ``batch_types``. An extrinsic batch
    type ``t`` varies only the factor ``t``; the intrinsic type varies ``intrinsic_factors``. Without a
    ``batch`` column a batch is up to ``batch_size`` images that agree on every other factor; with it the
    CSV's batches are served in file order (each split its own), typed by what varies in them.

    Args:
        factor_names: the factor columns of the CSV, in order.
        batch_types, batch_ratio: as :class:`datamodules.factors.batches.FactorDataModule`.
        csv: the CSV's path relative to ``root`` (default ``factors.csv``).
        intrinsic_factors: the factors the intrinsic batch type varies, which also define an identity for
            the split (default ``[identity]``).
        val_fraction, test_fraction: without a ``split`` column, the fractions of the identities (rounded)
            held out; every split gets at least one identity (two when intrinsic batches are drawn).
        factor_ranges: optional ``{factor: [lo, hi]}``; values outside raise.
        source_size: optional ``[H, W]`` every image must have; ``None``: the first listed image's size.
        crop_size: side of the central square cropped before resizing; ``None`` for the short side.
        **kwargs: :class:`datamodules.factors.batches.FactorDataModule` / :class:`datamodules.base.ImageDataModule`
            arguments (``image_size`` 64, ``channels`` 1, ``batch_size`` 20 images per batch, ...).

    Raises:
        InputError: (init) on invalid fractions, ``intrinsic_factors``, ``factor_ranges`` or ``source_size``;
            (setup) on an invalid CSV (see :func:`read_factor_csv`), an image of another size
            (:func:`check_image_sizes`), an explicit batch that varies the factors of several batch types
            (:func:`batch_type_of`) or spans splits, too few identities to split, or an empty split.
        MissingFileError: (setup) when ``root``, the CSV or a listed image is missing.
    """

    def __init__(self, factor_names: Sequence[str], batch_types: Sequence[str], batch_ratio: Sequence[float],
                 csv: str = "factors.csv", intrinsic_factors: Sequence[str] = ("identity",),
                 val_fraction: float = 0.1, test_fraction: float = 0.1,
                 factor_ranges: Mapping[str, Sequence[float]] | None = None,
                 source_size: Sequence[int] | None = None, crop_size: int | None = None, **kwargs) -> None:
        kwargs.setdefault("image_size", 64)
        kwargs.setdefault("channels", 1)
        kwargs.setdefault("batch_size", 20)
        super().__init__(factor_names, batch_types, batch_ratio, **kwargs)
        self.csv, self.crop_size = csv, crop_size
        self.intrinsic_factors = tuple(intrinsic_factors)
        unknown = [n for n in self.intrinsic_factors if n not in self.factor_names]
        if not self.intrinsic_factors or unknown:
            raise InputError(f"data.intrinsic_factors must name some of data.factor_names {list(self.factor_names)}, "
                             f"got {list(self.intrinsic_factors)}")
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise InputError(f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in "
                             f"[0, 1) and sum to less than 1")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.factor_ranges = {}
        for name, bounds in dict(factor_ranges or {}).items():
            bounds = [float(b) for b in bounds] if bounds is not None else None
            if name not in self.factor_names or bounds is None or len(bounds) != 2 or not bounds[0] <= bounds[1]:
                raise InputError(f"data.factor_ranges.{name} must be [lo, hi] with lo <= hi for one of "
                                 f"data.factor_names {list(self.factor_names)}, got {bounds}")
            self.factor_ranges[name] = bounds
        if source_size is not None and (len(source_size) != 2 or min(source_size) < 1):
            raise InputError(f"data.source_size must be [H, W] in pixels, got {list(source_size)}")
        self.source_size = tuple(int(s) for s in source_size) if source_size is not None else None
        columns = {name: [self.factor_names.index(name)] for name in self.factor_names}
        columns[INTRINSIC] = [self.factor_names.index(name) for name in self.intrinsic_factors]
        self.varying = {kind: [self.factor_names[j] for j in columns[kind]] for kind in self.batch_types}
        self.table: FactorTable | None = None
        self.rows: dict[str, torch.Tensor] = {}

    def build_splits(self) -> dict[str, GroupedFactorBatches]:
        root = self.require_root(LAYOUT)
        self.check_num_classes(0)
        table = self.table = read_factor_csv(root / self.csv, root, self.factor_names, self.factor_ranges)
        check_image_sizes(table, self.source_size)
        kinds = self._batch_kinds(table)
        self.rows = self._split_rows(table)
        splits = {}
        for split, rows in self.rows.items():
            images = self.decoded(ImageFileDataset([table.paths[int(r)] for r in rows], image_size=self.image_size,
                                                   channels=self.channels, crop_size=self.crop_size),
                                  f"{root.name}-{split}-crop{self.crop_size}")
            fixed = None
            if table.batches is not None:
                local = {int(r): i for i, r in enumerate(rows)}
                members: dict[str, list[int]] = {}
                for r in rows.tolist():
                    members.setdefault(table.batches[r], []).append(local[r])
                fixed = list(members.values())
            splits[split] = GroupedFactorBatches(
                images, table.factors[rows], self.factor_names, self.varying, self.batch_size,
                self.num_batches[split], self.batch_types, self.ratio_of(split), self.split_seed_of(split),
                fixed_batches=fixed, batch_kinds=None if fixed is None else [kinds[b] for b in members],
                source=f"{table.csv} ({split} split)",
            )
        return splits

    def _batch_kinds(self, table: FactorTable) -> dict[str, str]:
        """Each explicit batch id -> its batch type; checks that a batch lies in one split."""
        if table.batches is None:
            return {}
        members: dict[str, list[int]] = {}
        for i, batch in enumerate(table.batches):
            members.setdefault(batch, []).append(i)
        columns = {kind: [self.factor_names.index(n) for n in names] for kind, names in self.varying.items()}
        kinds = {}
        for batch, rows in members.items():
            if table.splits is not None and len({table.splits[r] for r in rows}) > 1:
                spread = ", ".join(f"line {table.lines[r]}: {table.splits[r]}" for r in rows)
                raise InputError(f"{table.csv}, batch {batch!r}: all rows of a batch must be in one split, got "
                                 f"{spread}")
            kinds[batch] = batch_type_of(table.factors[rows], columns, self.factor_names,
                                         f"{table.csv}, batch {batch!r} (lines {table.lines[rows[0]]}-"
                                         f"{table.lines[rows[-1]]})")
        return kinds

    def _split_rows(self, table: FactorTable) -> dict[str, torch.Tensor]:
        """int64 row indices of each split: the CSV's ``split`` column, or a seeded split of the identities."""
        if table.splits is not None:
            out = {s: torch.tensor([i for i, x in enumerate(table.splits) if x == s], dtype=torch.long)
                   for s in SPLITS}
            empty = [s for s, rows in out.items() if len(rows) == 0]
            if empty:
                raise InputError(f"{table.csv}: no row has split {' or '.join(empty)}; every split needs images")
            return out
        cols = [self.factor_names.index(n) for n in self.intrinsic_factors]
        _, identity = torch.unique(table.factors[:, cols], dim=0, return_inverse=True)
        units = identity_groups(identity, table.batches)
        n = int(units.max()) + 1
        draws_intrinsic = INTRINSIC in self.batch_types and table.batches is None and \
            self.batch_ratio[self.batch_types.index(INTRINSIC)] > 0
        least = 2 if draws_intrinsic else 1
        n_val = max(least, round(n * self.val_fraction))
        n_test = max(least, round(n * self.test_fraction))
        what = ("identities" if table.batches is None else "groups of identities (identities sharing a batch "
                "are one group)") + f" (values of data.intrinsic_factors {list(self.intrinsic_factors)})"
        if n - n_val - n_test < least:
            raise InputError(f"{table.csv} has {n} {what}, too few to split: every split needs at least {least} "
                             f"and val/test take {n_val}/{n_test}; add identities, lower data.val_fraction / "
                             f"data.test_fraction, or give a split column")
        chosen = fixed_split(n, (-1, n_val, n_test), self.split_seed)
        return {s: torch.isin(units, c).nonzero().flatten() for s, c in zip(SPLITS, chosen)}
