"""A room head that reads what a room is made of, then computes what it sounds like (Eyring).

    .venv/bin/python benchmarks/room_physics.py --dataset datasets/simrooms --extra datasets/devrooms \
        [--seeds 0,1] [--steps 600] [--heads free,physics,physics-grid,physics-tokens,physics:0]

The room head of today (``free``) regresses per-band T60 and DRR straight from the image
embedding. ``physics`` reads the picture the way an acoustician would: the material class of each
surface as the camera sees it (front, back, left, right, floor, ceiling; 12 classes), the room's
depth, width and height and the talker's distance, and computes per-band T60 from them with
Eyring's formula (class absorption: the mean of the measured materials of each class, the
simulator's table) and DRR from distance over critical distance, each through a learned per-band
log-linear calibration (``physics-grid``: materials read from the 3 x 4 grid of encoder features
too; ``physics-tokens``: each grid cell's material by one shared classifier, each surface a learned
mix of cells). Taught by the same T60/DRR losses end to end plus cross-entropy on the
materials and L1 on the log sizes from SimRooms' ``rooms.json``. Eyring's formula composes: a
material never seen on that wall of that shape of room still gets its absorption, where a free
regressor can only interpolate the rooms it saw.

Both heads train on the paired training samples of every room but every 5th (the same room steps as
round 0: batch 32, augmented, cosine lr), and are scored on the held-out rooms' views and, with
``--extra``, on the test_unseen rooms of another SimRooms draw: T60 = mean over the six octave bands
of |predicted - true| (s), DRR in dB, as ``mvsd eval``. Left and right walls are scored as a set
(the augmentation's flip swaps them).
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
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from room_ceiling import absorption  # noqa: E402
from room_head import room_steps  # noqa: E402

from mvsd.eval.baselines import read_samples  # noqa: E402
from mvsd.eval.run import true_room  # noqa: E402
from mvsd.images import augment, resize_pixels  # noqa: E402
from mvsd.models.room import RoomHead, RoomTargets, param_loss  # noqa: E402
from mvsd.models.visual import VisualConfig, VisualEncoder  # noqa: E402
from mvsd.sim.rooms import MATERIALS  # noqa: E402

SIZE = (96, 128)
CLASSES = tuple(MATERIALS)
ABSORPTION = torch.tensor(
    np.stack([np.mean([absorption(n) for n in MATERIALS[c][0]], axis=0) for c in CLASSES]), dtype=torch.float32
)  # (12, 6) energy absorption per class and octave band
WALL_NORMALS = {"west": (-1, 0), "east": (1, 0), "south": (0, -1), "north": (0, 1)}


def camera_view(view: dict) -> tuple[np.ndarray, np.ndarray]:
    """(material class index per camera surface, (6,): front, back, left, right, floor, ceiling;
    log [depth, width, height, talker distance], (4,))."""
    d = np.subtract(view["source"], view["mic"])
    yaw = math.atan2(d[1], d[0])
    fwd, right = np.array([math.cos(yaw), math.sin(yaw)]), np.array([math.sin(yaw), -math.cos(yaw)])
    walls = list(WALL_NORMALS)
    normals = np.array([WALL_NORMALS[w] for w in walls], dtype=float)
    front, back = walls[int(np.argmax(normals @ fwd))], walls[int(np.argmin(normals @ fwd))]
    rgt, lft = walls[int(np.argmax(normals @ right))], walls[int(np.argmin(normals @ right))]
    s = view["surfaces"]
    cls = np.array([CLASSES.index(s[w]) for w in (front, back, lft, rgt, "floor", "ceiling")])
    length, width, height = view["dims_m"]
    depth, lateral = (length, width) if front in ("west", "east") else (width, length)
    dist = float(np.linalg.norm(d))
    return cls, np.log([depth, lateral, height, dist]).astype(np.float32)


def load(dataset: str, split: str):
    views = {v["view_id"]: v for v in json.loads((Path(dataset) / "rooms.json").read_text())}
    samples = [s for s in read_samples(dataset, [split]) if s.rir is not None]
    t60, drr = true_room(samples)
    images = torch.stack([torch.from_numpy(resize_pixels(s.image, SIZE)) for s in samples]).float()
    cam = [camera_view(views[s.meta["view"]]) for s in samples]
    cls = torch.tensor(np.stack([c for c, _ in cam]))
    size = torch.tensor(np.stack([g for _, g in cam]))
    rooms = np.array([s.room_id for s in samples])
    return images, torch.tensor(t60, dtype=torch.float32), torch.tensor(drr, dtype=torch.float32), cls, size, rooms


class PhysicsHead(nn.Module):
    """Embedding -> materials and sizes -> Eyring T60 per band and DRR, calibrated."""

    def __init__(self, embed_dim: int, hidden: int = 128, token_dim: int = 0, n_tokens: int = 12):
        super().__init__()
        # token_dim > 0: each grid cell's material is read by one classifier shared by all cells
        # (what a patch is made of does not depend on where it is), and each surface is a learned
        # mix of the cells (the floor at the bottom, the ceiling at the top)
        self.token_cls = nn.Linear(token_dim, len(CLASSES)) if token_dim else None
        self.where = nn.Parameter(torch.zeros(6, n_tokens)) if token_dim else None
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, 6 * len(CLASSES) + 4))
        self.size_mu = nn.Parameter(torch.tensor([math.log(6.0), math.log(5.0), math.log(3.0), math.log(2.5)]))
        self.t60_a = nn.Parameter(torch.zeros(ABSORPTION.shape[1]))
        self.t60_b = nn.Parameter(torch.ones(ABSORPTION.shape[1]))
        self.drr_ab = nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, emb: torch.Tensor, tokens: torch.Tensor | None = None):
        raw = self.mlp(emb)
        logits = raw[:, : 6 * len(CLASSES)].view(-1, 6, len(CLASSES))
        if self.token_cls is not None:
            cell = self.token_cls(tokens).log_softmax(-1)  # (B, N, classes)
            logits = logits + torch.einsum("sn,bnc->bsc", self.where.softmax(-1), cell)
        log_size = self.size_mu + raw[:, 6 * len(CLASSES) :]
        depth, lateral, height, dist = log_size.clamp(-1.0, 4.0).exp().unbind(-1)
        area = torch.stack([lateral * height] * 2 + [depth * height] * 2 + [depth * lateral] * 2, -1)  # (B, 6)
        alpha = logits.softmax(-1) @ ABSORPTION  # (B, 6 surfaces, bands)
        surface = area.sum(-1, keepdim=True)
        mean_alpha = (area[..., None] * alpha).sum(1) / surface  # (B, bands)
        volume = (depth * lateral * height)[:, None]
        eyring = 0.161 * volume / (-surface * torch.log1p(-mean_alpha.clamp(1e-3, 0.99)))
        t60 = torch.exp(self.t60_a + self.t60_b * torch.log(eyring)).clamp(0.05, 20.0)
        critical = 0.057 * torch.sqrt(volume[:, 0] / t60.mean(-1))
        drr = self.drr_ab[0] + self.drr_ab[1] * 20 * torch.log10(critical / dist)
        return t60, drr.clamp(-30.0, 30.0), logits, log_size


def material_loss(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per camera surface; left/right as a set (the flip augmentation swaps them)."""
    ce = lambda i, j: F.cross_entropy(logits[:, i], cls[:, j], reduction="none")  # noqa: E731
    sides = torch.minimum(ce(2, 2) + ce(3, 3), ce(2, 3) + ce(3, 2))
    return (ce(0, 0) + ce(1, 1) + sides + ce(4, 4) + ce(5, 5)).mean() / 6


