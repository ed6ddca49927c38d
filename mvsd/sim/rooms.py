"""Shoebox rooms, their impulse responses (pyroomacoustics) and acoustic measurements.

Most rooms are drawn from a *room type* (office, classroom, living room, bathroom, corridor,
studio, garage, church, hall) so that what an image shows — size, shape, the material class of
each surface — determines the acoustics the way it does in real buildings. Nine templates alone
teach a model the templates (a CNN trained on them fails on rooms of other shapes and material
mixes), so a share of rooms is *free-form* (every dimension anywhere in the global ranges, every
surface any class its group takes in any type) and typed rooms now and then borrow a surface's
material from another type. Each material class maps to measured absorption data from
pyroomacoustics' materials database (frequency dependent, octave bands), and to a scattering
coefficient.

RIRs are hybrid: image sources up to ``rir.ism_order`` for the exact early reflections, ray tracing
for the late tail (pure ISM would need orders in the hundreds for a 1.5 s tail; measured: the
hybrid takes ~0.3 s per RIR whatever the room).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyroomacoustics as pra

from mvsd.acoustics import measure_drr, measure_rt60  # noqa: F401  (re-exported: the simulator's measurements)
from mvsd.audio_io import SAMPLE_RATE
from mvsd.config import RirConfig, RoomRanges
from mvsd.sim import fast_rt

SURFACES = ("west", "east", "south", "north", "floor", "ceiling")
ALIGNED_DIRECT = 40  # sample index of the direct sound in an aligned RIR (2.5 ms, the fractional-delay filter's half-length)

# material class -> (pyroomacoustics absorption names, scattering coefficient). The renderer draws
# each class with its own colour and texture, so the picture tells the class.
MATERIALS: dict[str, tuple[tuple[str, ...], float]] = {
    "plaster": (("plasterboard", "gypsum_board", "rough_lime_wash"), 0.10),
    "brick": (("brickwork", "smooth_brickwork_flush_pointing", "brick_wall_rough"), 0.30),
    "concrete": (("rough_concrete", "unpainted_concrete", "hard_surface"), 0.20),
    "wood": (("wooden_lining", "wood_16mm", "plywood_thin"), 0.15),
    "glass": (("glass_window", "double_glazing_30mm", "glass_3mm"), 0.05),
    "curtain": (("curtains_velvet", "curtains_cotton_0.5", "curtains_fabric_folded"), 0.50),
    "carpet": (("carpet_tufted_9.5mm", "carpet_soft_10mm", "carpet_hairy"), 0.40),
    "tile": (("ceramic_tiles",), 0.05),
    "marble": (("marble_floor", "limestone_wall"), 0.05),
    "linoleum": (("linoleum_on_concrete",), 0.10),
    "acoustic_panel": (("panel_fabric_covered_8pcf", "rockwool_50mm_80kgm3", "fibre_absorber_2"), 0.60),
    "acoustic_ceiling": (("ceiling_fibre_absorber", "ceiling_fissured_tile", "ceiling_melamine_foam"), 0.40),
}


@dataclass(frozen=True)
class RoomType:
    """Dimension ranges (m) and material class choices per surface group."""

    length: tuple[float, float]
    width: tuple[float, float]
    height: tuple[float, float]
    walls: tuple[str, ...]
    floor: tuple[str, ...]
    ceiling: tuple[str, ...]
    weight: float = 1.0  # how often this type is drawn, relative to the others


ROOM_TYPES: dict[str, RoomType] = {
    "office": RoomType(
        (3, 7),
        (2.5, 5),
        (2.4, 3.0),
        ("plaster", "glass", "wood", "acoustic_panel"),
        ("carpet", "linoleum"),
        ("acoustic_ceiling", "plaster"),
        3,
    ),
    "classroom": RoomType(
        (7, 11),
        (6, 9),
        (2.8, 3.5),
        ("plaster", "glass", "brick"),
        ("linoleum", "wood", "tile"),
        ("acoustic_ceiling", "plaster"),
        2,
    ),
    "living_room": RoomType(
        (4, 8),
        (3.5, 6),
        (2.4, 3.0),
        ("plaster", "curtain", "wood", "brick"),
        ("carpet", "wood"),
        ("plaster",),
        3,
    ),
    "bathroom": RoomType(
        (2.5, 4),
        (2.5, 3.5),
        (2.4, 2.8),
        ("tile", "glass", "plaster"),
        ("tile", "marble"),
        ("plaster", "tile"),
    ),
    "corridor": RoomType(
        (8, 24),
        (2.5, 3.5),
        (2.5, 3.5),
        ("plaster", "concrete", "glass"),
        ("linoleum", "tile", "concrete"),
        ("plaster", "acoustic_ceiling", "concrete"),
    ),
    "studio": RoomType(
        (4, 9),
        (3.5, 7),
        (2.6, 4.0),
        ("acoustic_panel", "curtain", "wood"),
        ("carpet", "wood"),
        ("acoustic_ceiling",),
        2,
    ),
    "garage": RoomType((5, 9), (3, 7), (2.4, 3.2), ("concrete", "brick"), ("concrete",), ("concrete",)),
    "church": RoomType(
        (14, 24),
        (8, 18),
        (6, 9),
        ("brick", "marble", "concrete", "glass"),
        ("marble", "tile", "wood"),
        ("wood", "plaster", "concrete"),
    ),
    "hall": RoomType(
        (12, 24),
        (10, 18),
        (5, 9),
        ("wood", "plaster", "curtain", "acoustic_panel", "concrete"),
        ("wood", "carpet", "linoleum"),
        ("acoustic_ceiling", "wood", "plaster"),
        2,
    ),
}


@dataclass(frozen=True)
class Room:
    room_id: str
    room_type: str
    dims: tuple[float, float, float]  # (L, W, H) metres along x, y, z
    surfaces: dict[str, str]  # surface -> material class (what the image shows)
    materials: dict[str, str]  # surface -> pyroomacoustics material name (what the RIR uses)


@dataclass(frozen=True)
class View:
    """A (microphone, source) placement in a room: one RIR and one image."""

    view_id: str
    room: Room
    mic: tuple[float, float, float]
    source: tuple[float, float, float]


FREEFORM = "freeform"  # room_type of rooms drawn from no template


def _group(surface: str) -> str:
    return surface if surface in ("floor", "ceiling") else "walls"


# Surface group -> every material class some room type uses there: what free-form rooms draw from
# and what a swapped surface in a typed room draws from (no carpeted ceilings, no glass floors).
GROUP_CLASSES: dict[str, tuple[str, ...]] = {
    g: tuple(sorted({c for t in ROOM_TYPES.values() for c in getattr(t, g)}))
    for g in ("walls", "floor", "ceiling")
}


def _clip_range(r: tuple[float, float], limit: tuple[float, float]) -> tuple[float, float]:
    lo, hi = max(r[0], limit[0]), min(r[1], limit[1])
    return (lo, hi) if lo <= hi else (limit[0], limit[1])


def _log_uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    """Log-uniform in [lo, hi]: as many 3-6 m rooms as 12-24 m ones, not mostly big ones."""
    return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1]))))


def sample_room(rng: np.random.Generator, room_id: str, ranges: RoomRanges) -> Room:
    """Draw a room: free-form (``ranges.freeform_share`` of rooms) or of a weighted room type.

    Free-form: each dimension log-uniform in the global ranges, independently (long and narrow,
    high ceilings in small rooms...), each surface any class of its group (``GROUP_CLASSES``).
    Typed: dimensions uniform in the type's ranges (clamped to the global ones), each surface one
    of the type's classes, or with probability ``ranges.material_swap`` one of the group's classes
    the type never uses (a church with carpet, an office with a tiled floor).
    """
    limits = (ranges.length, ranges.width, ranges.height)
    swap = np.zeros(len(SURFACES), dtype=bool)
    if rng.random() < ranges.freeform_share:
        type_name = FREEFORM
        dims = tuple(round(_log_uniform(rng, lim), 2) for lim in limits)
        own = GROUP_CLASSES
    else:
        names = sorted(ROOM_TYPES)
        weights = np.array([ROOM_TYPES[n].weight for n in names])
        type_name = str(rng.choice(names, p=weights / weights.sum()))
        t = ROOM_TYPES[type_name]
        dims = tuple(
            round(float(rng.uniform(*_clip_range(r, lim))), 2)
            for r, lim in zip((t.length, t.width, t.height), limits)
        )
        own = {"walls": t.walls, "floor": t.floor, "ceiling": t.ceiling}
        swap = rng.random(len(SURFACES)) < ranges.material_swap
    surfaces = {}
    for s, swapped in zip(SURFACES, swap):
        g = _group(s)
        others = tuple(c for c in GROUP_CLASSES[g] if c not in own[g])
        surfaces[s] = str(rng.choice(others if swapped and others else own[g]))
    materials = {s: str(rng.choice(MATERIALS[c][0])) for s, c in surfaces.items()}
    return Room(room_id, type_name, dims, surfaces, materials)


def sample_view(rng: np.random.Generator, room: Room, view_id: str, ranges: RoomRanges) -> View:
    """A (mic, source) placement: the mic at a height in ``ranges.mic_height`` (a table, an ear,
    a wall-mounted camera), the talker's mouth seated (``seated_share``) or standing; the source
    within ``near_distance`` of the mic in ``near_share`` of views, beyond it in the others
    (where the room is big enough; else anywhere). Always ``min_source_distance`` apart and
    ``min_wall_distance`` from every surface.
    """
    L, W, H = room.dims
    m, d_min, d_near = ranges.min_wall_distance, ranges.min_source_distance, ranges.near_distance
    mouth = ranges.seated_height if rng.random() < ranges.seated_share else ranges.standing_height
    band = (d_min, d_near) if rng.random() < ranges.near_share else (d_near, np.inf)
    z_mic, z_src = (round(float(np.clip(rng.uniform(*r), m, H - m)), 3) for r in (ranges.mic_height, mouth))

    def point(z: float) -> tuple[float, float, float]:
        return (round(float(rng.uniform(m, L - m)), 3), round(float(rng.uniform(m, W - m)), 3), z)

    for attempt in range(400):
        if attempt == 200:  # the room has (almost) no placements in this band: take any distance
            band = (d_min, np.inf)
        mic, src = point(z_mic), point(z_src)
        if band[0] <= np.linalg.norm(np.subtract(mic, src)) < band[1]:
            return View(view_id, room, mic, src)
    raise ValueError(f"room {room.room_id} {room.dims} is too small to place source and mic apart")


def simulate_rir(view: View, cfg: RirConfig, seed: int = 0) -> np.ndarray:
    """Impulse response from source to mic, ``(L,)`` float32 at 16 kHz, at most ``cfg.max_seconds``.

    Ray tracing draws random rays: ``seed`` seeds pyroomacoustics' generators (numpy's and its
    C++ one) so the same view and seed give the same RIR, bit for bit.
    """
    pra.random.seed(seed)
    room = view.room
    materials = {s: pra.Material(room.materials[s], MATERIALS[room.surfaces[s]][1]) for s in SURFACES}
    shoebox = pra.ShoeBox(
        list(room.dims),
        fs=SAMPLE_RATE,
        materials=materials,
        max_order=cfg.ism_order,
        air_absorption=cfg.air_absorption,
        ray_tracing=cfg.ray_tracing,
        use_rand_ism=False,
    )
    if cfg.ray_tracing:
        shoebox.set_ray_tracing(
            n_rays=cfg.n_rays,
            receiver_radius=cfg.receiver_radius,
            energy_thres=1e-7,
            time_thres=cfg.max_seconds,
        )
    shoebox.add_source(list(view.source))
    shoebox.add_microphone(np.array(view.mic)[:, None])
    with fast_rt.installed():  # the same RIR, to the bit, in about half the time
        shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], dtype=np.float32)
    if cfg.align_direct:
        rir = rir[direct_index(view) - ALIGNED_DIRECT :]
    rir = rir[: int(cfg.max_seconds * SAMPLE_RATE)].copy()
    fade = min(len(rir), int(0.01 * SAMPLE_RATE))
    rir[len(rir) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return rir


def direct_index(view: View, fs: int = SAMPLE_RATE) -> int:
    """Sample index of the direct sound in pyroomacoustics' raw RIR: time of flight plus the
    half-length of its fractional-delay filter. (With ``rir.align_direct`` it is moved to
    ``ALIGNED_DIRECT``.)"""
    d = float(np.linalg.norm(np.subtract(view.mic, view.source)))
    return round(d / pra.constants.get("c") * fs) + pra.constants.get("frac_delay_length") // 2
