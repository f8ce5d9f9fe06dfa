"""The factor-labelled readers (chairs, factor_folder) on tiny datasets written in their real layouts."""

import csv
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from datamodules.factors.chairs import ChairRenders, ChairsDataModule, scan_rendered_chairs
from datamodules.factors.factor_folder import FactorFolderDataModule
from tests.fixtures_data import (
    CHAIR_ELEVATIONS,
    chair_codes,
    factor_codes,
    listing,
    stripe_codes,
    stripe_image,
    write_chairs,
    write_factor_folder,
)
from tests.hydra_helpers import compose_train

pytestmark = pytest.mark.usefixtures("single_thread")

FACTORS = ["azimuth", "elevation", "light", "identity"]
# 40x40 fixtures with a 4-pixel border: crop the inner 32x32 and serve it unresized, so pixels are exact
EXACT = {"crop_size": 32, "image_size": 32}


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Float [-1, 1] back to uint8 values (exact for images that came from uint8)."""
    return ((images + 1) * 127.5).round().to(torch.uint8)


def changing(factors: torch.Tensor) -> list[int]:
    """The columns of ``(B, F)`` factors that take more than one value."""
    return [j for j in range(factors.shape[1]) if len(factors[:, j].unique()) > 1]


def chairs_dm(root: Path, **kw) -> ChairsDataModule:
    args = dict(root=str(root), train_chairs=5, val_chairs=2, batch_size=4, train_batches=12, val_batches=4,
                test_batches=4, **EXACT)
    args.update(kw)
    return ChairsDataModule(**args)


# ================================================================================================ chairs


def test_scan_rendered_chairs_parses_names_into_radians(tmp_path):
    written = write_chairs(tmp_path, n_chairs=6)
    chairs, paths, factors = scan_rendered_chairs(tmp_path)
    assert chairs == written["chairs"] and len(chairs) == 6  # all_chair_names.mat and .DS_Store ignored
    assert len(paths) == 6 * 8 and factors.shape == (48, 3) and factors.dtype == torch.float32
    truth = {path: (math.radians(az), math.radians(el), identity) for path, az, el, identity in written["renders"]}
    assert set(paths) == set(truth)
    for path, row in zip(paths, factors.tolist()):
        assert row == pytest.approx(truth[path], abs=1e-6)
    last = paths.index(tmp_path / chairs[5] / "renders" / "image_007_p030_t348_r096.png")
    assert factors[last].tolist() == pytest.approx([6.0737, 0.5236, 5.0], abs=1e-4)


def test_chairs_split_by_chair_disjoint_and_seeded(tmp_path):
    write_chairs(tmp_path, n_chairs=8)
    dm = chairs_dm(tmp_path)
    dm.setup()
    ids = {s: set(dm.dataset(s).factors[:, 2].long().tolist()) for s in ("train", "val", "test")}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [3, 2, 3]
    assert ids["train"] | ids["val"] | ids["test"] == set(range(8))
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    for s in ("train", "val", "test"):  # every render of a split's chairs: 8 views each
        assert len(dm.dataset(s).factors) == 8 * len(ids[s])
        assert sorted(dm.split_chairs[s]) == sorted(dm.chairs[i] for i in ids[s])
    again = chairs_dm(tmp_path)
    again.setup()
    assert again.split_chairs == dm.split_chairs
    others = [chairs_dm(tmp_path, split_seed=seed) for seed in (1, 2, 3)]
    for other in others:
        other.setup()
    assert any(o.split_chairs["train"] != dm.split_chairs["train"] for o in others)


def test_chairs_batches_vary_one_factor_and_show_the_right_renders(tmp_path):
    write_chairs(tmp_path, n_chairs=8)
    dm = chairs_dm(tmp_path)
    train = dm.dataset("train")
    seen = set()
    for i in range(2 * len(train)):  # the first epoch's batches, then the second's new draws
        images, factors, kind = train[i]
        assert images.shape == (len(factors), 1, 32, 32) and images.dtype == torch.float32
        assert images.min() >= -1 and images.max() <= 1 and kind.dtype == torch.long and kind.dim() == 0
        assert 2 <= len(factors) <= 4
        seen.add(dm.batch_types[int(kind)])
        if dm.batch_types[int(kind)] == "azimuth":  # one chair at one elevation, several azimuths
            assert changing(factors) == [0] and len(factors[:, 0].unique()) >= 2
        else:  # intrinsic: several chairs at one (azimuth, elevation)
            assert changing(factors) == [2]
        for image, (az, el, identity) in zip(pixels(images), factors.tolist()):
            expected = chair_codes(round(math.degrees(az)), round(math.degrees(el)), int(identity))
            assert stripe_codes(image[0].numpy(), 3) == expected
    assert seen == {"azimuth", "intrinsic"}
    assert train[3][1].tolist() == chairs_dm(tmp_path).dataset("train")[3][1].tolist()  # fixed content
    # the second epoch draws other batches of the same chairs
    redrawn = [train[len(train) + i][1] for i in range(len(train))]
    assert [f.tolist() for f in redrawn] != [train[i][1].tolist() for i in range(len(train))]
    assert {int(c) for f in redrawn for c in f[:, 2]} <= set(train.factors[:, 2].long().tolist())


def test_chairs_loader_resizes_and_elevation_batches(tmp_path):
    write_chairs(tmp_path, n_chairs=8)
    before = listing(tmp_path)
    dm = chairs_dm(tmp_path, crop_size=None, image_size=16)
    images, factors, kind = next(iter(dm.train_dataloader()))
    assert images.shape == (len(factors), 1, 16, 16) and factors.shape[1] == 3 and kind.shape == ()
    assert images.min() >= -1 and images.max() <= 1
    assert images[:, 0, 0, 0].eq(1).all()  # the white background stays white (1.0)
    dm = chairs_dm(tmp_path, batch_types=["elevation"], batch_ratio=[1])
    for images, factors, kind in dm.val_dataloader():
        assert int(kind) == 0 and changing(factors) == [1] and len(factors) == len(CHAIR_ELEVATIONS)
    assert listing(tmp_path) == before


def test_chairs_alpha_renders_are_composited_on_white(tmp_path):
    written = write_chairs(tmp_path, n_chairs=3, alpha=True)
    path, az, el, identity = written["renders"][5]
    assert Image.open(path).mode == "RGBA" and Image.open(path).getpixel((0, 0)) == (0, 0, 0, 0)
    whole = ChairRenders([path], image_size=40, channels=1, crop_size=None)[0][0]
    assert whole.shape == (1, 40, 40) and whole[0, 0, 0].item() == 1.0 and whole[0, 39, 39].item() == 1.0
    inner = ChairRenders([path], image_size=32, channels=1, crop_size=32)[0][0]
    assert stripe_codes(pixels(inner)[0].numpy(), 3) == chair_codes(az, el, identity)
    rgb = ChairRenders([path], image_size=32, channels=3, crop_size=32)[0][0]
    assert rgb.shape == (3, 32, 32) and torch.equal(rgb[0], inner[0])


def test_chairs_bad_layouts_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="is not a directory") as err:
        chairs_dm(missing).setup()
    assert str(missing) in str(err.value) and "renders/image_NNN" in str(err.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "all_chair_names.mat").write_bytes(b"x")
    with pytest.raises(ValueError, match="no chair folders") as err:
        chairs_dm(empty).setup()
    assert str(empty) in str(err.value)

    def broken(name):
        root = tmp_path / name
        return root, write_chairs(root, n_chairs=3)["chairs"]

    root, chairs = broken("no_renders")
    (root / chairs[1] / "renders").rename(root / chairs[1] / "images")
    with pytest.raises(FileNotFoundError, match="has no renders/ folder") as err:
        scan_rendered_chairs(root)
    assert str(root / chairs[1]) in str(err.value)

    root, chairs = broken("bad_name")
    bad = root / chairs[2] / "renders" / "image_000_p020_t000.png"
    Image.new("RGB", (4, 4)).save(bad)
    with pytest.raises(ValueError, match="is not a render named") as err:
        scan_rendered_chairs(root)
    assert str(bad) in str(err.value)

    root, chairs = broken("not_png")
    (root / chairs[0] / "renders" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="notes.txt is not a render"):
        scan_rendered_chairs(root)

    root, chairs = broken("no_images")
    for path in (root / chairs[0] / "renders").glob("*.png"):
        path.unlink()
    with pytest.raises(ValueError, match="has no renders in") as err:
        scan_rendered_chairs(root)
    assert str(root / chairs[0]) in str(err.value)

    root, _ = broken("small")
    with pytest.raises(ValueError, match=r"has 3 chairs, but data.train_chairs=5"):
        chairs_dm(root).setup()
    with pytest.raises(ValueError, match="data.batch_types"):
        chairs_dm(root, batch_types=["light"], batch_ratio=[1])
    with pytest.raises(ValueError, match="data.val_chairs"):
        chairs_dm(root, val_chairs=5)


def test_chairs_root_is_rendered_chairs_or_the_folder_holding_it(tmp_path):
    written = write_chairs(tmp_path / "rendered_chairs", n_chairs=3)
    inner = scan_rendered_chairs(tmp_path / "rendered_chairs")
    outer = scan_rendered_chairs(tmp_path)
    assert inner[0] == outer[0] == sorted(written["chairs"]) and inner[1] == outer[1]
    assert torch.equal(inner[2], outer[2]) and len(outer[1]) == len(written["renders"]) == 3 * 8


def test_chairs_config_composes(tmp_path):
    write_chairs(tmp_path / "data" / "rendered_chairs", n_chairs=8)
    cfg = compose_train(["data=chairs", f"paths.data_dir={tmp_path / 'data'}", "data.train_chairs=5",
                         "data.val_chairs=2", "data.crop_size=32", "data.image_size=16", "data.batch_size=4",
                         "data.num_workers=0", "data.train_batches=3"], tmp_path / "out")
    assert cfg.data.train_chairs == 5 and cfg.data.val_batches == 20 and list(cfg.data.batch_ratio) == [1, 1]
    dm = instantiate(cfg.data)
    dm.setup()
    assert type(dm) is ChairsDataModule and dm.root == tmp_path / "data" / "rendered_chairs"
    assert (dm.image_size, dm.channels, dm.num_classes, dm.crop_size) == (16, 1, 0, 32)
    assert dm.factor_names == ("azimuth", "elevation", "identity") and dm.batch_types == ("azimuth", "intrinsic")
    assert len(dm.dataset("train")) == 3 and len(dm.dataset("val")) == 20
    images, factors, _ = dm.dataset("test")[0]
    assert images.shape == (len(factors), 1, 16, 16)


# ================================================================================================ factor folder


def folder_dm(root: Path, **kw) -> FactorFolderDataModule:
    args = dict(root=str(root), factor_names=FACTORS, batch_types=["azimuth", "elevation", "light", "intrinsic"],
                batch_ratio=[1, 1, 1, 1], val_fraction=0.2, test_fraction=0.2, batch_size=4, train_batches=16,
                val_batches=4, test_batches=4, **EXACT)
    args.update(kw)
    return FactorFolderDataModule(**args)


def csv_rows(path: Path) -> dict[str, list[float]]:
    """file -> its factor values, read independently of the reader."""
    with open(path, newline="") as f:
        return {row["file"]: [float(row[n]) for n in FACTORS] for row in csv.DictReader(f)}


def test_factor_folder_batches_match_the_csv(tmp_path):
    written = write_factor_folder(tmp_path)
    truth = csv_rows(written["csv"])
    dm = folder_dm(tmp_path)
    dm.setup()
    assert sorted(torch.cat(list(dm.rows.values())).tolist()) == list(range(len(truth)))
    identities = {s: set(dm.dataset(s).factors[:, 3].tolist()) for s in ("train", "val", "test")}
    assert [len(identities[s]) for s in ("train", "val", "test")] == [2, 2, 2]  # 6 ids: at least 2 per split
    assert not (identities["train"] & identities["val"] or identities["train"] & identities["test"])
    kinds = set()
    for split in ("train", "val", "test"):
        data = dm.dataset(split)
        for i in range(len(data)):
            images, factors, kind = data[i]
            kinds.add(dm.batch_types[int(kind)])
            varies = {"azimuth": [0], "elevation": [1], "light": [2], "intrinsic": [3]}[dm.batch_types[int(kind)]]
            assert changing(factors) == varies and images.shape == (len(factors), 1, 32, 32)
            for j, row, image in zip(data.members(i).tolist(), factors.tolist(), pixels(images)):
                file = data.images.paths[j].relative_to(tmp_path).as_posix()
                assert row == pytest.approx(truth[file])
                assert stripe_codes(image[0].numpy(), 4) == factor_codes(truth[file])
    assert kinds == {"azimuth", "elevation", "light", "intrinsic"}
    images, factors, kind = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (1, 32, 32) and factors.shape[1] == 4 and kind.dtype == torch.long


def rewrite(path: Path, edit) -> None:
    """Apply ``edit`` to the CSV's lines (a list of str, the header first) and write them back."""
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")


