"""Fast, deterministic, pure-numpy ray-casting renderer for shoebox rooms.

The images are the visual half of a simulated audio-visual dataset, so everything that
shapes the room's acoustics must be visible in them: the room's size and shape, each
surface's material (its class by colour and pattern, and which material of the class by what
tells them apart in a photo: perforation, folds, pile, board size) and the sound source's position.

Conventions
-----------
* World frame = pyroomacoustics ``ShoeBox``: x in [0, L], y in [0, W], z in [0, H], metres,
  z up.
* Surface names follow pyroomacoustics' materials dict.  Checked against
  ``pyroomacoustics/room.py`` (``ShoeBox.__init__``: ``wall_names = ["west", "east", "south",
  "north", "floor", "ceiling"]``, "W/E is for axis x, S/N for y-axis, F/C for z-axis", and the
  module docs: west/east = small/large x, south/north = small/large y, floor/ceiling = small/large
  z).  So: west x=0, east x=L, south y=0, north y=W, floor z=0, ceiling z=H.  Internally a face
  index ``k = 2 * axis + (face is at the large coordinate)`` reproduces exactly that order.
* Texture coordinates (u, v) are in metres on the surface: walls use u = horizontal coordinate
  along the wall, v = height z; floor and ceiling use u = x, v = y.  Patterns are defined in
  metres (brick courses, 0.5 m tiles, 0.6 m panels...), so their perspective reveals room scale.
* Camera: at the microphone.  ``render_view`` is a pinhole camera looking at the source (yaw and
  pitch from mic to source, no roll, up = +z, ``fov_deg`` is the horizontal field of view, square
  pixels), pitched up by ``tilt_deg`` so the source sits below the centre and more of the room
  above it shows: with a level camera, the ceiling of a small, high room is out of frame and its
  height (which sets the acoustics as much as the floor area does) is not in the picture.  ``render_panorama`` is an equirectangular 360 x 180 degree image with the horizon as
  the middle row, azimuth decreasing to the right (as seen from inside) and the source's azimuth
  at the centre column.
* The source is drawn as a magenta person-like figure: a head sphere (radius 0.12 m) centred on
  the source position above a vertical capsule body (radius 0.18 m) standing on the floor.
  Magenta is used by no material, so the figure can be found by colour.
* Depth is the Euclidean distance in metres from the camera to the first hit (float32).
* No randomness: all "noise" is an integer hash of texture-cell indices, so identical inputs
  give byte-identical images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

MATERIAL_CLASSES: tuple[str, ...] = (
    "plaster",
    "brick",
    "concrete",
    "wood",
    "glass",
    "curtain",
    "carpet",
    "tile",
    "marble",
    "linoleum",
    "acoustic_panel",
    "acoustic_ceiling",
)
# pyroomacoustics ShoeBox.wall_names order; face index k <-> _SURFACES[k].
_SURFACES: tuple[str, ...] = ("west", "east", "south", "north", "floor", "ceiling")
# Texture axes (u, v) per face: walls use (along-wall, height), floor/ceiling use (x, y).
_UV_AXES: tuple[tuple[int, int], ...] = ((1, 2), (1, 2), (0, 2), (0, 2), (0, 1), (0, 1))

_HEAD_RADIUS = 0.12
_BODY_RADIUS = 0.18
_NECK_GAP = 0.04  # gap between body top and head, so the head reads as a separate sphere
_SOURCE_RGB = np.array([1.0, 0.0, 1.0])
_HEAD, _BODY, _SHOULDER = 6, 7, 8  # hit kinds after the six faces


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Scene:
    dims: np.ndarray  # (3,) L, W, H
    materials: tuple[str, ...]  # material class per face index
    looks: tuple[str | None, ...]  # the pyroomacoustics material drawn per face (None: the class's plain look)
    mic: np.ndarray  # (3,)
    source: np.ndarray  # (3,)


def _as_xyz(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = np.full(0, np.nan)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be three finite numbers (x, y, z), got {value!r}")
    return arr


def _check_surfaces(surfaces: object) -> tuple[str, ...]:
    if not isinstance(surfaces, Mapping):
        raise ValueError(f"surfaces must be a dict surface-name -> material class, got {surfaces!r}")
    unknown = [k for k in surfaces if k not in _SURFACES]
    if unknown:
        raise ValueError(f"unknown surface name(s) {unknown}; valid surfaces: {list(_SURFACES)}")
    missing = [k for k in _SURFACES if k not in surfaces]
    if missing:
        # A silent default would put a material in the picture that the acoustics never saw.
        raise ValueError(f"missing surface(s) {missing}; all of {list(_SURFACES)} are required")
    bad = {k: v for k, v in surfaces.items() if v not in MATERIAL_CLASSES}
    if bad:
        raise ValueError(f"unknown material class(es) {bad}; valid: {list(MATERIAL_CLASSES)}")
    return tuple(str(surfaces[k]) for k in _SURFACES)


def _check_looks(classes: tuple[str, ...], materials: object) -> tuple[str | None, ...]:
    if materials is None:
        return (None,) * len(_SURFACES)
    if not isinstance(materials, Mapping):
        raise ValueError(f"materials must be a dict surface-name -> pyroomacoustics material, got {materials!r}")
    unknown = [k for k in materials if k not in _SURFACES]
    if unknown:
        raise ValueError(f"unknown surface name(s) {unknown} in materials; valid surfaces: {list(_SURFACES)}")
    looks = tuple(materials.get(k) for k in _SURFACES)
    for k, cls, look in zip(_SURFACES, classes, looks):
        if look is not None and look not in _LOOKS[cls]:
            raise ValueError(
                f"material {look!r} of the {k} is not one of its class {cls!r}: {list(_LOOKS[cls])}"
            )
    return looks


def _build_scene(dims: object, surfaces: object, mic: object, source: object, materials: object = None) -> _Scene:
    d = _as_xyz("dims", dims)
    if np.any(d <= 0):
        raise ValueError(f"dims must be positive (L, W, H) in metres, got {tuple(d)}")
    materials_ = _check_surfaces(surfaces)
    looks = _check_looks(materials_, materials)
    m, s = _as_xyz("mic", mic), _as_xyz("source", source)
    for name, p in (("mic", m), ("source", s)):
        # Strictly inside: a camera on a wall plane sees half the image at depth 0.
        if np.any(p <= 0) or np.any(p >= d):
            raise ValueError(
                f"{name} position {tuple(p)} is outside the room; it must lie strictly inside "
                f"(0, {d[0]}) x (0, {d[1]}) x (0, {d[2]})"
            )
    if np.linalg.norm(s - m) < 1e-6:
        raise ValueError(
            f"mic and source coincide at {tuple(m)}; the camera sits at the mic and looks at "
            "the source, so they must be at different positions"
        )
    return _Scene(d, materials_, looks, m, s)


def _check_image(width: object, height: object) -> None:
    for name, n in (("width", width), ("height", height)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")


# --------------------------------------------------------------------------- hash noise


def _hash2(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic value in [0, 1) per integer cell (i, j); uint32 wrap-around is intended."""
    h = i.astype(np.int64).astype(np.uint32) * np.uint32(0x8DA6B343)
    h ^= j.astype(np.int64).astype(np.uint32) * np.uint32(0xD8163841)
    h ^= np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return h.astype(np.float64) * (1.0 / 4294967296.0)


