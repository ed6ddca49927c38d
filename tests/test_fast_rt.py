"""mvsd.sim.fast_rt against pyroomacoustics' own functions: the same numbers, to the bit."""

from __future__ import annotations

import numpy as np
import pyroomacoustics as pra
import pytest
from pyroomacoustics.simulation import rt

from mvsd.config import load_params
from mvsd.sim import fast_rt, rooms
from mvsd.sim.synth import plan_views


def _after(fn, seed: int, *args, **kwargs):
    """``fn``'s result with pyroomacoustics' generator seeded ``seed``, and the generator's next
    draws (so both consumed exactly as many random numbers)."""
    pra.random.seed(seed)
    out = fn(*args, **kwargs)
    return out, pra.random.get_rng().uniform(size=4)


@pytest.mark.parametrize(("volume", "duration"), [(30.0, 0.8), (400.0, 2.0), (6000.0, 1.5)])
def test_poisson_sequence_is_pyroomacoustics(volume, duration):
    (t0_a, a), next_a = _after(rt.poisson_sequence, 7, volume, duration, 343.0)
    (t0_b, b), next_b = _after(fast_rt.poisson_sequence, 7, volume, duration, 343.0)
    assert t0_a == t0_b
    assert a.shape == b.shape and np.array_equal(a, b)
    assert a[-1] >= t0_a + duration > a[-2]  # ends at the first time past the end, as the loop
    assert np.array_equal(next_a, next_b)


@pytest.mark.parametrize("n_taps", [1, 5])
def test_directional_sequence_is_pyroomacoustics(n_taps):
    pra.random.seed(3)
    t0, times = rt.poisson_sequence(200.0, 0.5, 343.0)
    gen = np.random.default_rng(0)
    response = gen.standard_normal((3, n_taps))
    hist = gen.random((3, 40))
    hist[:, 30:] = 0.0  # bins with no energy: the uniform fallback of the direction CDF
    a, next_a = _after(rt.directional_sequence, 11, t0, times, response, hist, 0.004, 16000)
    b, next_b = _after(fast_rt.directional_sequence, 11, t0, times, response, hist, 0.004, 16000)
    assert np.any(np.diff((times * 16000).astype(int)) == 0)  # deltas sharing a sample are covered
    assert a.shape == b.shape and np.array_equal(a, b)
    assert np.array_equal(next_a, next_b)


def test_simulated_rirs_are_unchanged_and_the_patch_is_undone(monkeypatch):
    params = load_params()
    views = plan_views(params)[:3]
    fast = [rooms.simulate_rir(v, params.simrooms.rir, seed=i) for i, v in enumerate(views)]
    assert rt.poisson_sequence is not fast_rt.poisson_sequence  # restored after each simulation
    monkeypatch.setattr(fast_rt, "CHECKED_VERSIONS", ())  # pyroomacoustics' own loops
    with fast_rt.installed() as active:
        assert not active and rt.directional_sequence is not fast_rt.directional_sequence
    slow = [rooms.simulate_rir(v, params.simrooms.rir, seed=i) for i, v in enumerate(views)]
    for a, b in zip(fast, slow):
        assert a.shape == b.shape and np.array_equal(a, b)
