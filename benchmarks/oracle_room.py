"""What would a perfect room reader give the reverberator? Its refinement fed the *true* room.

    .venv/bin/python benchmarks/oracle_room.py --round mvsd/pretrained [--split test_unseen] [--limit 150]

Issue 11 asks that a grey image make R's STFT distance ≥ 1.2x its own with the pictures. How much
of that ratio could a better picture reader buy? For each sample the round's reverberator runs
three ways, one flow step each (the default), same seed:

* **picture** — as `mvsd eval` runs it: the room head reads the picture, the flow refines;
* **grey image** — as `mvsd eval --blank-image`: a uniform grey picture for both;
* **true room, picture's tokens** — the physical estimate made from the sample's *true* room
  (per-band T60 and DRR measured on its RIR, as `mvsd eval`'s head table measures them; a band
  that does not decay takes the head's reading), refined with the picture's conditioning: what a
  perfect room reader would get from today's refinement.

and prints STFT distance, RT60 and DRR error (the evaluation's metric code) with each row's ratio
to the grey row. A ratio the true room cannot reach is beyond any room head with this refinement.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mvsd import acoustics as ac
from mvsd.converter import Converter
from mvsd.eval.baselines import level, read_samples, reference
from mvsd.eval.metrics import score
from mvsd.eval.run import true_room
from mvsd.images import prepare_images
from mvsd.models.room import Room

GREY = np.full((96, 128, 3), 128, dtype=np.uint8)


@torch.inference_mode()
def convert(conv: Converter, dry: np.ndarray, image, room_fn=None, seed: int = 0) -> np.ndarray:
    """One-step conversion of ``dry`` as :meth:`Converter.convert` does it, with the room the head
    reads replaced by ``room_fn(room)`` if given."""
    spec = conv.spec
    x = torch.from_numpy(np.asarray(dry, dtype=np.float32))[None]
    x = x * (10 ** (spec.rms_db / 20) / x.pow(2).mean().sqrt().clamp(min=1e-12))
    images = prepare_images(image, 1, spec.image_size, spec.use_depth)
    net = conv.inference_net.eval()
    gen = torch.Generator().manual_seed(seed)
    embedding, tokens = net.encode_image(images)
    room = net.room(embedding)
    if room_fn is not None:
        room = room_fn(room)
    estimate = net.first_estimate(x, room, gen)
    y = conv._refine(net, x, estimate, embedding, tokens, spec.steps, gen, None)
    return y[0].numpy()


def true_room_fn(t60: np.ndarray, drr: float):
    def fn(room: Room) -> Room:
        t = torch.as_tensor(t60, dtype=torch.float32)[None]
        t = torch.where(torch.isfinite(t), t, room.t60).clamp(*ac.T60_RANGE)
        d = room.drr_db if not np.isfinite(drr) else torch.tensor([drr], dtype=torch.float32)
        return Room(t, d.clamp(*ac.DRR_RANGE), room.band_db, room.early_db)

    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round", required=True, help="a round folder with reverb.safetensors")
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="test_unseen")
    ap.add_argument("--limit", type=int, default=150)
    args = ap.parse_args()

    conv = Converter.from_checkpoint(Path(args.round) / "reverb.safetensors", expect_direction="reverb")
    samples = read_samples(args.dataset, [args.split], limit=args.limit)
    t60, drr = true_room(samples)
    rows: dict[str, list[dict]] = {"picture": [], "grey image": [], "true room, picture's tokens": []}
    for i, s in enumerate(samples):
        outs = {
            "picture": convert(conv, s.clean, s.image),
            "grey image": convert(conv, s.clean, GREY),
            "true room, picture's tokens": convert(conv, s.clean, s.image, true_room_fn(t60[i], drr[i])),
        }
        for name, y in outs.items():
            rows[name].append(score(level(y), reference(s, "vam"), "vam"))
    grey = {
        m: np.nanmean([r[m] for r in rows["grey image"]])
        for m in ("stft_distance", "rt60_error", "drr_error")
    }
    print(f"{len(samples)} {args.split} samples, round {args.round}, 1 step")
    print(
        "| R's room | STFT distance ↓ | RT60 error (s) ↓ | DRR error (dB) ↓ | grey / this: STFT | RT60 | DRR |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        m = {k: np.nanmean([r[k] for r in rs]) for k in grey}
        ci = 1.96 * np.nanstd([r["stft_distance"] for r in rs], ddof=1) / np.sqrt(len(rs))
        print(
            f"| {name} | {m['stft_distance']:.4f} ± {ci:.4f} | {m['rt60_error']:.2f} | {m['drr_error']:.2f} "
            f"| {grey['stft_distance'] / m['stft_distance']:.3f}x | {grey['rt60_error'] / m['rt60_error']:.2f}x "
            f"| {grey['drr_error'] / m['drr_error']:.2f}x |"
        )


if __name__ == "__main__":
    main()
