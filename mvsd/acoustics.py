"""Room acoustics in one place: analysis of impulse responses, and their synthesis.

Analysis (used by the simulator, the evaluation and the training losses):

* :func:`edc_db` — Schroeder's energy decay curve (backward-integrated energy, dB re. its start);
* :func:`band_split` — octave bands :data:`BANDS` (125 Hz - 4 kHz, all below 8 kHz at 16 kHz)
  by complementary FFT masks: the bands of a signal sum back to the signal exactly;
* :func:`t60_from_edc`, :func:`band_t60` — reverberation time per band from a line fitted to the
  EDC between -5 and -35 dB (T30), falling back to T20 and T10 when the decay range is shorter;
* :func:`measure_rt60` (broadband, pyroomacoustics' Schroeder T30), :func:`measure_drr`,
  :func:`measure_c50`, :func:`onset`.

The torch functions take ``(..., L)`` tensors and are differentiable (the training losses use
them); the numpy ones (``measure_*``, :func:`band_t60_np`) wrap them for evaluation.

Synthesis (:func:`synth_rir`, the reverberator's physical first estimate): a direct impulse plus,
per octave band, exponentially decaying noise whose decay rate is set by the band's T60, shaped
by a per-band level and an early (0-50 ms) gain, and scaled as a whole to the wanted
direct-to-reverberant ratio — the filtered-noise RIR model of Image2Reverb-style and
Schroeder-statistics reverberators. :func:`lebart_gain` is the matching statistical
late-reverberation suppressor (Lebart et al. 2001; Habets 2007), the dereverberator's first
estimate, driven by the same per-band T60.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pyroomacoustics as pra
import scipy.fft
import torch

from mvsd import rng
from mvsd.audio_io import SAMPLE_RATE

BANDS = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)  # octave-band centres, Hz
DIRECT_INDEX = 40  # sample of the direct sound in a synthesised (and an aligned SimRooms) RIR
DIRECT_WINDOW_MS = 2.5  # ±window around the direct sound counted as "direct" by DRR
EARLY_MS = 50.0  # C50 / early part boundary
T60_RANGE = (0.1, 8.0)  # seconds: what the head may predict (clamped)
DRR_RANGE = (-20.0, 25.0)  # dB
LN_1000 = 3 * math.log(10)  # an energy decay of 60 dB is a factor 1e-6 in energy, 1e-3 in amplitude


# -- analysis (torch, differentiable) ---------------------------------------------------------------


def band_masks(
    n_fft: int, fs: int = SAMPLE_RATE, bands=BANDS, device=None, dtype=torch.float32
) -> torch.Tensor:
    """``(len(bands), n_fft // 2 + 1)`` frequency masks that sum to 1 at every bin.

    Neighbouring bands cross over with a raised cosine on a log-frequency axis, centred on the
    octave edge (the geometric mean of the two centres); the lowest band reaches down to 0 Hz and
    the highest up to Nyquist, so splitting loses nothing. Made once per ``(n_fft, fs, bands)``
    (~0.1 s at 2^17 bins; evaluation splits thousands of signals) and returned as a fresh copy.
    """
    return _band_masks(n_fft, fs, tuple(bands)).to(device=device, dtype=dtype, copy=True)


@functools.lru_cache(maxsize=16)
def _band_masks(n_fft: int, fs: int, bands: tuple[float, ...]) -> torch.Tensor:
    f = torch.fft.rfftfreq(n_fft, 1.0 / fs, dtype=torch.float64).clamp(min=1.0)
    logf = torch.log2(f)
    edges = [math.log2(math.sqrt(a * b)) for a, b in zip(bands[:-1], bands[1:])]
    # rising[k](f): 0 below edge k - 1/2 octave, 1 above edge k + 1/2 octave
    rising = [0.5 - 0.5 * torch.cos(math.pi * ((logf - e + 0.5).clamp(0.0, 1.0))) for e in edges]
    masks = []
    for k in range(len(bands)):
        lo = rising[k - 1] if k > 0 else torch.ones_like(logf)
        hi = 1 - rising[k] if k < len(edges) else torch.ones_like(logf)
        masks.append(lo * hi)
    return torch.stack(masks)


def band_split(x: torch.Tensor, fs: int = SAMPLE_RATE, bands=BANDS) -> torch.Tensor:
    """``(..., L)`` -> ``(..., n_bands, L)`` octave-band signals that sum back to ``x`` exactly.

    Zero-phase FFT filtering over a zero-padded length (no wrap-around of the decay)."""
    n = x.shape[-1]
    n_fft = 1 << max(1, math.ceil(math.log2(2 * n)))
    spec = torch.fft.rfft(x, n_fft)
    masks = band_masks(n_fft, fs, bands, x.device, spec.real.dtype)
    return torch.fft.irfft(spec.unsqueeze(-2) * masks, n_fft)[..., :n]


def edc_db(h: torch.Tensor, floor_db: float = -100.0, hop: int = 1) -> torch.Tensor:
    """Schroeder energy decay curve of ``h (..., L)`` in dB re. its total energy (0 dB at t = 0),
    clamped below at ``floor_db``, every ``hop`` samples."""
    e = h.pow(2).flip(-1).cumsum(-1).flip(-1)[..., ::hop]
    return 10 * torch.log10(e / e[..., :1].clamp(min=1e-30) + 1e-30).clamp(min=floor_db)


def t60_from_edc(
    edc: torch.Tensor, fs: float, start_db: float = -5.0, ranges=(30.0, 20.0, 10.0)
) -> torch.Tensor:
    """T60 (s) of decay curves ``edc (..., L)`` in dB sampled at ``fs`` per second.

    A least-squares line is fitted to the EDC from ``start_db`` down ``range`` dB, and extrapolated
    to 60 dB of decay (T30, ISO 3382). A curve that never falls that far uses the next, shorter
    range (T20, T10); one that does not fall 15 dB gets NaN.
    """
    t = torch.arange(edc.shape[-1], device=edc.device, dtype=edc.dtype) / fs
    out = torch.full(edc.shape[:-1], float("nan"), device=edc.device, dtype=edc.dtype)
    for r in reversed(ranges):  # longest range last, so it wins where it applies
        m = ((edc <= start_db) & (edc >= start_db - r)).to(edc.dtype)
        ok = (edc.amin(-1) <= start_db - r) & (m.sum(-1) >= 2)
        n = m.sum(-1).clamp(min=1)
        tm = (m * t).sum(-1) / n
        ym = (m * edc).sum(-1) / n
        cov = (m * (t - tm[..., None]) * (edc - ym[..., None])).sum(-1)
        var = (m * (t - tm[..., None]) ** 2).sum(-1).clamp(min=1e-12)
        slope = cov / var  # dB per second, < 0
        t60 = -60.0 / slope.clamp(max=-1e-6)
        out = torch.where(ok, t60, out)
    return out


def band_edc(
    h: torch.Tensor, fs: int = SAMPLE_RATE, hop: int = 160, floor_db: float = -100.0
) -> torch.Tensor:
    """Per-band EDCs of ``h (..., L)`` from the direct sound on, every ``hop`` samples:
    ``(..., n_bands, L // hop)`` in dB."""
    return edc_db(band_split(h, fs), floor_db, hop)


def band_t60(h: torch.Tensor, fs: int = SAMPLE_RATE, hop: int = 16) -> torch.Tensor:
    """``(..., n_bands)`` T60 in seconds of each octave band of ``h (..., L)``."""
    return t60_from_edc(band_edc(h, fs, hop), fs / hop)


# -- analysis (numpy, for evaluation and the simulator) ---------------------------------------------


def measure_rt60(rir: np.ndarray, fs: int = SAMPLE_RATE, decay_db: float = 30.0) -> float:
    """Broadband RT60 in seconds from Schroeder backward integration, extrapolated from a
    ``decay_db`` fit (T30 by default; T20 when the decay range is too short for 30 dB)."""
    for db in (decay_db, 20.0, 10.0):
        try:
            rt = float(pra.experimental.measure_rt60(rir, fs=fs, decay_db=db))
        except (ValueError, IndexError):
            continue
        if np.isfinite(rt) and rt > 0:
            return rt
    return float("nan")


def band_t60_np(rir: np.ndarray, fs: int = SAMPLE_RATE) -> np.ndarray:
    """``(n_bands,)`` T60 per octave band (seconds; NaN where a band does not decay 15 dB)."""
    h = torch.as_tensor(np.asarray(rir, dtype=np.float64))
    return band_t60(h, fs).numpy()


def onset(rir: np.ndarray) -> int:
    """Index of the direct sound: the largest peak within 1 ms after the first sample within 20 dB
    of the maximum (not the global maximum: coincident reflections can sum above the direct)."""
    a = np.abs(np.asarray(rir))
    first = int(np.argmax(a >= 0.1 * a.max()))
    return first + int(np.argmax(a[first : first + int(1e-3 * SAMPLE_RATE) + 1]))


def measure_drr(
    rir: np.ndarray, fs: int = SAMPLE_RATE, window_ms: float = DIRECT_WINDOW_MS, direct: int | None = None
) -> float:
    """Direct-to-reverberant ratio in dB: energy within ±``window_ms`` of the direct sound over the
    energy of everything after that window. ``direct``: the direct sound's index when known
    (simulation), else :func:`onset`."""
    if direct is None:
        direct = onset(rir)
    w = int(window_ms * 1e-3 * fs)
    e = np.asarray(rir, dtype=np.float64) ** 2
    energy_direct = e[max(0, direct - w) : direct + w + 1].sum()
    energy_reverb = e[direct + w + 1 :].sum()
    return float(10 * np.log10(max(energy_direct, 1e-20) / max(energy_reverb, 1e-20)))


def measure_c50(rir: np.ndarray, fs: int = SAMPLE_RATE, direct: int | None = None) -> float:
    """Clarity C50 in dB: energy of the first 50 ms from the direct sound over the rest."""
    if direct is None:
        direct = onset(rir)
    e = np.asarray(rir, dtype=np.float64)[direct:] ** 2
    n = int(EARLY_MS * 1e-3 * fs)
    return float(10 * np.log10(max(e[:n].sum(), 1e-20) / max(e[n:].sum(), 1e-20)))


# -- synthesis (torch, differentiable) -------------------------------------------------------------


def decay_envelope(t60: torch.Tensor, length: int, fs: int = SAMPLE_RATE) -> torch.Tensor:
    """``t60 (..., K)`` seconds -> amplitude envelopes ``(..., K, length)``: exp(-3 ln10 t / T60),
    down 60 dB in energy after T60."""
    t = torch.arange(length, device=t60.device, dtype=t60.dtype) / fs
    return torch.exp(-LN_1000 * t / t60.unsqueeze(-1))


def band_noise(
    batch: int, length: int, generator: torch.Generator | None = None, device=None, fs: int = SAMPLE_RATE
) -> torch.Tensor:
    """``(batch, n_bands, length)`` white Gaussian noise split into octave bands (unit variance
    before splitting: the bands of one draw sum to white noise)."""
    noise = rng.randn(batch, length, generator=generator, device=device)
    return band_split(noise, fs)


def synth_rir(
    t60: torch.Tensor,
    drr_db: torch.Tensor,
    band_db: torch.Tensor,
    early_db: torch.Tensor,
    length: int,
    noise: torch.Tensor,
    fs: int = SAMPLE_RATE,
) -> torch.Tensor:
    """A room impulse response ``(B, length)`` from its description (all tensors batched on dim 0):

    * ``t60 (B, K)`` seconds per octave band; ``band_db (B, K)`` the tail's level per band (dB,
      relative; only the differences between bands matter);
    * ``early_db (B,)`` extra gain of the first 50 ms of the tail (early reflections) in dB;
    * ``drr_db (B,)`` direct-to-reverberant ratio, as :func:`measure_drr` measures it;
    * ``noise (B, K, length)`` from :func:`band_noise` (the realisation; a seed fixes it).

    The direct sound is a unit impulse at :data:`DIRECT_INDEX`; the tail starts right after the
    direct window, so the measured DRR is the ``drr_db`` given.
    """
    b, k = t60.shape
    start = DIRECT_INDEX + int(DIRECT_WINDOW_MS * 1e-3 * fs) + 1
    n_tail = length - start
    env = decay_envelope(t60, n_tail, fs) * (10 ** (band_db / 20)).unsqueeze(-1)  # (B, K, n_tail)
    t = torch.arange(n_tail, device=t60.device, dtype=t60.dtype) / fs
    early = torch.sigmoid((EARLY_MS * 1e-3 - t) * 400.0)  # ~1 in the first 50 ms, 0 after
    env = env * (1 + (10 ** (early_db / 20) - 1)[:, None, None] * early)
    tail = (noise[..., start:] * env).sum(-2)  # (B, n_tail)
    energy = tail.pow(2).sum(-1).clamp(min=1e-12)
    scale = torch.sqrt(10 ** (-drr_db / 10) / energy)  # tail energy relative to a unit direct sound
    direct = torch.zeros(b, start, device=t60.device, dtype=t60.dtype)
    direct[:, DIRECT_INDEX] = 1.0
    return torch.cat([direct, tail * scale[:, None]], dim=-1)


def fft_convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``(B, T) * (B, L)`` -> ``(B, T)``: linear convolution cut to the input's length (the
    datasets' convention ``fftconvolve(dry, rir)[:T]``), by real FFTs of a fast length
    >= T + L - 1 (no wrap-around into the first T samples). Plain ``torch.fft``: torchaudio's
    ``fftconvolve`` does the same, but its wheels tie torch to a 5 GB CUDA build (BENCHMARKS.md)."""
    n = x.shape[-1] + h.shape[-1] - 1
    size = scipy.fft.next_fast_len(n, real=True)
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)
    return y[..., : x.shape[-1]]


def band_interpolation(n_bins: int, fs: int = SAMPLE_RATE, bands=BANDS) -> torch.Tensor:
    """``(n_bins, n_bands)`` weights that interpolate per-band values to STFT bins linearly on a
    log-frequency axis (constant below the lowest and above the highest centre)."""
    f = np.linspace(0, fs / 2, n_bins).clip(min=bands[0])
    lf, lb = np.log2(f), np.log2(np.asarray(bands))
    w = np.zeros((n_bins, len(bands)))
    for i, x in enumerate(lf):
        j = int(np.clip(np.searchsorted(lb, x) - 1, 0, len(bands) - 2))
        a = float(np.clip((x - lb[j]) / (lb[j + 1] - lb[j]), 0.0, 1.0))
        w[i, j], w[i, j + 1] = 1 - a, a
    return torch.tensor(w, dtype=torch.float32)


def lebart_gain(
    power: torch.Tensor,
    t60_bins: torch.Tensor,
    hop_s: float,
    delay_s: float = 0.05,
    floor_db: float = -15.0,
) -> torch.Tensor:
    """Statistical late-reverberation suppression gain (Lebart et al. 2001; Habets 2007).

    ``power (B, F, N)`` is the reverberant STFT power, ``t60_bins (B, F)`` the reverberation time
    per bin. Beyond ``delay_s`` an exponential decay predicts the late-reverberant power from the
    (smoothed) power ``delay_s`` earlier, attenuated by ``exp(-2 Δ delay)`` with
    ``Δ = 3 ln 10 / T60``; the gain is the power spectral-subtraction rule, floored at ``floor_db``.
    Returns the amplitude gain ``(B, F, N)`` in [floor, 1].
    """
    nd = max(1, round(delay_s / hop_s))
    kernel = torch.tensor([0.25, 0.5, 0.25], device=power.device, dtype=power.dtype)
    smooth = torch.nn.functional.conv1d(
        torch.nn.functional.pad(power.flatten(0, 1)[:, None], (1, 1), mode="replicate"), kernel.view(1, 1, 3)
    ).view_as(power)
    decay = torch.exp(-2 * LN_1000 * nd * hop_s / t60_bins.clamp(min=1e-3))  # (B, F)
    late = torch.nn.functional.pad(smooth, (nd, 0))[..., : power.shape[-1]] * decay[..., None]
    gmin = 10 ** (floor_db / 20)
    return torch.sqrt((1 - late / power.clamp(min=1e-10)).clamp(min=gmin**2, max=1.0))