def features(kind: str, encoded) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The head's input: the pooled embedding; for ``physics-grid`` the 3 x 4 grid of tokens too
    (where in the picture each surface is: floor at the bottom, ceiling at the top); for
    ``physics-tokens`` (embedding, tokens), the head's two arguments."""
    emb, tokens = encoded
    if kind == "physics-tokens":
        return emb, tokens
    return torch.cat([emb, tokens.flatten(1)], -1) if kind == "physics-grid" else emb


def predict(kind, enc, head, images):
    enc.eval(), head.eval()
    with torch.no_grad():
        f = features(kind, enc(images))
        out = head(*f) if isinstance(f, tuple) else head(f)
    if kind == "free":
        return out.t60, out.drr_db, None
    return out[0], out[1], out[2]


def scores(kind, enc, head, images, t60, drr, cls) -> tuple[float, float, float]:
    p_t60, p_drr, logits = predict(kind, enc, head, images)
    e = (p_t60 - t60).abs().numpy()
    per = np.array([np.nanmean(r) for r in e if np.isfinite(r).any()])
    acc = float("nan")
    if logits is not None:  # material accuracy over the visible surfaces (front, sides, floor, ceiling)
        pred = logits.argmax(-1)
        side_ok = ((pred[:, 2] == cls[:, 2]) & (pred[:, 3] == cls[:, 3])) | (
            (pred[:, 2] == cls[:, 3]) & (pred[:, 3] == cls[:, 2])
        )
        each = torch.stack([pred[:, 0] == cls[:, 0], side_ok, pred[:, 4] == cls[:, 4], pred[:, 5] == cls[:, 5]])
        print("   accuracy front / sides / floor / ceiling:", " / ".join(f"{a:.2f}" for a in each.float().mean(1)))
        acc = float(each.float().mean())
    return float(per.mean()), float((p_drr - drr).abs().mean()), acc


