"""benchmarks/oracle_room.py: the true room replaces the head's reading, band by band."""

import sys

import numpy as np
import torch
from conftest import ROOT

from mvsd import acoustics as ac
from mvsd.models.room import Room

sys.path.insert(0, str(ROOT / "benchmarks"))
from oracle_room import true_room_fn  # noqa: E402


def head_room() -> Room:
    k = len(ac.BANDS)
    return Room(torch.full((1, k), 0.7), torch.tensor([2.0]), torch.zeros(1, k), torch.zeros(1))


def test_measured_bands_and_drr_replace_the_heads_and_unmeasured_bands_keep_it():
    t60 = np.array([1.5, np.nan, 0.9, 0.8, 0.6, 0.4])
    room = true_room_fn(t60, -3.0)(head_room())
    assert room.t60.shape == (1, len(ac.BANDS))
    np.testing.assert_allclose(room.t60[0].numpy(), [1.5, 0.7, 0.9, 0.8, 0.6, 0.4], rtol=1e-6)
    assert float(room.drr_db[0]) == -3.0


def test_out_of_range_truth_is_clamped_and_a_missing_drr_keeps_the_heads():
    t60 = np.array([20.0, 0.01, 1.0, 1.0, 1.0, 1.0])
    room = true_room_fn(t60, float("nan"))(head_room())
    np.testing.assert_allclose(room.t60[0, :2].numpy(), [ac.T60_RANGE[1], ac.T60_RANGE[0]], rtol=1e-6)
    assert float(room.drr_db[0]) == 2.0