def _cells(u: np.ndarray, v: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Blocky hash noise: one random value per cell x cell metre square."""
    return _hash2(np.floor(u / cell), np.floor(v / cell), seed)


def _value_noise(u: np.ndarray, v: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1]: hashed lattice values, smoothstep-interpolated."""
    x, y = u / cell, v / cell
    i, j = np.floor(x), np.floor(y)
    fx, fy = x - i, y - j
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    n00, n10 = _hash2(i, j, seed), _hash2(i + 1, j, seed)
    n01, n11 = _hash2(i, j + 1, seed), _hash2(i + 1, j + 1, seed)
    return (n00 + (n10 - n00) * sx) * (1 - sy) + (n01 + (n11 - n01) * sx) * sy


# --------------------------------------------------------------------------- pattern helpers
# ``fp`` is the pixel footprint on the surface in metres.  Pattern details are box-filtered over
# it (lines, dots) or faded out (noise) so distant patterns average out instead of aliasing.


def _fade(fp: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(scale / fp, 0.0, 1.0)


def _band_cov(d: np.ndarray, half_width: float, fp: np.ndarray) -> np.ndarray:
    """Fraction of a footprint centred at distance d from a band's centre that the band covers."""
    hf = fp / 2
    overlap = np.minimum(d + hf, half_width) - np.maximum(d - hf, -half_width)
    return np.clip(overlap / fp, 0.0, 1.0)


def _lines(x: np.ndarray, period: float, width: float, fp: np.ndarray) -> np.ndarray:
    """Coverage of lines of `width` centred on multiples of `period`."""
    d = np.abs(x - period * np.round(x / period))
    return _band_cov(d, width / 2, np.minimum(fp, period))


def _dots(u: np.ndarray, v: np.ndarray, period: float, radius: float, fp: np.ndarray):
    """Coverage of dots of `radius` centred in every period x period cell."""
    du = u - period * (np.floor(u / period) + 0.5)
    dv = v - period * (np.floor(v / period) + 0.5)
    fp = np.minimum(fp, period)
    edge = np.clip((radius - np.hypot(du, dv)) / fp + 0.5, 0.0, 1.0)
    return edge * np.clip((2 * radius / fp) ** 2, 0.0, 1.0)  # small dots fade to their area


def _tint(base: np.ndarray, f: np.ndarray) -> np.ndarray:
    return base[None, :] * f[:, None]


def _mix(a: np.ndarray, b: tuple[float, float, float], w: np.ndarray) -> np.ndarray:
    return a + (np.asarray(b)[None, :] - a) * w[:, None]


# --------------------------------------------------------------------------- materials
# Each texture maps (base colour, u, v, footprint, look) -> albedo (n, 3). ``look`` is the
# pyroomacoustics material the simulator chose for the surface (mvsd/sim/rooms.py MATERIALS), or
# None for the class's plain look. Materials of one class differ in absorption as much as classes
# do (perforated gypsum board absorbs ~0.8 at 1 kHz, plasterboard 0.04; folded fabric 1.0, velvet
# 0.45), and in a photo they differ too: perforation, fold depth, pile, board size, sheen. So each
# is drawn with what tells it apart at the picture's scale (a pixel covers 5-20 cm of a wall a few
# metres away: patterns of that size and the mean shade, not millimetre detail, stay visible).


def _tex_plaster(base, u, v, fp, look=None):
    rough = look == "rough_lime_wash"
    mottle = _value_noise(u, v, 0.6 if rough else 0.35, 1) - 0.5
    trowel = _value_noise(u * 0.5, v * 2.0, 0.12, 2) - 0.5  # elongated trowel marks
    f = 1 + (0.28 if rough else 0.10) * mottle + 0.10 * trowel * _fade(fp, 0.06)
    if look == "gypsum_board":  # perforated acoustic board: 1.2 m squares of holes, plain borders
        border = np.maximum(_lines(u, 1.2, 0.12, fp), _lines(v, 1.2, 0.12, fp))
        holes = _dots(u, v, 0.05, 0.013, fp) * (1 - border)
        joints = np.maximum(_lines(u, 1.2, 0.01, fp), _lines(v, 1.2, 0.01, fp))
        f = f * (1 - 0.9 * holes) * (1 - 0.4 * joints)
    return _tint(base, f)


def _tex_brick(base, u, v, fp, look=None):
    course, length = 0.075, 0.225  # 0.065 x 0.215 m bricks + 10 mm mortar
    spread, mortar_w, mortar_rgb = {
        "smooth_brickwork_flush_pointing": (0.15, 0.006, (0.55, 0.30, 0.22)),  # flush, tinted joints
        "brick_wall_rough": (0.7, 0.014, (0.70, 0.68, 0.62)),  # mottled, deep raked joints
    }.get(look, (0.4, 0.01, (0.78, 0.76, 0.70)))
    row = np.floor(v / course)
    us = u + 0.5 * length * (row % 2)  # running bond: every other course shifted half a brick
    tint = 1 + (spread * _hash2(np.floor(us / length), row, 3) - spread / 2) * _fade(fp, length)
    if look == "brick_wall_rough":
        tint = tint * (0.85 + 0.3 * _value_noise(u, v, 0.5, 19))  # weathered patches
    mortar = np.maximum(_lines(v, course, mortar_w, fp), _lines(us, length, mortar_w, fp))
    return _mix(_tint(base, tint), mortar_rgb, mortar)


def _tex_concrete(base, u, v, fp, look=None):
    if look == "hard_surface":  # sealed, painted: smooth, lighter, no formwork marks
        return _tint(base, 1.12 + 0.06 * _value_noise(u, v, 0.8, 4))
    rough = look == "rough_concrete"
    f = (0.72 if rough else 0.9) + (0.4 if rough else 0.2) * _value_noise(u, v, 0.5, 4)
    f += 0.16 * (_cells(u, v, 0.015, 5) - 0.5) * _fade(fp, 0.015)
    seams = np.maximum(_lines(u, 1.2, 0.01, fp), _lines(v, 0.6, 0.01, fp))  # formwork panels
    ties = _dots(u, v, 0.6, 0.018, fp)  # form-tie holes, one per 0.6 m cell
    return _tint(base, f * (1 - 0.35 * seams) * (1 - 0.7 * ties))


def _tex_wood(base, u, v, fp, look=None):
    # Boards: lining is narrow tongue-and-groove, 16 mm boards are wide planks, thin plywood comes
    # in 1.2 x 2.4 m sheets with a faint, wide grain.
    plank, board, grain_amp, shade = {
        "wooden_lining": (0.09, 2.4, 0.12, 1.1),
        "plywood_thin": (1.2, 2.4, 0.05, 1.25),
    }.get(look, (0.14, 1.2, 0.12, 1.0))
    row = np.floor(v / plank)
    us = u + board * _hash2(row, row, 6)  # staggered butt joints
    tint = shade + (0.4 * _hash2(np.floor(us / board), row, 7) - 0.2) * _fade(fp, plank)
    # Grain runs along the plank: wavy stripes across v, wobbling slowly along u.
    grain = np.sin(2 * np.pi * (v / 0.035 + 0.6 * _value_noise(us, row, 0.7, 8)))
    f = tint * (1 + grain_amp * grain * _fade(fp, 0.01))
    joints = np.maximum(_lines(v, plank, 0.008, fp), _lines(us, board, 0.008, fp))
    return _mix(_tint(base, f), (0.20, 0.12, 0.05), joints)


def _tex_glass(base, u, v, fp, look=None):
    # Panes between mullions: a plain window, a double-glazed unit's deep frames, a large 3 mm
    # sheet with slim frames.
    pane_u, pane_v, frame_w = {
        "double_glazing_30mm": (1.0, 1.2, 0.12),
        "glass_3mm": (2.0, 2.4, 0.03),
    }.get(look, (1.0, 1.2, 0.06))
    streak = ((u + 0.6 * v) / 1.6) % 1.0  # diagonal reflection bands of a flat pane
    f = 0.92 + 0.22 * np.exp(-(((streak - 0.5) / 0.1) ** 2))
    frame = np.maximum(_lines(u, pane_u, frame_w, fp), _lines(v, pane_v, frame_w, fp))  # mullions
    return _mix(_tint(base, f), (0.22, 0.24, 0.27), frame)


def _tex_curtain(base, u, v, fp, look=None):
    # Folds: velvet hangs in heavy, dark folds; thin cotton in shallow, light ones; folded
    # (pleated) fabric in deep, tight ones.
    period, amp, shade = {
        "curtains_velvet": (0.2, 0.3, 0.75),
        "curtains_cotton_0.5": (0.35, 0.1, 1.35),
        "curtains_fabric_folded": (0.1, 0.45, 0.9),
    }.get(look, (0.16, 0.28, 1.0))
    phase = 2 * np.pi * u / period + 1.3 * np.sin(2 * np.pi * u / 0.57)  # irregular vertical folds
    f = shade * (0.85 + amp * np.cos(phase) * _fade(fp, 0.375 * period))
    hem = _lines(v, 1e9, 0.32, fp)  # darker doubled hem just above the floor
    return _tint(base, f * (1 - 0.3 * hem))


def _tex_carpet(base, u, v, fp, look=None):
    # Pile: tufted loops read as coarse tufts, a soft cut pile as an even surface, a hairy shag
    # as long blotches of light and shade.
    cell, tuft_amp, heather_cell, heather_amp, shade = {
        "carpet_tufted_9.5mm": (0.02, 0.6, 0.06, 0.35, 1.0),
        "carpet_soft_10mm": (0.006, 0.3, 0.06, 0.1, 1.15),
        "carpet_hairy": (0.01, 0.6, 0.15, 0.8, 0.85),
    }.get(look, (0.008, 0.6, 0.06, 0.35, 1.0))
    tufts = _cells(u, v, cell, 9) - 0.5
    heather = _value_noise(u, v, heather_cell, 10) - 0.5
    return _tint(base, shade * (1 + tuft_amp * tufts * _fade(fp, cell) + heather_amp * heather * _fade(fp, heather_cell)))


def _tex_tile(base, u, v, fp, look=None):
    size = 0.5
    tint = 1 + (0.12 * _cells(u, v, size, 11) - 0.06) * _fade(fp, size)
    grout = np.maximum(_lines(u, size, 0.014, fp), _lines(v, size, 0.014, fp))
    return _mix(_tint(base, tint), (0.42, 0.43, 0.42), grout)


def _tex_marble(base, u, v, fp, look=None):
    if look == "limestone_wall":  # dressed blocks, warm and speckled, no veins
        row = np.floor(v / 0.3)
        us = u + 0.3 * (row % 2)
        f = 0.95 + 0.1 * _hash2(np.floor(us / 0.6), row, 20) + 0.08 * (_value_noise(u, v, 0.08, 21) - 0.5)
        joints = np.maximum(_lines(v, 0.3, 0.008, fp), _lines(us, 0.6, 0.008, fp))
        return _mix(_tint(base * np.array([1.0, 0.97, 0.88]), f), (0.62, 0.60, 0.55), joints)
    turb = _value_noise(u, v, 0.45, 12) + 0.5 * _value_noise(u, v, 0.17, 13)
    s = np.sin(2 * np.pi * (0.7 * u + 0.4 * v) + 7.0 * turb)
    vein = np.clip(1 - np.abs(s) / 0.15, 0.0, 1.0) * _fade(fp, 0.04)
    col = _mix(_tint(base, 0.93 + 0.07 * turb), (0.40, 0.42, 0.48), 0.75 * vein)
    slabs = np.maximum(_lines(u, 0.8, 0.004, fp), _lines(v, 0.8, 0.004, fp))
    return _mix(col, (0.55, 0.55, 0.58), slabs)


def _tex_linoleum(base, u, v, fp, look=None):
    marbling = _value_noise(u * 0.35, v, 0.03, 14) - 0.5  # streaky marmoleum mottle
    broad = _value_noise(u, v, 0.3, 15) - 0.5
    f = 1 + 0.3 * marbling * _fade(fp, 0.03) + 0.1 * broad
    seams = _lines(v, 2.0, 0.004, fp)  # 2 m wide sheets
    return _tint(base, f * (1 - 0.5 * seams))


def _tex_acoustic_panel(base, u, v, fp, look=None):
    gaps_rgb = (0.08, 0.09, 0.11)
    if look == "panel_fabric_covered_8pcf":  # fabric-wrapped 1.2 m panels, soft and even
        f = 1.1 + 0.06 * (_value_noise(u, v, 0.3, 16) - 0.5)
        gaps = np.maximum(_lines(u, 1.2, 0.03, fp), _lines(v, 1.2, 0.03, fp))
        return _mix(_tint(base, f), gaps_rgb, gaps)
    if look == "rockwool_50mm_80kgm3":  # bare mineral wool slabs: fibrous, mottled, lighter
        f = 1.25 + 0.3 * (_value_noise(u, v, 0.05, 22) - 0.5) + 0.15 * (_value_noise(u, v, 0.25, 23) - 0.5)
        gaps = np.maximum(_lines(u, 0.6, 0.01, fp), _lines(v, 1.2, 0.01, fp))
        return _mix(_tint(base, f), gaps_rgb, gaps)
    f = 1 + 0.06 * (_cells(u, v, 0.6, 16) - 0.5) * _fade(fp, 0.6)
    holes = _dots(u, v, 0.06, 0.012, fp)  # perforation
    gaps = np.maximum(_lines(u, 0.6, 0.02, fp), _lines(v, 0.6, 0.02, fp))  # 0.6 m panels
    return _mix(_tint(base, f * (1 - 0.75 * holes)), gaps_rgb, gaps)


def _tex_acoustic_ceiling(base, u, v, fp, look=None):
    grid_rgb = (0.52, 0.53, 0.55)
    if look == "ceiling_melamine_foam":  # grey wedge foam: ridges of light and shade, no grid
        f = 0.8 + 0.2 * np.abs(np.sin(np.pi * u / 0.1)) * _fade(fp, 0.05)
        return _tint(base * np.array([0.8, 0.8, 0.82]), f)
    if look == "ceiling_fibre_absorber":  # large smooth glass-fibre boards, bright, wide grid
        grid = np.maximum(_lines(u, 1.2, 0.04, fp), _lines(v, 0.6, 0.04, fp))
        return _mix(_tint(base, 1.06 - 0.03 * _cells(u, v, 1.2, 18)), (0.30, 0.31, 0.33), grid)
    fissures = (_cells(u, v, 0.012, 17) > 0.75) * _fade(fp, 0.012)
    tiles = _tint(base, 1 - 0.22 * fissures - 0.04 * _cells(u, v, 0.6, 18))
    grid = np.maximum(_lines(u, 0.6, 0.024, fp), _lines(v, 0.6, 0.024, fp))  # T-bar grid
    return _mix(tiles, grid_rgb, grid)


_Texture = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, "str | None"], np.ndarray]
_MATERIALS: dict[str, tuple[np.ndarray, _Texture]] = {
    name: (np.array(rgb), tex)
    for name, rgb, tex in (
        ("plaster", (0.86, 0.80, 0.68), _tex_plaster),  # warm beige
        ("brick", (0.62, 0.27, 0.18), _tex_brick),  # red-brown
        ("concrete", (0.56, 0.56, 0.54), _tex_concrete),  # mid grey
        ("wood", (0.60, 0.39, 0.20), _tex_wood),  # brown
        ("glass", (0.64, 0.82, 0.93), _tex_glass),  # light blue
        ("curtain", (0.50, 0.12, 0.20), _tex_curtain),  # wine red
        ("carpet", (0.20, 0.40, 0.34), _tex_carpet),  # dark teal green
        ("tile", (0.72, 0.88, 0.82), _tex_tile),  # mint
        ("marble", (0.84, 0.86, 0.92), _tex_marble),  # cool bluish white
        ("linoleum", (0.78, 0.64, 0.26), _tex_linoleum),  # mustard
        ("acoustic_panel", (0.33, 0.45, 0.60), _tex_acoustic_panel),  # dusty blue
        ("acoustic_ceiling", (0.95, 0.94, 0.88), _tex_acoustic_ceiling),  # warm white
    )
}
assert tuple(_MATERIALS) == MATERIAL_CLASSES
# The pyroomacoustics materials each class is drawn as (mvsd/sim/rooms.py MATERIALS, tested to
# agree): each has its own look (the textures above), so a picture shows which one a surface is.
_LOOKS: dict[str, tuple[str, ...]] = {
    "plaster": ("plasterboard", "gypsum_board", "rough_lime_wash"),
    "brick": ("brickwork", "smooth_brickwork_flush_pointing", "brick_wall_rough"),
    "concrete": ("rough_concrete", "unpainted_concrete", "hard_surface"),
    "wood": ("wooden_lining", "wood_16mm", "plywood_thin"),
    "glass": ("glass_window", "double_glazing_30mm", "glass_3mm"),
    "curtain": ("curtains_velvet", "curtains_cotton_0.5", "curtains_fabric_folded"),
    "carpet": ("carpet_tufted_9.5mm", "carpet_soft_10mm", "carpet_hairy"),
    "tile": ("ceramic_tiles",),
    "marble": ("marble_floor", "limestone_wall"),
    "linoleum": ("linoleum_on_concrete",),
    "acoustic_panel": ("panel_fabric_covered_8pcf", "rockwool_50mm_80kgm3", "fibre_absorber_2"),
    "acoustic_ceiling": ("ceiling_fibre_absorber", "ceiling_fissured_tile", "ceiling_melamine_foam"),
}
assert tuple(_LOOKS) == MATERIAL_CLASSES