def set_field(line: int, column: int, value: str):
    def edit(lines):
        fields = lines[line - 1].split(",")
        fields[column] = value
        lines[line - 1] = ",".join(fields)
    return edit


@pytest.mark.parametrize("edit, kw, error, pattern", [
    (set_field(3, 1, ""), {}, ValueError, r"line 3, column azimuth: the value is empty"),
    (set_field(4, 2, "high"), {}, ValueError, r"line 4, column elevation: 'high' is not a number"),
    (set_field(5, 3, "nan"), {}, ValueError, r"line 5, column light: 'nan' is not a finite number"),
    (None, {"factor_ranges": {"azimuth": [-0.25, 0.25]}}, ValueError,
     r"line 2, column azimuth: -0.5 is outside data.factor_ranges.azimuth = \[-0.25, 0.25\]"),
    (lambda lines: lines.__setitem__(slice(None), [",".join(x.split(",")[:3] + x.split(",")[4:]) for x in lines]),
     {}, ValueError, r"lacks the columns \['light'\] of data.factor_names"),
    (lambda lines: lines.__setitem__(0, lines[0].replace("file", "path")), {}, ValueError, "lacks the 'file' column"),
    (lambda lines: lines.append(lines[3]), {}, ValueError, r"line 26, column file: .* is listed twice \(first on line 4\)"),
    (set_field(2, 0, "faces/000/missing.png"), {}, FileNotFoundError, r"line 2, column file: image .*missing.png"),
    (None, {"csv": "other.csv"}, FileNotFoundError, r"other.csv does not exist"),
    (None, {"source_size": [48, 48]}, ValueError, r"is 40x40 \(HxW\) but every image must be 48x48 \(data.source_size\)"),
])
def test_factor_folder_bad_csv_names_file_line_and_column(tmp_path, edit, kw, error, pattern):
    written = write_factor_folder(tmp_path, identities=2)  # 24 rows: lines 2-25
    if edit is not None:
        rewrite(written["csv"], edit)
    with pytest.raises(error, match=pattern) as err:
        folder_dm(tmp_path, **kw).setup()
    assert str(tmp_path) in str(err.value)


