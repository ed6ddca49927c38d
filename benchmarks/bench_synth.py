"""Benchmark `mvsd synth` at the params.yaml size (the demo dataset): wall time, samples/s.

    .venv/bin/python benchmarks/bench_synth.py [--out DIR] [--workers N] [--set key=value ...]

Goal (issue 2): the default demo size (>= 2,000 samples) in under 3 minutes on a 2-core CPU.
Prints a Markdown row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from mvsd.config import load_params
from mvsd.sim.synth import synth

GOAL_S = 180.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="dataset folder (default: a temporary one, removed)")
    ap.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    params = load_params(None, [*args.overrides, f"simrooms.workers={args.workers}"])
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="bench-synth-")
        out = Path(tmp) / "simrooms"
    elif out.exists():
        shutil.rmtree(out)  # a benchmark must not resume
    t0 = time.perf_counter()
    summary = synth(out, params)
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    s = params.simrooms
    views = (s.n_rooms_seen + s.n_rooms_unseen) * s.views_per_room
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, workers={args.workers or os.cpu_count()}"
    )
    print("| samples | views (RIR + image) | wall time (s) | samples/s | size (MB) | goal | ratio to goal |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {summary.samples} | {views} | {dt:.1f} | {summary.samples / dt:.1f} | {size:.0f} | {GOAL_S:.0f} s | {dt / GOAL_S:.2f} |"
    )
    if tmp:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