# --------------------------------------------------------------------------- ray casting


def _hit_room(o: np.ndarray, dims: np.ndarray, dirs: np.ndarray):
    """Exit distance from inside the box and face index (pyroomacoustics order) per ray."""
    towards_max = dirs > 0
    gap = np.where(towards_max, dims - o, -o)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_axes = np.where(dirs != 0, gap / dirs, np.inf)
    axis = np.argmin(t_axes, axis=1)
    rows = np.arange(len(dirs))
    return t_axes[rows, axis], (2 * axis + towards_max[rows, axis]).astype(np.int8)


def _hit_sphere(o: np.ndarray, dirs: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    oc = o - c
    cc = oc @ oc - r * r
    if cc <= 0:  # camera inside: cull, it would only see the inside of the back face
        return np.full(len(dirs), np.inf)
    b = dirs @ oc
    disc = b * b - cc
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def _hit_column(o, dirs, c, r: float, z_top: float) -> np.ndarray:
    """Vertical cylinder around c[:2], radius r, from the floor up to z_top (side only)."""
    ox, oy = o[0] - c[0], o[1] - c[1]
    cc = ox * ox + oy * oy - r * r
    if cc <= 0 or z_top <= 0:
        return np.full(len(dirs), np.inf)
    a = dirs[:, 0] ** 2 + dirs[:, 1] ** 2
    b = dirs[:, 0] * ox + dirs[:, 1] * oy
    disc = b * b - a * cc
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    z = o[2] + t * dirs[:, 2]
    return np.where((disc >= 0) & (a > 0) & (t > 0) & (z >= 0) & (z <= z_top), t, np.inf)


def _shoulder_centre(source: np.ndarray) -> np.ndarray:
    """Centre of the capsule's top hemisphere: body top sits a neck gap below the head."""
    z = max(source[2] - _HEAD_RADIUS - _NECK_GAP - _BODY_RADIUS, 0.0)
    return np.array([source[0], source[1], z])


def _trace(scene: _Scene, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance and kind (0-5 faces, then head, body, shoulder) per ray."""
    t, kind = _hit_room(scene.mic, scene.dims, dirs)
    shoulder = _shoulder_centre(scene.source)
    objects = (
        (_HEAD, _hit_sphere(scene.mic, dirs, scene.source, _HEAD_RADIUS)),
        (_BODY, _hit_column(scene.mic, dirs, shoulder, _BODY_RADIUS, shoulder[2])),
        (_SHOULDER, _hit_sphere(scene.mic, dirs, shoulder, _BODY_RADIUS)),
    )
    for code, t_obj in objects:
        closer = t_obj < t  # the figure occludes whatever lies behind it
        t = np.where(closer, t_obj, t)
        kind[closer] = code
    return t, kind


def _normals(scene: _Scene, kind: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Unit normals at hit points; faces point into the room."""
    n = np.zeros_like(p)
    face = np.nonzero(kind < 6)[0]
    n[face, kind[face] // 2] = np.where(kind[face] % 2 == 1, -1.0, 1.0)
    head = kind == _HEAD
    n[head] = (p[head] - scene.source) / _HEAD_RADIUS
    body = kind == _BODY
    n[body, :2] = (p[body, :2] - scene.source[:2]) / _BODY_RADIUS
    top = kind == _SHOULDER
    n[top] = (p[top] - _shoulder_centre(scene.source)) / _BODY_RADIUS
    return n


# --------------------------------------------------------------------------- shading


def _surface_albedo(scene: _Scene, kind, p, fp) -> np.ndarray:
    """Textured albedo of the room surfaces, darkened towards and along room edges."""
    albedo = np.empty_like(p)
    albedo[kind >= 6] = _SOURCE_RGB
    to_plane = np.minimum(p, scene.dims - p)
    for k, (material, look) in enumerate(zip(scene.materials, scene.looks)):
        idx = np.nonzero(kind == k)[0]
        if idx.size == 0:
            continue
        ua, va = _UV_AXES[k]
        base, texture = _MATERIALS[material]
        col = texture(base, p[idx, ua], p[idx, va], fp[idx], look)
        # Distance to the nearest room edge = to the nearest of the other four planes.
        edge = np.minimum(to_plane[idx, ua], to_plane[idx, va])
        corner = (1 - 0.3 * np.exp(-edge / 0.3)) * (1 - 0.65 * _band_cov(edge, 0.015, fp[idx]))
        if _SURFACES[k] == "floor":  # soft contact shadow grounds the figure
            r = np.hypot(p[idx, 0] - scene.source[0], p[idx, 1] - scene.source[1])
            corner = corner * (1 - 0.45 * np.exp(-((r / 0.4) ** 2)))
        albedo[idx] = col * corner[:, None]
    return albedo


def _light(scene: _Scene, p: np.ndarray, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Ambient + Lambert from a point light near the ceiling centre, with mild falloffs."""
    L, W, H = scene.dims
    lamp = np.array([L / 2, W / 2, H - min(0.3, 0.2 * H)])
    to_lamp = lamp - p
    dist = np.sqrt(np.einsum("ij,ij->i", to_lamp, to_lamp)) + 1e-9
    lambert = np.clip(np.einsum("ij,ij->i", n, to_lamp) / dist, 0.0, 1.0)
    reach = 0.6 * np.linalg.norm(scene.dims)  # light falls off over the room's own scale
    direct = lambert / (1 + (dist / reach) ** 2)
    fog = 1 / (1 + 0.035 * t)  # distant surfaces darker: a depth cue
    return (0.42 + 0.75 * direct) * fog


def _render(scene: _Scene, dirs: np.ndarray, pix_angle: float, shape: tuple[int, int]):
    t, kind = _trace(scene, dirs)
    p = scene.mic + t[:, None] * dirs
    n = _normals(scene, kind, p)
    cos_in = np.abs(np.einsum("ij,ij->i", n, dirs))
    # Footprint of one pixel on the surface, stretched at grazing angles (capped at 5x).
    fp = np.maximum(t * pix_angle / np.maximum(cos_in, 0.2), 1e-5)
    rgb = _surface_albedo(scene, kind, p, fp) * _light(scene, p, n, t)[:, None]
    fig = kind >= 6
    # The figure is partly self-lit so it stays saturated (findable by colour) in any light.
    rgb[fig] = _SOURCE_RGB * (0.55 + 0.45 * cos_in[fig])[:, None]
    rgb8 = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb8.reshape(*shape, 3), t.astype(np.float32).reshape(shape)


# --------------------------------------------------------------------------- cameras


def _yaw_pitch(mic: np.ndarray, source: np.ndarray) -> tuple[float, float]:
    d = source - mic
    horiz = float(np.hypot(d[0], d[1]))
    # atan2(0, 0) = 0, so a source straight above/below gets yaw 0 instead of NaN.
    return float(np.arctan2(d[1], d[0])), float(np.arctan2(d[2], horiz))


def _camera_basis(yaw: float, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    fwd = np.array([cp * cy, cp * sy, sp])
    # Built from yaw, not cross(fwd, z), so it stays defined when looking straight up/down.
    right = np.array([sy, -cy, 0.0])
    return fwd, right, np.cross(right, fwd)


def render_view(
    dims,
    surfaces,
    mic,
    source,
    width: int = 128,
    height: int = 96,
    fov_deg: float = 90.0,
    tilt_deg: float = 0.0,
    materials=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Perspective view from the microphone position towards the source.

    dims: (L, W, H) metres; surfaces: dict surface-name -> material class (one of
    MATERIAL_CLASSES); mic, source: (x, y, z). Returns rgb (height, width, 3) uint8 and depth
    (height, width) float32 = Euclidean distance in metres from the camera to the hit point.
    ``fov_deg`` is the horizontal field of view; pixels are square. ``tilt_deg`` pitches the
    camera up from the source (less than half the vertical field of view, so it stays in frame).
    ``materials``: optional dict surface-name -> the pyroomacoustics material of its class that
    the acoustics used; each is drawn with its own look (without it, every surface of a class
    looks alike).
    """
    scene = _build_scene(dims, surfaces, mic, source, materials)
    _check_image(width, height)
    if not 0 < float(fov_deg) < 180:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg!r}")
    step = 2 * np.tan(np.radians(float(fov_deg)) / 2) / width  # image-plane size of a pixel
    half_vfov = np.degrees(np.arctan(step * height / 2))
    if not abs(float(tilt_deg)) < half_vfov:
        raise ValueError(
            f"tilt_deg must be within +-{half_vfov:.1f} (half the vertical field of view) so the "
            f"source stays in the picture, got {tilt_deg!r}"
        )
    yaw, pitch = _yaw_pitch(scene.mic, scene.source)
    pitch = float(np.clip(pitch + np.radians(float(tilt_deg)), -np.pi / 2, np.pi / 2))
    fwd, right, up = _camera_basis(yaw, pitch)
    xs = (np.arange(width) + 0.5 - width / 2) * step
    ys = (height / 2 - np.arange(height) - 0.5) * step
    dirs = fwd + xs[None, :, None] * right + ys[:, None, None] * up
    dirs = dirs.reshape(-1, 3)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return _render(scene, dirs, step, (height, width))


def render_panorama(
    dims, surfaces, mic, source, width: int = 256, height: int = 128, materials=None
) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular 360x180 panorama centred on the mic, the source direction at the image
    centre column. Same outputs.

    Rows go from straight up (top) to straight down (bottom), the horizon in the middle; azimuth
    decreases to the right so the image is not mirrored when seen from inside the room.
    """
    scene = _build_scene(dims, surfaces, mic, source, materials)
    _check_image(width, height)
    yaw, _ = _yaw_pitch(scene.mic, scene.source)
    az = yaw - (np.arange(width) + 0.5 - width / 2) * (2 * np.pi / width)
    el = np.pi / 2 - (np.arange(height) + 0.5) * (np.pi / height)
    ce = np.cos(el)[:, None]
    dirs = np.stack(
        np.broadcast_arrays(ce * np.cos(az), ce * np.sin(az), np.sin(el)[:, None]), axis=-1
    ).reshape(-1, 3)
    return _render(scene, dirs, 2 * np.pi / width, (height, width))
