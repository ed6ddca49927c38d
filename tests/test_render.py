"""Tests for the shoebox ray-casting renderer (mvsd.sim.render)."""

from __future__ import annotations

import numpy as np
import pytest

from mvsd.sim.render import (
    _BODY_RADIUS,
    _HEAD_RADIUS,
    _LOOKS,
    MATERIAL_CLASSES,
    render_panorama,
    render_view,
)

ROOM = (8.0, 6.0, 3.0)
MIXED = {
    "west": "brick",
    "east": "glass",
    "south": "curtain",
    "north": "acoustic_panel",
    "floor": "wood",
    "ceiling": "acoustic_ceiling",
}
PLAIN = dict.fromkeys(MIXED, "plaster")
# Camera at the room centre looking along +x at a source 2 m ahead at the same height.
MIC = (4.0, 3.0, 1.5)
SRC = (6.0, 3.0, 1.5)
W, H = 129, 97  # odd sizes: the centre pixel's ray is exactly the optical axis


def _source_mask(rgb: np.ndarray) -> np.ndarray:
    """Magenta pixels: red and blue both well above green (no material looks like this)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 2 * g + 60) & (b > 2 * g + 60)


def _axis_dirs(width: int = W, height: int = H, fov_deg: float = 90.0) -> np.ndarray:
    """Closed-form unit ray directions of a view looking along +x (right = -y, up = +z)."""
    step = 2 * np.tan(np.radians(fov_deg) / 2) / width
    xs = (np.arange(width) + 0.5 - width / 2) * step
    ys = (height / 2 - np.arange(height) - 0.5) * step
    xs, ys = np.broadcast_arrays(xs[None, :], ys[:, None])
    d = np.stack([np.ones_like(xs), -xs, ys], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _east_mask(depth: np.ndarray) -> np.ndarray:
    dirs = _axis_dirs()
    return np.abs(MIC[0] + depth * dirs[..., 0] - ROOM[0]) < 1e-3


def _east_mask_at(depth: np.ndarray, width: int, height: int, fov_deg: float, tilt_deg: float) -> np.ndarray:
    """Pixels on the east wall (x = L) of a view from MIC along +x pitched up by ``tilt_deg``:
    the hit point's x is L (from the depth and the camera geometry)."""
    step = 2 * np.tan(np.radians(fov_deg) / 2) / width
    xs = (np.arange(width) + 0.5 - width / 2) * step
    ys = (height / 2 - np.arange(height) - 0.5) * step
    xs, ys = np.broadcast_arrays(xs[None, :], ys[:, None])
    p = np.radians(tilt_deg)
    fwd, up = np.array([np.cos(p), 0.0, np.sin(p)]), np.array([-np.sin(p), 0.0, np.cos(p)])
    d = fwd + xs[..., None] * np.array([0.0, -1.0, 0.0]) + ys[..., None] * up
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.abs(MIC[0] + depth * d[..., 0] - ROOM[0]) < 1e-3


def test_shapes_and_dtypes():
    rgb, depth = render_view(ROOM, MIXED, MIC, SRC)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert depth.shape == (96, 128) and depth.dtype == np.float32
    rgb, depth = render_view(ROOM, MIXED, MIC, SRC, width=40, height=30, fov_deg=60)
    assert rgb.shape == (30, 40, 3) and depth.shape == (30, 40)
    prgb, pdepth = render_panorama(ROOM, MIXED, MIC, SRC)
    assert prgb.shape == (128, 256, 3) and prgb.dtype == np.uint8
    assert pdepth.shape == (128, 256) and pdepth.dtype == np.float32
    diag = float(np.linalg.norm(ROOM))
    for d in (depth, pdepth):
        assert np.all(np.isfinite(d)) and d.min() > 0 and d.max() <= diag


def test_deterministic_byte_identical():
    a = render_view(ROOM, MIXED, MIC, (6.5, 1.2, 1.7))
    b = render_view(list(ROOM), dict(MIXED), list(MIC), [6.5, 1.2, 1.7])
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    c = render_panorama(ROOM, MIXED, MIC, (6.5, 1.2, 1.7))
    d = render_panorama(ROOM, MIXED, MIC, (6.5, 1.2, 1.7))
    assert c[0].tobytes() == d[0].tobytes() and c[1].tobytes() == d[1].tobytes()


def test_wall_and_ceiling_depth_match_closed_form():
    _, depth = render_view(ROOM, PLAIN, MIC, SRC, width=W, height=H)
    dirs = _axis_dirs()
    # Pixels off the figure that hit the east wall: depth = (L - x_mic) / d_x.
    for row, col in [(48, 20), (30, 20), (66, 110), (48, 110), (30, 90)]:
        expected = (ROOM[0] - MIC[0]) / dirs[row, col, 0]
        assert depth[row, col] == pytest.approx(expected, rel=0.01)
    # Straight up the centre column, above the head: the ceiling at (H - z_mic) / d_z.
    expected = (ROOM[2] - MIC[2]) / dirs[5, 64, 2]
    assert depth[5, 64] == pytest.approx(expected, rel=0.01)


