"""Training objectives of one converter, shared by the trainer and the tests.

The network's training pass (:meth:`mvsd.models.net.MVSDNet.forward`) returns the U-Net's output,
what it should have been (noise for ``vp``, velocity for ``flow``) and the one-step refined
spectrogram; the losses here compare them:

* :func:`diffusion_loss` — MSE of the output against its regression target;
* :func:`style_loss` — L1 between compressed magnitudes (MVSD's "style" loss);
* :func:`sisdr_loss` — minus the scale-invariant SDR of waveforms (the dereverberator's metric);
* :func:`envelope_loss` — L1 between the time-frequency energy envelopes (dB) of the physical
  first estimate and the target over whole clips: teaches the room head where no RIR is known;
* :func:`mvsd.models.room.room_loss` — parameter and decay-curve losses where the RIR is known.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvsd.audio import magnitude

ENVELOPE_FFT, ENVELOPE_HOP, ENVELOPE_BANDS = 512, 256, 16
ENVELOPE_RANGE_DB = 60.0  # below the target's loudest cell by more than this: not compared


def diffusion_loss(out: dict) -> torch.Tensor:
    return F.mse_loss(out["output"], out["want"])


def style_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between compressed magnitude spectrograms (MVSD's "style" loss)."""
    return F.l1_loss(magnitude(estimate), magnitude(target))


def sisdr_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-SI-SDR / 10`` (dB / 10), averaged over the batch, of waveforms ``(B, T)``: the
    evaluation's scale-invariant SDR (:func:`mvsd.eval.metrics.si_sdr`, without its delay search),
    differentiable. A clip whose target is silent counts as 0 dB rather than NaN."""
    e = estimate - estimate.mean(-1, keepdim=True)
    r = target - target.mean(-1, keepdim=True)
    s = (e * r).sum(-1, keepdim=True) / (r.pow(2).sum(-1, keepdim=True) + 1e-8) * r
    ratio = (s.pow(2).sum(-1) + 1e-8) / ((e - s).pow(2).sum(-1) + 1e-8)
    return -(10.0 * torch.log10(ratio)).mean() / 10.0


def envelope_db(audio: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` -> ``(B, ENVELOPE_BANDS, frames)``: energy in dB per linear-frequency band and
    16 ms frame."""
    window = torch.hann_window(ENVELOPE_FFT, device=audio.device, dtype=audio.dtype)
    z = torch.stft(audio, ENVELOPE_FFT, ENVELOPE_HOP, window=window, center=True, return_complex=True)
    power = (z.real**2 + z.imag**2)[:, 1:]  # drop DC: 256 bins
    power = power.unflatten(1, (ENVELOPE_BANDS, -1)).mean(2)
    return 10 * torch.log10(power + 1e-10)


def envelope_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |dB difference| / 10 of :func:`envelope_db`, where the target is within
    :data:`ENVELOPE_RANGE_DB` of its loudest cell (both floored there)."""
    want = envelope_db(target)
    floor = want.amax(dim=(1, 2), keepdim=True) - ENVELOPE_RANGE_DB
    got = torch.maximum(envelope_db(estimate), floor)
    return (got - torch.maximum(want, floor)).abs().mean() / 10.0
