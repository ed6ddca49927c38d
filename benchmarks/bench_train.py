"""Training throughput (1 vs 2 Ray workers) and pseudo-pair throughput per worker.

    .venv/bin/python benchmarks/bench_train.py --dataset datasets/simrooms [--size small] [--steps 20]

Training: ``--steps`` steps of both converters (diffusion + style + cycle losses) at the params'
``train.batch_size`` x ``train.segment_seconds`` per worker, with 1 worker (all cores) and with 2
Ray workers (half the cores each); samples/s counts every worker's samples, from the per-step
log after the first step (Ray start-up and the first step are excluded). Pseudo-pairs: one
actor at ``pseudo.steps`` sampling steps over ``--pseudo-items`` unpaired samples per kind.
Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from mvsd.config import load_params
from mvsd.train.distributed import fit_round
from mvsd.train.losslog import read_losses
from mvsd.train.pseudo import make_pseudo_pairs


def train_rate(dataset: str, size: str, steps: int, workers: int, root: Path) -> float:
    threads = max(1, (os.cpu_count() or 1) // workers)
    p = load_params(
        None,
        [
            f"model.size={size}",
            f"train.steps={steps}",
            f"train.workers={workers}",
            f"train.threads_per_worker={threads}",
            f"train.checkpoint_every={steps}",
            "loader.num_workers=0",
            f"train.storage_path={root / 'ray'}",
        ],
    )
    fit_round(p, {"paired": dataset}, root / "ck", f"w{workers}", 0)
    rows = read_losses(root / "ck" / f"w{workers}" / "round-0-live")
    return float(rows[-1]["samples_per_s"]), p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pseudo-items", type=int, default=16)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    dataset = str(Path(args.dataset).resolve())
    one, p = train_rate(dataset, args.size, args.steps, 1, root)
    two, _ = train_rate(dataset, args.size, args.steps, 2, root)
    print(
        f"\nTraining `{args.size}`, batch {p.train.batch_size} x {p.train.segment_seconds} s per worker, {args.steps} steps, {os.cpu_count()} cores"
    )
    print("| workers | samples/s | ratio to 1 worker |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one:.2f} | 1.00 |")
    print(f"| 2 (Ray, DDP over gloo) | {two:.2f} | {two / one:.2f} |")

    pp = load_params(
        None,
        [
            f"model.size={args.size}",
            f"pseudo.max_items={args.pseudo_items}",
            f"pseudo.threads={os.cpu_count()}",
            f"train.storage_path={root / 'ray'}",
        ],
    )
    t0 = time.perf_counter()
    summary = make_pseudo_pairs(dataset, root / "ck" / "w1" / "round-0", root / "pseudo", pp, 0)
    dt = time.perf_counter() - t0
    print(
        f"\nPseudo-pairs, `{args.size}`, {pp.pseudo.steps} sampling steps per conversion (2 conversions per pair), 1 actor"
    )
    print("| candidates | seconds (incl. Ray start) | pairs/s per worker |")
    print("|---:|---:|---:|")
    print(f"| {summary['candidates']} | {dt:.1f} | {summary['candidates'] / dt:.2f} |")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
