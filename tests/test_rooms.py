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
        v = rooms.sample_view(np.random.default_rng(0), r, "v", ranges)
        for p in (v.mic, v.source):
            assert all(
                ranges.min_wall_distance <= x <= d - ranges.min_wall_distance for x, d in zip(p, r.dims)
            )
        assert np.linalg.norm(np.subtract(v.mic, v.source)) >= ranges.min_source_distance


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
