"""Reading, checking and encoding speech audio.

Everything inside mvsd is float32, mono, at ``SAMPLE_RATE`` (16 kHz). Every source goes through
:func:`load_audio` (any file soundfile reads) or :func:`prepare_audio` (an array already in memory),
which downmix, resample and validate, raising :class:`~mvsd.errors.BadInput` with the file's name.
"""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mvsd.errors import BadInput, printable, raise_if_terminated

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
STREAMED_WAV_SIZE = 0x7FFFF000  # data sizes from here up are placeholders of streamed wavs


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling along the last axis (exact rational ratio, Kaiser window)."""
    if sr_in == sr_out:
        return x
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def prepare_audio(x: np.ndarray, sr: int, name: str = "<array>", *, allow_silence: bool = True) -> np.ndarray:
    """Downmix to mono, resample to 16 kHz and validate.

    Args:
        x: ``(T,)`` or ``(T, C)`` samples (soundfile's layout), any float or int dtype.
        sr: sample rate of ``x`` in Hz.
        name: what to call the input in errors (usually its path).
    Returns:
        ``(T',)`` float32 at 16 kHz.
    """
    if not (MIN_SAMPLE_RATE <= int(sr) <= MAX_SAMPLE_RATE):
        raise BadInput(
            name, f"unsupported sample rate {sr} Hz (expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE})"
        )
    x = np.asarray(x)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise BadInput(name, f"audio must be (samples,) or (samples, channels), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = x.astype(np.float32, copy=False)
    if x.size == 0:
        raise BadInput(name, "zero-length audio")
    if not np.isfinite(x).all():
        raise BadInput(name, "audio contains NaN or Inf samples")
    if not allow_silence and not np.any(x):
        raise BadInput(name, "audio is all zeros")
    return resample(x, int(sr), SAMPLE_RATE)


def check_wav_complete(f: BinaryIO, name: str) -> None:
    """BadInput when ``f`` is a RIFF/WAVE file with fewer audio bytes than its header declares
    (cut mid-data: a copy or download that stopped). libsndfile reads such a file without an
    error as a shorter clip. Other formats are not checked, nor are wavs written to a pipe, whose
    header cannot know the size and holds a placeholder instead: 0, or 2 GiB and more (espeak-ng
    writes 0x7FFFF000, others 0x7FFFFFFF or 0xFFFFFFFF)."""
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos, byte_rate = 12, 0
    while pos + 8 <= size:
        f.seek(pos)
        chunk = f.read(20)  # id, size, then for fmt: format (2), channels (2), rate (4), byte rate (4)
        cid, n = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if cid == b"fmt " and len(chunk) == 20:
            byte_rate = int.from_bytes(chunk[16:20], "little")
        if cid == b"data":
            stored = size - pos - 8
            if 0 < n < STREAMED_WAV_SIZE and n > stored:
                if byte_rate:
                    what = f"{n / byte_rate:.2f} s of audio, {stored / byte_rate:.2f} s are stored"
                else:
                    what = f"{n} bytes of audio, {stored} are stored"
                raise BadInput(name, f"truncated wav: its header declares {what}")
            return
        pos += 8 + n + (n & 1)  # chunks are padded to an even size


def load_audio(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Read an audio file (or its ``data`` bytes) as 16 kHz mono float32, or raise BadInput
    (unreadable, truncated wav, empty, NaN/Inf, unsupported sample rate)."""
    try:
        with io.BytesIO(data) if data is not None else open(path, "rb") as f:
            check_wav_complete(f, str(path))
    except OSError as e:
        raise BadInput(str(path), f"unreadable audio ({type(e).__name__}: {e})") from None
    try:
        if data is not None:
            x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
        elif printable(str(path)) != str(path):  # soundfile cannot open a name that is not UTF-8
            with open(path, "rb") as f:
                x, sr = sf.read(f, dtype="float32", always_2d=False)
        else:
            x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise_if_terminated()  # a SIGTERM inside soundfile's callbacks can surface as a read error
        raise BadInput(str(path), f"unreadable audio ({type(e).__name__}: {e})") from None
    raise_if_terminated()  # ... or be dropped (mvsd.errors.on_sigterm)
    return prepare_audio(x, sr, str(path))


def peak_normalize(x: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale so that the absolute peak is ``peak_db`` dBFS; silence is returned unchanged."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    return (x * (10 ** (peak_db / 20) / peak)).astype(np.float32)


def rms_normalize(x: np.ndarray, rms_db: float = -25.0, peak_db: float = -1.0) -> np.ndarray:
    """Scale to an RMS of ``rms_db`` dBFS, then reduce if needed so the peak stays below ``peak_db``.

    This is the one level convention of every dataset: clean and reverberant members of a sample
    are *not* scaled independently by callers that need their relative level (see ``scale_pair``).
    """
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0
    if rms == 0.0:
        return x
    y = x * (10 ** (rms_db / 20) / rms)
    peak = float(np.max(np.abs(y)))
    limit = 10 ** (peak_db / 20)
    if peak > limit:
        y = y * (limit / peak)
    return y.astype(np.float32)


def scale_pair(
    clean: np.ndarray, reverb: np.ndarray, rms_db: float = -25.0, peak_db: float = -1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each of a (clean, reverberant) pair to the same target level.

    Each is brought to ``rms_db`` RMS on its own (so a model sees speech at one level whatever the
    room), clipped in gain so neither peak passes ``peak_db``.
    """
    return rms_normalize(clean, rms_db, peak_db), rms_normalize(reverb, rms_db, peak_db)


def encode_flac(x: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit FLAC bytes of a float signal in [-1, 1] (clipped). Deterministic for equal input."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")
    raise_if_terminated()  # a SIGTERM inside soundfile's callbacks is dropped there
    return buf.getvalue()


def decode_flac(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_flac`: float32 samples."""
    try:
        x, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    finally:
        raise_if_terminated()  # a SIGTERM inside soundfile's callbacks is dropped or becomes a read error
    return x
