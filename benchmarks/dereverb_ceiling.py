"""How far could a dereverberator go on this data? Oracle masks as ceilings of D's metrics.

    .venv/bin/python benchmarks/dereverb_ceiling.py --dataset datasets/simrooms --split val [--limit 150]

Issue 11 asks D for SI-SDR ≥ WPE + 3 dB. A dereverberator that keeps the reverberant phase and
only scales each STFT bin (a mask: Lebart suppression, WPE's output is close to one, and a
regression from a reverberant spectrogram tends to one) is bounded by the *oracle* masks, computed
from the true dry speech:

* ``IRM`` — ideal ratio mask ``min(|S| / |Y|, 1)`` (magnitude only, reverberant phase);
* ``PSM`` — phase-sensitive mask ``clip(|S| / |Y| cos(angle S - angle Y), 0, 1)``, the best
  real mask in the least-squares sense (also the limit of an MSE regression on real gains);
* ``magnitude, true phase`` would be the dry speech itself, so it is not a row.

``S`` is the dry speech shifted to the reverberant clip's timing (``align_delay``), both on the
STFT of the converters (510-point Hann, hop 128) and on a longer one (1,024 / 256): a mask's
ceiling depends on its resolution. Rows: the unchanged input, tuned-by-default WPE, the oracle
masks; scored by ``mvsd eval``'s own metric code (``mvsd.eval.metrics.score``). Mean over the
samples, with a 95 % interval. Needs no model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mvsd.eval.baselines import WpeParams, level, read_samples, reference, wpe_dereverb
from mvsd.eval.metrics import align_delay, score


def stft(x: np.ndarray, n_fft: int, hop: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    return torch.stft(t, n_fft, hop, window=torch.hann_window(n_fft, dtype=t.dtype), return_complex=True)


def istft(z: torch.Tensor, n_fft: int, hop: int, length: int) -> np.ndarray:
    w = torch.hann_window(n_fft, dtype=torch.float64)
    return torch.istft(z, n_fft, hop, window=w, length=length).numpy()


def masks(y: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
    """The IRM and PSM (real gains in [0, 1]) of the STFTs ``y`` (input) and ``s`` (the wanted
    part of it, at its timing and scale inside ``y``)."""
    ratio = s.abs() / y.abs().clamp_min(1e-9)
    return {
        "IRM": ratio.clamp(max=1.0),
        "PSM": (ratio * torch.cos(torch.angle(s) - torch.angle(y))).clamp(0.0, 1.0),
    }


def oracle_masks(wet: np.ndarray, dry: np.ndarray, n_fft: int, hop: int) -> dict[str, np.ndarray]:
    """The IRM and PSM outputs for one clip (module docstring)."""
    shifted = align_delay(wet, dry)[0]  # the dry speech at the wet clip's timing
    y, s = stft(wet, n_fft, hop), stft(shifted, n_fft, hop)
    # the dry speech at the scale it has inside the wet clip (its direct path's gain)
    gain = float(torch.sum((s.conj() * y).real) / torch.sum(s.abs() ** 2).clamp_min(1e-12))
    return {name: istft(y * m, n_fft, hop, len(wet)) for name, m in masks(y, s * gain).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=150)
    args = ap.parse_args()

    samples = read_samples(args.dataset, [args.split], limit=args.limit)
    rows: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for s in samples:
        outs = {
            "unchanged input": s.reverb,
            "WPE (10 taps, delay 3, 3 iterations)": wpe_dereverb(s.reverb, WpeParams()),
        }
        for n_fft, hop in ((510, 128), (1024, 256)):
            for name, y in oracle_masks(s.reverb, s.clean, n_fft, hop).items():
                outs[f"oracle {name}, STFT {n_fft}/{hop}"] = y
        for name, y in outs.items():
            rows.setdefault(name, []).append(score(level(y), reference(s, "dereverb"), "dereverb"))
    print(f"{len(samples)} {args.split} samples of {args.dataset}, {time.perf_counter() - start:.0f} s")
    print("| output | PESQ ↑ | STOI ↑ | ESTOI ↑ | SI-SDR (dB) ↑ |")
    print("|---|---:|---:|---:|---:|")
    for name, rs in rows.items():
        cells = []
        for m in ("pesq", "stoi", "estoi", "si_sdr"):
            v = np.array([r[m] for r in rs], dtype=float)
            v = v[np.isfinite(v)]
            ci = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
            cells.append(f"{v.mean():.3f} ± {ci:.3f}" if m != "si_sdr" else f"{v.mean():.2f} ± {ci:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
