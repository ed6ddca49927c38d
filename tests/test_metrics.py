"""Metrics against closed forms, deconvolution RT60 against known responses, the blind estimator."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.signal import fftconvolve

from mvsd.audio_io import SAMPLE_RATE, rms_normalize
from mvsd.config import RirConfig
from mvsd.eval import metrics as m
from mvsd.eval.rt60 import (
    Rt60Config,
    blind_rt60_error,
    estimate_rt60,
    fit_rt60_estimator,
    load_rt60_estimator,
    save_rt60_estimator,
)
from mvsd.sim import rooms
from mvsd.sim.rooms import MATERIALS, SURFACES, Room, View, measure_rt60
from mvsd.sim.speech import make_speakers, synthesize

FS = SAMPLE_RATE
MIC, SRC = (1.5, 1.2, 1.4), (3.0, 2.0, 1.6)


def exp_rir(t60: float, seconds: float, seed: int = 0, delay: int = 40) -> np.ndarray:
    """White noise whose energy falls 60 dB in ``t60`` s, after a unit direct impulse at ``delay``."""
    n = int(seconds * FS)
    t = np.arange(n) / FS
    h = np.random.default_rng(seed).standard_normal(n) * 10 ** (-3 * t / t60) * 0.3
    h[:delay] = 0.0
    h[delay] = 1.0
    return h


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 3.5 s of espeak-ng speech at 16 kHz."""
    spk = make_speakers(1, seed=3)[0]
    x = synthesize("The quiet fox jumps over seven lazy dogs near the river bank today.", spk)
    return rms_normalize(np.tile(x, 2)[: int(3.5 * FS)])


def office(dims=(6.0, 4.5, 2.8)) -> Room:
    """Plaster walls, carpet, an absorbing ceiling: RT60 about 0.7 s."""
    classes = {**dict.fromkeys(SURFACES, "plaster"), "floor": "carpet", "ceiling": "acoustic_ceiling"}
    return Room("r", "test", dims, classes, {s: MATERIALS[c][0][0] for s, c in classes.items()})


@pytest.fixture(scope="module")
def room_rir() -> np.ndarray:
    view = View("v", office(), MIC, SRC)
    return rooms.simulate_rir(view, RirConfig(ism_order=3, n_rays=1000, max_seconds=1.5))


def test_si_sdr_scale_invariant_and_closed_form():
    x = np.random.default_rng(0).standard_normal(FS)
    assert m.si_sdr(x, x) > 150
    assert m.si_sdr(x, 0.3 * x) > 150
    noise = np.random.default_rng(1).standard_normal(FS)
    noise -= noise.mean()
    noise -= np.dot(noise, x - x.mean()) / np.dot(x - x.mean(), x - x.mean()) * (x - x.mean())  # orthogonal
    noise *= np.linalg.norm(x - x.mean()) / np.linalg.norm(noise) * 0.1  # -20 dB
    assert m.si_sdr(x, x + noise) == pytest.approx(20.0, abs=1e-6)
    y = x + noise
    assert m.si_sdr(x, 2.5 * y + 0.7) == pytest.approx(m.si_sdr(x, y), abs=1e-9)  # scale, offset
    assert m.si_sdr(-4.0 * x, y) == pytest.approx(m.si_sdr(x, y), abs=1e-9)  # the reference's scale


def test_stft_distance_zero_for_identical_and_grows_with_noise(speech):
    rng = np.random.default_rng(0)
    assert m.stft_distance(speech, speech) == 0.0
    assert m.log_stft_distance(speech, speech) == 0.0
    d = [m.stft_distance(speech + a * rng.standard_normal(len(speech)), speech) for a in (1e-3, 1e-2, 1e-1)]
    ld = [
        m.log_stft_distance(speech + a * rng.standard_normal(len(speech)), speech) for a in (1e-3, 1e-2, 1e-1)
    ]
    assert 0 < d[0] < d[1] < d[2] and 0 < ld[0] < ld[1] < ld[2]


