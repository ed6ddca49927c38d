"""Evaluation metrics: visual acoustic matching (VAM) and dereverberation.

Every function takes ``(T,)`` float arrays of 16 kHz audio and returns one float. Inputs are
expected at the dataset's level convention (RMS -25 dBFS, :func:`mvsd.audio_io.rms_normalize`):
the STFT distances are level dependent, the others are not. A prediction may differ in length
from its reference by at most :data:`MAX_LENGTH_MISMATCH` samples (a model's STFT round trip);
both are cut to the shorter one.

VAM (dry -> reverberant), as in AViTAR (Chen et al., CVPR 2022) and MVSD (ECCV 2024):

* :func:`stft_distance`, :func:`log_stft_distance` — spectrogram MSE, AViTAR's exact definition.
* :func:`rt60_error_deconv`, :func:`drr_error` — the room impulse response is recovered from the
  output and the dry input (:func:`deconvolve`) and its RT60 / DRR compared with the truth.
  The blind (speech-only) RT60 estimator of AViTAR's protocol lives in :mod:`mvsd.eval.rt60`.

Dereverberation (reverberant -> dry): :func:`pesq_wb`, :func:`stoi`, :func:`estoi`, :func:`si_sdr`.
In :data:`METRICS` the last three see the prediction shifted by :func:`align_delay` first (PESQ
aligns by itself): a reverberant clip carries the propagation delay of the direct sound (up to
about 95 ms across the largest SimRooms hall), its dry target does not, and a method should be judged on the
reverberation it removes, not on a constant delay nobody hears. SRMR is not provided: no maintained package of it is installed (``srmrpy`` is unmaintained and
absent), and we add no dependency for it.

:data:`METRICS` maps each name to ``(function, direction, family)``; its functions share the
signature ``fn(pred, ref: Reference) -> float`` so an evaluation loop can call them all alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from pesq import NoUtterancesError, pesq
from pystoi import stoi as _pystoi
from pystoi import utils as _stoi_utils
from pystoi.stoi import BETA, DYN_RANGE, N_FRAME, NFFT, OBM
from pystoi.stoi import FS as STOI_FS
from pystoi.stoi import N as STOI_SEGMENT
from scipy.signal import correlate

from mvsd.acoustics import measure_drr, measure_rt60
from mvsd.audio_io import SAMPLE_RATE

MAX_LENGTH_MISMATCH = 512  # samples (32 ms); more than this is a bug upstream, not a rounding
# AViTAR's STFT (facebookresearch/visual-acoustic-matching, vam/models/base_av_model.py, eval_mag)
N_FFT, HOP, WIN = 512, 160, 400
LOG_EPS = 1e-5  # their log_mag_distance: log(|S| + 1e-5), natural log
DECONV_REG = 1e-4  # Tikhonov weight, relative to the dry signal's mean power spectrum
MAX_DELAY_S = 0.1  # largest delay align_delay compensates, seconds (a 34 m path)
ENVELOPE_S = 0.01  # block length of the energy envelope used to find the noise floor, seconds


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if abs(len(a) - len(b)) > MAX_LENGTH_MISMATCH:
        raise ValueError(f"lengths differ by {abs(len(a) - len(b))} samples (> {MAX_LENGTH_MISMATCH})")
    n = min(len(a), len(b))
    return a[:n], b[:n]


# -- spectrogram distances (VAM) ------------------------------------------------------------------


def _magnitude(x: np.ndarray) -> torch.Tensor:
    """``|STFT|`` ``(257, frames)`` exactly as AViTAR's ``eval_mag``: torch.stft, n_fft 512, hop 160,
    win_length 400, periodic Hamming window, centred frames with zero ('constant') padding."""
    wav = torch.from_numpy(x)
    window = torch.hamming_window(WIN, dtype=wav.dtype)
    spec = torch.stft(
        wav, N_FFT, HOP, WIN, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return spec.abs()


def stft_distance(pred: np.ndarray, target: np.ndarray) -> float:
    """AViTAR's "STFT distance": mean squared error between magnitude spectrograms (lower is better).

    ``mean over (257 bins x frames) of (|S_pred| - |S_target|)^2``, |S| in linear amplitude units of
    the waveform (no log, no power). This is their ``mag_distance``
    (facebookresearch/visual-acoustic-matching, ``vam/models/base_av_model.py``: ``eval_mag`` and
    ``F.mse_loss``), the one their ``AViTAr.metrics`` list computes. Their function literally named
    ``eval_stft``/``stft_distance`` (MSE of real and imaginary parts) is not in that list, so not used.
    """
    p, t = _pair(pred, target)
    return _mag_mse(_magnitude(p), _magnitude(t))


def log_stft_distance(pred: np.ndarray, target: np.ndarray) -> float:
    """AViTAR's ``log_mag_distance``: MSE between ``ln(|S| + 1e-5)`` spectrograms (lower is better)."""
    p, t = _pair(pred, target)
    return _log_mag_mse(_magnitude(p), _magnitude(t))


