"""The converters and the training step on a GPU: same results as the CPU, and how fast.

    # here (needs the dataset): one batch of real training samples, saved for the GPU machine
    .venv/bin/python benchmarks/bench_gpu.py --save-batch build/gpu/batch.pt
    # on the GPU machine (no dataset, no Ray needed there)
    python benchmarks/bench_gpu.py --batch build/gpu/batch.pt [--out results.md]

1. Same results. The room each converter reads from a picture and one U-Net evaluation on fixed
   inputs, CUDA against CPU in fp32 (same weights); a whole conversion in bf16 autocast against
   fp32 on the GPU (same weights, same noise: SNR in dB); a training step in bf16 with finite
   losses.
2. Training: samples/s of ``train_step`` (both converters, all loss terms, optimizer and EMA), by
   size, batch and precision, on CUDA and, in the same run, on that machine's CPU.
3. Inference: real-time factor and clips/s of ``Converter.convert`` by size, batch and steps, bf16
   autocast and fp32, and a 60 s input (the physical estimate covers it whole).

Prints Markdown (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from bench_converter import clip  # the same test clip and picture as the CPU tables

from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.train.room import freeze_rooms
from mvsd.train.state import TrainState
from mvsd.train.step import train_step

SR = 16_000
OUT: list[str] = []  # --out, if given
BATCHES = {"train": [4, 16, 64], "infer": [1, 16, 64]}
DEV = "cuda"  # --device: the script shakes out on a CPU too (CPU bf16 autocast)


def say(line: str = "") -> None:
    print(line, flush=True)
    if OUT:  # written as it goes: a run stopped at its time limit keeps what it measured
        with open(OUT[0], "a") as f:
            f.write(line + "\n")


def save_batch(path: str, dataset: str, n: int) -> None:
    from mvsd.config import loader_config
    from mvsd.data.loader import make_loader

    p = load_params(None, ["loader.num_workers=0"])
    batch = next(iter(make_loader(dataset, loader_config(p, n), splits=["train"], kinds=["paired"], seed=0)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(batch, path)
    print(f"{path}: {n} paired training samples, {Path(path).stat().st_size / 2**20:.1f} MiB")


def grow(batch: dict, n: int) -> dict:
    """``n`` samples: the saved ones, repeated."""
    k = len(batch["meta"])
    idx = torch.arange(n) % k
    return {key: v[idx] if torch.is_tensor(v) else [v[i] for i in idx.tolist()] for key, v in batch.items()}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def precision(device: str, bf16: bool):
    return (
        torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - x) ** 2), 1e-30)))


# -- 1. same results -----------------------------------------------------------------------------


def check_same(batch: dict, size: str) -> None:
    say(f"\n### Same results, `{size}`\n")
    say("| check | value | bound |")
    say("|---|---:|---|")
    model = load_params(None, [f"model.size={size}"]).model
    img = batch["image"][:4]
    for direction in ("reverb", "dereverb"):
        cpu = Converter.new(direction, model, seed=0, device="cpu")
        with torch.no_grad():  # a fresh U-Net's last layer is zero: give every layer something to do
            gen = torch.Generator().manual_seed(0)
            for prm in cpu.net.parameters():
                if not prm.any():
                    prm.copy_(0.02 * torch.randn(prm.shape, generator=gen))
        cpu.ema.load_state_dict(cpu.net.state_dict())
        gpu = Converter.new(direction, model, seed=0, device=DEV)
        gpu.net.load_state_dict(cpu.net.state_dict())
        gpu.ema.load_state_dict(cpu.ema.state_dict())
        rc, rg = cpu.describe_room(img, 4), gpu.describe_room(img.to(DEV), 4)
        rel = float((rc.t60 - rg.t60.cpu()).abs().max() / rc.t60.abs().max())
        say(f"| {direction}: room T60, CUDA vs CPU fp32, max rel. difference | {rel:.1e} | < 1e-3 |")
        # one U-Net evaluation on fixed inputs
        torch.manual_seed(1)
        wave = batch["reverb" if direction == "dereverb" else "clean"][:2, : int(1.28 * SR)]
        outs = []
        for conv in (cpu, gpu):
            net = conv.inference_net.eval()
            with torch.inference_mode():
                w = wave.to(conv.device)
                spec = conv.stft(w)
                emb, tok = net.encode_image(img[:2].to(conv.device))
                outs.append(
                    net.denoise(spec, spec, torch.full((2,), 0.3, device=conv.device), (emb, tok), spec).cpu()
                )
        rel = float((outs[0] - outs[1]).abs().max() / outs[0].abs().max())
        say(
            f"| {direction}: one U-Net evaluation, CUDA vs CPU fp32, max rel. difference | {rel:.1e} | < 1e-3 |"
        )
        x = wave[0].numpy()
        y32 = gpu.convert(x, img[0], steps=1, seed=0)
        with precision(DEV, True):
            y16 = gpu.convert(x, img[0], steps=1, seed=0)
        say(
            f"| {direction}: 1-step conversion, bf16 autocast vs fp32 on CUDA, SNR | {snr_db(y32, y16):.1f} dB | > 20 dB, finite: {bool(np.isfinite(y16).all())} |"
        )


# -- 2. training ---------------------------------------------------------------------------------


def train_rate(
    batch: dict, size: str, n: int, device: str, bf16: bool, steps: int
) -> tuple[float, float, bool]:
    """samples/s, peak GPU memory (GiB), all losses finite."""
    p = load_params(None, [f"model.size={size}", f"train.batch_size={n}", f"train.use_gpu={device != 'cpu'}"])
    state = TrainState.new(p.model, p.train, device=device)
    freeze_rooms(state)  # as the main loop after the room steps (train.room_lr_scale: 0)
    gen = torch.Generator().manual_seed(0)  # the loop's CPU generator (mvsd.rng moves draws)
    b = grow(batch, n)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    finite = True
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            sync(device)
            t0 = time.perf_counter()
        with precision(device, bf16):
            terms = train_step(state, b, p.train, gen)
        finite &= all(bool(torch.isfinite(v).all()) for v in terms.values())
    sync(device)
    rate = steps * n / (time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return rate, mem, finite and state.skipped_steps == 0


def training_table(batch: dict, sizes: list[str], steps: int) -> None:
    say(f"\n### Training: `train_step` of both converters ({steps} steps after 2 warm-ups)\n")
    say(
        "| device | size | batch | precision | samples/s | x CPU (same size, batch 4, fp32) | peak GPU memory (GiB) | losses finite |"
    )
    say("|---|---|---:|---|---:|---:|---:|---|")
    for size in sizes:
        cpu, _, ok = train_rate(batch, size, 4, "cpu", False, max(3, steps // 3))
        say(f"| CPU, {torch.get_num_threads()} threads | {size} | 4 | fp32 | {cpu:.1f} | 1.0 | - | {ok} |")
        for n in BATCHES["train"]:
            for bf16 in (False, True):
                try:
                    rate, mem, ok = train_rate(batch, size, n, DEV, bf16, steps)
                except Exception as e:  # report and go on: the rest of the table still tells
                    say(
                        f"| {DEV} | {size} | {n} | {'bf16' if bf16 else 'fp32'} | failed: {type(e).__name__}: {str(e)[:120]} | | | |"
                    )
                    continue
                say(
                    f"| {DEV} | {size} | {n} | {'bf16' if bf16 else 'fp32'} | {rate:.1f} | {rate / cpu:.1f} | {mem:.2f} | {ok} |"
                )


# -- 3. inference --------------------------------------------------------------------------------


def timed(fn, repeats: int, device: str) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def inference_table(sizes: list[str], repeats: int) -> None:
    say("\n### Inference: `Converter.convert` (reverb), 2.56 s clips\n")
    say("| device | size | steps | batch | precision | seconds | RTF per clip | clips/s |")
    say("|---|---|---:|---:|---|---:|---:|---:|")
    x, img = clip(2.56)
    for size in sizes:
        model = load_params(None, [f"model.size={size}"]).model
        cpu = Converter.new("reverb", model, device="cpu")
        sec = timed(lambda: cpu.convert(x, img, steps=1), 2, "cpu")  # noqa: B023
        say(
            f"| CPU, {torch.get_num_threads()} threads | {size} | 1 | 1 | fp32 | {sec:.3f} | {sec / 2.56:.4f} | {1 / sec:.1f} |"
        )
        conv = Converter.new("reverb", model, device=DEV)
        for steps in (1, 8):
            for n in BATCHES["infer"]:
                xb = np.repeat(x[None], n, axis=0)
                for bf16 in (False, True):
                    with precision(DEV, bf16):
                        sec = timed(lambda: conv.convert(xb, img, steps=steps), repeats, DEV)  # noqa: B023
                    say(
                        f"| {DEV} | {size} | {steps} | {n} | {'bf16' if bf16 else 'fp32'} | {sec:.3f} | {sec / 2.56 / n:.5f} | {n / sec:.0f} |"
                    )
    say("\n### A 60 s input (default `small`, 1 step)\n")
    say("| device | precision | seconds | RTF |")
    say("|---|---|---:|---:|")
    x60, _ = clip(60.0)
    model = load_params(None, []).model
    for device, bf16 in (("cpu", False), (DEV, False), (DEV, True)):
        conv = Converter.new("reverb", model, device=device)
        with precision(device, bf16):
            sec = timed(lambda: conv.convert(x60, img, steps=1), 1 if device == "cpu" else repeats, device)  # noqa: B023
        say(f"| {device} | {'bf16' if bf16 else 'fp32'} | {sec:.3f} | {sec / 60:.5f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save-batch", help="write one batch of real training samples here and stop")
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--batch", default="build/gpu/batch.pt", help="the saved batch (see --save-batch)")
    ap.add_argument("--sizes", nargs="+", default=["small", "base"])
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per row")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", nargs="+", default=["same", "train", "infer"])
    ap.add_argument("--out", help="also write the Markdown here")
    ap.add_argument(
        "--device", default="cuda", help="cuda (the point); cpu runs the same code to shake it out"
    )
    ap.add_argument("--train-batches", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--infer-batches", type=int, nargs="+", default=[1, 16, 64])
    args = ap.parse_args()
    if args.save_batch:
        save_batch(args.save_batch, args.dataset, 16)
        return
    global DEV
    DEV = args.device
    BATCHES.update(train=args.train_batches, infer=args.infer_batches)
    if DEV.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device (this script measures a GPU; see its docstring)")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the tables
    torch.backends.cudnn.allow_tf32 = False
    if args.out:
        OUT.append(args.out)
        Path(args.out).write_text("")
    batch = torch.load(args.batch, weights_only=True)
    say(
        f"machine: {torch.cuda.get_device_name() if DEV.startswith('cuda') else 'no GPU'}, {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"torch CPU threads {torch.get_num_threads()}"
    )
    parts = {
        "same": lambda: [check_same(batch, size) for size in args.sizes],
        "train": lambda: training_table(batch, args.sizes, args.steps),
        "infer": lambda: inference_table(args.sizes, args.repeats),
    }
    failed = False
    for name in args.only:
        try:
            parts[name]()
        except Exception:  # one part failing must not cost the others (a GPU lease is short)
            failed = True
            say(f"\n{name} failed:\n```\n{traceback.format_exc()}```")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
