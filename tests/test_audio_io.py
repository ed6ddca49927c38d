import numpy as np
import pytest
import soundfile as sf

from mvsd.audio_io import (
    SAMPLE_RATE,
    decode_flac,
    encode_flac,
    load_audio,
    prepare_audio,
    rms_normalize,
    scale_pair,
)
from mvsd.errors import BadInput


def _peak_hz(x, sr=SAMPLE_RATE):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


def test_resample_and_downmix_stereo(tmp_path):
    sr = 44_100
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([tone, tone], axis=1)
    sf.write(tmp_path / "a.wav", stereo, sr)
    x = load_audio(tmp_path / "a.wav")
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) == SAMPLE_RATE
    assert _peak_hz(x) == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_integer_input_is_scaled():
    x = prepare_audio(np.array([0, 16384, -32767], dtype=np.int16), 16_000)
    np.testing.assert_allclose(x, [0, 0.5, -1.0], atol=1e-4)


@pytest.mark.parametrize(
    "x, sr, reason",
    [
        (np.zeros(0), 16_000, "zero-length"),
        (np.array([0.1, np.nan]), 16_000, "NaN or Inf"),
        (np.array([0.1, np.inf]), 16_000, "NaN or Inf"),
        (np.zeros(10), 1, "unsupported sample rate"),
        (np.zeros((2, 2, 2)), 16_000, "shape"),
    ],
)
def test_bad_arrays_raise_with_name(x, sr, reason):
    with pytest.raises(BadInput, match=reason) as e:
        prepare_audio(x, sr, "clip.wav")
    assert e.value.file == "clip.wav"


def test_unreadable_file_names_it(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(BadInput, match="unreadable audio") as e:
        load_audio(p)
    assert str(p) in str(e.value)


def test_rms_normalize_hits_target_and_respects_peak():
    rng = np.random.default_rng(0)
    x = (0.01 * rng.standard_normal(16_000)).astype(np.float32)
    y = rms_normalize(x, -25.0, -1.0)
    assert 20 * np.log10(np.sqrt(np.mean(y**2))) == pytest.approx(-25.0, abs=0.01)
    spiky = np.zeros(16_000, np.float32)
    spiky[100] = 1.0
    z = rms_normalize(spiky, -10.0, -1.0)
    assert np.max(np.abs(z)) == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    assert np.array_equal(rms_normalize(np.zeros(5, np.float32)), np.zeros(5))  # silence stays


def test_scale_pair_levels():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 8000)).astype(np.float32) * [[0.1], [0.01]]
    a2, b2 = scale_pair(a, b)
    assert np.sqrt(np.mean(a2**2)) == pytest.approx(np.sqrt(np.mean(b2**2)), rel=1e-3)


def test_flac_round_trip_is_16_bit_exact_and_deterministic():
    rng = np.random.default_rng(2)
    x = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    data = encode_flac(x)
    assert data == encode_flac(x)
    y = decode_flac(data)
    assert np.max(np.abs(y - np.clip(x, -1, 1))) <= 1 / 32768 + 1e-7
