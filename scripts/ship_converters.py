"""Make a round's converters the ones shipped with mvsd (``mvsd/pretrained/``): the default of
``mvsd reverb/dereverb`` until a round of the user's own is published to ``checkpoints/latest``.

    python scripts/ship_converters.py checkpoints/quality/round-1 --recipe "..." --metrics metrics/demo-headline.json

Writes the inference weights only (the EMA's: half a training checkpoint, converting exactly as
the round does) and ``round.json`` (the round's own record plus the recipe and its headline
metrics), so that a reader of the repository can tell what the shipped models are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mvsd.converter import Converter
from mvsd.data.builder import stored_version

OUT = Path(__file__).resolve().parent.parent / "mvsd" / "pretrained"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("round", type=Path, help="a round folder: reverb.safetensors, dereverb.safetensors, round.json")
    ap.add_argument("--recipe", required=True, help="how the round was made (the command)")
    ap.add_argument("--metrics", type=Path, help="its headline metrics (metrics/<name>-headline.json)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for direction in ("reverb", "dereverb"):
        conv = Converter.from_checkpoint(a.round / f"{direction}.safetensors", expect_direction=direction)
        conv.save(a.out / f"{direction}.safetensors", extra={"recipe": a.recipe}, inference_only=True)
    record = json.loads((a.round / "round.json").read_text())
    # The recipe says the params; paths on the machine that trained mean nothing elsewhere: the
    # datasets are named by their content versions instead.
    datasets = record.pop("datasets")
    record.pop("params", None)
    record["dataset_versions"] = {
        d.split("/datasets/")[-1]: stored_version(d) for d in [datasets["paired"], *datasets.get("pseudo", [])]
    }
    record["recipe"] = a.recipe
    if a.metrics:
        record["headline_metrics"] = json.loads(a.metrics.read_text())
    (a.out / "round.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for f in sorted(a.out.iterdir()):
        print(f"{f}: {f.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
