"""The evaluation's honest comparison rows: the parametric upper bound (oracle_t60), the floor rows
(floor_envelope, floor_expfit), audio-only and oracle late-reverberation suppression (lebart_*),
on real RIRs of a tiny SimRooms build and on speech with RIRs of known T60."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_SIMROOMS
from scipy.signal import fftconvolve

from mvsd import acoustics as ac
from mvsd.audio_io import SAMPLE_RATE
from mvsd.config import load_params
from mvsd.data.sample import Sample
from mvsd.eval import baselines as b
from mvsd.eval.metrics import METRICS, Reference
from mvsd.sim.speech import make_speakers, synthesize
from mvsd.sim.synth import synth

FS = SAMPLE_RATE
NEW = {"vam": ("oracle_t60", "floor_envelope", "floor_expfit"), "dereverb": ("lebart_blind", "lebart_oracle")}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[b.Sample]:
    root = tmp_path_factory.mktemp("rows")
    synth(root / "ds", load_params(None, TINY_SIMROOMS))
    return b.read_samples(root / "ds", ["train", "test_unseen"])


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """3.5 s of espeak speech (two sentences, the pauses of natural speech between words)."""
    spk = make_speakers(1, seed=7)[0]
    x = np.concatenate(
        [
            synthesize("Please bring the red book and the small green box to the kitchen table.", spk),
            synthesize("The quick brown fox jumps over the lazy dog near the river bank.", spk),
        ]
    )
    return x[: int(3.5 * FS)].astype(np.float32)


def exponential_rir(t60: float, drr_db: float = 0.0, seed: int = 0) -> np.ndarray:
    """A unit direct sound at sample 40, then white noise decaying 60 dB in ``t60`` s, scaled to
    ``drr_db`` (as measure_drr counts it)."""
    n = int((1.5 * t60 + 0.1) * FS)
    h = np.random.default_rng(seed).standard_normal(n) * 10 ** (-3 * np.arange(n) / FS / t60)
    w = int(ac.DIRECT_WINDOW_MS * 1e-3 * FS)
    h[: ac.DIRECT_INDEX + w + 1] = 0.0
    h *= np.sqrt(10 ** (-drr_db / 10) / np.sum(h**2))
    h[ac.DIRECT_INDEX] = 1.0
    return h


def test_new_rows_give_finite_audio_of_the_right_length_at_the_level_convention(samples):
    ctx = b.BaselineContext()
    for s in samples[-2:]:
        for family, names in NEW.items():
            for name in names:
                out = b.get_baseline(family, name)(s, ctx)
                assert out.dtype == np.float32 and out.shape == s.clean.shape, (family, name)
                assert np.isfinite(out).all() and np.abs(out).max() > 0, (family, name)
                rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
                assert rms_db == pytest.approx(b.RMS_DB, abs=0.01) or np.abs(out).max() == pytest.approx(
                    10 ** (b.PEAK_DB / 20), rel=1e-3
                )


def test_rows_that_need_a_rir_say_so(samples):
    s = samples[0]
    bare = Sample(s.key, s.split, s.kind, s.source, clean=s.clean, reverb=s.reverb, image=s.image)
    for family, name in [("vam", "oracle_rir"), ("vam", "oracle_t60"), ("vam", "floor_envelope"),
                         ("vam", "floor_expfit"), ("dereverb", "lebart_oracle")]:  # fmt: skip
        with pytest.raises(b.MissingInput, match="has no RIR"):
            b.get_baseline(family, name)(bare, b.BaselineContext())
    assert b.dereverb_lebart_blind(bare, b.BaselineContext()).shape == s.clean.shape  # audio alone


def test_oracle_t60_rir_has_the_true_per_band_t60_and_drr(samples):
    checked = 0
    for s in samples:
        h = np.asarray(s.rir, dtype=np.float64)
        true = ac.band_t60_np(h[ac.onset(h) :])
        rir = b.oracle_t60_rir(h, len(s.clean))
        assert np.isfinite(rir).all() and ac.onset(rir) == ac.onset(h)
        got = ac.band_t60_np(rir[ac.onset(rir) :])
        ok = np.isfinite(true)
        np.testing.assert_array_less(np.abs(got[ok] / true[ok] - 1), 0.15)
        assert ac.measure_drr(rir) == pytest.approx(np.clip(ac.measure_drr(h), *ac.DRR_RANGE), abs=0.1)
        checked += int(ok.sum())
    assert checked >= 3 * len(ac.BANDS)  # most bands of most rooms were measurable


def test_floor_envelope_rir_has_the_true_band_energies_and_another_noise(samples):
    for s in samples:
        h = np.asarray(s.rir, dtype=np.float64)
        rir = b.floor_envelope_rir(h)
        assert rir.shape == h.shape and np.isfinite(rir).all()
        diff_db = 10 * np.log10(b.band_energy(rir) / b.band_energy(h))
        np.testing.assert_array_less(np.abs(diff_db), 1.0)
        cut = ac.onset(h) + int(ac.DIRECT_WINDOW_MS * 1e-3 * FS) + 1
        np.testing.assert_array_equal(rir[:cut], h[:cut])  # the direct part is the true one
        tail, new = h[cut:], rir[cut:]
        assert abs(np.corrcoef(tail, new)[0, 1]) < 0.5  # ... the tail another realisation
        assert not np.array_equal(b.floor_envelope_rir(h, seed=1), rir)


def test_floor_expfit_rir_decays_like_the_true_bands(samples):
    errors = []
    for s in samples:
        h = np.asarray(s.rir, dtype=np.float64)
        rir = b.floor_expfit_rir(h)
        assert rir.shape == h.shape and np.isfinite(rir).all()
        true = ac.band_t60_np(h[ac.onset(h) :])
        got = ac.band_t60_np(rir[ac.onset(rir) :])
        ok = np.isfinite(true) & np.isfinite(got)
        errors += list(np.abs(got[ok] / true[ok] - 1))
        diff_db = 10 * np.log10(b.band_energy(rir) / b.band_energy(h))
        assert np.abs(diff_db).max() < 6.0  # levels are fitted, not imposed: close, not equal
    assert np.median(errors) < 0.15, np.round(errors, 2)


@pytest.mark.parametrize("drr_db", [-5.0, 0.0, 5.0])
def test_blind_t60_of_speech_in_an_exponential_room(speech, drr_db):
    """Measured, not wished: 0.4 s within 35 %; 1.2 s reads short (free decays of a slow room are
    rare in speech and the noisy ones fit steep) but within 50 % and clearly longer than 0.4 s."""
    est = {
        t60: b.blind_t60(fftconvolve(speech, exponential_rir(t60, drr_db))[: len(speech)])
        for t60 in (0.4, 1.2)
    }
    assert est[0.4] == pytest.approx(0.4, rel=0.35), est
    assert est[1.2] == pytest.approx(1.2, rel=0.5), est
    assert est[1.2] > 1.3 * est[0.4], est


def test_blind_t60_edge_cases():
    assert np.isnan(b.blind_t60(np.zeros(FS)))
    assert np.isnan(b.blind_t60(np.ones(100)))  # shorter than a frame
    noise = np.random.default_rng(0).standard_normal(FS)  # no decays: a finite, bounded guess
    assert ac.T60_RANGE[0] <= b.blind_t60(noise) <= ac.T60_RANGE[1]


def test_lebart_suppresses_the_late_reverberation_of_speech(speech):
    rir = exponential_rir(0.8, drr_db=0.0)
    wet = fftconvolve(speech, rir)[: len(speech)].astype(np.float32)
    s = Sample("k", "val", "paired", "t", clean=speech, reverb=wet, rir=rir.astype(np.float32))
    sdr = METRICS["si_sdr"].fn
    ref = Reference(speech)
    before = sdr(b.dereverb_identity(s, b.BaselineContext()), ref)
    oracle = sdr(b.dereverb_lebart_oracle(s, b.BaselineContext()), ref)
    blind = sdr(b.dereverb_lebart_blind(s, b.BaselineContext()), ref)
    assert oracle > before + 1.0 and blind > before + 1.0, (before, oracle, blind)


def test_fill_bands():
    np.testing.assert_allclose(b.fill_bands(np.array([np.nan, 1.0, np.nan, 3.0, np.nan, np.nan])),
                               [1.0, 1.0, 2.0, 3.0, 3.0, 3.0])  # fmt: skip
    np.testing.assert_allclose(b.fill_bands(np.full(6, np.nan), fallback=0.7), 0.7)
    assert b.fill_bands(np.array([0.01, 100.0, 1, 1, 1, 1])).tolist()[:2] == list(ac.T60_RANGE)
