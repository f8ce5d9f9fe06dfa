"""The procedural 3-D face renderer (DC-IGN's Basel-face stand-in): contract, determinism, and that pose,
light and identity act on the images the way the module documents. Thresholds are measured margins:
the measured values are quoted next to each bound."""

import numpy as np
import pytest

from datamodules.factors.faces3d_render import (
    _SPEC_INDEX,
    FACTOR_NAMES,
    FACTOR_RANGES,
    IDENTITY_DIM,
    FaceRenderer,
    identity_for_index,
    sample_identities,
)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def renderer64():
    return FaceRenderer(64)


def _full(n, value):
    return np.full(n, value, dtype=np.float32)


def _render_pose(renderer, ids, azimuth=0.0, elevation=0.0, light=0.0):
    n = len(ids)
    return renderer.render(ids, _full(n, azimuth), _full(n, elevation), _full(n, light))


def test_constants():
    assert FACTOR_NAMES == ("azimuth", "elevation", "light")
    assert FACTOR_RANGES == {"azimuth": (-1.2, 1.2), "elevation": (-0.5, 0.5), "light": (-1.2, 1.2)}
    assert 12 <= IDENTITY_DIM <= 20


def test_sample_identities_deterministic_and_seeded():
    a = sample_identities(10, 0)
    assert a.shape == (10, IDENTITY_DIM) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, sample_identities(10, 0))
    np.testing.assert_array_equal(a[:4], sample_identities(4, 0))  # longer samples extend shorter ones
    for i in (0, 7):
        np.testing.assert_array_equal(a[i], identity_for_index(i, 0))
    b = sample_identities(10, 1)
    assert np.abs(a - b).mean() > 0.3  # uniform [-1, 1]: about 2/3 expected
    assert len({row.tobytes() for row in a}) == 10
    assert sample_identities(0, 3).shape == (0, IDENTITY_DIM)


@pytest.mark.parametrize("call", [
    lambda: sample_identities(-1, 0),
    lambda: sample_identities(3, -2),
    lambda: sample_identities(2.5, 0),
    lambda: identity_for_index(-1, 0),
])
def test_identity_sampling_rejects_bad_arguments(call):
    with pytest.raises(ValueError, match="non-negative integer"):
        call()


def test_render_is_deterministic_and_batch_independent(renderer64):
    rng = np.random.default_rng(0)
    n = 12
    ids = sample_identities(n, 4)
    angles = [rng.uniform(*FACTOR_RANGES[name], n) for name in FACTOR_NAMES]
    first = renderer64.render(ids, *angles)
    np.testing.assert_array_equal(first, renderer64.render(ids, *angles))
    np.testing.assert_array_equal(first, FaceRenderer(64).render(ids, *angles))  # a fresh instance too
    singles = np.concatenate([renderer64.render(ids[i:i + 1], *[a[i:i + 1] for a in angles]) for i in range(n)])
    np.testing.assert_array_equal(first, singles)


@pytest.mark.parametrize("size", [64, 150])
def test_output_contract_at_extreme_poses(size):
    renderer = FaceRenderer(size)
    corners = [(az, el, li) for az in (-1.2, 1.2) for el in (-0.5, 0.5) for li in (-1.2, 1.2)]
    poses = np.array(corners + [(0.0, 0.0, 0.0)], dtype=np.float32)
    ids = sample_identities(len(poses), 11)
    images = renderer.render(ids, poses[:, 0], poses[:, 1], poses[:, 2])
    assert images.shape == (len(poses), 1, size, size) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # The whole border (not just the corners) is background: no head leaves the frame.
    border = np.concatenate([images[:, 0, 0], images[:, 0, -1], images[:, 0, :, 0], images[:, 0, :, -1]], axis=1)
    assert np.all(border == 0.0)
    coverage = (images > 0).mean(axis=(1, 2, 3))
    assert coverage.min() > 0.15 and coverage.max() < 0.8, coverage  # measured 0.36 - 0.57
    assert images.max(axis=(1, 2, 3)).min() > 0.3  # every face is lit somewhere
    assert images[images > 0].min() >= 1.5 / 255  # the silhouette survives uint8 rounding (min 0.0072)


def test_extreme_identities_stay_inside_the_frame(renderer64):
    """Corners of the identity cube (biggest heads, longest noses) at the extreme poses."""
    rng = np.random.default_rng(7)
    n = 48
    ids = rng.choice([-1.0, 1.0], (n, IDENTITY_DIM)).astype(np.float32)
    az, el = rng.choice([-1.2, 1.2], n), rng.choice([-0.5, 0.5], n)
    images = renderer64.render(ids, az, el, rng.uniform(-1.2, 1.2, n))[:, 0]
    ring = np.ones((64, 64), bool)
    ring[2:-2, 2:-2] = False
    assert not np.any(images[:, ring])  # measured: the heads stay >= 3 px from the border


