"""Could D's pseudo-clean speech teach R's room head? T60 of the RIR deconvolved from each
pseudo_clean pair (the real room recording by D's dry estimate) against the room's true T60.

    .venv/bin/python benchmarks/pseudo_room_targets.py \
        --pseudo build/data-efficiency/simrooms-p10-pseudo/p10-s0b/round-0 \
        --dataset build/data-efficiency/simrooms-p10

R's room head (image -> per-band T60, DRR) is taught only where the RIR is known (paired samples)
and then frozen, so unpaired room recordings never reach it. Deconvolving a room recording by
its pseudo-clean partner would give an RIR, hence T60 targets for pictures of rooms that no paired
sample shows. This measures how good those targets are, with the truth SimRooms keeps in its
manifest for reverb-only samples (``rt60``; never used in training): mean absolute error, bias,
correlation, and the error of predicting the mean T60 for comparison, on all pseudo_clean pairs
and on those of rooms with no paired training sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq

from mvsd.acoustics import measure_rt60
from mvsd.audio_io import decode_flac
from mvsd.data.shards import iter_shard
from mvsd.eval.metrics import recovered_rir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pseudo", required=True, help="a pseudo-pair set (mvsd pseudo's output folder)")
    ap.add_argument("--dataset", required=True, help="the dataset it was made from (its manifest has the truth)")
    args = ap.parse_args()
    rows = pq.read_table(Path(args.dataset) / "manifest.parquet").to_pylist()
    truth = {r["key"]: r for r in rows}
    paired_rooms = {r["room_id"] for r in rows if r["split"] == "train" and r["kind"] == "paired"}
    pairs = {r["key"]: r for r in pq.read_table(Path(args.pseudo) / "manifest.parquet").to_pylist()
             if r["kind"] == "pseudo_clean"}  # fmt: skip
    found = []  # (true T60, deconvolved T60, room has a paired sample)
    for shard in sorted({r["shard"] for r in pairs.values()}):
        with fsspec.open(str(Path(args.pseudo) / shard), "rb") as f:
            for key, members in iter_shard(f, name=shard):
                if key not in pairs:
                    continue
                t = truth[pairs[key]["parent_key"]]
                h = recovered_rir(decode_flac(members["reverb.flac"]), decode_flac(members["clean.flac"]))
                est = measure_rt60(h) if h is not None else np.nan
                found.append((t["rt60"], est, t["room_id"] in paired_rooms))
    a = np.array(found, float)
    a = a[np.isfinite(a[:, 1]) & np.isfinite(a[:, 0])]
    if not len(a):
        raise SystemExit(f"{args.pseudo}: no pseudo_clean pair with a measurable T60")
    print(f"{len(a)} pseudo_clean pairs of {len(found)} with a measurable T60 ({args.pseudo})")
    print("| pairs | n | T60 MAE (s) | bias (s) | Pearson r | predicting the mean: MAE (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sel in (("all", np.ones(len(a), bool)), ("rooms without a paired sample", a[:, 2] == 0)):
        t, e = a[sel, 0], a[sel, 1]
        if len(t) < 2:
            continue
        r = np.corrcoef(t, e)[0, 1]
        print(f"| {name} | {len(t)} | {np.abs(e - t).mean():.3f} | {(e - t).mean():+.3f} | {r:.2f} "
              f"| {np.abs(t - a[:, 0].mean()).mean():.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
