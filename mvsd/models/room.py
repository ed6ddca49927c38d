"""The converters' physical spine: image -> room description -> first estimate.

:class:`RoomHead` reads the visual encoder's embedding and predicts a compact description of the
room at the microphone (:class:`Room`): per-octave-band T60, direct-to-reverberant ratio, the
tail's level per band and the gain of its first 50 ms (early reflections). Every value is
squashed into a physical range, and a NaN in the network becomes the range's middle, so whatever
the picture (a photo, a drawing, a grey image) the RIR is finite, decaying and bounded.

:func:`reverb_estimate` turns the description into an RIR (:func:`mvsd.acoustics.synth_rir`) and
convolves the *whole* dry input with it: the reverberator's first estimate, which its flow then
refines. :func:`dereverb_estimate` suppresses late reverberation with the same per-band T60
(:func:`mvsd.acoustics.lebart_gain`): the dereverberator's first estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mvsd import acoustics as ac
from mvsd.audio import StftConfig
from mvsd.audio_io import SAMPLE_RATE

N_BANDS = len(ac.BANDS)


@dataclass
class Room:
    """Batched room description (tensors with batch dim 0)."""

    t60: torch.Tensor  # (B, K) seconds per octave band
    drr_db: torch.Tensor  # (B,)
    band_db: torch.Tensor  # (B, K) tail level per band, dB (relative)
    early_db: torch.Tensor  # (B,) gain of the tail's first 50 ms, dB

    def index(self, m: torch.Tensor) -> Room:
        return Room(self.t60[m], self.drr_db[m], self.band_db[m], self.early_db[m])

    def detach(self) -> Room:
        return Room(self.t60.detach(), self.drr_db.detach(), self.band_db.detach(), self.early_db.detach())


class RoomHead(nn.Module):
    """Embedding ``(B, E)`` -> :class:`Room`. Starts predicting a middle room (T60 ~0.9 s, DRR ~2 dB)."""

    OUT = 2 * N_BANDS + 2

    def __init__(self, embed_dim: int, hidden: int = 128, learned_levels: bool = True):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, self.OUT))
        # False: the tail's band levels and early gain stay at 0 dB (a white tail under the per-band
        # decays), which reads unseen rooms better than the learned ones (BENCHMARKS.md)
        self.learned_levels = learned_levels

    def forward(self, embedding: torch.Tensor) -> Room:
        raw = torch.nan_to_num(self.mlp(embedding).float(), nan=0.0, posinf=0.0, neginf=0.0)
        k = N_BANDS
        lo, hi = (math.log(v) for v in ac.T60_RANGE)
        t60 = torch.exp(lo + (hi - lo) * torch.sigmoid(raw[:, :k])).clamp(*ac.T60_RANGE)
        dlo, dhi = ac.DRR_RANGE
        drr = dlo + (dhi - dlo) * torch.sigmoid(raw[:, k])
        band_db = 10.0 * torch.tanh(raw[:, k + 1 : 2 * k + 1] / 10.0)
        early_db = 10.0 * torch.tanh(raw[:, 2 * k + 1] / 10.0)
        if not self.learned_levels:
            band_db, early_db = torch.zeros_like(band_db), torch.zeros_like(early_db)
        return Room(t60, drr, band_db, early_db)


def rir_from_room(room: Room, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, length)`` impulse responses of a batch of rooms (noise drawn from ``generator``)."""
    noise = ac.band_noise(room.t60.shape[0], length, generator, room.t60.device)
    return ac.synth_rir(room.t60, room.drr_db, room.band_db, room.early_db, length, noise)