def _mag_mse(mag_pred: torch.Tensor, mag_target: torch.Tensor) -> float:
    return float(torch.mean((mag_pred - mag_target) ** 2))


def _log_mag_mse(mag_pred: torch.Tensor, mag_target: torch.Tensor) -> float:
    return float(torch.mean((torch.log(mag_pred + LOG_EPS) - torch.log(mag_target + LOG_EPS)) ** 2))


# -- impulse response recovery (VAM) --------------------------------------------------------------


class DecayFit(NamedTuple):
    """Where a (noisy) impulse response's decay meets its noise floor (Lundeby et al. 1995, simplified).

    ``peak`` and ``cross`` are sample indices (direct sound, crosspoint); ``slope`` is the fitted
    decay in dB per sample (< 0); ``level`` the mean energy just before ``cross``.
    """

    peak: int
    cross: int
    slope: float
    level: float


def decay_fit(h: np.ndarray, fs: int = SAMPLE_RATE, iterations: int = 3) -> DecayFit | None:
    """Fit a line to the energy envelope (dB, 10 ms blocks) from 5 dB below its top down to 5 dB above
    the noise floor, and put the crosspoint where that line meets the floor. The floor is first the
    mean energy of the last 10 %, then of what lies beyond the crosspoint (+50 ms), as Lundeby does.
    None if no decay is found (silence, a rising envelope, under 4 blocks)."""
    p_all = np.asarray(h, dtype=np.float64) ** 2
    peak = int(np.argmax(p_all))
    p = p_all[peak:]
    w = int(ENVELOPE_S * fs)
    nb = len(p) // w
    if nb < 4 or not np.any(p):
        return None
    env_db = 10 * np.log10(p[: nb * w].reshape(nb, w).mean(axis=1) + 1e-300)
    t = (np.arange(nb) + 0.5) * w
    noise_db = 10 * np.log10(p[-max(len(p) // 10, w) :].mean() + 1e-300)
    fit = None
    for _ in range(iterations):
        i0 = int(np.argmax(env_db <= env_db.max() - 5.0))
        below = np.nonzero(env_db[i0:] <= noise_db + 5.0)[0]
        i1 = i0 + (int(below[0]) if len(below) else nb - i0)
        if i1 - i0 < 3:
            break
        slope, intercept = np.polyfit(t[i0:i1], env_db[i0:i1], 1)
        if slope >= 0:
            break
        cross = int(np.clip((noise_db - intercept) / slope, w, len(p)))
        fit = DecayFit(peak, peak + cross, float(slope), float(p[max(cross - w, 0) : cross].mean()))
        rest = p[min(cross + int(0.05 * fs), len(p) - len(p) // 10) :]
        if len(rest) >= w:
            noise_db = 10 * np.log10(rest.mean() + 1e-300)
    return fit


def denoise_rir(h: np.ndarray, fs: int = SAMPLE_RATE) -> np.ndarray:
    """``h`` cut at its noise-floor crosspoint and continued by the fitted exponential decay.

    Schroeder integration of a deconvolved response would otherwise integrate the noise floor too
    (RT60 several times too long) or, cut without compensation, lose the late energy (too short).
    The continuation is a smooth envelope (the square root of the fitted energy, so positive): only
    energy matters to Schroeder integration and DRR. ``h`` unchanged if no decay is found.
    """
    fit = decay_fit(h, fs)
    if fit is None:
        return np.asarray(h, dtype=np.float64)
    n_tail = int(min(60.0 / -fit.slope, 10 * fs))  # down 60 dB, at most 10 s
    tail = np.sqrt(fit.level * 10 ** (fit.slope * np.arange(1, n_tail + 1) / 10))
    return np.concatenate([np.asarray(h[: fit.cross], dtype=np.float64), tail])


def deconvolve(wet: np.ndarray, dry: np.ndarray, reg: float = DECONV_REG, refine: bool = True) -> np.ndarray:
    """Impulse response ``h`` (``(len(wet),)`` float64) such that ``wet ~ (dry * h)[:len(wet)]``.

    Tikhonov-regularised (Wiener) inverse filter in the frequency domain::

        H = W conj(X) / (|X|^2 + reg * mean|X|^2)

    with zero padding so nothing wraps around. ``wet`` is cut at the clip's end (the dataset's
    ``reverb = fftconvolve(clean, rir)[:T]``, and a model's output likewise), so the reverberation
    of the clip's last words is missing, which the plain inverse reads as a noise floor 30-65 dB
    down. With ``refine`` the missing tail is predicted once from the estimate cut at its noise
    floor (where it is still reliable) and the inverse is taken again: on SimRooms val this lowers
    the median RT60 error from 12 % to 9 % (from 10 % to 3 % below RT60 0.6 s). More rounds
    amplify the floor instead of lowering it, so one is all.
    """
    wet, dry = np.asarray(wet, dtype=np.float64), np.asarray(dry, dtype=np.float64)
    wet, dry = _pair(wet, dry)
    n_t = len(wet)
    n = 1 << int(np.ceil(np.log2(3 * n_t)))  # room for the wet clip, its tail and all lags
    X = np.fft.rfft(dry, n)
    power = np.abs(X) ** 2
    if not power.any():
        raise ValueError("cannot deconvolve: the dry signal is silent")
    inverse = np.conj(X) / (power + reg * power.mean())
    h = np.fft.irfft(np.fft.rfft(wet, n) * inverse, n)[:n_t]
    if refine:
        fit = decay_fit(h)
        cut = fit.cross if fit is not None else n_t
        predicted = np.fft.irfft(X * np.fft.rfft(h[:cut], n), n)
        completed = np.concatenate([wet, predicted[n_t : 2 * n_t]])
        h = np.fft.irfft(np.fft.rfft(completed, n) * inverse, n)[:n_t]
    return h


def recovered_rir(wet: np.ndarray, dry: np.ndarray) -> np.ndarray | None:
    """The response the deconvolution metrics measure: :func:`deconvolve`, then :func:`denoise_rir`.
    None if ``wet`` is silent."""
    if not np.any(wet):
        return None
    return denoise_rir(deconvolve(wet, dry))


def _measured(measure: Callable[[np.ndarray], float], h: np.ndarray | None) -> float:
    if h is None:
        return float("nan")
    try:
        return measure(h)
    except ValueError:
        return float("nan")


def rt60_deconv(wet: np.ndarray, dry: np.ndarray) -> float:
    """RT60 in seconds of the response recovered from ``wet`` and ``dry`` (:func:`recovered_rir`),
    by Schroeder's T30 (:func:`mvsd.acoustics.measure_rt60`). NaN if either signal is silent or no
    decay can be measured."""
    return _measured(measure_rt60, recovered_rir(wet, dry))


def drr_deconv(wet: np.ndarray, dry: np.ndarray) -> float:
    """Direct-to-reverberant ratio in dB of the recovered response (:func:`mvsd.acoustics.measure_drr`,
    direct sound found from the onset). NaN if either signal is silent."""
    return _measured(measure_drr, recovered_rir(wet, dry))


def rt60_error_deconv(output: np.ndarray, dry: np.ndarray, true_rt60: float) -> float:
    """``|RT60(deconvolve(output, dry)) - true_rt60|`` in seconds (lower is better).

    Its floor (the ground-truth reverberant clip against its measured RT60, 150 SimRooms val
    samples): mean 0.21 s, median 9 %; 0.03 s below RT60 0.6 s, 0.12 s at 0.6-1.2 s, 0.25 s at
    1.2-2 s, 0.6 s above 2 s, where a 2.56 s clip holds too little of the decay. Pass ``rt60_deconv(target, dry)`` as ``true_rt60`` for a comparison
    in which that estimator bias cancels.
    """
    return abs(rt60_deconv(output, dry) - float(true_rt60))


def drr_error(output: np.ndarray, dry: np.ndarray, true_drr: float) -> float:
    """``|DRR(deconvolve(output, dry)) - true_drr|`` in dB (lower is better); floor 0.35 dB (SimRooms val)."""
    return abs(drr_deconv(output, dry) - float(true_drr))


# -- dereverberation ------------------------------------------------------------------------------


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO 1.04-4.64, higher is better) at 16 kHz. NaN, with a
    warning, when the reference holds no speech (``pesq.NoUtterancesError``) or either is silent."""
    r, d = _pair(ref, deg)
    try:
        if not (np.any(r) and np.any(d)):  # pesq would divide by a zero peak and fail obscurely
            raise NoUtterancesError("silent input")
        return float(pesq(SAMPLE_RATE, r, d, "wb"))
    except NoUtterancesError:
        warnings.warn("PESQ: no utterances detected (silent input?); returning NaN", stacklevel=2)
        return float("nan")


def stoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), about 0-1, higher is better."""
    return _stoi(ref, deg, extended=False)[0]


def estoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """Extended STOI (Jensen & Taal 2016), about 0-1, higher is better."""
    return _stoi(ref, deg, short=False)[1]


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """pystoi's framing, ``[x[i:i + size] for i in range(0, len(x) - size, hop)]``, as one view."""
    return np.lib.stride_tricks.sliding_window_view(x, size)[: max(len(x) - size, 0) : hop]


def _row_col_normalize(x: np.ndarray) -> np.ndarray:
    """pystoi's ``row_col_normalize`` (the same draws of its EPS-sized noise from numpy's global
    generator, the same values), scaling by broadcasting instead of products with diagonal matrices."""
    eps = _stoi_utils.EPS
    x = x + eps * np.random.standard_normal(x.shape)
    x -= np.mean(x, axis=-1, keepdims=True)
    x = (1.0 / np.sqrt(_stoi_utils.vect_two_norm(x))) * x
    x += eps * np.random.standard_normal(x.shape)
    x -= np.mean(x, axis=1, keepdims=True)
    return x * (1.0 / np.sqrt(_stoi_utils.vect_two_norm(x, axis=1)))


def _pystoi_both(r: np.ndarray, d: np.ndarray, short: bool, extended: bool) -> tuple[float, float]:
    return (
        float(_pystoi(r, d, SAMPLE_RATE)) if short else float("nan"),
        float(_pystoi(r, d, SAMPLE_RATE, extended=True)) if extended else float("nan"),
    )


def stoi_and_estoi(ref: np.ndarray, deg: np.ndarray) -> tuple[float, float]:
    """``(STOI, ESTOI)`` of ``deg`` against ``ref``, equal to pystoi's ``stoi(..., extended=False)``
    and ``stoi(..., extended=True)`` (tests/test_metrics.py compares them), in one pass."""
    return _stoi(ref, deg)


def _stoi(ref: np.ndarray, deg: np.ndarray, short: bool = True, extended: bool = True) -> tuple[float, float]:
    """STOI and ESTOI (NaN for the one not asked for); ESTOI draws pystoi's EPS-sized noise from
    numpy's global generator, as pystoi does.

    pystoi resamples, drops silent frames and takes the STFT frame by frame in Python loops, twice
    for the two measures; here they are done once, on strided views, and both measures follow
    pystoi's own code from the third-octave spectra on. Too short for 30 frames after the silent
    ones are dropped: pystoi itself answers (its warning and 1e-5)."""
    r, d = _pair(ref, deg)
    x = _stoi_utils.resample_oct(r, STOI_FS, SAMPLE_RATE)
    y = _stoi_utils.resample_oct(d, STOI_FS, SAMPLE_RATE)
    n, hop = N_FRAME, N_FRAME // 2
    w = np.hanning(n + 2)[1:-1]
    xf, yf = w * _frames(x, n, hop), w * _frames(y, n, hop)
    if len(xf) == 0:
        return _pystoi_both(r, d, short, extended)
    energy = 20 * np.log10(np.linalg.norm(xf, axis=1) + _stoi_utils.EPS)
    keep = (np.max(energy) - DYN_RANGE - energy) < 0
    x, y = _stoi_utils._overlap_and_add(xf[keep], hop), _stoi_utils._overlap_and_add(yf[keep], hop)
    x_spec = np.fft.rfft(w * _frames(x, n, hop), n=NFFT).T
    y_spec = np.fft.rfft(w * _frames(y, n, hop), n=NFFT).T
    if x_spec.shape[-1] < STOI_SEGMENT:
        return _pystoi_both(r, d, short, extended)
    x_tob = np.sqrt(np.matmul(OBM, np.square(np.abs(x_spec))))
    y_tob = np.sqrt(np.matmul(OBM, np.square(np.abs(y_spec))))
    segments = lambda t: np.ascontiguousarray(  # noqa: E731  (J, bands, N), pystoi's layout
        np.lib.stride_tricks.sliding_window_view(t, STOI_SEGMENT, axis=1).transpose(1, 0, 2)
    )
    x_seg, y_seg = segments(x_tob), segments(y_tob)
    stoi_value = estoi_value = float("nan")
    if short:  # as pystoi.stoi with extended=False
        eps = _stoi_utils.EPS
        y_norm = y_seg * (
            np.linalg.norm(x_seg, axis=2, keepdims=True)
            / (np.linalg.norm(y_seg, axis=2, keepdims=True) + eps)
        )
        y_prime = np.minimum(y_norm, x_seg * (1 + 10 ** (-BETA / 20)))
        y_prime = y_prime - np.mean(y_prime, axis=2, keepdims=True)
        x_c = x_seg - np.mean(x_seg, axis=2, keepdims=True)
        y_prime /= np.linalg.norm(y_prime, axis=2, keepdims=True) + eps
        x_c /= np.linalg.norm(x_c, axis=2, keepdims=True) + eps
        stoi_value = float(np.sum(y_prime * x_c) / (x_c.shape[0] * x_c.shape[1]))
    if extended:  # as pystoi.stoi with extended=True
        x_n, y_n = _row_col_normalize(x_seg), _row_col_normalize(y_seg)
        estoi_value = float(np.sum(x_n * y_n / STOI_SEGMENT) / x_n.shape[0])
    return stoi_value, estoi_value


def align_delay(ref: np.ndarray, est: np.ndarray, max_delay_s: float = MAX_DELAY_S) -> tuple[np.ndarray, int]:
    """``est`` advanced by the lag (samples, |lag| <= ``max_delay_s``) that maximises its absolute
    cross-correlation with ``ref``, zero-filled; returns ``(shifted est, lag)``. That lag is the one
    maximising SI-SDR over constant delays (SI-SDR grows with the normalised correlation)."""
    r, e = _pair(ref, est)
    n, k = len(r), min(int(max_delay_s * SAMPLE_RATE), len(r) - 1)
    c = correlate(e, r, mode="full", method="fft")[n - 1 - k : n + k]  # lags -k..k
    lag = int(np.argmax(np.abs(c))) - k
    out = np.zeros_like(e)
    if lag >= 0:
        out[: n - lag] = e[lag:]
    else:
        out[-lag:] = e[: n + lag]
    return out, lag


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), higher is better.

    Both signals are made zero-mean; ``s = (<est, ref> / ||ref||^2) ref`` is the scaled reference,
    ``SI-SDR = 10 log10(||s||^2 / ||est - s||^2)``. Identical signals give about +200 dB (a 1e-20
    floor keeps it finite); a silent (constant) reference or estimate makes it 0/0: NaN, with a warning.
    """
    r, e = _pair(ref, est)
    r, e = r - r.mean(), e - e.mean()
    energy = float(np.dot(r, r))
    if energy == 0.0 or not np.any(e):
        warnings.warn("SI-SDR of a silent signal is undefined; returning NaN", stacklevel=2)
        return float("nan")
    s = (np.dot(e, r) / energy) * r
    return float(10 * np.log10((np.dot(s, s) + 1e-20) / (np.dot(e - s, e - s) + 1e-20)))


# -- registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What a prediction is scored against.

    Attributes:
        target: ``(T,)`` the reference waveform (reverberant for VAM, dry for dereverberation).
        dry: ``(T,)`` the dry input of a VAM sample (needed by the deconvolution metrics).
        rt60: true RT60 of the target room, seconds.
        drr: true direct-to-reverberant ratio, dB.
    """

    target: np.ndarray
    dry: np.ndarray | None = None
    rt60: float | None = None
    drr: float | None = None


def _need(value, what: str, metric: str):
    if value is None:
        raise ValueError(f"metric {metric!r} needs Reference.{what}")
    return value


class Metric(NamedTuple):
    fn: Callable[[np.ndarray, Reference], float]
    direction: str  # 'lower' or 'higher' is better
    family: str  # 'vam' or 'dereverb'


METRICS: dict[str, Metric] = {
    "stft_distance": Metric(lambda p, r: stft_distance(p, r.target), "lower", "vam"),
    "log_stft_distance": Metric(lambda p, r: log_stft_distance(p, r.target), "lower", "vam"),
    "rt60_error": Metric(
        lambda p, r: rt60_error_deconv(
            p, _need(r.dry, "dry", "rt60_error"), _need(r.rt60, "rt60", "rt60_error")
        ),
        "lower",
        "vam",
    ),  # fmt: skip
    "drr_error": Metric(
        lambda p, r: drr_error(p, _need(r.dry, "dry", "drr_error"), _need(r.drr, "drr", "drr_error")),
        "lower",
        "vam",
    ),  # fmt: skip
    "pesq": Metric(lambda p, r: pesq_wb(r.target, p), "higher", "dereverb"),
    "stoi": Metric(lambda p, r: stoi(r.target, align_delay(r.target, p)[0]), "higher", "dereverb"),
    "estoi": Metric(lambda p, r: estoi(r.target, align_delay(r.target, p)[0]), "higher", "dereverb"),
    "si_sdr": Metric(lambda p, r: si_sdr(r.target, align_delay(r.target, p)[0]), "higher", "dereverb"),
}
FAMILIES = ("vam", "dereverb")


def score(pred: np.ndarray, ref: Reference, family: str, with_pesq: bool = True) -> dict[str, float]:
    """Every metric of ``family`` ('vam' or 'dereverb') for one prediction, name -> value: the same
    values as each of :data:`METRICS`' functions (tests/test_metrics.py), with the work they share
    done once (the spectrograms, the recovered response, the delay alignment, STOI's front end).
    ``with_pesq=False`` leaves PESQ out (the evaluation computes it beside, :mod:`mvsd.eval.pesq_helper`)."""
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is not one of {FAMILIES}")
    if family == "vam":
        p, t = _pair(pred, ref.target)
        mag_p, mag_t = _magnitude(p), _magnitude(t)
        h = recovered_rir(pred, _need(ref.dry, "dry", "rt60_error"))
        return {
            "stft_distance": _mag_mse(mag_p, mag_t),
            "log_stft_distance": _log_mag_mse(mag_p, mag_t),
            "rt60_error": abs(_measured(measure_rt60, h) - float(_need(ref.rt60, "rt60", "rt60_error"))),
            "drr_error": abs(_measured(measure_drr, h) - float(_need(ref.drr, "drr", "drr_error"))),
        }
    aligned = align_delay(ref.target, pred)[0]
    stoi_value, estoi_value = stoi_and_estoi(ref.target, aligned)
    return {
        **({"pesq": pesq_wb(ref.target, pred)} if with_pesq else {}),
        "stoi": stoi_value,
        "estoi": estoi_value,
        "si_sdr": si_sdr(ref.target, aligned),
    }
