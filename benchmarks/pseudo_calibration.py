"""Is the pseudo-pair filter calibrated? The cycle score against each pseudo-pair's true error.

    .venv/bin/python benchmarks/pseudo_calibration.py --round checkpoints/demo/round-0 \
        [--dataset datasets/simrooms] [--split val] [--limit 150] [--plot reports/pseudo-calibration.png]

`mvsd pseudo` keeps the pseudo-pairs whose cycle comes back closest to where it started
(``pseudo.keep_fraction`` of each kind, lowest cycle STFT distance first): a clean-only sample goes
through R, and D must bring it back; a reverb-only sample through D, and R must bring it back. The
question is whether that score finds the pseudo-pairs whose *generated side* is right — what the
next round learns from. The unpaired pools hide that truth, so this script makes pseudo-pairs
exactly as `mvsd pseudo` does (same converters, steps, seed, batch conversion) from paired samples
with one side hidden, and measures what was hidden:

* ``pseudo_reverb`` (from the clean side): the generated reverberant speech against the real one
  (STFT distance, as `mvsd eval` scores R);
* ``pseudo_clean`` (from the reverberant side): the generated dry speech against the real one
  (STFT distance, and SI-SDR after the delay alignment `mvsd eval` applies).

Prints, per kind: Spearman's rank correlation between cycle score and true error, and the mean true
error of the pseudo-pairs each keep fraction accepts (1.0 = keep all; what a filter that knows
nothing would give) — and writes a scatter plot. Choose on ``val`` (training rooms, new utterances),
never on test_unseen.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.eval.baselines import read_samples
from mvsd.eval.metrics import align_delay, si_sdr, stft_distance

KEEP = (0.25, 0.5, 0.75, 1.0)


def pseudo_pairs(conv: dict[str, Converter], samples, kind: str, steps: int, seed: int, chunk: int):
    """``(cycle scores, generated, hidden truth)`` for every sample, made as mvsd pseudo makes them
    (chunks converted as one batch, forward then back)."""
    src, hidden, fwd, back = (
        ("clean", "reverb", "reverb", "dereverb")
        if kind == "pseudo_reverb"
        else ("reverb", "clean", "dereverb", "reverb")
    )
    scores, made_all, truth = [], [], []
    for i in range(0, len(samples), chunk):
        part = samples[i : i + chunk]
        audio = [getattr(s, src) for s in part]
        n = max(len(a) for a in audio)
        x = np.stack([np.pad(a, (0, n - len(a))) for a in audio])
        images = [s.image for s in part]
        made = conv[fwd].convert(x, images, steps=steps, seed=seed)
        again = conv[back].convert(made, images, steps=steps, seed=seed)
        scores += [stft_distance(a, b) for a, b in zip(again, x)]
        made_all += [m[: len(a)] for m, a in zip(made, audio)]
        truth += [getattr(s, hidden) for s in part]
    return np.array(scores), made_all, truth


def keep_by_score(scores: np.ndarray, fraction: float) -> np.ndarray:
    """``mvsd pseudo`` today: the best ``fraction`` by cycle score."""
    order = np.argsort(scores, kind="stable")
    keep = np.zeros(len(scores), bool)
    keep[order[: int(np.ceil(len(scores) * fraction))]] = True
    return keep


def keep_within_rooms(scores: np.ndarray, room_t60: np.ndarray, fraction: float, bins: int = 4) -> np.ndarray:
    """The best ``fraction`` by cycle score within each quantile bin of the reverberation the room
    head reads from the picture: no bias toward dry rooms, whose cycles are easy."""
    edges = np.quantile(room_t60, np.linspace(0, 1, bins + 1)[1:-1])
    group = np.searchsorted(edges, room_t60)
    keep = np.zeros(len(scores), bool)
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        keep[idx[keep_by_score(scores[idx], fraction)]] = True
    return keep


def table(kind: str, scores: np.ndarray, errors: dict[str, np.ndarray]) -> list[str]:
    lines = []
    order = np.argsort(scores, kind="stable")
    for name, e in errors.items():
        if name == "room RT60 (s)":  # which rooms the filter keeps: the median, not a mean error
            kept = [float(np.median(e[order[: int(np.ceil(len(e) * f))]])) for f in KEEP]
            rho = spearmanr(scores, e).statistic
            lines.append(
                f"| {kind} | median {name} of the kept | {rho:+.2f} | "
                + " | ".join(f"{k:.2f}" for k in kept)
                + " |"
            )
            continue
        rho = spearmanr(scores, e).statistic
        kept = [float(np.mean(e[order[: int(np.ceil(len(e) * f))]])) for f in KEEP]
        lines.append(f"| {kind} | {name} | {rho:+.2f} | " + " | ".join(f"{k:.4g}" for k in kept) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--round", required=True, help="a round folder with reverb.safetensors and dereverb.safetensors"
    )
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--plot", default="reports/pseudo-calibration.png")
    args = ap.parse_args()
    p = load_params(None, []).pseudo
    conv = {
        d: Converter.from_checkpoint(Path(args.round) / f"{d}.safetensors", expect_direction=d)
        for d in ("reverb", "dereverb")
    }
    samples = read_samples(args.dataset, [args.split], limit=args.limit)
    if not samples:
        sys.exit(f"{args.dataset}: no paired samples in split {args.split!r}")
    # the reverberation R's room head reads from each picture (broadband: the mean of the bands)
    read_t60 = np.concatenate(
        [
            conv["reverb"]
            .describe_room([sm.image for sm in samples[i : i + 32]], len(samples[i : i + 32]))
            .t60.mean(1)
            .numpy()
            for i in range(0, len(samples), 32)
        ]
    )
    results = {}
    for kind in ("pseudo_reverb", "pseudo_clean"):
        scores, made, truth = pseudo_pairs(conv, samples, kind, p.steps, p.seed, p.chunk)
        errors = {"STFT distance ↓": np.array([stft_distance(m, t) for m, t in zip(made, truth)])}
        if kind == "pseudo_clean":
            errors["SI-SDR (dB) ↑"] = np.array([si_sdr(t, align_delay(t, m)[0]) for m, t in zip(made, truth)])
        errors["room RT60 (s)"] = np.array([sm.rt60 for sm in samples], dtype=float)
        results[kind] = (scores, errors)
    print(f"\n{len(samples)} {args.split} samples, round {args.round}, {p.steps} step(s), seed {p.seed}\n")
    print(
        "| pseudo-pairs | true error of the generated side | Spearman ρ (cycle score, error) | "
        + " | ".join(f"mean, best {int(f * 100)} % kept" for f in KEEP)
        + " |"
    )
    print("|---|---|---:|" + "---:|" * len(KEEP))
    for kind, (scores, errors) in results.items():
        print("\n".join(table(kind, scores, errors)))
    f = p.keep_fraction
    print(
        f"\nAcceptance rules at keep {f:.0%} (true errors: mean of the kept; rooms: median true RT60 of the kept)\n"
    )
    print("| pseudo-pairs | rule | true STFT distance ↓ | SI-SDR (dB) ↑ | median room RT60 (s) |")
    print("|---|---|---:|---:|---:|")
    for kind, (scores, errors) in results.items():
        rules = {
            "all (no filter)": np.ones(len(scores), bool),
            "best by cycle score (mvsd pseudo)": keep_by_score(scores, f),
            "best by cycle score within 4 bins of the head's T60": keep_within_rooms(scores, read_t60, f),
        }
        for name, keep in rules.items():
            sdr = f"{errors['SI-SDR (dB) ↑'][keep].mean():.2f}" if "SI-SDR (dB) ↑" in errors else "-"
            print(
                f"| {kind} | {name} | {errors['STFT distance ↓'][keep].mean():.4f} | {sdr} | "
                f"{np.median(errors['room RT60 (s)'][keep]):.2f} |"
            )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [(k, n) for k, (_, errs) in results.items() for n in errs if n != "room RT60 (s)"]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
        for ax, (kind, name) in zip(axes, panels):
            scores, errs = results[kind]
            cut = np.quantile(scores, p.keep_fraction)
            keep = scores <= cut
            ax.scatter(scores[keep], errs[name][keep], s=10, label=f"accepted (best {p.keep_fraction:.0%})")
            ax.scatter(scores[~keep], errs[name][~keep], s=10, label="rejected")
            ax.set_xscale("log")
            ax.set_xlabel("cycle score (STFT distance, lower = accepted first)")
            ax.set_ylabel(f"true {name}")
            ax.set_title(f"{kind}: ρ = {spearmanr(scores, errs[name]).statistic:+.2f}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