def match_rms(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y (B, T)`` scaled to the RMS of ``like (B, T)`` (the datasets' level convention)."""
    ry = (y.pow(2).mean(-1, keepdim=True) + 1e-20).sqrt()  # + floor: a silent row has a gradient
    rl = (like.pow(2).mean(-1, keepdim=True) + 1e-20).sqrt()
    return y * (rl / ry.clamp(min=1e-8))


def reverb_estimate(
    dry: torch.Tensor, room: Room, rir_seconds: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(wet ``(B, T)`` at the dry input's RMS, rir ``(B, L)``): the whole input convolved with the
    room's RIR. ``L`` is ``rir_seconds`` but no longer than the input (what lies beyond would be
    cut with the output)."""
    length = min(round(rir_seconds * SAMPLE_RATE), dry.shape[-1])
    rir = rir_from_room(room, max(length, 2 * ac.DIRECT_INDEX + 2), generator)
    return match_rms(ac.fft_convolve(dry, rir), dry), rir


def dereverb_estimate(
    wet: torch.Tensor, room: Room, stft: StftConfig, advance: int = 0
) -> torch.Tensor:
    """``(B, T)``: late reverberation suppressed with the room's per-band T60, at the input's RMS,
    and advanced by ``advance`` samples (zero-filled at the end).

    ``advance = DIRECT_INDEX`` (``model.estimate_advance: 40``) undoes the convention R follows
    (its RIRs, like aligned SimRooms RIRs, put the direct sound there: reverberant speech lags the
    dry speech by 2.5 ms), so that D's flow need not shift its output by 40 samples itself, a phase
    rotation growing with frequency. It helped D on val after 300 steps and not after 800
    (BENCHMARKS.md), so converters advance by 0 unless told."""
    window = torch.hann_window(stft.n_fft, device=wet.device, dtype=wet.dtype)
    z = torch.stft(wet, stft.n_fft, stft.hop, window=window, center=True, return_complex=True)
    interp = ac.band_interpolation(stft.freq_bins).to(wet.device)
    t60_bins = torch.exp(torch.log(room.t60) @ interp.T)  # (B, F)
    gain = ac.lebart_gain(z.real**2 + z.imag**2, t60_bins, stft.hop / SAMPLE_RATE)
    y = torch.istft(z * gain, stft.n_fft, stft.hop, window=window, center=True, length=wet.shape[-1])
    if advance:
        y = F.pad(y[:, advance:], (0, min(advance, y.shape[-1])))
    return match_rms(y, wet)


# -- losses against a known RIR ---------------------------------------------------------------------

EDC_HOP = 160  # 10 ms
EDC_FLOOR_DB = -60.0


@dataclass
class RoomTargets:
    """What a known RIR says about its room: per-band T60 (NaN where unmeasurable), DRR, band EDCs."""

    t60: torch.Tensor  # (B, K)
    drr_db: torch.Tensor  # (B,)
    edc: torch.Tensor  # (B, K, frames) dB, floored at EDC_FLOOR_DB

    def index(self, m: torch.Tensor) -> RoomTargets:
        return RoomTargets(self.t60[m], self.drr_db[m], self.edc[m])


def align_direct(rir: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` RIRs shifted so that each one's direct sound (:func:`mvsd.acoustics.onset`'s
    rule) sits at :data:`~mvsd.acoustics.DIRECT_INDEX` (zero-filled at the end)."""
    a = rir.abs()
    first = (a >= 0.1 * a.amax(-1, keepdim=True)).float().argmax(-1)
    win = int(1e-3 * SAMPLE_RATE) + 1
    idx = (first[:, None] + torch.arange(win, device=rir.device)).clamp(max=rir.shape[-1] - 1)
    direct = first + a.gather(-1, idx).argmax(-1)
    out = torch.zeros_like(rir)
    for i, d in enumerate(direct.tolist()):
        shift = d - ac.DIRECT_INDEX
        if shift >= 0:
            out[i, : rir.shape[-1] - shift] = rir[i, shift:]
        else:
            out[i, -shift:] = rir[i, : rir.shape[-1] + shift]
    return out


@torch.no_grad()
def room_targets(rir: torch.Tensor, direct: int = ac.DIRECT_INDEX) -> RoomTargets:
    """Targets from RIRs ``(B, L)`` aligned by :func:`align_direct` (zero padding is harmless:
    the batch is cut after its last non-zero sample)."""
    h = align_direct(rir.float())
    nonzero = torch.nonzero(h.abs().amax(0) > 0)
    h = h[:, : int(nonzero.max()) + 1 if len(nonzero) else direct + 1]
    edc = ac.band_edc(h[:, direct:], hop=EDC_HOP // 2)  # one band split for T60 (5 ms) and EDCs (10 ms)
    t60 = ac.t60_from_edc(edc, SAMPLE_RATE / (EDC_HOP // 2))
    w = int(ac.DIRECT_WINDOW_MS * 1e-3 * SAMPLE_RATE)
    e = h.pow(2)
    ed = e[:, max(0, direct - w) : direct + w + 1].sum(-1)
    er = e[:, direct + w + 1 :].sum(-1)
    drr = 10 * torch.log10(ed.clamp(min=1e-20) / er.clamp(min=1e-20))
    return RoomTargets(t60, drr, edc[..., ::2].clamp(min=EDC_FLOOR_DB))


def param_loss(room: Room, targets: RoomTargets) -> torch.Tensor:
    """|log T60| per band where measurable, plus |DRR| / 10 dB."""
    ok = torch.isfinite(targets.t60)
    log_err = (torch.log(room.t60) - torch.log(torch.nan_to_num(targets.t60, nan=1.0).clamp(min=0.05))).abs()
    t60_loss = (log_err * ok).sum() / ok.sum().clamp(min=1)
    drr_loss = (room.drr_db - targets.drr_db.clamp(*ac.DRR_RANGE)).abs().mean() / 10.0
    return t60_loss + drr_loss


def edc_loss(rir: torch.Tensor, targets: RoomTargets) -> torch.Tensor:
    """L1 distance (dB / 10) of a synthesised RIR's band EDCs to the true ones, over the true
    curves' first 60 dB: teaches band levels and the early part, which have no direct target."""
    span = targets.edc.shape[-1] * EDC_HOP  # the true RIR's length: both curves end together
    edc = ac.band_edc(rir[:, ac.DIRECT_INDEX : ac.DIRECT_INDEX + span], hop=EDC_HOP, floor_db=EDC_FLOOR_DB)
    n = min(edc.shape[-1], targets.edc.shape[-1])
    valid = (targets.edc[..., :n] > EDC_FLOOR_DB).float()
    return ((edc[..., :n] - targets.edc[..., :n]).abs() * valid).sum() / valid.sum().clamp(min=1) / 10.0


def room_loss(room: Room, rir: torch.Tensor, targets: RoomTargets) -> torch.Tensor:
    """:func:`param_loss` + :func:`edc_loss` of the room's synthesised ``rir``."""
    return param_loss(room, targets) + edc_loss(rir, targets)