def test_factor_folder_wrong_image_size(tmp_path):
    written = write_factor_folder(tmp_path, identities=3)
    odd = tmp_path / written["rows"][7]["file"]
    stripe_image([1, 2, 3, 4], size=36).save(odd)
    with pytest.raises(ValueError, match=r"line 9: image .* is 36x36 \(HxW\) but every image must be 40x40") as err:
        folder_dm(tmp_path).setup()
    assert str(odd) in str(err.value) and str(tmp_path / written["rows"][0]["file"]) in str(err.value)
    (tmp_path / written["rows"][3]["file"]).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"factors.csv, line 5: cannot read image") as err:
        folder_dm(tmp_path).setup()
    assert str(tmp_path / written["rows"][3]["file"]) in str(err.value)


def explicit_rows():
    """CSV rows of explicit batches over the images of ``write_factor_folder(identities=4)``."""
    def row(az, el, light, identity, split, batch):
        return (f"faces/{identity:03d}/a{az:+.2f}_e{el:.2f}_l{light:.2f}.png,{az},{el},{light},{identity},"
                f"{split},{batch}")
    return [
        row(-0.5, 0.0, 0.0, 0, "train", "turn"), row(0.0, 0.0, 0.0, 0, "train", "turn"),
        row(0.5, 0.0, 0.0, 0, "train", "turn"),
        row(0.5, 0.3, 0.2, 1, "train", "people"), row(0.5, 0.3, 0.2, 2, "train", "people"),
        row(0.0, 0.0, 0.0, 3, "val", "tilt"), row(0.0, 0.3, 0.0, 3, "val", "tilt"),
        row(-0.5, 0.0, 0.0, 3, "test", "lamp"), row(-0.5, 0.0, 0.2, 3, "test", "lamp"),
        row(0.0, 0.3, 0.2, 0, "train", "people2"), row(0.0, 0.3, 0.2, 3, "train", "people2"),
        row(0.0, 0.3, 0.0, 1, "train", "nod"), row(0.0, 0.0, 0.0, 1, "train", "nod"),
    ]


