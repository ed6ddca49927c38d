"""Loader throughput: mvsd.data.loader against the floor of reading and decoding the same shards.

    .venv/bin/python benchmarks/bench_loader.py                        # synthetic dataset (~400)
    .venv/bin/python benchmarks/bench_loader.py --dataset datasets/simrooms

The floor reads every selected shard with ``iter_shard`` and decodes the members a batch needs
(``decode_flac`` of clean and reverb, ``decode_image`` + resize) in a tight loop: no selection,
shuffle, crop, collate or DataLoader. The in-process row times whole training epochs (shuffle
buffer, random crops, batches; every sample once, as the floor), interleaved with the floor. The
worker rows run a resampled stream of ``--samples`` samples and count throughput after the first
batch, so that worker start-up (spawn, imports) is reported apart. Prints Markdown for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.signal import fftconvolve

from mvsd.audio_io import SAMPLE_RATE, decode_flac, rms_normalize
from mvsd.config import LoaderConfig, ShardsConfig
from mvsd.data.builder import build_dataset, plan_tasks
from mvsd.data.loader import make_loader, select_shards
from mvsd.data.sample import Sample, decode_image
from mvsd.data.shards import iter_shard

CLIP_SECONDS = 2.56
IMAGE_HW = (96, 128)
POOLS = {"paired": 0.66, "clean_only": 0.17, "reverb_only": 0.17}


# -- a synthetic dataset shaped like simrooms (also used by bench_shards.py) ----------------------


def synthetic_audio(rng: np.random.Generator, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Speech-like float32 at 16 kHz: harmonics of a gliding f0 under a syllable envelope."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None)
    x = voiced * envelope + 0.02 * rng.standard_normal(t.size)
    return rms_normalize(x.astype(np.float32))


def synthetic_image(rng: np.random.Generator, hw: tuple[int, int] = IMAGE_HW) -> np.ndarray:
    """``(H, W, 3)`` uint8: a shaded room-like gradient with a few boxes and sensor noise."""
    h, w = hw
    base = np.linspace(rng.uniform(40, 120), rng.uniform(140, 230), h)[:, None, None]
    img = np.broadcast_to(base * rng.uniform(0.6, 1.0, 3), (h, w, 3)).copy()
    for _ in range(4):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y : y + rng.integers(8, h // 2), x : x + rng.integers(8, w // 2)] = rng.uniform(0, 255, 3)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def synthetic_sample(item: tuple[str, str, int]) -> Sample:
    """A train sample of ``kind`` with 2.56 s audio and a 128x96 image, all from seed ``i``."""
    key, kind, i = item
    rng = np.random.default_rng(i)
    clean = synthetic_audio(rng)
    rt60 = float(rng.uniform(0.2, 1.2))
    decay = np.exp(-6.9 * np.arange(int(0.3 * SAMPLE_RATE)) / (rt60 * SAMPLE_RATE))
    rir = (rng.standard_normal(decay.size) * decay).astype(np.float32)
    reverb = rms_normalize(fftconvolve(clean, rir)[: clean.size].astype(np.float32))
    return Sample(
        key=key,
        split="train",
        kind=kind,
        source="synthetic",
        room_id=f"room{i % 20}",
        clean=None if kind == "reverb_only" else clean,
        reverb=None if kind == "clean_only" else reverb,
        image=synthetic_image(rng),
        rt60=rt60,
    )


def synthetic_groups(n: int) -> dict[tuple[str, str], list[tuple[str, str, int]]]:
    groups, i = {}, 0
    for kind, share in POOLS.items():
        items = [(f"syn_{kind}_{j:05d}", kind, i + j) for j in range(round(n * share))]
        groups[("train", kind)], i = items, i + len(items)
    return groups


def make_synthetic_dataset(out: Path, n: int) -> Path:
    tasks = plan_tasks(synthetic_groups(n), samples_per_shard=100)
    summary = build_dataset(out, tasks, synthetic_sample, name="synthetic", shards=ShardsConfig())
    print(summary.line(), file=sys.stderr)
    return out


# -- measurements ---------------------------------------------------------------------------------


def floor(urls: list[str], hw: tuple[int, int]) -> tuple[int, float]:
    """(samples, seconds) to read and decode every sample of ``urls`` once, in a tight loop."""
    h, w = hw
    n, t0 = 0, time.perf_counter()
    for url in urls:
        for _, members in iter_shard(url):
            for m in ("clean.flac", "reverb.flac"):
                if m in members:
                    decode_flac(members[m])
            if "image.jpg" in members:
                img = decode_image(members["image.jpg"])
                if img.shape[:2] != (h, w):
                    np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
            n += 1
    return n, time.perf_counter() - t0


def loader_epoch(dataset: str, cfg: LoaderConfig) -> tuple[int, float]:
    """(samples, seconds) of one in-process training epoch: every sample once, all costs in."""
    loader = make_loader(dataset, cfg, splits="train", seed=0)
    t0 = time.perf_counter()
    n = sum(len(b["key"]) for b in loader)
    return n, time.perf_counter() - t0


def loader_run(dataset: str, cfg: LoaderConfig, samples: int) -> tuple[int, float, float]:
    """(samples after the first batch, their seconds, seconds to the first batch) of a
    resampled stream of ``samples``: long enough to measure workers past their start-up."""
    loader = make_loader(dataset, cfg, splits="train", epoch_samples=samples, seed=0)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    t1 = time.perf_counter()
    n = sum(len(b["key"]) for b in it)
    return n, time.perf_counter() - t1, t1 - t0


def machine_info() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", help="dataset folder or URL (default: a synthetic one)")
    p.add_argument("--make-samples", type=int, default=400, help="size of the synthetic dataset")
    p.add_argument("--make-at", help="build (or reuse) the synthetic dataset here and keep it")
    p.add_argument("--samples", type=int, default=2000, help="samples per loader run")
    p.add_argument("--workers", default="0,1,2", help="comma-separated num_workers to measure")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs per row")
    p.add_argument("--profile", action="store_true", help="cProfile the in-process loader")
    return p.parse_args()


def in_process_rows(dataset: str, cfg: LoaderConfig, urls: list[str], repeats: int) -> list[tuple]:
    """The floor and whole in-process epochs, interleaved so that load from elsewhere (this is a
    shared machine) hits both alike; best of ``repeats``."""
    floor(urls, IMAGE_HW)  # warm the page cache and the decoders
    floors, epochs = [], []
    for _ in range(repeats):
        floors.append(floor(urls, IMAGE_HW))
        epochs.append(loader_epoch(dataset, dataclasses.replace(cfg, num_workers=0)))
    floor_rate = max(n / s for n, s in floors)
    rate = max(n / s for n, s in epochs)
    return [
        ("floor: iter_shard + decode, every sample once", "-", floor_rate, floor_rate, "-"),
        ("loader, one training epoch, every sample once", 0, rate, rate, "-"),
    ]


def worker_row(dataset: str, cfg: LoaderConfig, samples: int, repeats: int) -> tuple:
    runs = [loader_run(dataset, cfg, samples) for _ in range(repeats)]
    n, s, start = min(runs, key=lambda r: r[1] / r[0])
    w = cfg.num_workers
    return (f"loader, resampled, {samples} samples", w, n / s, n / s / max(w, 1), f"{start:.2f}")


def print_table(rows: list[tuple]) -> None:
    floor_rate = rows[0][2]
    print("| pipeline | workers | samples/s | per worker | start-up s | per worker / floor |")
    print("|---|---|---|---|---|---|")
    for name, w, rate, per, start in rows:
        print(f"| {name} | {w} | {rate:.0f} | {per:.0f} | {start} | {per / floor_rate:.2f} |")


def main() -> None:
    args = parse_args()
    tmp = None
    if args.dataset is None:
        tmp = None if args.make_at else tempfile.TemporaryDirectory(prefix="bench-loader-")
        where = Path(args.make_at or tmp.name) / "synthetic"
        args.dataset = str(make_synthetic_dataset(where, args.make_samples))
    cfg = LoaderConfig(segment_seconds=CLIP_SECONDS, batch_size=args.batch_size, image_size=IMAGE_HW)
    urls, _ = select_shards(args.dataset, splits="train")
    rows = in_process_rows(args.dataset, cfg, urls, args.repeats)
    for w in (int(x) for x in args.workers.split(",")):
        rows.append(
            worker_row(args.dataset, dataclasses.replace(cfg, num_workers=w), args.samples, args.repeats)
        )
    print(f"\nLoader throughput on {args.dataset} ({len(urls)} shards; {machine_info()});")
    print(
        f"batch {cfg.batch_size}, {CLIP_SECONDS} s clips, {IMAGE_HW[1]}x{IMAGE_HW[0]} images, "
        f"shuffle buffer {cfg.shuffle_buffer}, best of {args.repeats}.\n"
    )
    print_table(rows)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(loader_epoch, args.dataset, dataclasses.replace(cfg, num_workers=0))
        pstats.Stats(profile).sort_stats("tottime").print_stats(18)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
