"""Converter inference speed: real-time factor per step count, size table, and the WPE baseline.

    .venv/bin/python benchmarks/bench_converter.py                    # CPU: RTF tables + sizes
    .venv/bin/python benchmarks/bench_converter.py --device cuda --bf16 --sizes base   # a GPU

RTF = processing time / audio duration for ``Converter.convert`` at batch 1 on a 2.56 s clip
(best of ``--repeats``), beside nara-wpe's offline WPE (1 channel, 10 taps, delay 3,
3 iterations) on the same clip in the same run. Sizes: parameters, FLOPs per network evaluation
(torch's FlopCounterMode), and peak resident memory of a process that converts one clip (CPU) or
peak CUDA memory (GPU). Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from mvsd.config import load_params
from mvsd.converter import Converter

SR = 16_000
CLIP_S = 2.56


def clip(seconds: float = CLIP_S) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    x = (
        0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
        + 0.01 * rng.standard_normal(t.size)
    ).astype(np.float32)
    return x, rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)


def timed(fn, repeats: int, sync=lambda: None) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))  # noise on a shared VM only ever adds time: report the best run


def wpe_rtf(x: np.ndarray, repeats: int, seconds: float = CLIP_S) -> float:
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe

    def run():
        y = stft(x[None], size=512, shift=128)  # (1, frames, bins)
        z = wpe(y.transpose(2, 0, 1), taps=10, delay=3, iterations=3, statistics_mode="full").transpose(
            1, 2, 0
        )
        istft(z, size=512, shift=128)

    return timed(run, repeats) / seconds


def length_table(args) -> None:
    """RTF by input length for both directions (default steps), beside WPE on the same input:
    the physical estimate covers the whole input at once, the flow works segment by segment, so
    the cost should grow linearly."""
    print("\n| direction | input (s) | steps | seconds | RTF | RTF / WPE RTF |")
    print("|---|---:|---:|---:|---:|---:|")
    for seconds in args.lengths:
        x, img = clip(seconds)
        wpe = wpe_rtf(x, 1 if seconds > 10 else args.repeats, seconds)
        for direction in ("reverb", "dereverb"):
            params = load_params(None, ["model.size=small"])
            conv = Converter.new(direction, params.model, device=args.device)
            for steps in (0, conv.spec.steps):
                sec = timed(lambda s=steps: conv.convert(x, img, steps=s), 1 if seconds > 10 else args.repeats)  # noqa: B023
                print(f"| {direction} | {seconds:g} | {steps} | {sec:.3f} | {sec / seconds:.4f} | {sec / seconds / wpe:.2f} |")
        print(f"| nara-wpe (10 taps, 3 it.) | {seconds:g} | - | {wpe * seconds:.3f} | {wpe:.4f} | 1.00 |")


def converter(size: str, device: str) -> Converter:
    params = load_params(None, [f"model.size={size}"])
    return Converter.new("reverb", params.model, device=device)


def rtf_table(args) -> None:
    x, img = clip()
    conv = converter("small", args.device)
    wpe = wpe_rtf(x, args.repeats)
    print(
        f"\nRTF of `small` on a {CLIP_S} s clip, batch 1, device {args.device}, torch threads {torch.get_num_threads()}"
    )
    print("| process | sampler | steps | seconds | RTF | RTF / WPE RTF |")
    print("|---|---|---:|---:|---:|---:|")
    for steps in args.steps:
        sec = timed(lambda s=steps: conv.convert(x, img, steps=s), args.repeats)
        print(
            f"| {conv.spec.process} | {conv.spec.sampler} | {steps} | {sec:.3f} | {sec / CLIP_S:.3f} | {sec / CLIP_S / wpe:.1f} |"
        )
    print(f"| nara-wpe offline (10 taps, 3 iterations) | - | - | {wpe * CLIP_S:.3f} | {wpe:.3f} | 1.0 |")


def flops_per_step(conv: Converter) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    spec = conv.stft(torch.zeros(1, int(CLIP_S * SR), device=conv.device))
    img = torch.zeros(1, conv.net.visual.cfg.in_channels, *conv.spec.image_size, device=conv.device)
    net = conv.net.eval()
    with torch.inference_mode():
        cond = net.encode_image(img)
        with FlopCounterMode(display=False) as counter:
            net.denoise(spec, spec, torch.zeros(1, device=conv.device), cond, spec)
    return counter.get_total_flops()


def peak_memory_mb(size: str, device: str) -> float:
    """Peak RSS of a fresh process converting one clip (CPU), or peak CUDA memory."""
    code = (
        "import resource, torch, sys; sys.path.insert(0, 'benchmarks'); import bench_converter as b; "
        f"c = b.converter('{size}', '{device}'); x, i = b.clip(); c.convert(x, i, steps=2); "
        "print(torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() and "
        f"'{device}'.startswith('cuda') else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def size_table(args) -> None:
    print("\n| size | parameters | GFLOPs per step (2.56 s) | peak memory (MB) |")
    print("|---|---:|---:|---:|")
    for size in args.sizes:
        conv = converter(size, args.device)
        n = sum(p.numel() for p in conv.net.parameters())
        print(
            f"| {size} | {n / 1e6:.2f} M | {flops_per_step(conv) / 1e9:.2f} | {peak_memory_mb(size, args.device):.0f} |"
        )


def gpu_table(args) -> None:
    """RTF and throughput of each size in bf16 autocast on the GPU."""
    x, img = clip()
    sync = torch.cuda.synchronize
    print(f"\nGPU: {torch.cuda.get_device_name()}, bf16 autocast")
    print("| size | steps | batch | seconds | RTF | clips/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        conv = converter(size, "cuda")
        for batch in (1, 16):
            xb = np.repeat(x[None], batch, axis=0)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                sec = timed(lambda: conv.convert(xb, img, steps=args.steps[-1]), args.repeats, sync)  # noqa: B023
            print(
                f"| {size} | {args.steps[-1]} | {batch} | {sec:.3f} | {sec / CLIP_S / batch:.4f} | {batch / sec:.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="GPU table in bf16 autocast")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.56, 10.0, 60.0], help="input lengths (s) of the RTF-by-length table")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"maxrss at start {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    if args.device == "cpu":
        rtf_table(args)
        length_table(args)
    if args.bf16:
        gpu_table(args)
    size_table(args)


if __name__ == "__main__":
    main()
