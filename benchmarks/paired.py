"""Paired comparison of two systems on the same samples (e.g. the blank-image ablation).

    .venv/bin/python benchmarks/paired.py metrics/demo-samples.parquet round-1@1steps \
        metrics/demo-samples.parquet round-1-blank-image@1steps

For every metric: the mean per-sample difference (second minus first) with its 95 % confidence
interval (1.96 s/sqrt(n), normal approximation), over the samples both systems scored. Two systems
run on the same samples share the samples' difficulty, so their difference has a far narrower
interval than the two unpaired intervals suggest: "beyond the CI" here is the right test of
"measurably worse". Prints Markdown.
"""

from __future__ import annotations

import argparse

import pyarrow.parquet as pq

from mvsd.eval.metrics import METRICS
from mvsd.eval.result import paired_difference as paired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("samples_a")
    ap.add_argument("system_a")
    ap.add_argument("samples_b")
    ap.add_argument("system_b")
    args = ap.parse_args()
    rows_a = [r for r in pq.read_table(args.samples_a).to_pylist() if r["system"] == args.system_a]
    rows_b = [r for r in pq.read_table(args.samples_b).to_pylist() if r["system"] == args.system_b]
    if not rows_a or not rows_b:
        raise SystemExit(f"no rows for {args.system_a!r} or {args.system_b!r}")
    print(f"| metric | {args.system_b} − {args.system_a} | 95 % CI | n | better is | verdict |")
    print("|---|---:|---:|---:|---|---|")
    for name, m in METRICS.items():
        mean, ci, n = paired(rows_a, rows_b, name)
        if n < 2:
            continue
        worse = (mean > 0) == (m.direction == "lower")
        verdict = ("worse" if worse else "better") + (" (beyond the CI)" if abs(mean) > ci else " (within the CI)")
        print(f"| {name} | {mean:+.4f} | ± {ci:.4f} | {n} | {m.direction} | {verdict} |")


if __name__ == "__main__":
    main()
