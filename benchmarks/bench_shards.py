"""Shard writing throughput: encode + write through the builder, and raw ``write_shard``.

    .venv/bin/python benchmarks/bench_shards.py                        # synthetic samples (400)
    .venv/bin/python benchmarks/bench_shards.py --dataset datasets/simrooms --samples 400

Samples are made (or decoded from ``--dataset``) before timing. Rows, in one process:

* encode only: ``encode_sample`` (FLAC x2, JPEG, json...) of every sample;
* run_task: the builder's per-shard work on pre-made samples (encode, SHA-256 of every member,
  ``write_shard`` with fsync + rename, the part file), i.e. ``build_dataset`` minus generation;
* write_shard: writing pre-encoded members only (tar + fsync + rename).

Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from mvsd.data.builder import plan_tasks, run_task
from mvsd.data.loader import select_shards
from mvsd.data.sample import DECODERS, Sample, encode_sample
from mvsd.data.shards import iter_shard, write_shard

sys.path.insert(0, str(Path(__file__).parent))
from bench_loader import synthetic_groups, synthetic_sample  # noqa: E402

ARRAYS = {"clean.flac": "clean", "reverb.flac": "reverb", "image.jpg": "image", "rir.npy": "rir"}


def sample_from_members(key: str, members: dict[str, bytes]) -> Sample:
    """Rebuild a Sample from its shard members (what the builder would have been given)."""
    meta = DECODERS["json"](members["json"])
    arrays = {ARRAYS[m]: DECODERS[m](b) for m, b in members.items() if m in ARRAYS}
    if "depth.png" in members:
        arrays["depth"] = DECODERS["depth.png"](members["depth.png"])
    return Sample(
        key=key,
        split=meta["split"],
        kind=meta["kind"],
        source=meta["source"],
        room_id=meta.get("room"),
        speaker_id=meta.get("speaker"),
        rt60=meta.get("rt60_s"),
        drr=meta.get("drr_db"),
        round=meta.get("round", 0),
        score=meta.get("score"),
        parent_key=meta.get("parent_key"),
        **arrays,
    )


def load_samples(dataset: str | None, n: int) -> list[Sample]:
    if dataset is None:
        return [synthetic_sample(item) for items in synthetic_groups(n).values() for item in items]
    out: list[Sample] = []
    for url in select_shards(dataset)[0]:
        out += [sample_from_members(k, m) for k, m in iter_shard(url)]
        if len(out) >= n:
            break
    return out[:n]


def best_of(repeats: int, fn) -> float:
    """Fewest seconds of ``fn()`` over ``repeats`` runs (this is a shared, noisy machine)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_run_task(samples: list[Sample], per_shard: int, root: Path) -> None:
    by_key = {s.key: s for s in samples}
    groups: dict[tuple[str, str], list[str]] = {}
    for s in samples:
        groups.setdefault((s.split, s.kind), []).append(s.key)
    out = tempfile.mkdtemp(dir=root)
    for task in plan_tasks(groups, per_shard):
        run_task(task, by_key.__getitem__, out)


def bench_write(encoded: list[tuple[str, dict[str, bytes]]], per_shard: int, root: Path) -> None:
    out = Path(tempfile.mkdtemp(dir=root))
    for i in range(0, len(encoded), per_shard):
        write_shard(out / f"shard-{i // per_shard:06d}.tar", encoded[i : i + per_shard])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", help="take samples from this dataset (default: synthetic)")
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--per-shard", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="folder to write in (default: the system's temp folder)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    samples = load_samples(args.dataset, args.samples)
    encoded = [(s.key, encode_sample(s)) for s in samples]
    mb = sum(len(b) for _, m in encoded for b in m.values()) / 1e6
    n = len(samples)
    with tempfile.TemporaryDirectory(dir=args.out, prefix="bench-shards-") as root:
        t_encode = best_of(args.repeats, lambda: [encode_sample(s) for s in samples])
        t_task = best_of(args.repeats, lambda: bench_run_task(samples, args.per_shard, Path(root)))
        t_write = best_of(args.repeats, lambda: bench_write(encoded, args.per_shard, Path(root)))
        where = root
    print(
        f"\nShard writing, {n} samples from {args.dataset or 'synthetic (2.56 s clips, 128x96)'}"
        f" ({mb / n * 1e3:.0f} kB each), {args.per_shard} per shard, one process, best of "
        f"{args.repeats}; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"written under {Path(where).parent}.\n"
    )
    print("| step | samples/s | MB/s | ms per sample |")
    print("|---|---|---|---|")
    for name, t in (
        ("encode only (encode_sample)", t_encode),
        ("encode + checksums + write (builder run_task)", t_task),
        ("write_shard of pre-encoded members", t_write),
    ):
        print(f"| {name} | {n / t:.0f} | {mb / t:.0f} | {t / n * 1e3:.2f} |")


if __name__ == "__main__":
    main()