def test_factor_folder_explicit_batches_in_order_with_their_type(tmp_path):
    written = write_factor_folder(tmp_path, identities=4)
    (tmp_path / "batches.csv").write_text("file,azimuth,elevation,light,identity,split,batch\n"
                                          + "\n".join(explicit_rows()) + "\n")
    dm = folder_dm(tmp_path, csv="batches.csv", train_batches=1)
    truth = csv_rows(written["csv"])
    expected = {"train": [("azimuth", 3), ("intrinsic", 2), ("intrinsic", 2), ("elevation", 2)],
                "val": [("elevation", 2)], "test": [("light", 2)]}
    for split, batches in expected.items():
        data = dm.dataset(split)
        assert len(data) == len(batches)  # the CSV's batches, not *_batches
        for i, (kind, size) in enumerate(batches):
            images, factors, index = data[i]
            assert dm.batch_types[int(index)] == kind and factors.shape == (size, 4)
            files = [data.images.paths[j].relative_to(tmp_path).as_posix() for j in data.members(i).tolist()]
            assert factors.tolist() == [pytest.approx(truth[f]) for f in files]
            assert [stripe_codes(p[0].numpy(), 4) for p in pixels(images)] == [factor_codes(truth[f]) for f in files]
    first = [row.split(",")[0] for row in explicit_rows()[:3]]
    assert [p.relative_to(tmp_path).as_posix() for p in dm.dataset("train").images.paths[:3]] == first
    loaded = [dm.batch_types[int(k)] for _, _, k in dm.val_dataloader()]
    assert loaded == ["elevation"]
    # the user's batches are served every epoch, never redrawn
    assert sorted(k.item() for _, _, k in dm.train_dataloader()) == sorted(
        dm.batch_types.index(kind) for kind, _ in expected["train"])
    with pytest.raises(IndexError):
        dm.dataset("train")[4]


