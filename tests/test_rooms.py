"""Room sampling, RIR simulation and the acoustic measurements, against known answers."""

import numpy as np
import pytest

from mvsd.config import RirConfig, RoomRanges
from mvsd.sim import rooms
from mvsd.sim.rooms import MATERIALS, ROOM_TYPES, SURFACES, Room, View

FS = 16_000


def decaying_noise(t60, seconds=1.5, seed=0):
    """White noise under an exponential envelope that falls 60 dB in ``t60`` seconds."""
    t = np.arange(int(seconds * FS)) / FS
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(t.size) * 10 ** (-3 * t / t60)).astype(np.float32)


@pytest.mark.parametrize("t60", [0.3, 0.6, 1.2])
def test_rt60_of_exponential_decay_within_5_percent(t60):
    assert rooms.measure_rt60(decaying_noise(t60, seconds=max(1.0, 1.5 * t60))) == pytest.approx(
        t60, rel=0.05
    )


def test_drr_known_answer():
    h = np.zeros(FS // 2, np.float32)
    h[100] = 1.0  # direct: energy 1
    h[300:] = 0.01  # reverberant tail: energy (8000 - 300) * 1e-4 = 0.77
    assert rooms.measure_drr(h) == pytest.approx(10 * np.log10(1 / 0.77), abs=0.01)
    assert rooms.measure_drr(h, direct=100) == pytest.approx(10 * np.log10(1 / 0.77), abs=0.01)


def test_materials_exist_in_pyroomacoustics_database():
    import pyroomacoustics as pra

    for names, scattering in MATERIALS.values():
        assert 0 <= scattering <= 1
        for n in names:
            pra.Material(n)  # raises on an unknown name
    for t in ROOM_TYPES.values():
        assert set(t.walls + t.floor + t.ceiling) <= set(MATERIALS)


def test_sampled_rooms_are_deterministic_and_within_ranges():
    ranges = RoomRanges()
    a = [rooms.sample_room(np.random.default_rng([1, i]), f"r{i}", ranges) for i in range(30)]
    b = [rooms.sample_room(np.random.default_rng([1, i]), f"r{i}", ranges) for i in range(30)]
    assert a == b
    assert len({r.room_type for r in a}) >= 5
    for r in a:
        for d, (lo, hi) in zip(r.dims, (ranges.length, ranges.width, ranges.height)):
            assert lo <= d <= hi
        assert set(r.surfaces.values()) <= set(MATERIALS)
        assert all(r.materials[s] in MATERIALS[c][0] for s, c in r.surfaces.items())


def _draw_rooms(n, **kw):
    ranges = RoomRanges(**kw)
    return [rooms.sample_room(np.random.default_rng([7, i]), f"r{i}", ranges) for i in range(n)]


def _own_classes(room_type, surface):
    t = ROOM_TYPES[room_type]
    return {"floor": t.floor, "ceiling": t.ceiling}.get(surface, t.walls)


def test_freeform_rooms_occur_at_their_share_and_vary_size_and_materials_apart():
    drawn = _draw_rooms(600)
    free = [r for r in drawn if r.room_type == rooms.FREEFORM]
    assert len(free) / len(drawn) == pytest.approx(RoomRanges().freeform_share, abs=0.05)
    # Materials: each surface any class of its group, not one type's lists ...
    for r in free:
        assert all(c in rooms.GROUP_CLASSES[rooms._group(s)] for s, c in r.surfaces.items())
    walls = {c for r in free for s, c in r.surfaces.items() if rooms._group(s) == "walls"}
    assert walls == set(rooms.GROUP_CLASSES["walls"])
    assert not any(walls <= set(t.walls) for t in ROOM_TYPES.values())
    no_type_makes = [
        r
        for r in free
        if not any(all(c in _own_classes(t, s) for s, c in r.surfaces.items()) for t in ROOM_TYPES)
    ]
    assert len(no_type_makes) > 0.8 * len(free)
    # ... and shapes no type makes: high ceilings over small floors, long narrow plans.
    L, W, H = np.array([r.dims for r in free]).T
    assert np.any((H > 5) & (L * W < 30))
    assert np.any(np.maximum(L, W) / np.minimum(L, W) > 4)
    assert np.corrcoef(np.log(L * W), np.log(H))[0, 1] < 0.2  # height independent of floor area
    assert {r.room_type for r in _draw_rooms(50, freeform_share=1.0)} == {rooms.FREEFORM}
    assert rooms.FREEFORM not in {r.room_type for r in _draw_rooms(50, freeform_share=0.0)}


def test_typed_rooms_swap_materials_across_types_at_their_rate():
    def swapped(drawn):
        flags = [c not in _own_classes(r.room_type, s) for r in drawn for s, c in r.surfaces.items()]
        return np.mean(flags)

    assert swapped(_draw_rooms(200, freeform_share=0.0, material_swap=0.0)) == 0.0
    always = _draw_rooms(200, freeform_share=0.0, material_swap=1.0)
    for r in always:
        for s, c in r.surfaces.items():
            # every surface swapped to a class of its group that the type never uses there,
            # unless the type already uses all of them
            own = _own_classes(r.room_type, s)
            assert c in rooms.GROUP_CLASSES[rooms._group(s)]
            assert c not in own or set(rooms.GROUP_CLASSES[rooms._group(s)]) <= set(own)
    default = _draw_rooms(300, freeform_share=0.0)
    # slightly below material_swap: a type that already uses all of a group's classes cannot swap
    assert 0.5 * RoomRanges().material_swap < swapped(default) <= RoomRanges().material_swap + 0.03
    churches = [r for r in always if r.room_type == "church"]
    assert any(r.surfaces["floor"] == "carpet" for r in churches)


def test_placements_keep_distances_and_vary_heights_and_range():
    ranges = RoomRanges()
    drawn = _draw_rooms(300)
    views = [rooms.sample_view(np.random.default_rng([3, i]), r, "v", ranges) for i, r in enumerate(drawn)]
    again = [rooms.sample_view(np.random.default_rng([3, i]), r, "v", ranges) for i, r in enumerate(drawn)]
    assert views == again
    m = ranges.min_wall_distance
    for v in views:
        for p in (v.mic, v.source):
            assert all(m <= x <= d - m for x, d in zip(p, v.room.dims))
        assert np.linalg.norm(np.subtract(v.mic, v.source)) >= ranges.min_source_distance
        assert ranges.mic_height[0] <= v.mic[2] <= ranges.mic_height[1]
    z = np.array([v.source[2] for v in views])
    seated = (z >= ranges.seated_height[0]) & (z <= ranges.seated_height[1])
    standing = (z >= ranges.standing_height[0]) & (z <= ranges.standing_height[1])
    assert np.all(seated | standing)
    assert seated.mean() == pytest.approx(ranges.seated_share, abs=0.08)
    d = np.array([np.linalg.norm(np.subtract(v.mic, v.source)) for v in views])
    assert (d < ranges.near_distance).mean() == pytest.approx(ranges.near_share, abs=0.08)
    assert d.max() > 8  # far talkers in big rooms


def test_small_room_still_places_talker_and_mic():
    ranges = RoomRanges(near_share=0.0)  # "far" is impossible in 3 x 2.5 m: falls back to any distance
    room = Room(
        "r", "test", (3.0, 2.5, 2.4), {s: "plaster" for s in SURFACES}, {s: "plasterboard" for s in SURFACES}
    )
    for i in range(20):
        v = rooms.sample_view(np.random.default_rng(i), room, "v", ranges)
        assert np.linalg.norm(np.subtract(v.mic, v.source)) >= ranges.min_source_distance


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("simrooms.room.freeform_share=1.5", "freeform_share must be in"),
        ("simrooms.room.material_swap=-0.1", "material_swap must be in"),
        ("simrooms.room.seated_height=[1.3, 1.1]", "seated_height must satisfy"),
        ("simrooms.room.near_distance=0.5", "near_distance"),
    ],
)
def test_bad_room_config_is_an_error(override, match):
    from mvsd.config import load_params
    from mvsd.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        load_params(None, [override])