def test_empty_batch(renderer64):
    out = renderer64.render(np.zeros((0, IDENTITY_DIM)), np.zeros(0), np.zeros(0), np.zeros(0))
    assert out.shape == (0, 1, 64, 64) and out.dtype == np.float32


def test_light_changes_shading_not_silhouette(renderer64):
    ids = sample_identities(8, 1)
    size = renderer64.image_size
    sweep = np.linspace(-1.2, 1.2, 5)
    images = [_render_pose(renderer64, ids, azimuth=0.2, elevation=-0.1, light=li) for li in sweep]
    masks = [im > 0 for im in images]
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    fg = masks[0]
    mad = np.array([np.abs(images[0][i] - images[-1][i])[fg[i]].mean() for i in range(len(ids))])
    assert mad.min() > 0.12, mad  # measured 0.20 - 0.33 for light -1.2 vs +1.2

    half = size // 2

    def left_right_ratio(image, mask):
        return image[..., :half][mask[..., :half]].mean() / image[..., half:][mask[..., half:]].mean()

    for i in range(len(ids)):
        ratios = [left_right_ratio(im[i], fg[i]) for im in images]
        assert np.all(np.diff(ratios) < 0), ratios  # light moving right darkens the left half
        assert ratios[0] > 1.5 and ratios[-1] < 1 / 1.5, ratios  # measured ~2.6 and ~0.33


def _nose_centroid(renderer, ids, azimuth, elevation):
    """(x, y) pixel centroid of what changes when only the nose length changes: the nose's position."""
    k = _SPEC_INDEX["nose_length"]
    short, long_ = ids.copy(), ids.copy()
    short[:, k], long_[:, k] = -1.0, 1.0
    diff = np.abs(_render_pose(renderer, long_, azimuth, elevation, 0.0)
                  - _render_pose(renderer, short, azimuth, elevation, 0.0))[:, 0]
    assert np.all(diff.sum(axis=(1, 2)) > 1.0)
    yy, xx = np.mgrid[:diff.shape[1], :diff.shape[2]]
    weight = diff.sum(axis=(1, 2))
    return (diff * xx).sum(axis=(1, 2)) / weight, (diff * yy).sum(axis=(1, 2)) / weight


def _foreground_mad(a, b):
    """Per-image mean absolute difference over the union of both foregrounds."""
    union = (a > 0) | (b > 0)
    return np.array([np.abs(a[i] - b[i])[union[i]].mean() for i in range(len(a))])


def test_azimuth_turns_the_face_to_the_right(renderer64):
    ids = sample_identities(6, 2)
    centre = (renderer64.image_size - 1) / 2
    xs = np.stack([_nose_centroid(renderer64, ids, az, 0.0)[0] for az in (-1.0, -0.5, 0.0, 0.5, 1.0)])
    assert np.all(np.diff(xs, axis=0) > 2.0), xs  # positive azimuth moves the nose right
    assert np.all(np.abs(xs[2] - centre) < 1.0)
    assert np.all(xs[-1] - xs[0] > 25.0), xs  # measured 40 - 44 px at 64x64
    a = _render_pose(renderer64, ids, azimuth=-0.6)
    b = _render_pose(renderer64, ids, azimuth=0.6)
    assert ((a > 0) != (b > 0)).mean(axis=(1, 2, 3)).min() > 0.008  # the silhouette changes; measured 0.016+
    assert _foreground_mad(a, b).min() > 0.035  # measured 0.060 - 0.069 over seeds


def test_elevation_moves_features_up(renderer64):
    ids = sample_identities(6, 3)
    ys = np.stack([_nose_centroid(renderer64, ids, 0.3, el)[1] for el in (-0.4, 0.0, 0.4)])
    assert np.all(np.diff(ys, axis=0) < -4.0), ys  # positive elevation: the nose goes up (smaller row)
    assert np.all(ys[0] - ys[-1] > 12.0), ys  # measured ~18 px at 64x64
    a = _render_pose(renderer64, ids, elevation=-0.4)
    b = _render_pose(renderer64, ids, elevation=0.4)
    assert ((a > 0) != (b > 0)).mean(axis=(1, 2, 3)).min() > 0.004  # measured 0.008 - 0.010
    assert _foreground_mad(a, b).min() > 0.035  # measured 0.051 - 0.094 over seeds


