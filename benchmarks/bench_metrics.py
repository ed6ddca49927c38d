"""Benchmark evaluation throughput: metrics per family and baselines, on 2.56 s clips.

    .venv/bin/python benchmarks/bench_metrics.py [--dataset datasets/simrooms] [--n 40] [--table]

Reads the first ``--n`` test_unseen samples of ``--dataset`` (synthetic noise clips through
exponential decays if it is absent) and prints a Markdown table of samples/s per metric family
and per baseline. ``--table`` also scores every baseline on the whole split (WPE tuned on 20 val
pairs, a blind RT60 estimator trained with the default settings) and prints the mean of each
metric: the baseline table of the evaluation report.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.signal import fftconvolve

from mvsd.acoustics import measure_drr, measure_rt60
from mvsd.audio_io import SAMPLE_RATE, scale_pair
from mvsd.data.sample import Sample
from mvsd.eval import metrics as m
from mvsd.eval.baselines import (
    BASELINES,
    BaselineContext,
    RirBank,
    WpeParams,
    evaluate_baseline,
    mean_scores,
    read_samples,
    tune_wpe,
)
from mvsd.eval.rt60 import Rt60Estimator, blind_rt60_error, estimate_rt60, train_rt60_estimator


def synthetic(n: int, seconds: float = 2.56) -> list[Sample]:
    """Noise 'speech' through exponentially decaying responses (RT60 0.3-1.5 s), with images."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        t60, k = rng.uniform(0.3, 1.5), int(seconds * SAMPLE_RATE)
        rir = rng.standard_normal(SAMPLE_RATE) * 10 ** (-3 * np.arange(SAMPLE_RATE) / SAMPLE_RATE / t60) * 0.2
        rir[:40], rir[40] = 0.0, 1.0
        dry = rng.standard_normal(k).astype(np.float32)
        clean, reverb = scale_pair(dry, fftconvolve(dry, rir)[:k].astype(np.float32))
        img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        out.append(Sample(f"syn{i}", "test_unseen", "paired", "synthetic", room_id=f"r{i % 5}", clean=clean,
                          reverb=reverb, image=img, rir=rir.astype(np.float32), rt60=measure_rt60(rir),
                          drr=measure_drr(rir)))  # fmt: skip
    return out


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(seconds, samples/s) of one call of ``fn`` that processes ``n`` samples."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return dt, n / dt


def throughput(
    samples: list[Sample], ctx: BaselineContext, model: Rt60Estimator
) -> list[tuple[str, float, float]]:
    n = len(samples)
    dry = [s.clean for s in samples]
    wet = [s.reverb for s in samples]
    reg = m.METRICS
    wpe40 = BaselineContext(bank=ctx.bank, wpe=WpeParams(taps=40))
    cases: dict[str, Callable[[], object]] = {
        "VAM: stft_distance + log_stft_distance": lambda: [
            (m.stft_distance(d, w), m.log_stft_distance(d, w)) for d, w in zip(dry, wet, strict=True)
        ],
        "VAM: rt60_error + drr_error (deconvolution)": lambda: [
            (m.rt60_error_deconv(w, d, s.rt60), m.drr_error(w, d, s.drr))
            for d, w, s in zip(dry, wet, samples, strict=True)
        ],
        "VAM: blind RT60 estimator (batch 32, 2 clips/sample)": lambda: estimate_rt60(model, np.stack(wet + dry)),
        "dereverb: pesq (wb)": lambda: [reg["pesq"].fn(w, m.Reference(d)) for d, w in zip(dry, wet, strict=True)],
        "dereverb: stoi + estoi (delay-aligned)": lambda: [
            (reg["stoi"].fn(w, m.Reference(d)), reg["estoi"].fn(w, m.Reference(d))) for d, w in zip(dry, wet, strict=True)
        ],
        "dereverb: si_sdr (delay-aligned)": lambda: [reg["si_sdr"].fn(w, m.Reference(d)) for d, w in zip(dry, wet, strict=True)],
        "baseline VAM mean_rir": lambda: [BASELINES["vam"]["mean_rir"](s, ctx) for s in samples],
        "baseline VAM retrieval": lambda: [BASELINES["vam"]["retrieval"](s, ctx) for s in samples],
        "baseline dereverb wpe (10 taps, delay 3, 3 it.)": lambda: [BASELINES["dereverb"]["wpe"](s, ctx) for s in samples],
        "baseline dereverb wpe (40 taps, delay 3, 3 it.: tuned)": lambda: [
            BASELINES["dereverb"]["wpe"](s, wpe40) for s in samples
        ],
    }  # fmt: skip
    for fn in cases.values():  # warm-up: first torch/FFT calls pay one-off setup costs
        timed(fn, n)
    return [(name, *timed(fn, n)) for name, fn in cases.items()]


