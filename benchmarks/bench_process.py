"""Which diffusion formulation gives better quality per sampling step? (evidence for model.process)

    .venv/bin/python benchmarks/bench_process.py --dataset datasets/simrooms --train-steps 300

Trains both converters of size ``--size`` from scratch with the same recipe (diffusion + style
losses, no cycle, ``--train-steps`` steps of batch ``--batch`` on ``--segment`` s crops of the
train split's paired samples) once per process (``vp``: MVSD's noise prediction sampled with DDIM;
``flow``: from the source to the target, Euler), then converts ``--eval`` val samples at several
step counts and reports the STFT distance (MSE of magnitude spectrograms, n_fft 512, hop 160,
Hamming 400 — AViTAR's definition) to the target, beside doing nothing (the unchanged input).
Lower is better. Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mvsd.config import load_params, loader_config
from mvsd.data.loader import make_loader
from mvsd.eval.metrics import stft_distance
from mvsd.train.state import TrainState
from mvsd.train.step import train_step


def train(params, dataset: str, steps: int, seconds: float) -> tuple[TrainState, float]:
    state = TrainState.new(params.model, params.train)
    loader = make_loader(
        dataset,
        loader_config(params, params.train.batch_size),
        splits=["train"],
        kinds=["paired"],
        seed=params.train.seed,
        epoch_samples=steps * params.train.batch_size,
    )
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    while state.step < steps:
        for batch in loader:
            train_step(state, batch, params.train, gen)
            if state.step >= steps:
                break
    return state, time.perf_counter() - t0


def evaluate(state: TrainState, dataset: str, params, n: int, step_counts: list[int]) -> dict:
    cfg = loader_config(params, n, segment_seconds=2.56)
    batch = next(iter(make_loader(dataset, cfg, splits=["val"], kinds=["paired"], train=False)))
    clean, reverb, image = batch["clean"].numpy(), batch["reverb"].numpy(), batch["image"]
    rows = {}
    for direction, src, tgt in (("reverb", clean, reverb), ("dereverb", reverb, clean)):
        conv = state.converters[direction]
        rows[(direction, "identity")] = np.mean([stft_distance(s, t) for s, t in zip(src, tgt)])
        for k in step_counts:
            out = conv.convert(src, image, steps=k, seed=0)
            rows[(direction, k)] = np.mean([stft_distance(o, t) for o, t in zip(out, tgt)])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--size", default="small")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--segment", type=float, default=1.28)
    ap.add_argument("--eval", type=int, default=24)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    torch.set_num_threads(2)
    results = {}
    for process, sampler in (("flow", "euler"), ("vp", "ddim")):
        params = load_params(
            None,
            [
                f"model.size={args.size}",
                f"model.process={process}",
                f"model.sampler={sampler}",
                "train.lambdas.cycle=0.0",
                f"loader.batch_size={args.batch}",
                f"loader.segment_seconds={args.segment}",
                "loader.num_workers=0",
            ],
        )
        state, secs = train(params, args.dataset, args.train_steps, args.segment)
        print(f"{process}: {args.train_steps} steps in {secs:.0f} s")
        results[process] = evaluate(state, args.dataset, params, args.eval, args.steps)
    print(
        f"\nSTFT distance to the target on {args.eval} val samples (lower is better), size {args.size}, "
        f"{args.train_steps} training steps of batch {args.batch} x {args.segment} s"
    )
    print("| direction | process | identity | " + " | ".join(f"{k} steps" for k in args.steps) + " |")
    print("|---|---|---:|" + "---:|" * len(args.steps))
    for direction in ("reverb", "dereverb"):
        for process, rows in results.items():
            cells = " | ".join(f"{rows[(direction, k)]:.4f}" for k in args.steps)
            print(f"| {direction} | {process} | {rows[(direction, 'identity')]:.4f} | {cells} |")


if __name__ == "__main__":
    main()