def test_factor_folder_explicit_batch_errors(tmp_path):
    write_factor_folder(tmp_path, identities=4)
    header = "file,azimuth,elevation,light,identity,split,batch\n"
    rows = explicit_rows()
    path = tmp_path / "batches.csv"
    path.write_text(header + "\n".join(rows[:3] + [rows[3].replace("people", "turn")] + rows[4:]) + "\n")
    with pytest.raises(ValueError, match=r"batch 'turn' \(lines 2-5\): azimuth, elevation, light, identity vary, "
                                         r"but a batch may vary only the factors of one batch type") as err:
        folder_dm(tmp_path, csv="batches.csv").setup()
    assert str(path) in str(err.value)
    two = rows[:7] + [rows[7], rows[8].replace("-0.5,0.0,0.2", "0.5,0.0,0.2").replace("a-0.50", "a+0.50")]
    path.write_text(header + "\n".join(two + rows[9:]) + "\n")
    with pytest.raises(ValueError, match=r"batch 'lamp' \(lines 9-10\): azimuth, light vary"):
        folder_dm(tmp_path, csv="batches.csv").setup()
    path.write_text(header + "\n".join(rows[:6] + [rows[6].replace(",val,", ",test,")] + rows[7:]) + "\n")
    with pytest.raises(ValueError, match=r"batch 'tilt': all rows of a batch must be in one split, got line 7: val, "
                                         r"line 8: test"):
        folder_dm(tmp_path, csv="batches.csv").setup()
    path.write_text(header + "\n".join(rows[:6] + [rows[6].replace(",val,", ",later,")] + rows[7:]) + "\n")
    with pytest.raises(ValueError, match=r"line 8, column split: 'later' is not one of"):
        folder_dm(tmp_path, csv="batches.csv").setup()


