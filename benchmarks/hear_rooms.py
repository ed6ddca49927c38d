"""Does the reverberator hear the picture? The church and the studio test.

    .venv/bin/python benchmarks/hear_rooms.py --round checkpoints/demo/round-1 [--split test_unseen]

Takes ~8 s of dry speech (three clips of the split, joined), and the picture of the most
reverberant and of the driest room of the split (by their RIRs' broadband RT60; with SimRooms,
typically a church or hall and a studio or bathroom), converts the speech with the round's
reverberator for each picture, and measures the RT60 of each output (deconvolution against the
dry speech, as `mvsd eval` does). The issue's bar: each output's RT60 within 25 % of its room's
own. Writes the two outputs (and the dry input) as WAV files to ``--out`` so a user can listen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from mvsd.acoustics import measure_rt60
from mvsd.audio_io import SAMPLE_RATE
from mvsd.converter import Converter
from mvsd.data.manifest import read_manifest
from mvsd.eval.baselines import read_samples
from mvsd.eval.metrics import rt60_deconv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round", required=True, help="a round folder with reverb.safetensors")
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="test_unseen")
    ap.add_argument("--out", default="reports/hear-rooms")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    args = ap.parse_args()

    rows = [
        r
        for r in read_manifest(args.dataset).to_pylist()
        if r["split"] == args.split and r["kind"] == "paired"
    ]
    rows = [r for r in rows if r["rt60"] is not None and np.isfinite(r["rt60"])]
    wet_room = max(rows, key=lambda r: r["rt60"])
    dry_room = min(rows, key=lambda r: r["rt60"])
    speech_rows = [r for r in rows if r["key"] not in (wet_room["key"], dry_room["key"])][:3]
    samples = {s.key: s for s in read_samples(args.dataset, [args.split])}
    dry = np.concatenate([samples[r["key"]].clean for r in speech_rows]).astype(np.float32)
    conv = Converter.from_checkpoint(Path(args.round) / "reverb.safetensors", expect_direction="reverb")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "dry.wav", dry, SAMPLE_RATE)
    result = {}
    print(f"{len(dry) / SAMPLE_RATE:.1f} s of dry speech; round {args.round}")
    print("| room | its RT60 (s) | predicted broadband T60 (s) | RT60 of the output (s) | error |")
    print("|---|---:|---:|---:|---:|")
    for name, row in (("reverberant", wet_room), ("dry", dry_room)):
        s = samples[row["key"]]
        true = measure_rt60(s.rir) if s.rir is not None else row["rt60"]
        room = conv.describe_room(s.image)
        wet = conv.convert(dry, s.image, steps=args.steps, seed=0)
        got = rt60_deconv(wet, dry)
        sf.write(out / f"{name}-{row['room_id']}.wav", wet, SAMPLE_RATE)
        result[name] = {"room": row["room_id"], "true_rt60": true, "output_rt60": got,
                        "predicted_t60_bands": room.t60[0].tolist()}  # fmt: skip
        print(
            f"| {name} ({row['room_id']}) | {true:.2f} | {float(room.t60[0].mean()):.2f} | {got:.2f} "
            f"| {100 * abs(got - true) / true:.0f} % |"
        )
    (out / "hear-rooms.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out}/*.wav and hear-rooms.json")


if __name__ == "__main__":
    main()
