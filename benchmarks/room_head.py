"""The room head alone: how well does it read rooms it never saw? (choose here, not on test_unseen)

    .venv/bin/python benchmarks/room_head.py --dataset datasets/simrooms [--aux 0.5] [--steps 600] \
        [--seeds 0,1] [--extra datasets/devrooms]

Trains the ``small`` visual encoder + room head exactly as round 0's room steps do
(:func:`mvsd.train.room.pretrain_rooms`: batch 32, augmented, cosine lr, per-band log-T60 + DRR
loss; the decay-curve term is left out, it teaches band levels, not T60/DRR) on the paired
training samples of every room but every 5th, and scores the held-out rooms' views (and, with
``--extra``, the test_unseen rooms of another SimRooms draw) with ``mvsd eval``'s room errors:
T60 = mean over the six octave bands of |predicted - true|, in seconds; DRR in dB.

``--aux W`` adds a second linear head on the same embedding that predicts the view's room
description from SimRooms' ``rooms.json`` (log volume, log height, log surface/volume, the
surface-weighted absorption per band, log mic-to-talker distance; standardised), weighted by W:
does teaching the encoder what a room is made of help it read T60 on rooms it never saw?
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from room_ceiling import view_features  # noqa: E402

from mvsd import acoustics as ac  # noqa: E402
from mvsd.eval.baselines import read_samples  # noqa: E402
from mvsd.eval.run import true_room  # noqa: E402
from mvsd.images import augment, resize_pixels  # noqa: E402
from mvsd.models.room import RoomHead, RoomTargets, param_loss  # noqa: E402
from mvsd.models.visual import VisualConfig, VisualEncoder  # noqa: E402

SIZE = (96, 128)


def description(view: dict) -> np.ndarray:
    f = view_features(view)
    alpha = 0.161 * f["volume"] / (f["surface"] * f["eyring"])  # -ln(1 - a) per band, from Eyring back
    return np.concatenate(
        [[np.log(f["volume"]), np.log(f["height"]), np.log(f["surface"] / f["volume"]), np.log(f["dist"])], alpha]
    ).astype(np.float32)


def load(dataset: str, split: str):
    views = {v["view_id"]: v for v in json.loads((Path(dataset) / "rooms.json").read_text())}
    samples = [s for s in read_samples(dataset, [split]) if s.rir is not None]
    t60, drr = true_room(samples)
    images = torch.stack([torch.from_numpy(resize_pixels(s.image, SIZE)) for s in samples])
    desc = np.stack([description(views[s.meta["view"]]) for s in samples])
    rooms = np.array([s.room_id for s in samples])
    return images.float(), torch.tensor(t60, dtype=torch.float32), torch.tensor(drr, dtype=torch.float32), desc, rooms


def errors(enc, head, images, t60, drr) -> tuple[float, float]:
    enc.eval(), head.eval()
    with torch.no_grad():
        room = head(enc(images)[0])
    e = (room.t60 - t60).abs().numpy()
    per = np.array([np.nanmean(r) for r in e if np.isfinite(r).any()])
    return float(per.mean()), float((room.drr_db - drr).abs().mean())


def room_steps(modules, n: int, steps: int, seed: int, batch_loss) -> None:
    """Round 0's room steps as these scripts run them (:func:`mvsd.train.room.pretrain_rooms`):
    AdamW at lr 2e-3 with cosine decay, gradients clipped at 1, batches of 32 of the ``n`` samples
    drawn from a generator seeded ``seed + 4242``. ``batch_loss(idx, gen)`` returns the batch's
    loss (``gen`` drives its augmentation too)."""
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed + 4242)
    for m in modules:
        m.train()
    for step in range(steps):
        idx = torch.randint(0, n, (32,), generator=gen)
        loss = batch_loss(idx, gen)
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()


class PhysicalDRR(torch.nn.Module):
    """Experiment: DRR from the head's own T60 and two learned latents (log volume, log distance)
    through the diffuse-field formula DRR = a + b * 10 log10(V / (T60 r^2))."""

    def __init__(self, head: RoomHead, embed: int = 256):
        super().__init__()
        self.head = head
        self.geo = torch.nn.Sequential(torch.nn.Linear(embed, 128), torch.nn.SiLU(), torch.nn.Linear(128, 2))
        self.ab = torch.nn.Parameter(torch.tensor([-10.0, 1.0]))

    def forward(self, emb):
        room = self.head(emb)
        g = self.geo(emb)
        log_v, log_r = 4.0 + 2.0 * g[:, 0], 1.0 * g[:, 1]
        t = torch.log(room.t60.mean(-1))
        drr = self.ab[0] + self.ab[1] * (10 / math.log(10)) * (log_v - t - 2 * log_r)
        room.drr_db = drr.clamp(-25, 25)
        return room


def train(images, t60, drr, desc, steps: int, aux: float, seed: int, widths=(16, 32, 64, 128),
          variant: str = "plain"):
    torch.manual_seed(seed)
    enc = VisualEncoder(VisualConfig(tuple(widths), 256, 3, SIZE))
    head = RoomHead(256)
    if variant == "physical":
        head = PhysicalDRR(head)
    aux_head = torch.nn.Linear(256, desc.shape[1])
    mu, sd = desc.mean(0), desc.std(0) + 1e-6
    d = torch.tensor((desc - mu) / sd)
    targets = RoomTargets(t60, drr, torch.zeros(len(t60), 6, 1))

    def batch_loss(idx, gen):
        emb = enc(augment(images[idx], gen))[0]
        room = head(emb)
        loss = param_loss(room, targets.index(idx))
        if variant == "drr3":
            loss = loss + 2 * (room.drr_db - targets.drr_db[idx].clamp(*ac.DRR_RANGE)).abs().mean() / 10.0
        return loss + aux * (aux_head(emb) - d[idx]).abs().mean() if aux > 0 else loss

    room_steps([enc, head, aux_head], len(images), steps, seed, batch_loss)
    return enc, head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--extra", default=None, help="another SimRooms draw: also score its test_unseen rooms")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--aux", default="0", help="weights of the room-description loss, comma-separated")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--widths", default="16,32,64,128", help="the encoder's four stage widths (small: 16,32,64,128)")
    ap.add_argument("--variant", default="plain", help="plain | drr3 (DRR loss x3) | physical (DRR from T60 + latents)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, t60, drr, desc, rooms = load(args.dataset, "train")
    ids = sorted(set(rooms))
    held = np.isin(rooms, ids[::5])
    tr, te = torch.tensor(~held), torch.tensor(held)
    extra = load(args.extra, "test_unseen") if args.extra else None
    mean = torch.nanmean(t60[tr], 0).expand(int(te.sum()), -1)
    base = np.array([np.nanmean(r) for r in (mean - t60[te]).abs().numpy() if np.isfinite(r).any()]).mean()
    print(f"{int(tr.sum())} training views of {len(ids) - len(ids[::5])} rooms; {int(te.sum())} held-out views "
          f"of {len(ids[::5])} rooms; predicting the training mean: T60 {base:.3f} s")
    print("| aux weight | seed | held-out T60 (s) | DRR (dB) | training T60 (s) | extra T60 (s) | extra DRR (dB) | s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for aux in (float(a) for a in args.aux.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            enc, head = train(images[tr], t60[tr], drr[tr], desc[held == 0], args.steps, aux, seed,
                               [int(w) for w in args.widths.split(",")], args.variant)
            h = errors(enc, head, images[te], t60[te], drr[te])
            t = errors(enc, head, images[tr], t60[tr], drr[tr])
            x = errors(enc, head, *extra[:3]) if extra else (float("nan"), float("nan"))
            print(f"| {aux} | {seed} | {h[0]:.3f} | {h[1]:.2f} | {t[0]:.3f} | {x[0]:.3f} | {x[1]:.2f} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
