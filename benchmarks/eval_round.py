"""Do a round's converters beat doing nothing? STFT distance on a split, both directions.

    .venv/bin/python benchmarks/eval_round.py checkpoints/demo/round-0 --dataset datasets/simrooms

Converts every paired sample of ``--split`` (val by default) with R (dry -> room) and D
(room -> dry) and reports the mean STFT distance to the target (AViTAR's definition, lower is
better) beside the unchanged input. Prints Markdown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mvsd.converter import Converter
from mvsd.eval.baselines import read_samples
from mvsd.eval.metrics import stft_distance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round_dir", type=Path)
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--steps", type=int)
    args = ap.parse_args()
    samples = read_samples(args.dataset, [args.split], limit=args.limit)
    print(f"{args.round_dir} on {len(samples)} {args.split} samples (STFT distance, lower is better)")
    print("| direction | unchanged input | converter | converter / input | seconds |")
    print("|---|---:|---:|---:|---:|")
    for direction, src, tgt in (("reverb", "clean", "reverb"), ("dereverb", "reverb", "clean")):
        conv = Converter.from_checkpoint(
            args.round_dir / f"{direction}.safetensors", expect_direction=direction
        )
        t0 = time.perf_counter()
        x = np.stack([getattr(s, src) for s in samples])
        y = conv.convert(x, [s.image for s in samples], steps=args.steps, seed=0)
        dt = time.perf_counter() - t0
        base = np.mean([stft_distance(getattr(s, src), getattr(s, tgt)) for s in samples])
        ours = np.mean([stft_distance(o, getattr(s, tgt)) for o, s in zip(y, samples)])
        print(f"| {direction} | {base:.4f} | {ours:.4f} | {ours / base:.3f} | {dt:.1f} |")


if __name__ == "__main__":
    main()
