"""benchmarks/blind_room_labels.py: blind T60 from reverberant sound alone, against known decays."""

import sys

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from blind_room_labels import BANDS, decay_features, fit_blind_t60  # noqa: E402

SR = 16_000


def reverberant(t60: float, rng, seconds: float = 6.0) -> np.ndarray:
    """Noise bursts (200 ms, one a second) through an exponentially decaying noise RIR of the given
    T60, over a noise floor 50 dB down: every burst's end is a free decay of 60 / T60 dB/s."""
    x = np.zeros(int(seconds * SR))
    for start in np.arange(0.2, seconds - 1.0, 1.0):
        i = int(start * SR)
        x[i : i + SR // 5] = rng.standard_normal(SR // 5)
    n = int(min(t60, 2.0) * 1.2 * SR)
    h = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / SR / t60)
    y = np.convolve(x, h)[: len(x)]
    return y + 10 ** (-50 / 20) * y.std() * rng.standard_normal(len(y))


@pytest.mark.parametrize("t60", [0.3, 0.6, 1.2])
def test_the_fastest_decays_are_the_rooms(t60):
    f = decay_features(reverberant(t60, np.random.default_rng(0))).reshape(len(BANDS), 6)
    ratio = (np.exp(f[:, 3]) - 1) / (60 / t60)  # the 97th-percentile decay rate (dB/s) over the truth
    # the envelope's own fluctuation makes some windows fall faster than the room: a bias that only
    # ever reads fast, grows with T60 and is largest in the low bands (fewer cycles per frame); the
    # fit on known rooms takes it out
    assert np.all((ratio > 0.9) & (ratio < 1.6)), ratio
    assert np.median(ratio) == pytest.approx(1.0, abs=0.3)


def test_slower_rooms_decay_slower_in_every_band():
    rng = np.random.default_rng(2)
    fastest = [decay_features(reverberant(t, rng)).reshape(len(BANDS), 6)[:, 3] for t in (0.3, 0.6, 1.2)]
    assert np.all(fastest[0] > fastest[1]) and np.all(fastest[1] > fastest[2])


def test_a_fit_on_known_rooms_reads_new_recordings():
    rng = np.random.default_rng(1)
    train = np.array([0.25, 0.4, 0.6, 0.9, 1.3, 1.8, 0.5, 1.1])
    feats = np.stack([decay_features(reverberant(t, rng)) for t in train])
    predict = fit_blind_t60(feats, np.repeat(train[:, None], 6, 1), lam=1.0)
    new = np.array([0.35, 0.75, 1.5])
    got = predict(np.stack([decay_features(reverberant(t, rng)) for t in new]))
    assert got.shape == (3, 6)
    assert got.mean(1) == pytest.approx(new, rel=0.2)
