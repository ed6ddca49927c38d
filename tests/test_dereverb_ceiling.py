"""benchmarks/dereverb_ceiling.py: the oracle masks that bound a mask-type dereverberator."""

import sys

import numpy as np
import torch
from conftest import ROOT

from mvsd.eval.metrics import align_delay, si_sdr

sys.path.insert(0, str(ROOT / "benchmarks"))
from dereverb_ceiling import masks, oracle_masks, stft  # noqa: E402

RNG = np.random.default_rng(0)


def speechlike(n: int = 16000) -> np.ndarray:
    """Noise in bursts (a crude syllable rhythm): energy that varies over time and frequency."""
    env = np.repeat(RNG.uniform(0.05, 1.0, n // 800 + 1), 800)[:n]
    return (RNG.standard_normal(n) * env).astype(np.float64)


def sdr(dry: np.ndarray, out: np.ndarray) -> float:
    return si_sdr(dry, align_delay(dry, out)[0])


def test_a_delayed_scaled_copy_is_recovered_by_both_masks():
    dry = speechlike()
    wet = np.zeros_like(dry)
    wet[40:] = 0.5 * dry[:-40]  # direct sound only: 2.5 ms late, 6 dB down
    for name, out in oracle_masks(wet, dry, 510, 128).items():
        # the mask is 1 everywhere, so the input comes back (all but the 40 samples it never held)
        assert sdr(dry, out) > 28, name


def test_masks_are_gains_between_0_and_1_and_irm_bounds_the_psm():
    y = stft(speechlike(), 510, 128)
    s = stft(speechlike(), 510, 128)
    m = masks(y, s)
    for name, g in m.items():
        assert g.dtype == torch.float64 and float(g.min()) >= 0 and float(g.max()) <= 1, name
    assert torch.all(m["PSM"] <= m["IRM"] + 1e-12)  # |S|/|Y| cos(...) never exceeds |S|/|Y|
    assert float((m["IRM"] == 1).float().mean()) > 0.2  # where S is the louder, the IRM passes Y


def test_the_phase_sensitive_mask_wins_on_sdr_and_both_beat_doing_nothing():
    dry = speechlike()
    wet = dry + 0.7 * speechlike()  # another talker as the "reverberation": uncorrelated, same kind
    outs = oracle_masks(wet, dry, 510, 128)
    # the PSM is the least-squares real gain per bin, so it comes closer to the dry signal
    assert sdr(dry, outs["PSM"]) > sdr(dry, outs["IRM"]) + 1.0
    assert sdr(dry, outs["IRM"]) > sdr(dry, wet) + 1.0