def train(kind, images, t60, drr, cls, size, steps: int, seed: int, aux: float):
    torch.manual_seed(seed)
    enc = VisualEncoder(VisualConfig((16, 32, 64, 128), 256, 3, SIZE))
    if kind == "free":
        head = RoomHead(256)
    elif kind == "physics-tokens":
        head = PhysicsHead(256, token_dim=128)
    else:
        head = PhysicsHead(256 + (12 * 128 if kind == "physics-grid" else 0))
    targets = RoomTargets(t60, drr, torch.zeros(len(t60), 6, 1))

    def batch_loss(idx, gen):
        f = features(kind, enc(augment(images[idx], gen)))
        tg = targets.index(idx)
        if kind == "free":
            return param_loss(head(f), tg)
        p_t60, p_drr, logits, log_size = head(*f) if isinstance(f, tuple) else head(f)
        ok = torch.isfinite(tg.t60)
        log_err = (torch.log(p_t60) - torch.log(torch.nan_to_num(tg.t60, nan=1.0).clamp(min=0.05))).abs()
        loss = (log_err * ok).sum() / ok.sum().clamp(min=1) + (p_drr - tg.drr_db).abs().mean() / 10
        return loss + aux * (material_loss(logits, cls[idx]) + (log_size - size[idx]).abs().mean())

    room_steps([enc, head], len(images), steps, seed, batch_loss)
    return enc, head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--extra", default=None, help="another SimRooms draw: also score its test_unseen rooms")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--heads", default="free,physics", help="free, physics, physics-grid, physics-tokens; "
                    "physics...:W weighs the material and size losses (default 1; 0: T60/DRR losses only)")  # fmt: skip
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, t60, drr, cls, size, rooms = load(args.dataset, "train")
    ids = sorted(set(rooms))
    held = torch.tensor(np.isin(rooms, ids[::5]))
    tr, te = ~held, held
    extra = load(args.extra, "test_unseen") if args.extra else None
    print(f"{int(tr.sum())} training views, {int(te.sum())} held-out views of {len(ids[::5])} rooms")
    print("| head | seed | held-out T60 (s) | DRR (dB) | materials | training T60 (s) / materials | extra T60 (s) | "
          "extra DRR (dB) | extra materials | s |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.heads.split(","):
        kind, _, w = spec.partition(":")
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            enc, head = train(kind, images[tr], t60[tr], drr[tr], cls[tr], size[tr], args.steps, seed,
                              float(w or 1.0))  # fmt: skip
            h = scores(kind, enc, head, images[te], t60[te], drr[te], cls[te])
            t = scores(kind, enc, head, images[tr], t60[tr], drr[tr], cls[tr])
            x = scores(kind, enc, head, extra[0], extra[1], extra[2], extra[3]) if extra else (np.nan,) * 3
            print(f"| {spec} | {seed} | {h[0]:.3f} | {h[1]:.2f} | {h[2]:.2f} | {t[0]:.3f} / {t[2]:.2f} | {x[0]:.3f} | "
                  f"{x[1]:.2f} | {x[2]:.2f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