def test_factor_folder_batches_without_split_keep_batches_and_identities_whole(tmp_path):
    def batch(row):  # azimuth batches per (identity, elevation), and intrinsic pairs {0,1}, {2,3}, {4,5}
        if row["azimuth"] == 0.5 and row["elevation"] == 0.3:
            return f"pair{row['identity'] // 2}"
        return f"id{row['identity']}-e{row['elevation']}"

    rows = write_factor_folder(tmp_path, identities=6, lights=(0.0,), csv="batched.csv",
                               extra_columns={"batch": batch})["rows"]
    # the az=0.5, el=0.3 rows moved to the pair batches leave 2-row azimuth batches at el=0.3
    dm = folder_dm(tmp_path, csv="batched.csv", val_fraction=0.3, test_fraction=0.3)
    dm.setup()
    owner = {}
    for split, members in dm.rows.items():
        for r in members.tolist():
            owner[r] = split
    assert len(owner) == len(rows)
    for pair in range(3):  # identities 2k and 2k+1 share a batch, so they share a split
        assert len({owner[r] for r in range(len(rows)) if rows[r]["identity"] // 2 == pair}) == 1
    assert sorted(owner.values()).count("val") == 12 and sorted(owner.values()).count("test") == 12
    kinds = [dm.batch_types[int(dm.dataset(s)[i][2])] for s in ("train", "val", "test")
             for i in range(len(dm.dataset(s)))]
    assert kinds.count("intrinsic") == 3 and kinds.count("azimuth") == 12
    with pytest.raises(ValueError, match=r"has 3 groups of identities .* too few to split"):
        folder_dm(tmp_path, csv="batched.csv", val_fraction=0.5, test_fraction=0.4).setup()


def test_factor_folder_too_few_identities(tmp_path):
    write_factor_folder(tmp_path, identities=4)
    with pytest.raises(ValueError, match=r"has 4 identities .* every split needs at least 2"):
        folder_dm(tmp_path).setup()
    dm = folder_dm(tmp_path, batch_types=["azimuth", "light"], batch_ratio=[1, 1])
    dm.setup()  # without intrinsic batches one identity per split is enough
    assert [len(set(dm.dataset(s).factors[:, 3].tolist())) for s in ("train", "val", "test")] == [2, 1, 1]


def test_factor_folder_config_composes(tmp_path):
    write_factor_folder(tmp_path / "data" / "factors", identities=6)
    cfg = compose_train(["data=factor_folder", f"paths.data_dir={tmp_path / 'data'}", "data.val_fraction=0.2",
                         "data.test_fraction=0.2", "data.image_size=16", "data.batch_size=4",
                         "data.num_workers=0", "data.train_batches=3", "+data.factor_ranges.light=[0, 1]"],
                        tmp_path / "out")
    assert list(cfg.data.batch_ratio) == [1, 1, 1, 10] and cfg.data.csv == "factors.csv"
    dm = instantiate(cfg.data)
    dm.setup()
    assert type(dm) is FactorFolderDataModule and dm.root == tmp_path / "data" / "factors"
    assert dm.factor_names == tuple(FACTORS) and dm.intrinsic_factors == ("identity",)
    assert dm.factor_ranges == {"light": [0.0, 1.0]} and len(dm.dataset("train")) == 3
    images, factors, _ = dm.dataset("val")[0]
    assert images.shape == (len(factors), 1, 16, 16) and factors.shape[1] == 4