def test_source_depth_and_occlusion():
    rgb, depth = render_view(ROOM, PLAIN, MIC, SRC, width=W, height=H)
    mask = _source_mask(rgb)
    # Centre ray goes through the head centre: distance minus the head radius.
    assert mask[48, 64]
    assert depth[48, 64] == pytest.approx(2.0 - _HEAD_RADIUS, rel=0.01)
    # A ray down the centre column hits the body's front at x = 6 - body radius, z ~ 0.65.
    dirs = _axis_dirs()
    assert mask[78, 64]
    expected = (2.0 - _BODY_RADIUS) / dirs[78, 64, 0]
    assert depth[78, 64] == pytest.approx(expected, rel=0.01)
    # Without the figure in the way, the same pixel would see the east wall 4 m away.
    assert depth[48, 64] < 0.5 * (ROOM[0] - MIC[0])


def test_source_visible_near_centre():
    rgb, _ = render_view(ROOM, MIXED, (1.5, 2.0, 1.4), (6.0, 4.0, 1.6))
    mask = _source_mask(rgb)
    assert mask[40:56, 56:72].sum() >= 4
    assert mask[48, 64] or mask[47, 63] or mask[47, 64] or mask[48, 63]


@pytest.mark.parametrize("material", MATERIAL_CLASSES)
def test_no_material_looks_like_the_source(material):
    rgb, _ = render_panorama(ROOM, dict.fromkeys(MIXED, material), MIC, SRC)
    cols = np.nonzero(_source_mask(rgb))[1]
    assert cols.size > 0
    assert np.abs(cols - 128).max() <= 12  # only the figure, straight ahead


def test_changing_one_wall_changes_only_that_wall():
    rgb_a, depth_a = render_view(ROOM, MIXED, MIC, SRC, width=W, height=H)
    rgb_b, depth_b = render_view(ROOM, {**MIXED, "east": "brick"}, MIC, SRC, width=W, height=H)
    assert np.array_equal(depth_a, depth_b)  # materials do not move geometry
    east = _east_mask(depth_a)
    changed = np.any(rgb_a != rgb_b, axis=-1)
    assert east.sum() > 1000
    assert not np.any(changed & ~east)
    assert changed[east].mean() > 0.9


def test_every_material_is_distinct():
    means, pixels = {}, {}
    for m in MATERIAL_CLASSES:
        rgb, depth = render_view(ROOM, {**PLAIN, "east": m}, MIC, SRC, width=W, height=H)
        east = _east_mask(depth)
        pixels[m] = rgb[east].astype(int)
        means[m] = pixels[m].mean(axis=0)
    for i, a in enumerate(MATERIAL_CLASSES):
        for b in MATERIAL_CLASSES[i + 1 :]:
            assert np.linalg.norm(means[a] - means[b]) > 8, (a, b)
            assert np.any(pixels[a] != pixels[b], axis=1).mean() > 0.5, (a, b)


def test_looks_are_the_simulators_materials():
    from mvsd.sim.rooms import MATERIALS

    assert {c: tuple(names) for c, (names, _) in MATERIALS.items()} == _LOOKS


@pytest.mark.parametrize("cls", [c for c in MATERIAL_CLASSES if len(_LOOKS[c]) > 1])
def test_materials_of_a_class_look_different_at_the_datasets_size(cls):
    """Materials of one class absorb differently (mvsd.sim.rooms.MATERIALS), so the picture must
    tell them apart — at SimRooms' 128 x 96 pixels, where fine detail averages out — while still
    looking like their class (closer to each other than to the next class's colour)."""
    pixels = {}
    for name in _LOOKS[cls]:
        rgb, depth = render_view(ROOM, {**PLAIN, "east": cls}, MIC, SRC, 128, 96, 110.0, 8.0, materials={"east": name})
        pixels[name] = rgb[_east_mask_at(depth, 128, 96, 110.0, 8.0)].astype(float)
    names = _LOOKS[cls]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = np.abs(pixels[a] - pixels[b]).mean()
            assert diff > 4, (a, b, diff)  # grey levels per channel, mean over the wall


def test_without_materials_a_class_has_one_look_and_each_surface_its_own():
    plain, _ = render_view(ROOM, MIXED, MIC, SRC, width=W, height=H)
    again, _ = render_view(ROOM, MIXED, MIC, SRC, width=W, height=H, materials=None)
    assert np.array_equal(plain, again)
    rgb, depth = render_view(
        ROOM, MIXED, MIC, SRC, width=W, height=H, materials={"south": "curtains_cotton_0.5"}
    )
    changed = np.any(rgb != plain, axis=-1)
    assert changed.any() and not changed[_east_mask(depth)].any()  # only the south wall changed


def test_bigger_room_has_larger_mean_depth():
    _, small = render_view(ROOM, MIXED, MIC, SRC)
    _, big = render_view(tuple(2 * x for x in ROOM), MIXED, MIC, (8.0, 3.0, 1.5))
    assert big.mean() > 1.5 * small.mean()