def test_stft_distance_is_mean_squared_magnitude_difference():
    # A sinusoid of amplitude a centred in a bin: |S| at that bin is a * sum(window) / 2.
    t = np.arange(FS) / FS
    x = np.sin(2 * np.pi * 1000 * t)  # 1000 Hz = bin 32 of 512 at 16 kHz
    d = m.stft_distance(2 * x, x)  # |S(2x)| - |S(x)| = |S(x)|, so the distance is mean(|S(x)|^2)
    assert d == pytest.approx(float(np.mean(m._magnitude(x).numpy() ** 2)), rel=1e-9)
    peak = float(m._magnitude(x)[32, 20])
    assert peak == pytest.approx(np.hamming(m.WIN + 1)[:-1].sum() / 2, rel=1e-3)


def test_align_delay_recovers_a_known_delay(speech, room_rir):
    delayed = np.concatenate([np.zeros(321), speech[:-321]])
    shifted, lag = m.align_delay(speech, delayed)
    assert lag == 321 and m.si_sdr(speech[:-321], shifted[:-321]) > 100
    assert m.align_delay(speech, -0.5 * speech)[1] == 0  # polarity and scale do not matter
    wet = fftconvolve(speech, room_rir)[: len(speech)]
    direct = rooms.ALIGNED_DIRECT  # simrooms RIRs start 2.5 ms before the direct sound (rir.align_direct)
    assert abs(m.align_delay(speech, wet)[1] - direct) < 40  # the direct sound, give or take 2.5 ms


def test_length_mismatch_is_trimmed_or_refused(speech):
    assert m.stft_distance(speech[:-100], speech) >= 0
    with pytest.raises(ValueError, match="lengths differ"):
        m.si_sdr(speech[: -m.MAX_LENGTH_MISMATCH - 1], speech)


@pytest.mark.parametrize("t60", [0.3, 0.8, 1.5])
def test_schroeder_rt60_of_exponential_decay(t60):
    assert measure_rt60(exp_rir(t60, 2 * t60 + 0.5)) == pytest.approx(t60, rel=0.05)


def test_deconvolve_recovers_full_response():
    dry = np.random.default_rng(2).standard_normal(2 * FS)
    h = exp_rir(0.4, 0.5)
    wet = fftconvolve(dry, h)  # complete: no clip end
    est = m.deconvolve(wet, np.pad(dry, (0, len(wet) - len(dry))), refine=False)[: len(h)]
    assert np.sum((est - h) ** 2) / np.sum(h**2) < 1e-3


@pytest.mark.parametrize("t60", [0.4, 0.9])
def test_rt60_through_deconvolution_of_noise(t60):
    dry = np.random.default_rng(3).standard_normal(3 * FS)
    h = exp_rir(t60, 1.5)
    wet = fftconvolve(dry, h)[: len(dry)]  # cut at the clip end, as the dataset does
    assert m.rt60_deconv(wet, dry) == pytest.approx(measure_rt60(h), rel=0.10)
    assert m.rt60_error_deconv(wet, dry, measure_rt60(h)) < 0.1 * t60


def test_rt60_and_drr_through_deconvolution_of_speech_in_a_simulated_room(speech, room_rir):
    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])  # independent levels, as in data
    truth = measure_rt60(room_rir)
    assert m.rt60_deconv(wet, speech) == pytest.approx(truth, rel=0.10)
    assert m.drr_error(wet, speech, rooms.measure_drr(room_rir)) < 1.0


def test_pesq_stoi_estoi(speech):
    noisy = speech + 0.02 * np.random.default_rng(4).standard_normal(len(speech))
    assert m.pesq_wb(speech, speech) > 4.4
    assert 1.0 < m.pesq_wb(speech, noisy) < m.pesq_wb(speech, speech)
    assert m.stoi(speech, speech) == pytest.approx(1.0, abs=1e-6)
    assert m.estoi(speech, noisy) < m.estoi(speech, speech)
    for ref, deg in ((np.zeros(FS), np.zeros(FS)), (speech, np.zeros(len(speech)))):
        with pytest.warns(UserWarning, match="no utterances"):
            assert np.isnan(m.pesq_wb(ref, deg))
    with pytest.warns(UserWarning, match="silent"):
        assert np.isnan(m.si_sdr(speech, np.zeros(len(speech))))
    assert np.isnan(m.drr_deconv(np.zeros(len(speech)), speech))
    assert np.isnan(m.rt60_deconv(np.zeros(len(speech)), speech))


