"""What would a perfect room reader give the converters? Their refinement fed the *true* room.

    .venv/bin/python benchmarks/oracle_room.py --round mvsd/pretrained [--split test_unseen] [--limit 150]

Issue 11 asks that a grey image make R's STFT distance ≥ 1.2x its own with the pictures. How much
of that ratio could a better picture reader buy? For each sample the round's reverberator runs
three ways, one flow step each (the default), same seed:

* **picture** — as `mvsd eval` runs it: the room head reads the picture, the flow refines;
* **grey image** — as `mvsd eval --blank-image`: a uniform grey picture for both;
* **true room, picture's tokens** — the physical estimate made from the sample's *true* room
  (per-band T60 and DRR measured on its RIR, as `mvsd eval`'s head table measures them; a band
  that does not decay takes the head's reading), refined with the picture's conditioning: what a
  perfect room reader would get from today's refinement.

and prints STFT distance, RT60 and DRR error (the evaluation's metric code) with each row's ratio
to the grey row. A ratio the true room cannot reach is beyond any room head with this refinement.
The dereverberator runs the same three ways (its first estimate, late-reverberation suppression,
takes the room's per-band T60), scored by PESQ, ESTOI and SI-SDR against the dry speech.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mvsd import acoustics as ac
from mvsd.converter import Converter
from mvsd.eval.baselines import level, read_samples, reference
from mvsd.eval.metrics import score
from mvsd.eval.run import true_room
from mvsd.models.room import Room


def convert(conv: Converter, given: np.ndarray, image, room_fn=None) -> np.ndarray:
    """The converter's default conversion (seed 0), the head's room replaced by ``room_fn(room)``."""
    return conv.convert_steps(given, image, [conv.spec.steps], room_fn=room_fn)[conv.spec.steps]


def true_room_fn(t60: np.ndarray, drr: float):
    def fn(room: Room) -> Room:
        t = torch.as_tensor(t60, dtype=torch.float32)[None]
        t = torch.where(torch.isfinite(t), t, room.t60).clamp(*ac.T60_RANGE)
        d = room.drr_db if not np.isfinite(drr) else torch.tensor([drr], dtype=torch.float32)
        return Room(t, d.clamp(*ac.DRR_RANGE), room.band_db, room.early_db)

    return fn


VAM = ("stft_distance", "rt60_error", "drr_error")
DEREVERB = ("pesq", "estoi", "si_sdr")


def table(title: str, rows: dict[str, list[dict]], metrics: tuple[str, ...], lower: bool) -> None:
    """Means per row and each row's ratio to (or difference from) the grey row."""
    means = {name: {m: float(np.nanmean([r[m] for r in rs])) for m in metrics} for name, rs in rows.items()}
    grey = means["grey image"]
    rel = "grey ÷ this" if lower else "this − grey"
    print(f"| {title} | " + " | ".join(metrics) + " | " + " | ".join(f"{rel}: {m}" for m in metrics) + " |")
    print("|---|" + "---:|" * (2 * len(metrics)))
    for name, m in means.items():
        cells = [f"{m[k]:.4f}" for k in metrics]
        cells += [f"{grey[k] / m[k]:.3f}x" if lower else f"{m[k] - grey[k]:+.3f}" for k in metrics]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--round", required=True, help="a round folder with reverb.safetensors and dereverb.safetensors"
    )
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="test_unseen")
    ap.add_argument("--limit", type=int, default=150)
    args = ap.parse_args()

    samples = read_samples(args.dataset, [args.split], limit=args.limit)
    t60, drr = true_room(samples)
    print(f"{len(samples)} {args.split} samples, round {args.round}, 1 step")
    for direction, family, metrics, lower in (
        ("reverb", "vam", VAM, True),
        ("dereverb", "dereverb", DEREVERB, False),
    ):
        conv = Converter.from_checkpoint(
            Path(args.round) / f"{direction}.safetensors", expect_direction=direction
        )
        rows: dict[str, list[dict]] = {"picture": [], "grey image": [], "true room, picture's tokens": []}
        for i, s in enumerate(samples):
            given = s.clean if direction == "reverb" else s.reverb
            outs = {
                "picture": convert(conv, given, s.image),
                "grey image": convert(conv, given, np.full_like(s.image, 128)),  # as mvsd eval --blank-image
                "true room, picture's tokens": convert(conv, given, s.image, true_room_fn(t60[i], drr[i])),
            }
            for name, y in outs.items():
                rows[name].append(score(level(y), reference(s, family), family))
        table(f"{'R' if direction == 'reverb' else 'D'}'s room", rows, metrics, lower)


if __name__ == "__main__":
    main()