@pytest.mark.parametrize("source", [SRC, (1.0, 5.5, 1.2), (7.0, 0.5, 2.0)])
def test_panorama_centre_column_looks_at_source(source):
    rgb, depth = render_panorama(ROOM, MIXED, MIC, source)
    assert rgb.shape == (128, 256, 3)
    cols = np.nonzero(_source_mask(rgb))[1]
    assert cols.size > 0
    assert np.abs(cols - 128).max() <= 12
    # Around the source's elevation, the centre columns see the head: distance minus radius.
    d = np.subtract(source, MIC)
    row = int((np.pi / 2 - np.arctan2(d[2], np.hypot(d[0], d[1]))) / np.pi * 128)
    near = depth[row - 1 : row + 2, 126:130].min()
    assert near == pytest.approx(np.linalg.norm(d) - _HEAD_RADIUS, rel=0.02)


def test_panorama_depth_closed_form():
    _, depth = render_panorama(ROOM, PLAIN, MIC, SRC)
    # Column 0, horizon row: looking (almost) straight back at the west wall 4 m away.
    az = 0.0 - (0.5 - 128) * (2 * np.pi / 256)
    el = np.pi / 2 - (64 + 0.5) * (np.pi / 128)
    expected = MIC[0] / (abs(np.cos(az)) * np.cos(el))
    assert depth[64, 0] == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("source", [(4.0, 3.0, 2.7), (4.0, 3.0, 0.6)])
def test_source_straight_above_or_below(source):
    rgb, depth = render_view(ROOM, MIXED, MIC, source, width=W, height=H)
    assert np.all(np.isfinite(depth))
    assert _source_mask(rgb)[48, 64]
    prgb, pdepth = render_panorama(ROOM, MIXED, MIC, source)
    assert np.all(np.isfinite(pdepth)) and _source_mask(prgb).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"surfaces": {**MIXED, "roof": "brick"}}, "valid surfaces"),
        ({"surfaces": {**MIXED, "east": "gold"}}, "plaster"),
        ({"surfaces": {k: v for k, v in MIXED.items() if k != "floor"}}, "floor"),
        ({"mic": (9.0, 3.0, 1.5)}, "outside"),
        ({"source": (4.0, 3.0, -0.1)}, "outside"),
        ({"mic": SRC}, "coincide"),
        ({"dims": (8.0, -6.0, 3.0)}, "positive"),
        ({"dims": (8.0, 6.0)}, "three"),
        ({"materials": {"east": "brickwork"}}, "not one of its class 'glass'"),
        ({"materials": {"roof": "brickwork"}}, "valid surfaces"),
        ({"width": 0}, "width"),
        ({"fov_deg": 180.0}, "fov"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"dims": ROOM, "surfaces": MIXED, "mic": MIC, "source": SRC, **kwargs}
    with pytest.raises(ValueError, match=match):
        render_view(**args)
    if "fov_deg" not in kwargs:
        with pytest.raises(ValueError, match=match):
            render_panorama(**args)


def test_tilt_pitches_the_camera_up_closed_form():
    tilt = 10.0
    rgb, depth = render_view(ROOM, PLAIN, MIC, SRC, width=W, height=H, tilt_deg=tilt)
    # The optical axis (centre pixel) now rises 10 degrees: it meets the east wall 4 m ahead.
    assert depth[H // 2, W // 2] == pytest.approx((ROOM[0] - MIC[0]) / np.cos(np.radians(tilt)), rel=1e-4)
    # The source, level with the camera 2 m ahead, drops below the centre: the top of its head
    # (asin(r / d) above the horizon) is seen (tilt - that) degrees below the axis.
    step = 2 * np.tan(np.radians(45.0)) / W
    top = np.radians(tilt) - np.arcsin(_HEAD_RADIUS / (SRC[0] - MIC[0]))
    rows = np.nonzero(_source_mask(rgb)[:, W // 2])[0]
    assert rows.min() == pytest.approx(H / 2 - 0.5 + np.tan(top) / step, abs=1.5)


def test_tilt_shows_the_ceiling_of_a_high_room():
    room, mic, src = (8.0, 6.0, 7.0), (1.0, 3.0, 1.5), (4.0, 3.0, 1.5)
    _, level = render_view(room, PLAIN, mic, src, width=W, height=H)
    _, tilted = render_view(room, PLAIN, mic, src, width=W, height=H, tilt_deg=20.0)

    def ceiling_pixels(depth, tilt):
        pitch = np.radians(tilt)
        d = _axis_dirs()
        # rotate the level rays up by the tilt about the camera's right axis (-y)
        z = d[..., 2] * np.cos(pitch) + d[..., 0] * np.sin(pitch)
        return np.abs(mic[2] + depth * z - room[2]) < 1e-3

    assert not ceiling_pixels(level, 0.0).any()
    assert ceiling_pixels(tilted, 20.0).sum() > 50


def test_tilt_beyond_half_the_vertical_field_of_view_raises():
    with pytest.raises(ValueError, match="tilt_deg"):
        render_view(ROOM, MIXED, MIC, SRC, tilt_deg=40.0)  # 90 x 67.5 degrees at 128 x 96
    render_view(ROOM, MIXED, MIC, SRC, tilt_deg=30.0)