def test_registry_scores_both_families(speech, room_rir):
    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])
    ref = m.Reference(target=wet, dry=speech, rt60=measure_rt60(room_rir), drr=rooms.measure_drr(room_rir))
    vam = m.score(wet, ref, "vam")
    assert set(vam) == {n for n, x in m.METRICS.items() if x.family == "vam"}
    assert vam["stft_distance"] == 0.0 and vam["rt60_error"] < 0.1
    der = m.score(wet, m.Reference(target=speech), "dereverb")
    assert all(np.isfinite(v) for v in der.values())
    for fn, direction, family in m.METRICS.values():
        assert callable(fn) and direction in ("lower", "higher") and family in m.FAMILIES
    with pytest.raises(ValueError, match="needs Reference.dry"):
        m.METRICS["rt60_error"].fn(wet, m.Reference(target=wet))
    with pytest.raises(ValueError, match="not one of"):
        m.score(wet, ref, "vamm")


def test_stoi_and_estoi_equal_pystoi(speech, room_rir):
    """The one-pass STOI front end gives pystoi's values, to the bit (ESTOI with the same draws of
    pystoi's EPS-sized noise), on reverberant, noisy, delayed and too-short inputs."""
    from pystoi import stoi as pystoi

    rng = np.random.default_rng(7)
    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])
    cases = [
        (speech, wet),
        (speech, speech + 0.05 * rng.standard_normal(len(speech))),
        (wet, np.roll(speech, 300)),
        (speech, speech),
    ]
    for ref, deg in cases:
        state = np.random.get_state()
        want = (pystoi(ref, deg, FS), pystoi(ref, deg, FS, extended=True))
        np.random.set_state(state)
        assert m.stoi_and_estoi(ref, deg) == want
        assert m.stoi(ref, deg) == want[0]
    with pytest.warns(RuntimeWarning, match="Not enough STFT frames"):  # pystoi answers for short clips
        assert m.stoi_and_estoi(speech[:3000], wet[:3000]) == (1e-5, 1e-5)


def test_score_equals_each_metric_on_its_own(speech, room_rir):
    """score() shares work between metrics; every value must still be the metric's own."""
    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])
    rng = np.random.default_rng(3)
    ref = m.Reference(target=wet, dry=speech, rt60=measure_rt60(room_rir), drr=rooms.measure_drr(room_rir))
    for pred in (wet, 0.5 * wet + 0.01 * rng.standard_normal(len(wet)), np.roll(wet, 900), np.zeros(len(wet))):
        got = m.score(pred, ref, "vam")
        want = {n: x.fn(pred, ref) for n, x in m.METRICS.items() if x.family == "vam"}
        assert list(got) == list(want)
        np.testing.assert_equal(got, want)  # NaN == NaN (a silent output has no RT60)
    dry = m.Reference(target=speech)
    for pred in (wet, np.roll(speech, 400) + 0.02 * rng.standard_normal(len(speech))):
        np.random.seed(11)
        got = m.score(pred, dry, "dereverb")
        np.random.seed(11)
        want = {n: x.fn(pred, dry) for n, x in m.METRICS.items() if x.family == "dereverb"}
        assert list(got) == list(want) and got == want
    with pytest.raises(ValueError, match="needs Reference.dry"):
        m.score(wet, m.Reference(target=wet), "vam")


