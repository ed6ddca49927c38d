"""The acoustics maths against known answers (mvsd/acoustics.py, mvsd/models/room.py)."""

import math

import numpy as np
import pytest
import torch

from mvsd import acoustics as ac
from mvsd.audio import StftConfig
from mvsd.models.room import Room, RoomHead, dereverb_estimate, reverb_estimate, room_loss, room_targets

FS = 16000


def exp_decay(t60: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """White noise under an exponential envelope that falls 60 dB (energy) in ``t60`` s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    return rng.standard_normal(len(t)) * np.exp(-3 * math.log(10) * t / t60)


def test_band_split_sums_back_to_the_signal_and_separates_octaves():
    x = torch.randn(2, 4000, dtype=torch.float64)
    bands = ac.band_split(x)
    assert bands.shape == (2, len(ac.BANDS), 4000)
    assert torch.allclose(bands.sum(-2), x, atol=1e-9)
    # a 1 kHz tone lands (almost entirely) in the 1 kHz band
    tone = torch.sin(2 * math.pi * 1000 * torch.arange(8000, dtype=torch.float64) / FS)
    energy = ac.band_split(tone).pow(2).sum(-1)
    assert energy.argmax() == ac.BANDS.index(1000.0)
    assert energy[3] / energy.sum() > 0.95


@pytest.mark.parametrize("t60", [0.3, 0.8, 1.6])
def test_edc_of_an_exponential_decay_gives_its_t60(t60):
    h = torch.as_tensor(exp_decay(t60, seconds=max(2.0, 1.5 * t60)))
    got = float(ac.t60_from_edc(ac.edc_db(h)[::16], FS / 16))
    assert got == pytest.approx(t60, rel=0.05)
    # the broadband measure (pyroomacoustics) agrees
    assert ac.measure_rt60(h.numpy()) == pytest.approx(t60, rel=0.06)


def test_band_t60_recovers_different_decays_per_band():
    want = torch.tensor([[1.8, 1.4, 1.0, 0.8, 0.6, 0.4]], dtype=torch.float64)
    noise = ac.band_noise(1, 3 * FS, torch.Generator().manual_seed(1)).double()
    env = ac.decay_envelope(want, 3 * FS)
    h = (noise * env).sum(-2)
    got = ac.band_t60(h)
    # octave bands overlap (smooth crossovers), so neighbours leak a little: 12 %
    assert torch.allclose(got, want, rtol=0.12), (got, want)


def test_t60_is_nan_when_there_is_no_decay():
    assert math.isnan(float(ac.t60_from_edc(torch.zeros(100, dtype=torch.float64), 100.0)))
    # a curve that falls only 12 dB: too short even for T10 (needs -15 dB)
    short = -torch.linspace(0, 12, 100, dtype=torch.float64)
    assert math.isnan(float(ac.t60_from_edc(short, 100.0)))
    # a straight line falling 60 dB per second is T60 = 1 s with any range
    line = -torch.linspace(0, 59.4, 100, dtype=torch.float64)  # 100 samples at 100 Hz
    assert float(ac.t60_from_edc(line, 100.0)) == pytest.approx(1.0, rel=1e-6)


def test_drr_and_c50_of_a_known_response():
    h = np.zeros(16000)
    h[40] = 1.0
    h[200] = 0.5  # reflection 10 ms later (inside C50's early part, outside DRR's direct window)
    h[2000] = 0.25  # 122 ms later: late
    assert ac.measure_drr(h, direct=40) == pytest.approx(10 * math.log10(1 / (0.25 + 0.0625)))
    assert ac.measure_drr(h) == pytest.approx(ac.measure_drr(h, direct=40))  # onset found
    assert ac.measure_c50(h) == pytest.approx(10 * math.log10(1.25 / 0.0625))
    assert ac.onset(h) == 40


def test_synth_rir_has_the_t60_and_drr_it_was_given():
    t60 = torch.tensor([[1.2, 1.1, 1.0, 0.9, 0.7, 0.5], [0.4] * 6])
    drr = torch.tensor([3.0, -4.0])
    zeros = torch.zeros(2, 6)
    noise = ac.band_noise(2, 3 * FS, torch.Generator().manual_seed(0))
    rir = ac.synth_rir(t60, drr, zeros, torch.zeros(2), 3 * FS, noise)
    assert rir.shape == (2, 3 * FS) and torch.isfinite(rir).all()
    for i in range(2):
        assert ac.measure_drr(rir[i].numpy(), direct=ac.DIRECT_INDEX) == pytest.approx(
            float(drr[i]), abs=0.01
        )
        measured = ac.band_t60(rir[i, ac.DIRECT_INDEX :].double())
        assert torch.allclose(measured.float(), t60[i], rtol=0.15), (measured, t60[i])
    # broadband: the 1 kHz band dominates speech-weighted energy only loosely; check range only
    assert 0.5 < ac.measure_rt60(rir[0].numpy()) < 1.3


def test_synth_rir_is_differentiable_in_every_parameter():
    params = [torch.full((1, 6), 0.8), torch.tensor([2.0]), torch.zeros(1, 6), torch.tensor([1.0])]
    for p in params:
        p.requires_grad_(True)
    noise = ac.band_noise(1, FS, torch.Generator().manual_seed(0))
    rir = ac.synth_rir(params[0], params[1], params[2], params[3], FS, noise)
    ac.edc_db(rir[:, 100:]).mean().backward()
    for p in params[:1] + params[2:]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("t, length", [(1000, 37), (64, 300), (257, 257)])
def test_fft_convolve_is_linear_convolution_cut_to_the_input(t, length):
    from scipy.signal import fftconvolve

    gen = np.random.default_rng(t)
    x, h = gen.standard_normal((3, t)), gen.standard_normal((3, length))
    got = ac.fft_convolve(torch.tensor(x), torch.tensor(h)).numpy()
    want = np.stack([fftconvolve(a, b)[:t] for a, b in zip(x, h)])
    assert got.shape == (3, t)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_lebart_gain_suppresses_a_pure_decay_and_keeps_onsets():
    # power of an exponential decay with T60 = 1 s, sampled every 8 ms, after an onset at frame 10
    hop = 0.008
    n = torch.arange(100, dtype=torch.float32)
    p = torch.where(n >= 10, torch.exp(-2 * ac.LN_1000 * (n - 10) * hop / 1.0), torch.full_like(n, 1e-6))
    g = ac.lebart_gain(p.view(1, 1, -1), torch.tensor([[1.0]]), hop)[0, 0]
    assert g[10:14].min() > 0.99  # the onset (no earlier energy) passes
    assert g[40:].max() < 0.2  # the tail is what the model predicts: down to the floor
    assert float(g.min()) == pytest.approx(10 ** (-15 / 20), rel=1e-3)


def test_band_interpolation_is_exact_at_band_centres():
    w = ac.band_interpolation(8001)  # 1 Hz bins
    vals = torch.arange(6, dtype=torch.float32)
    for k, f in enumerate(ac.BANDS):
        assert float(w[int(f)] @ vals) == pytest.approx(k, abs=1e-3)
    assert torch.allclose(w.sum(1), torch.ones(8001))


def test_room_head_gives_a_valid_room_for_any_input():
    head = RoomHead(16)
    x = torch.randn(5, 16) * torch.tensor([[0.0], [1.0], [1e6], [-1e6], [float("nan")]])
    room = head(x)
    lo, hi = ac.T60_RANGE
    assert torch.isfinite(room.t60).all() and (room.t60 >= lo).all() and (room.t60 <= hi).all()
    assert torch.isfinite(room.drr_db).all()
    wet, rir = reverb_estimate(torch.randn(5, FS), room, 3.0, torch.Generator().manual_seed(0))
    assert torch.isfinite(wet).all() and torch.isfinite(rir).all()
    tail = rir[:, ac.DIRECT_INDEX + 100 :].pow(2)
    assert (tail[:, -4000:].mean(-1) < tail[:, :4000].mean(-1)).all()  # decaying


def test_flat_tail_levels_give_a_white_tail_with_the_predicted_decays():
    """model.tail_levels = flat: band levels and early gain at 0 dB whatever the embedding, T60 and
    DRR still read from it; the tail's octave bands then hold white noise's share of energy at
    the start of the decay (the band split of unit white noise)."""
    head = RoomHead(16, learned_levels=False)
    room = head(torch.randn(3, 16) * 5)
    assert (room.band_db == 0).all() and (room.early_db == 0).all()
    learned = RoomHead(16)
    learned.load_state_dict(head.state_dict())
    same = learned(torch.ones(1, 16))
    assert torch.equal(head(torch.ones(1, 16)).t60, same.t60)  # only the levels differ
    t60 = torch.full((1, len(ac.BANDS)), 0.8)
    noise = ac.band_noise(1, 2 * FS, torch.Generator().manual_seed(1))
    rir = ac.synth_rir(t60, torch.tensor([0.0]), torch.zeros(1, 6), torch.zeros(1), 2 * FS, noise)
    start = ac.DIRECT_INDEX + 200
    head_energy = ac.band_split(rir[:, start : start + 1600]).pow(2).sum(-1)[0]
    white = noise[0, :, start : start + 1600].pow(2).sum(-1)
    ratio = (head_energy / head_energy.sum()) / (white / white.sum())
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=0.15)


def test_reverb_estimate_keeps_the_level_and_lengthens_a_click():
    dry = torch.zeros(1, FS)
    dry[0, 1000] = 1.0
    room = Room(torch.full((1, 6), 1.0), torch.tensor([0.0]), torch.zeros(1, 6), torch.zeros(1))
    wet, rir = reverb_estimate(dry, room, 3.0, torch.Generator().manual_seed(0))
    assert rir.shape[-1] == FS  # no longer than the input
    assert wet.pow(2).mean().sqrt() == pytest.approx(float(dry.pow(2).mean().sqrt()), rel=1e-4)
    assert wet[0, 8000:].abs().max() > 0  # the click rings on


def test_dereverb_estimate_removes_the_tail_after_a_burst():
    g = torch.Generator().manual_seed(0)
    dry = torch.zeros(1, 2 * FS)
    dry[0, : FS // 2] = torch.randn(FS // 2, generator=g)  # 0.5 s of noise, then silence
    room = Room(torch.full((1, 6), 1.5), torch.tensor([-3.0]), torch.zeros(1, 6), torch.zeros(1))
    wet, _ = reverb_estimate(dry, room, 3.0, g)
    out = dereverb_estimate(wet, room, StftConfig())
    assert out.shape == wet.shape and torch.isfinite(out).all()

    def tail_db(y):  # energy 0.2-1.5 s after the burst, relative to the burst
        return 10 * torch.log10(y[0, int(0.7 * FS) : 2 * FS].pow(2).sum() / y[0, : FS // 2].pow(2).sum())

    # Lebart's rule removes the part of each frame's power predicted from 50 ms earlier: on a
    # stationary burst as much as on the tail, so the tail-to-burst ratio drops by a dB or two.
    assert tail_db(out) < tail_db(wet) - 1


def test_room_targets_and_loss_are_zero_for_the_true_room():
    room = Room(
        torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]]), torch.tensor([1.0]), torch.zeros(1, 6), torch.zeros(1)
    )
    noise = ac.band_noise(1, 2 * FS, torch.Generator().manual_seed(3))
    rir = ac.synth_rir(room.t60, room.drr_db, room.band_db, room.early_db, 2 * FS, noise)
    tg = room_targets(rir)
    assert float(tg.drr_db) == pytest.approx(1.0, abs=0.01)
    assert torch.allclose(tg.t60, room.t60, rtol=0.15)
    same = float(room_loss(room, rir, tg))
    other = Room(room.t60 * 2, room.drr_db + 5, room.band_db, room.early_db)
    rir2 = ac.synth_rir(other.t60, other.drr_db, other.band_db, other.early_db, 2 * FS, noise)
    assert same < 0.1 < float(room_loss(other, rir2, tg))


def test_band_masks_are_made_once_and_handed_out_as_copies():
    a = ac.band_masks(4096, dtype=torch.float64)
    assert torch.allclose(a.sum(0), torch.ones(2049, dtype=torch.float64))
    a.zero_()  # a caller writing into its masks does not change anyone else's
    b = ac.band_masks(4096, dtype=torch.float64)
    assert torch.allclose(b.sum(0), torch.ones(2049, dtype=torch.float64))
    assert ac.band_masks(4096).dtype == torch.float32


def test_dereverb_estimate_undoes_the_direct_sound_lag_of_the_reverberator():
    """R's RIRs put the direct sound at DIRECT_INDEX (the reverberant speech lags by 2.5 ms); D's
    estimate advanced by as much (model.estimate_advance: 40) lines dry -> R -> D up with the dry."""
    g = torch.Generator().manual_seed(1)
    dry = torch.zeros(1, FS)
    dry[0, 4000:8000] = torch.randn(4000, generator=g)
    room = Room(torch.full((1, 6), 0.05), torch.tensor([30.0]), torch.zeros(1, 6), torch.zeros(1))
    wet, rir = reverb_estimate(dry, room, 3.0, g)
    assert int(rir[0].abs().argmax()) == ac.DIRECT_INDEX
    back = dereverb_estimate(wet, room, StftConfig(), advance=ac.DIRECT_INDEX)
    assert back.shape == dry.shape

    def lag(a, b):  # the shift of b that best matches a
        c = [float((a[0, 100:-100] * torch.roll(b, -k)[0, 100:-100]).sum()) for k in range(-60, 61)]
        return int(np.argmax(np.abs(c))) - 60

    assert lag(dry, wet) == ac.DIRECT_INDEX
    assert lag(dry, back) == 0
    assert lag(dry, dereverb_estimate(wet, room, StftConfig())) == ac.DIRECT_INDEX  # default: no advance
