"""Tests of mvsd.sim.speech: espeak-ng speakers, sentences, synthesis, clips and folder speech."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mvsd.audio_io import SAMPLE_RATE, resample
from mvsd.errors import BadInput
from mvsd.sim import speech
from mvsd.sim.speech import (  # _synthesize_many and _trim: internals under test
    HUMAN_VARIANTS,
    FolderSpeech,
    SentenceGenerator,
    Speaker,
    _synthesize_many,
    _trim,
    espeak_clip,
    make_speakers,
    synthesize,
    variant_folder,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
TEXT = "The old teacher carried a heavy wooden box across the street."


def _peak_hz(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Frequency in Hz of the largest magnitude bin of a Hann-windowed spectrum."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spec)])


def _leading_silence_s(x: np.ndarray) -> float:
    """Seconds before the first sample above -40 dB relative to the peak."""
    return float(np.argmax(np.abs(x) > 0.01 * np.abs(x).max())) / SAMPLE_RATE


def _median_f0(x: np.ndarray, frame_s: float = 0.04) -> float:
    """Median pitch in Hz (autocorrelation peak, 60-400 Hz) over the loudest half of the frames."""
    n = int(frame_s * SAMPLE_RATE)
    frames = x[: x.size // n * n].reshape(-1, n)
    frames = frames[np.argsort((frames**2).sum(1))[frames.shape[0] // 2 :]]
    lags = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 60)
    f0 = []
    for f in frames - frames.mean(1, keepdims=True):
        ac = np.correlate(f, f, mode="full")[n - 1 :]
        f0.append(SAMPLE_RATE / lags[np.argmax(ac[lags])])
    return float(np.median(f0))


@needs_espeak
def test_make_speakers_distinct_deterministic_and_varied() -> None:
    a, b, c = make_speakers(40, seed=1), make_speakers(40, seed=1), make_speakers(40, seed=2)
    assert a == b
    assert a != c
    ids = [s.speaker_id for s in a]
    assert len(set(ids)) == 40
    assert len({s.voice for s in a}) >= 4 and len({s.variant for s in a}) >= 8
    assert all(s.variant in HUMAN_VARIANTS for s in a)
    for s in a:
        assert s.speaker_id == f"{s.voice}+{s.variant}-p{s.pitch}-s{s.speed}"
        assert 0 <= s.pitch <= 99 and 80 <= s.speed <= 450
        assert "whisper" not in s.variant and "robo" not in s.variant.lower()
    assert make_speakers(0, seed=1) == []


def test_sentences_varied_deterministic_and_punctuated() -> None:
    gen = SentenceGenerator()
    first = [gen.sentence(np.random.default_rng(7)) for _ in range(3)]
    assert len(set(first)) == 1  # same generator state -> same sentence
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    a = [gen.sentence(rng_a) for _ in range(200)]
    assert a == [gen.sentence(rng_b) for _ in range(200)]
    assert len(set(a)) > 150
    assert any(s.endswith("?") for s in a) and any(s.endswith(".") for s in a)
    for s in a:
        assert s[0].isupper() and s[-1] in ".?" and "  " not in s
        assert 3 <= len(s.split()) <= 40
    # Articles agree with the next word's sound ("an envelope", "a useful", "an hour").
    words = " ".join(a).lower().split()
    pairs = [(art, nxt) for art, nxt in zip(words, words[1:], strict=False) if art in ("a", "an")]
    assert len(pairs) > 20
    for art, nxt in pairs:
        vowel = (nxt[0] in "aeiou" and not nxt.startswith("use")) or nxt.startswith("hour")
        assert (art == "an") == vowel, (art, nxt)


@needs_espeak
def test_synthesize_format_energy_and_duration() -> None:
    spk = Speaker.of("en-us", "m3", 50, 160)
    x = synthesize(TEXT, spk)
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    assert np.sqrt(np.mean(x**2)) > 0.01  # not silence
    words = len(TEXT.split())
    dur = x.size / SAMPLE_RATE
    assert 0.5 * words / 160 * 60 < dur < 2.0 * words / 160 * 60
    longer = synthesize(f"{TEXT} {TEXT}", spk)
    assert longer.size > 1.6 * x.size
    assert np.array_equal(x, synthesize(TEXT, spk))  # deterministic
    # Energy mostly in the speech band at 16 kHz: a 22.05 -> 16 kHz resampling sanity check.
    assert _peak_hz(x) < 4000


@needs_espeak
def test_different_speakers_sound_different() -> None:
    low = synthesize(TEXT, Speaker.of("en-us", "m1", 30, 160))
    high = synthesize(TEXT, Speaker.of("en-gb", "f3", 70, 160))
    assert not (low.size == high.size and np.allclose(low, high))

    assert _median_f0(high) > 1.4 * _median_f0(low)


@needs_espeak
def test_synthesize_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="does not exist|voice"):
        synthesize("hello", Speaker.of("xx-nonexistent", "m1", 50, 160))
    with pytest.raises(RuntimeError, match="variant"):
        synthesize("hello", Speaker.of("en-us", "no-such-variant", 50, 160))
    with pytest.raises(ValueError, match="empty"):
        synthesize("  ", Speaker.of("en-us", "m1", 50, 160))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        synthesize("hello", Speaker.of("en-us", "m1", 50, 160))


@needs_espeak
def test_synthesize_text_starting_with_dash() -> None:
    # Passed as an argument, "-hello" would be parsed as an option; it goes through stdin instead.
    x = synthesize("-hello there, general Kenobi", Speaker.of("en-us", "m1", 50, 160))
    assert x.size / SAMPLE_RATE > 1.0


@needs_espeak
def test_espeak_clip_exact_length_starts_with_speech_deterministic() -> None:
    spk = make_speakers(3, seed=0)[1]
    a, text = espeak_clip(spk, np.random.default_rng(5), 7.3)
    b, text_b = espeak_clip(spk, np.random.default_rng(5), 7.3)
    assert a.dtype == np.float32 and a.shape == (round(7.3 * SAMPLE_RATE),)
    assert np.array_equal(a, b) and text == text_b
    assert np.sqrt(np.mean(a[: SAMPLE_RATE // 2] ** 2)) > 0.01
    assert text.count(".") + text.count("?") >= 2  # 7.3 s needs more than one sentence


class _Fixed(SentenceGenerator):
    """Always the same sentence (starts with a 50 ms plosive closure in espeak-ng)."""

    def sentence(self, rng: np.random.Generator) -> str:
        rng.random()
        return "Please lift the heavy box."


@needs_espeak
def test_espeak_clip_trims_joins_and_reports_spoken_text() -> None:
    spk = Speaker.of("en-us", "m1", 50, 160)
    one = _trim(synthesize(_Fixed().sentence(np.random.default_rng(0)), spk))
    period_s = one.size / SAMPLE_RATE + 0.2  # a sentence and its pause
    a, text = espeak_clip(spk, np.random.default_rng(0), 2.5 * period_s, _Fixed())
    assert _leading_silence_s(a) < 0.005  # espeak's lead-in (53 ms here) is trimmed
    assert text == " ".join(["Please lift the heavy box."] * 3)  # the 4th would start too late
    # Between sentences: the 0.2 s pause only, not espeak's own 0.2-0.5 s trailing silence.
    quiet = np.r_[False, np.abs(a) < 0.01 * np.abs(a).max(), False]
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    longest_s = (edges[1::2] - edges[::2]).max() / SAMPLE_RATE
    assert 0.2 <= longest_s < 0.3


def test_espeak_clip_stops_at_the_right_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake synthesis: every sentence is exactly 1 s of 0.5, so the bookkeeping can be checked.
    def fake(texts: list[str], spk: Speaker) -> list[np.ndarray]:
        return [np.full(SAMPLE_RATE, 0.5, np.float32) for _ in texts]

    monkeypatch.setattr(speech, "_synthesize_many", fake)
    spk, pause = Speaker.of("en-us", "m1", 50, 160), int(0.2 * SAMPLE_RATE)
    for length_s, heard in ((1.0, 1), (1.1, 1), (1.2, 1), (1.2001, 2), (2.4, 2), (5.9, 5)):
        x, text = espeak_clip(spk, np.random.default_rng(0), length_s, _Fixed())
        assert text.count(".") == heard, length_s  # sentences starting at or after the end: no
        assert x.size == round(length_s * SAMPLE_RATE)
        assert np.all(x[SAMPLE_RATE : SAMPLE_RATE + pause] == 0)  # the pause
        assert np.all(x[:SAMPLE_RATE] == 0.5)


@needs_espeak
def test_espeak_clip_short_and_empty() -> None:
    spk = make_speakers(3, seed=0)[1]
    short, short_text = espeak_clip(spk, np.random.default_rng(5), 0.25)
    assert short.shape == (4000,) and short_text.count(".") + short_text.count("?") == 1
    empty, _ = espeak_clip(spk, np.random.default_rng(5), 0.0)
    assert empty.shape == (0,)


@pytest.fixture
def speech_dir(tmp_path: Path) -> Path:
    """A folder with three good files, a corrupt one, a zero-length one and a non-audio file."""
    t44 = np.arange(int(3.0 * 44100)) / 44100
    sine = np.sin(2 * np.pi * 1000 * t44)
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob smith").mkdir()
    # Left 0.8, right 0.2: a mean downmix gives 0.5 (left-only 0.8, sum 1.0).
    sf.write(tmp_path / "alice" / "a.wav", np.stack([0.8 * sine, 0.2 * sine], 1), 44100)
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "bob smith" / "b.FLAC", 0.1 * rng.standard_normal(16000 * 2), 16000)
    t8 = np.arange(8000 * 4) / 8000
    sf.write(tmp_path / "top.wav", 0.5 * np.sin(2 * np.pi * 500 * t8), 8000)
    (tmp_path / "alice" / "corrupt.wav").write_bytes(rng.bytes(5000))
    sf.write(tmp_path / "empty.WAV", np.zeros(0), 16000)
    (tmp_path / "zero_bytes.flac").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_folder_speech_index(speech_dir: Path) -> None:
    fs = FolderSpeech(speech_dir)
    assert len(fs) == 3
    assert fs.speakers() == ["alice", "bob_smith", "spk-top"]
    bad = dict(fs.bad)
    assert set(bad) == {
        str(speech_dir / "alice" / "corrupt.wav"),
        str(speech_dir / "empty.WAV"),
        str(speech_dir / "zero_bytes.flac"),
    }
    assert "zero-length" in bad[str(speech_dir / "empty.WAV")]
    assert "unreadable" in bad[str(speech_dir / "alice" / "corrupt.wav")]


def test_folder_speech_clips(speech_dir: Path) -> None:
    fs = FolderSpeech(speech_dir)
    rng = np.random.default_rng(0)
    clips = {Path(path).name: (x, spk) for x, spk, path in (fs.clip(i, rng, 1.0) for i in range(3))}
    assert set(clips) == {"a.wav", "b.FLAC", "top.wav"}
    for x, _ in clips.values():
        assert x.dtype == np.float32 and x.shape == (SAMPLE_RATE,)
    a, spk = clips["a.wav"]
    assert spk == "alice"
    assert abs(_peak_hz(a) - 1000) <= 2  # 1 kHz at 44.1 kHz stays 1 kHz at 16 kHz
    assert np.abs(a).max() == pytest.approx(0.5, abs=0.02)  # stereo downmixed by mean
    top, spk = clips["top.wav"]
    assert spk == "spk-top" and abs(_peak_hz(top) - 500) <= 2
    assert clips["b.FLAC"][1] == "bob_smith"
    # index wraps; longer than the file -> zero-padded to the exact length.
    long, _, path = fs.clip(4, np.random.default_rng(0), 3.0)
    assert Path(path).name == "b.FLAC" and long.shape == (3 * SAMPLE_RATE,)
    assert np.all(long[2 * SAMPLE_RATE + 10 :] == 0) and np.abs(long[:SAMPLE_RATE]).max() > 0


def test_folder_speech_crop_is_random_deterministic_and_seamless(tmp_path: Path) -> None:
    noise = 0.3 * np.random.default_rng(1).standard_normal(22050 * 3)
    sf.write(tmp_path / "n.wav", noise, 22050, subtype="FLOAT")
    fs = FolderSpeech(tmp_path)
    a = [fs.clip(0, np.random.default_rng(s), 0.5)[0] for s in range(5)]
    b = [fs.clip(0, np.random.default_rng(s), 0.5)[0] for s in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    full = resample(noise.astype(np.float32), 22050)
    starts = []
    for x in a:
        # Only part of the file is decoded; the crop must still equal that stretch of the whole
        # file resampled (no filter edge effects, no offset).
        start = int(np.argmax(np.correlate(full, x, mode="valid")))
        starts.append(start)
        assert np.abs(full[start : start + x.size] - x).max() < 1e-3
    assert len(set(starts)) == 5  # random crops


def test_folder_speech_empty_and_nan(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=re.escape(str(tmp_path))):
        FolderSpeech(tmp_path)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(BadInput, match="no usable"):
        FolderSpeech(tmp_path)
    with pytest.raises(BadInput):
        FolderSpeech(tmp_path / "missing")
    x = np.zeros(16000, dtype=np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    fs = FolderSpeech(tmp_path)  # headers are fine: indexed
    with pytest.raises(BadInput, match="nan.wav.*NaN"):
        fs.clip(0, np.random.default_rng(0), 2.0)


@needs_espeak
def test_chosen_variants_add_no_echo() -> None:
    # espeak-ng's m2 and f2-f5 carry an `echo` line (built-in reverberation): not dry speech.
    for name in HUMAN_VARIANTS:
        text = (variant_folder() / name).read_text(errors="replace")
        assert not any(line.split()[:1] == ["echo"] for line in text.splitlines()), name


@needs_espeak
def test_synthesize_many_splits_one_run_into_sentences() -> None:
    texts = [
        "Anna carried a box.",
        "Did the dog, the cat and the goat sell our cake, or not?",
        "Please weigh that violin across the street.",
    ]
    for spk in (
        Speaker.of("en-gb", "m1", 40, 140),
        Speaker.of("en-us", "f4", 60, 180),
    ):  # f4 echoes
        with pytest.MonkeyPatch.context() as mp:  # the one-run path must work, not the fallback
            mp.setattr(speech, "synthesize", lambda *a: pytest.fail("fell back to one run each"))
            many = _synthesize_many(texts, spk)
        assert len(many) == 3
        for piece, text in zip(many, texts, strict=True):
            alone = _trim(synthesize(text, spk))
            # As long as the sentence spoken alone (within 10 %): cut at the right places.
            assert 0.9 < piece.size / alone.size < 1.1, (spk, text)
            assert np.abs(piece[:80]).max() > 0.01 * np.abs(piece).max()  # starts with speech