def baseline_table(dataset: Path, test: list[Sample], bank: RirBank) -> None:
    val = read_samples(dataset, ["val"], limit=20)
    t0 = time.perf_counter()
    wpe_params, grid = tune_wpe([(s.reverb, s.clean) for s in val])
    print(f"\nWPE grid on {len(val)} val pairs ({time.perf_counter() - t0:.0f} s), best first:")
    for row in grid[:4]:
        print(f"  {row}")
    model, report = train_rt60_estimator(dataset)
    print(f"blind RT60 estimator: {report}")
    ctx = BaselineContext(bank=bank, wpe=wpe_params)
    for family, names in BASELINES.items():
        rows = {}
        for name, fn in names.items():
            scores = evaluate_baseline(fn, test, ctx, family)
            means = mean_scores(scores)
            if family == "vam":
                preds = np.stack([fn(s, ctx) for s in test])
                means["blind_rt60_error"] = float(
                    np.mean(blind_rt60_error(model, preds, np.stack([s.reverb for s in test])))
                )
            rows[name] = means
        cols = list(next(iter(rows.values())))
        print(f"\n{family} on {len(test)} test_unseen samples (mean; direction: "
              + ", ".join(f"{c} {m.METRICS[c].direction if c in m.METRICS else 'lower'}" for c in cols) + ")")  # fmt: skip
        print("| baseline | " + " | ".join(cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for name, means in rows.items():
            print(f"| {name} | " + " | ".join(f"{means[c]:.4g}" for c in cols) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("datasets/simrooms"))
    ap.add_argument("--n", type=int, default=40, help="samples timed per row")
    ap.add_argument("--table", action="store_true", help="also score all baselines on the whole split")
    args = ap.parse_args()
    have = (args.dataset / "manifest.parquet").exists()
    if have:
        test = read_samples(args.dataset, ["test_unseen"])
        t0 = time.perf_counter()
        bank = RirBank.from_dataset(args.dataset)
        bank_s = time.perf_counter() - t0
    else:
        test = synthetic(args.n)
        t0 = time.perf_counter()
        bank = RirBank.from_samples(synthetic(30))
        bank_s = time.perf_counter() - t0
    model = Rt60Estimator().eval()  # untrained: throughput only
    rows = throughput(test[: args.n], BaselineContext(bank=bank), model)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; data: "
          f"{args.dataset if have else 'synthetic'}, {min(args.n, len(test))} clips of 2.56 s")  # fmt: skip
    print(f"RIR bank: {len(bank.rirs)} views, built in {bank_s:.1f} s (read + features + mean RIR)\n")
    print("| what | seconds | samples/s | ms/sample |")
    print("|---|---:|---:|---:|")
    n = min(args.n, len(test))
    for name, dt, rate in rows:
        print(f"| {name} | {dt:.2f} | {rate:.1f} | {1000 * dt / n:.1f} |")
    if args.table and have:
        baseline_table(args.dataset, test, bank)


if __name__ == "__main__":
    main()