def _room(material_class, dims=(6.0, 5.0, 3.0)):
    name = MATERIALS[material_class][0][0]
    return Room("r", "test", dims, {s: material_class for s in SURFACES}, {s: name for s in SURFACES})


def test_direct_sound_arrives_at_time_of_flight():
    v = View("v", _room("plaster"), (1.0, 1.0, 1.2), (3.0, 2.5, 1.7))
    rir = rooms.simulate_rir(
        v, RirConfig(ray_tracing=False, ism_order=2, max_seconds=0.5, align_direct=False)
    )
    n = rooms.direct_index(v)
    assert np.argmax(np.abs(rir[: n + 20])) == pytest.approx(n, abs=1)
    aligned = rooms.simulate_rir(v, RirConfig(ray_tracing=False, ism_order=2, max_seconds=0.5))
    assert np.argmax(np.abs(aligned[: rooms.ALIGNED_DIRECT + 20])) == rooms.ALIGNED_DIRECT
    start = n - rooms.ALIGNED_DIRECT
    np.testing.assert_array_equal(aligned[:1000], rir[start : start + 1000])


def test_absorbent_room_is_less_reverberant():
    cfg = RirConfig(n_rays=1000, max_seconds=1.5)
    mic, src = (1.5, 1.5, 1.4), (4.5, 3.0, 1.6)
    hard = rooms.simulate_rir(View("v", _room("tile"), mic, src), cfg)
    soft = rooms.simulate_rir(View("v", _room("acoustic_panel"), mic, src), cfg)
    assert rooms.measure_rt60(soft) < 0.5 * rooms.measure_rt60(hard)
    assert rooms.measure_drr(soft) > rooms.measure_drr(hard) + 3


def test_bigger_room_is_more_reverberant():
    cfg = RirConfig(n_rays=1000, max_seconds=2.0)
    small = rooms.simulate_rir(
        View("v", _room("plaster", (4.0, 3.0, 2.5)), (1.0, 1.0, 1.4), (3.0, 2.0, 1.6)), cfg
    )
    big = rooms.simulate_rir(
        View("v", _room("plaster", (16.0, 12.0, 6.0)), (1.0, 1.0, 1.4), (3.0, 2.0, 1.6)), cfg
    )
    assert rooms.measure_rt60(big) > 1.5 * rooms.measure_rt60(small)


def test_rir_is_bounded_and_deterministic():
    v = View("v", _room("brick"), (1.0, 1.0, 1.2), (3.0, 2.5, 1.7))
    cfg = RirConfig(n_rays=500, max_seconds=0.3)
    a, b = rooms.simulate_rir(v, cfg), rooms.simulate_rir(v, cfg)
    assert a.dtype == np.float32 and len(a) <= 0.3 * FS and np.isfinite(a).all()
    assert abs(a[-1]) < 1e-6  # faded out
    np.testing.assert_array_equal(a, b)
