"""Vectorised stand-ins for two pure-Python loops in pyroomacoustics' ray-tracing tail.

``pyroomacoustics.simulation.rt`` builds the late part of a hybrid RIR from a Poisson sequence of
signed deltas (``poisson_sequence``: one ``rng.uniform()`` and one append per delta, ~20,000 for a
2 s tail) placed one by one into a buffer (``directional_sequence``: a Python loop over the
deltas). Together they took half of a SimRooms view's simulation (~100 of ~195 ms; the C++ ray
tracer ~50 ms). The versions here draw the same random numbers in the same order, do the same
floating-point operations in the same order (a running sum is a cumulative sum; repeated indices
accumulate in order with ``np.add.at``) and so give the same RIR to the bit — tested against
pyroomacoustics' own functions in tests/test_fast_rt.py.

:func:`installed` swaps them in for the duration of a ``with`` block, only for the
pyroomacoustics versions they were checked against (:data:`CHECKED_VERSIONS`); with any other
version pyroomacoustics' own functions run, slower and just as right.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pyroomacoustics as pra
from pyroomacoustics import random as pra_random
from pyroomacoustics.simulation import rt

CHECKED_VERSIONS = ("0.10.1",)


def poisson_sequence(volume, duration, c, max_rate=10000, t0=None):
    """``rt.poisson_sequence``: the arrival times of a Poisson process whose rate grows as
    ``4 pi c^3 t^2 / V`` up to ``max_rate`` (Kuttruff's reflection density), from ``t0`` until
    one lies past ``t0 + duration``."""
    rng = pra_random.get_rng()
    fpcv = 4 * np.pi * c**3 / volume
    if t0 is None:
        t0 = ((2 * np.log(2)) / fpcv) ** (1.0 / 3.0)
    end = t0 + duration
    times = [t0]
    # While the rate still grows (a few hundred deltas), step by step as pyroomacoustics does.
    while times[-1] < end:
        mu = np.minimum(fpcv * (t0 + times[-1]) ** 2, max_rate)
        if mu >= max_rate:
            break
        z = rng.uniform()
        times.append(times[-1] + np.log(1 / z) / mu)
    if times[-1] < end:
        # At the cap the intervals are i.i.d.: draw them at once, keep them up to the first time
        # past the end, and leave the generator exactly where the loop would have.
        rate = np.minimum(fpcv * (t0 + times[-1]) ** 2, max_rate)
        state = rng.bit_generator.state
        n = int((end - times[-1]) * float(rate) * 1.25) + 64
        while True:
            z = rng.uniform(size=n)
            run = np.cumsum(np.concatenate(([times[-1]], np.log(1 / z) / rate)))[1:]
            past = np.flatnonzero(run >= end)
            if past.size:
                break
            rng.bit_generator.state = state
            n *= 2
        k = int(past[0]) + 1
        rng.bit_generator.state = state
        rng.uniform(size=k)
        times.extend(run[:k])
    return t0, np.array(times)


def directional_sequence(t0, times, response, hist, hist_bin_size, fs):
    """``rt.directional_sequence`` with its per-delta loop replaced by one ``np.add.at``."""
    rng = pra_random.get_rng()
    seq_bp = rt.binary_sequence(times, fs)
    seq_power = rt.seq_rolling_power(seq_bp, int(hist_bin_size * fs), filter_length_mult=2)
    nonzero = seq_power > 1e-10
    seq_power_norm = np.where(nonzero, 1.0 / np.where(nonzero, seq_power, 1.0), 0.0)
    indices = (times * fs).astype(np.int64)
    bins = np.floor((times - t0) / hist_bin_size).astype(np.int64)
    bins = np.minimum(bins, hist.shape[-1] - 1)
    cumul_hist = np.cumsum(hist, axis=0)
    cumul_uniform = np.cumsum(np.ones((cumul_hist.shape[0], 1)), axis=0)
    mask = cumul_hist[[-1], :] > 1e-10
    denom = np.where(mask, cumul_hist[[-1], :], cumul_uniform[[-1], :])
    cdf = np.where(mask, cumul_hist, cumul_uniform) / denom
    cdf_per_delta = cdf[:, bins]
    z = rng.uniform(size=bins.shape[0])
    r_ind = np.sum(z[None, :] > cdf_per_delta, axis=0)
    chosen_response = response[r_ind, :]
    signs = rng.choice([1, -1], size=len(indices))
    n_taps = response.shape[1]
    seq = np.zeros(indices[-1] + n_taps + 1)
    # The loop did seq[i:i+n] += sign * taps * sqrt(norm[i]) delta by delta: the same products,
    # added in the same order (delta-major) where deltas share a sample.
    values = signs[:, None] * chosen_response * np.sqrt(seq_power_norm[indices])[:, None]
    where = indices[:, None] + np.arange(n_taps)[None, :]
    np.add.at(seq, where.ravel(), values.ravel())
    return seq


@contextlib.contextmanager
def installed() -> Iterator[bool]:
    """Within the block, pyroomacoustics' ray-tracing tail uses the functions above (yields
    whether it does: only for :data:`CHECKED_VERSIONS`)."""
    if pra.__version__ not in CHECKED_VERSIONS:
        yield False
        return
    saved = rt.poisson_sequence, rt.directional_sequence
    rt.poisson_sequence, rt.directional_sequence = poisson_sequence, directional_sequence
    try:
        yield True
    finally:
        rt.poisson_sequence, rt.directional_sequence = saved
