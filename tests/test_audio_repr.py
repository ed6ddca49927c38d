"""The compressed-STFT representation and segment cutting/joining."""

import numpy as np
import pytest
import torch

from mvsd.audio import Spectrogram, StftConfig
from mvsd.segments import crossfade_join, segment_starts, split_segments


def snr_db(ref, est):
    return 10 * torch.log10(ref.pow(2).sum() / (ref - est).pow(2).sum())


def test_stft_round_trip_snr_above_60_db():
    torch.manual_seed(0)
    x = 0.1 * torch.randn(3, 40960)
    s = Spectrogram()
    spec = s(x)
    assert spec.shape == (3, 2, 256, 321)
    assert snr_db(x, s.inverse(spec, x.shape[-1])) > 60


@pytest.mark.parametrize("length", [1000, 16000, 40961])
def test_round_trip_any_length(length):
    x = 0.1 * torch.randn(1, length)
    s = Spectrogram()
    assert snr_db(x, s.inverse(s(x), length)) > 60


def test_compression_is_what_it_claims():
    cfg = StftConfig()
    x = torch.zeros(1, 4096)
    x[0, 2048] = 1.0  # an impulse: flat magnitude spectrum in the frame around it
    spec = Spectrogram(cfg)(x)
    mag = torch.sqrt(spec[:, 0] ** 2 + spec[:, 1] ** 2)
    raw = torch.stft(x, cfg.n_fft, cfg.hop, window=torch.hann_window(cfg.n_fft), return_complex=True).abs()
    torch.testing.assert_close(mag, cfg.beta * raw.pow(cfg.alpha), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("length", [100, 40960, 50000, 123457])
def test_segments_join_back_exactly(length):
    seg, hop = 40960, 40960 - 5120
    x = torch.randn(2, length)
    segs, owners, starts = split_segments(x, seg, hop)
    starts_one = segment_starts(length, seg, hop)
    assert segs.shape == (2 * len(starts_one), seg)
    assert starts_one[-1] == max(0, length - seg)
    torch.testing.assert_close(crossfade_join(segs, owners, starts, x.shape, seg - hop), x)


def test_joined_output_lives_where_the_segments_are():
    """A converter on a GPU joins its segments there (it once built the output on the CPU and
    failed with "Expected all tensors to be on the same device"); the meta device stands in."""
    x = torch.randn(2, 10_000)
    segs, owners, starts = split_segments(x, 4096, 3584)
    y = crossfade_join(segs.to("meta"), owners, starts, x.shape, 512)
    assert y.device.type == "meta" and y.shape == x.shape
    y64 = crossfade_join(segs.double(), owners, starts, x.shape, 512)
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64, x.double())


def test_crossfade_weights_blend_neighbours():
    seg, hop = 100, 80
    x = torch.zeros(1, 180)
    segs, owners, starts = split_segments(x, seg, hop)
    segs[0] = 1.0  # first segment says 1, second says 0: the overlap must ramp from 1 to 0
    y = crossfade_join(segs, owners, starts, x.shape, seg - hop)[0].numpy()
    assert y[0] == 1.0 and y[-1] == 0.0
    overlap = y[80:100]
    assert np.all(np.diff(overlap) < 0) and overlap.min() > 0 and overlap.max() < 1


def test_gradients_are_finite_where_the_signal_is_exactly_zero():
    """|z| and angle(z) have no derivative at z = 0: a training step once got NaN weights from a
    silent stretch of a converter's output fed to the other converter (the cycle loss)."""
    from mvsd.models.room import match_rms

    s = Spectrogram()
    x = torch.zeros(2, 4000)
    x[0, 1000:2000] = torch.randn(1000)  # row 0: silence around a burst; row 1: all silence
    x.requires_grad_(True)
    spec = s(x)
    y = s.inverse(spec * 1.0, 4000)
    (spec.pow(2).sum() + y.pow(2).sum() + match_rms(y, x).sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0
    z = torch.zeros(1, 2, 256, 10, requires_grad=True)  # an all-zero spectrogram, inverted
    s.inverse(z, 1152).sum().backward()
    assert torch.isfinite(z.grad).all()