def test_pesq_helper_gives_pesq_wb_values_and_its_warnings_and_errors(speech, room_rir):
    """The helper process's PESQ equals pesq_wb's to the bit; what it cannot score (speechless,
    silent, lengths too different) comes back as pesq_wb's own NaN + warning or error."""
    from mvsd.eval.pesq_helper import PesqHelper

    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])
    noisy = speech + 0.03 * np.random.default_rng(5).standard_normal(len(speech))
    pairs = [(speech, wet), (speech, noisy), (wet, speech), (speech, speech)]
    with PesqHelper() as helper:
        assert helper._proc is not None and helper._alive, "the helper process started"
        jobs = [helper.submit(r, d) for r, d in pairs]
        silent = helper.submit(speech, np.zeros(len(speech)))
        mismatch = helper.submit(speech, speech[: len(speech) // 2])
        assert [helper.result(j) for j in jobs] == [m.pesq_wb(r, d) for r, d in pairs]
        with pytest.warns(UserWarning, match="no utterances"):
            assert np.isnan(helper.result(silent))
        with pytest.raises(ValueError, match="lengths differ"):
            helper.result(mismatch)
        proc = helper._proc
    assert proc.returncode == 0, "the helper ends when its input closes"


def test_pesq_helper_that_dies_leaves_the_rest_to_this_process(speech, room_rir, monkeypatch):
    from mvsd.eval import pesq_helper
    from mvsd.eval.pesq_helper import PesqHelper

    said, crashed = [], []
    monkeypatch.setattr(pesq_helper.log, "warning", lambda msg, *a: said.append(msg % a))
    # the writer thread once raised KeyError on a pair this process had already scored itself
    monkeypatch.setattr(threading, "excepthook", crashed.append)

    wet = rms_normalize(fftconvolve(speech, room_rir)[: len(speech)])
    pairs = [(speech, wet * g) for g in (1.0, 0.5, 0.25, 0.125)]
    with PesqHelper() as helper:
        first = helper.submit(*pairs[0])
        assert helper.result(first) == m.pesq_wb(*pairs[0])
        helper._proc.kill()
        helper._proc.wait()
        later = pairs[1:] * 4  # enough for the writer to be still draining its queue
        jobs = [helper.submit(r, d) for r, d in later]
        assert [helper.result(j) for j in jobs] == [m.pesq_wb(r, d) for r, d in later]
        assert not helper._alive
    assert any("PESQ helper process stopped" in x for x in said)  # a death is reported
    assert [(a.thread.name, a.exc_type.__name__) for a in crashed] == []  # threads joined by close()


def test_pesq_helper_left_by_an_error_stops_at_once(speech, monkeypatch):
    """A caller that fails (Ctrl-C, SIGTERM, an error) while pairs are queued does not wait for
    the helper to score them all, and does not call its stop a death."""
    import signal

    from mvsd.eval import pesq_helper
    from mvsd.eval.pesq_helper import PesqHelper

    said = []
    monkeypatch.setattr(pesq_helper.log, "warning", lambda msg, *a: said.append(msg % a))
    with pytest.raises(KeyboardInterrupt), PesqHelper() as helper:
        for _ in range(200):  # about 10 s of PESQ
            helper.submit(speech, speech)
        raise KeyboardInterrupt
    assert helper._proc.returncode == -signal.SIGKILL  # stopped, not left to finish the queue (exit 0)
    assert said == []  # stopped on purpose: not reported as a death


# -- blind RT60 estimator -------------------------------------------------------------------------


def _tiny_set(n: int = 48, seconds: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    t60 = rng.uniform(0.1, 1.0, n)
    dry = rng.standard_normal((n, int(seconds * FS)))
    wet = np.stack(
        [fftconvolve(d, exp_rir(t, 0.6, seed=i))[: len(d)] for i, (d, t) in enumerate(zip(dry, t60))]
    )
    return wet.astype(np.float32), t60


def test_rt60_estimator_loss_falls_and_round_trips(tmp_path):
    x, y = _tiny_set()
    cfg = Rt60Config(width=4, blocks=(1, 1, 1, 1))
    model, losses = fit_rt60_estimator(x, y, cfg, steps=60, batch_size=16, lr=5e-3, seed=0)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    est = estimate_rt60(model, x)
    assert est.shape == (len(y),) and np.all(est > 0)
    assert np.mean(np.abs(est - y)) < np.mean(np.abs(y - y.mean()))  # better than the constant
    path = tmp_path / "rt60.pt"
    save_rt60_estimator(model, path, {"val_mae_s": 0.1, "bad": float("nan")})
    loaded, report = load_rt60_estimator(path)
    assert report == {"val_mae_s": 0.1}
    np.testing.assert_array_equal(estimate_rt60(loaded, x[:5]), est[:5])
    assert estimate_rt60(model, x[0]).shape == (1,)
    assert np.allclose(estimate_rt60(model, [x[0], x[1][:4000]])[0], est[0], rtol=1e-5)
    assert blind_rt60_error(model, x[:3], x[:3]).max() == 0.0