def test_face_mask_edges_move_with_pose(renderer64):
    """Only the face mask is drawn (like the Basel face model): turning or tilting the head away from
    the camera shows less of it, so pose changes the silhouette's area, not only the features."""
    ids = sample_identities(6, 8)
    n = len(ids)

    def coverage(azimuth, elevation):
        return (renderer64.render(ids, np.full(n, azimuth), np.full(n, elevation), np.zeros(n)) > 0).mean((1, 2, 3))

    front = coverage(0.0, 0.0)
    assert np.all(coverage(1.2, 0.0) < 0.8 * front)  # measured 0.67 - 0.71 of the frontal area
    np.testing.assert_array_equal(coverage(1.2, 0.0), coverage(-1.2, 0.0))  # mirror images
    assert np.all(coverage(0.0, 0.5) < 0.96 * front)  # measured 0.91 - 0.93
    assert np.all(coverage(0.0, -0.5) < 0.95 * front)  # measured 0.87 - 0.90


def test_mirror_symmetry_of_the_conventions(renderer64):
    """Negating azimuth and light mirrors the image left-right (the heads are symmetric)."""
    rng = np.random.default_rng(5)
    n = 8
    ids = sample_identities(n, 5)
    az, el, li = (rng.uniform(*FACTOR_RANGES[name], n) for name in FACTOR_NAMES)
    a = renderer64.render(ids, az, el, li)
    b = renderer64.render(ids, -az, el, -li)[..., ::-1]
    np.testing.assert_array_equal(a > 0, b > 0)
    assert np.abs(a - b).max() < 0.01  # measured 1.4e-6 (float rounding)
    assert np.abs(a - renderer64.render(ids, az, el, -li)).mean() > 0.03  # but light does matter: 0.09


def test_identity_changes_the_image(renderer64):
    ids = sample_identities(8, 6)
    for az, el, li in ((0.0, 0.0, 0.5), (1.2, 0.5, -1.2), (-1.2, -0.5, 1.2)):
        images = _render_pose(renderer64, ids, az, el, li)
        diffs = np.array([np.abs(images[i] - images[j]).mean()
                          for i in range(len(ids)) for j in range(i + 1, len(ids))])
        # measured min 0.019 / 0.0099 / 0.0066, median 0.045 / 0.019 / 0.015 (the mask is narrow in profile)
        assert diffs.min() > 0.004 and np.median(diffs) > 0.01, diffs


@pytest.mark.parametrize("kwargs, pattern", [
    ({"identities": np.zeros(IDENTITY_DIM)}, "identities must have shape"),
    ({"identities": np.zeros((2, IDENTITY_DIM + 1))}, "identities must have shape"),
    ({"identities": np.full((2, IDENTITY_DIM), np.nan)}, "identities must be finite"),
    ({"identities": np.full((2, IDENTITY_DIM), 1.5)}, r"identities must lie in \[-1, 1\]"),
    ({"azimuth": np.zeros(3)}, r"azimuth must have shape \(B,\)"),
    ({"elevation": np.zeros((2, 1))}, r"elevation must have shape \(B,\)"),
    ({"light": 0.0}, r"light must have shape \(B,\)"),
    ({"azimuth": np.array([0.0, np.nan])}, "azimuth must be finite"),
    ({"light": np.array([0.0, np.inf])}, "light must be finite"),
    ({"azimuth": np.array([0.0, 1.25])}, r"azimuth must lie in \[-1.2, 1.2\]"),
    ({"elevation": np.array([-0.6, 0.0])}, r"elevation must lie in \[-0.5, 0.5\]"),
    ({"light": np.array([0.0, -1.3])}, r"light must lie in \[-1.2, 1.2\]"),
])
def test_bad_inputs_raise(renderer64, kwargs, pattern):
    args = {"identities": sample_identities(2, 0), "azimuth": np.zeros(2), "elevation": np.zeros(2), "light": np.zeros(2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        renderer64.render(**args)


def test_range_bounds_are_accepted(renderer64):
    """The exact (float32-rounded) bounds are inside the tolerance."""
    ids = sample_identities(2, 0)
    lo, hi = (np.array([FACTOR_RANGES[n][i] for n in FACTOR_NAMES], np.float32) for i in (0, 1))
    out = renderer64.render(ids, *[np.array([lo[k], hi[k]], np.float32) for k in range(3)])
    assert out.shape == (2, 1, 64, 64)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"image_size": 15}, "image_size must be an integer >= 16"),
    ({"image_size": 64, "mesh_resolution": 8}, "mesh_resolution must be an integer >= 16"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        FaceRenderer(**kwargs)
