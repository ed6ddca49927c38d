"""Baselines: oracles score as oracles, the mean RIR keeps its tail, retrieval finds the room, WPE helps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from mvsd.audio_io import SAMPLE_RATE, scale_pair
from mvsd.config import RirConfig
from mvsd.data.sample import Sample
from mvsd.eval import baselines as b
from mvsd.eval.metrics import METRICS, Reference, si_sdr, stft_distance
from mvsd.sim import rooms
from mvsd.sim.rooms import MATERIALS, SURFACES, Room, View, measure_rt60
from mvsd.sim.speech import make_speakers, synthesize

FS = SAMPLE_RATE
SIMROOMS = Path(__file__).resolve().parents[1] / "datasets" / "simrooms"


def decaying(t60: float, delay: int, seconds: float = 0.8, seed: int = 0) -> np.ndarray:
    n = int(seconds * FS)
    h = np.random.default_rng(seed).standard_normal(n) * 10 ** (-3 * np.arange(n) / FS / t60) * 0.2
    h[:delay] = 0.0
    h[delay] = 1.0
    return h.astype(np.float32)


def room_image(room: int, view: int) -> tuple[np.ndarray, np.ndarray]:
    """A 24 x 32 'photo' whose colours depend on the room, layout jittered per view; depth by room size."""
    rng = np.random.default_rng(100 * room + view)
    base = np.random.default_rng(room).integers(0, 256, size=(4, 3))
    img = np.zeros((24, 32, 3), np.uint8)
    split = 12 + int(rng.integers(-2, 3))
    img[:split], img[split:] = base[0], base[1]
    img[:, :6], img[:, 26:] = base[2], base[3]
    depth = np.full((24, 32), 2.0 + 3.0 * room, np.float32) + rng.uniform(0, 0.5, (24, 32)).astype(np.float32)
    return img, depth


def make_sample(key: str, room: int, view: int, dry: np.ndarray, rir: np.ndarray) -> Sample:
    clean, reverb = scale_pair(dry, fftconvolve(dry, rir)[: len(dry)].astype(np.float32))
    img, depth = room_image(room, view)
    return Sample(key, "train", "paired", "test", room_id=f"room{room}", clean=clean, reverb=reverb,
                  image=img, depth=depth, rir=rir, rt60=measure_rt60(rir), meta={"view": f"room{room}v{view}"})  # fmt: skip


@pytest.fixture(scope="module")
def bank_samples() -> list[Sample]:
    dry = np.random.default_rng(9).standard_normal(FS).astype(np.float32)
    return [
        make_sample(f"s{r}{v}", r, v, dry, decaying(0.2 + 0.3 * r, 30 + 17 * v + 5 * r, seed=10 * r + v))
        for r in range(4) for v in range(3)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    spk = make_speakers(1, seed=7)[0]
    x = synthesize("Please bring the red book and the small green box to the kitchen table.", spk)
    return np.tile(x, 2)[: int(3.5 * FS)]


def test_oracles_score_as_oracles(bank_samples):
    ctx = b.BaselineContext()
    for s in bank_samples[:3]:
        assert stft_distance(b.vam_oracle_rir(s, ctx), s.reverb) < 1e-10
        assert si_sdr(s.clean, b.dereverb_oracle(s, ctx)) > 100
    s = bank_samples[0]
    assert stft_distance(b.vam_identity(s, ctx), s.reverb) > 1e-3


def test_outputs_follow_the_level_convention(bank_samples):
    s = bank_samples[5]
    ctx = b.BaselineContext(bank=b.RirBank.from_samples(bank_samples))
    for family, names in b.BASELINES.items():
        for name, fn in names.items():
            out = fn(s, ctx)
            assert out.dtype == np.float32 and out.shape == s.clean.shape, (family, name)
            rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
            assert rms_db == pytest.approx(b.RMS_DB, abs=0.01) or np.abs(out).max() == pytest.approx(
                10 ** (b.PEAK_DB / 20), rel=1e-3
            )


def test_mean_rir_aligns_direct_sounds_and_keeps_the_tail():
    rirs = [decaying(0.5, d, seed=i) for i, d in enumerate((20, 60, 100, 140, 180))]
    h = b.mean_rir(rirs)
    assert b.direct_peak(h) == 100  # the median direct delay
    assert measure_rt60(h) == pytest.approx(measure_rt60(rirs[2]), rel=0.15)
    naive = np.mean(rirs, axis=0)  # the unaligned waveform mean, for contrast: five small pulses
    assert np.abs(naive).max() < 0.5 * np.abs(h).max()
    short, long_ = decaying(0.2, 50, seed=1), decaying(1.5, 50, seed=2)
    mixed = [short, short, short, long_]
    assert measure_rt60(b.mean_rir(mixed)) < measure_rt60(b.mean_rir(mixed, statistic="mean"))
    with pytest.raises(ValueError, match="not one of"):
        b.mean_rir(rirs, statistic="mode")


def test_retrieval_picks_the_room_of_a_training_view(bank_samples, tmp_path):
    bank = b.RirBank.from_samples(bank_samples)
    assert len(bank.rirs) == 12 and sorted(set(bank.room_ids)) == [f"room{r}" for r in range(4)]
    rng = np.random.default_rng(0)
    for s in bank_samples:
        assert bank.room_ids[bank.nearest(s.image, s.depth)] == s.room_id
        noisy = np.clip(s.image.astype(int) + rng.integers(-12, 13, s.image.shape), 0, 255).astype(np.uint8)
        assert bank.room_ids[bank.nearest(noisy, s.depth + 0.05)] == s.room_id
        assert bank.room_ids[bank.nearest(noisy, None)] == s.room_id  # no depth map: colours alone
    ctx = b.BaselineContext(bank=bank)
    q = bank_samples[4]
    assert stft_distance(b.vam_retrieval(q, ctx), q.reverb) < 1e-10  # its own view's RIR
    bank.save(tmp_path / "bank.npz")
    again = b.RirBank.load(tmp_path / "bank.npz")
    assert again.view_ids == bank.view_ids and np.array_equal(again.features, bank.features)
    assert all(np.array_equal(x, y) for x, y in zip(again.rirs, bank.rirs, strict=True))
    with pytest.raises(ValueError, match="needs BaselineContext.bank"):
        b.vam_mean_rir(q, b.BaselineContext())


def test_wpe_improves_si_sdr_of_reverberant_speech(speech):
    classes = {**dict.fromkeys(SURFACES, "plaster"), "floor": "carpet", "ceiling": "acoustic_ceiling"}
    room = Room("r", "test", (6.0, 4.5, 2.8), classes, {s: MATERIALS[c][0][0] for s, c in classes.items()})
    rir = rooms.simulate_rir(
        View("v", room, (1.5, 1.2, 1.4), (3.0, 2.0, 1.6)), RirConfig(n_rays=1000, max_seconds=1.5)
    )
    clean, reverb = scale_pair(speech, fftconvolve(speech, rir)[: len(speech)].astype(np.float32))
    s = Sample("k", "val", "paired", "test", clean=clean, reverb=reverb)
    ctx = b.BaselineContext(wpe=b.WpeParams(taps=20, delay=3, iterations=3))
    sdr = METRICS["si_sdr"].fn  # delay-compensated, as the evaluation scores it
    gain = sdr(b.dereverb_wpe(s, ctx), Reference(clean)) - sdr(b.dereverb_identity(s, ctx), Reference(clean))
    assert gain > 0.25, gain
    best, rows = b.tune_wpe([(reverb, clean)], taps=(5, 20), delays=(3,), iterations=(1,))
    assert best.taps in (5, 20) and len(rows) == 2 and rows[0]["si_sdr"] >= rows[1]["si_sdr"]


def test_get_baseline_lists_choices():
    assert b.get_baseline("vam", "retrieval") is b.vam_retrieval
    with pytest.raises(ValueError, match="choose from"):
        b.get_baseline("dereverb", "oracle_rir")
    with pytest.raises(ValueError, match="not one of"):
        b.get_baseline("denoise", "identity")


@pytest.mark.slow
@pytest.mark.skipif(not (SIMROOMS / "manifest.parquet").exists(), reason="datasets/simrooms not built")
def test_on_simrooms_samples():
    test = b.read_samples(SIMROOMS, ["test_unseen"], limit=4)
    train = b.read_samples(SIMROOMS, ["train"], limit=20)
    assert len(test) == 4 and all(s.rir is not None and s.image is not None for s in test)
    ctx = b.BaselineContext(bank=b.RirBank.from_samples(train))
    for s in test:  # only FLAC's 16-bit rounding separates the oracle from the target
        assert stft_distance(b.vam_oracle_rir(s, ctx), s.reverb) < 1e-6
    for s in train[:5]:
        assert ctx.bank.room_ids[ctx.bank.nearest(s.image, s.depth)] == s.room_id


def test_mean_scores_counts_nans():
    rows = [{"key": "a", "x": 1.0, "y": 2.0}, {"key": "b", "x": float("nan"), "y": 4.0}]
    assert b.mean_scores(rows) == {"x": 1.0, "x/nan": 1, "y": 3.0}
