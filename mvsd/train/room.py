"""Teaching the image -> room head before the converters train (round 0).

The room head needs many pictures more than it needs audio: ``train.room_steps`` steps of
``train.room_batch`` augmented images from the paired training samples whose RIR is known,
against per-band T60 and DRR (:func:`mvsd.models.room.param_loss`), plus the decay-curve loss of
a few synthesised RIRs for the band levels and early gain. The images and targets are read once
(audio is not decoded twice), so a step costs one pass of the visual encoder. The reverberator's
encoder and head are trained; the dereverberator starts from a copy. Then, where the paired data
has RIRs (:func:`rirs_known`), :func:`freeze_rooms` keeps both as they are for the main loop
(``train.room_lr_scale: 0``); without RIRs they learn there from the output losses.
"""

from __future__ import annotations

import csv
import logging
import time

import torch

from mvsd import acoustics as ac
from mvsd.config import Params
from mvsd.data.loader import RIR_SAMPLES
from mvsd.images import augment
from mvsd.models.room import EDC_HOP, Room, RoomTargets, edc_loss, param_loss, rir_from_room, room_targets
from mvsd.progress import progress_bar
from mvsd.train.state import TrainState, cosine_decay

log = logging.getLogger(__name__)
MAX_SAMPLES = 4000  # images kept in memory (uint8, ~37 kB each at 96 x 128)
EDC_SAMPLES = 4  # per room step, this many of the batch also get the decay-curve loss


def rirs_known(dataset: str) -> bool:
    """Whether the paired training samples of ``dataset`` carry their RIR (``rir.npy``), read
    from the manifest alone. Without RIRs the room head has nothing to pre-train on and learns
    in the main loop, from the output losses."""
    from mvsd.data.loader import read_selection

    try:
        table = read_selection(dataset, ["train"], ["paired"], None)
    except (FileNotFoundError, ValueError):
        return False
    if "sha256_rir_npy" not in table.column_names:
        return False
    return table.column("sha256_rir_npy").null_count < table.num_rows


def freeze_rooms(state: TrainState) -> None:
    """After pre-training, the visual encoder and room head of both converters stop learning:
    the main loop's small batches and output losses (pseudo-pairs included) only made the head
    worse, and letting the tail's band levels go on learning there made the estimate worse too
    (BENCHMARKS.md). Their gradients are not computed at all, which also saves time."""
    for conv in state.converters.values():
        for part in (conv.net.visual, conv.net.room):
            for p in part.parameters():
                p.requires_grad_(False)


def collect_rooms(
    dataset: str, params: Params, splits: tuple[str, ...] = ("train",)
) -> tuple[torch.Tensor, RoomTargets]:
    """(uint8 images ``(N, 3, H, W)``, targets) of the paired samples of ``splits`` with a known RIR.

    Reads only the ``image.jpg`` and ``rir.npy`` members (no audio is decoded); a sample whose
    members do not decode is skipped with a warning, as the loader does."""
    import fsspec
    import numpy as np

    from mvsd.data.loader import load_image, select_shards
    from mvsd.data.sample import decode_npy
    from mvsd.data.shards import iter_shard

    size = tuple(params.model.image_size)
    try:
        urls, keys = select_shards(dataset, list(splits), ["paired"])
    except ValueError:
        urls, keys = [], set()
    images, rirs = [], []
    for url in urls:
        with fsspec.open(url, "rb") as f:
            for key, members in iter_shard(f, name=url, on_bad=lambda e: log.warning("%s", e)):
                if key not in keys or "rir.npy" not in members or "image.jpg" not in members:
                    continue
                try:
                    rir = decode_npy(members["rir.npy"]).astype(np.float32).reshape(-1)
                    img = load_image(members["image.jpg"], size)
                except Exception as e:  # corrupt members: skip the sample, as the loader does
                    log.warning("%s: skipping %r for the room head (%s)", url, key, e)
                    continue
                if not np.any(rir):
                    continue
                images.append(torch.from_numpy((img * 255).round().astype(np.uint8)))
                rirs.append(torch.from_numpy(rir[:RIR_SAMPLES]))
                if len(images) >= MAX_SAMPLES:
                    break
        if len(images) >= MAX_SAMPLES:
            break
    if not images:
        return torch.zeros(0, 3, *size, dtype=torch.uint8), RoomTargets(
            torch.zeros(0, 6), torch.zeros(0), torch.zeros(0, 6, 1)
        )
    parts = []
    for i in range(0, len(rirs), 64):  # targets in batches of equal-length (zero-padded) RIRs
        chunk = rirs[i : i + 64]
        n = max(len(r) for r in chunk)
        parts.append(room_targets(torch.stack([torch.nn.functional.pad(r, (0, n - len(r))) for r in chunk])))
    frames = max(p.edc.shape[-1] for p in parts)
    edc = torch.cat(
        [torch.nn.functional.pad(p.edc, (0, frames - p.edc.shape[-1]), value=-60.0) for p in parts]
    )
    targets = RoomTargets(torch.cat([p.t60 for p in parts]), torch.cat([p.drr_db for p in parts]), edc)
    return torch.stack(images), targets


def pretrain_rooms(state: TrainState, params: Params, dataset: str, log_csv: str | None = None) -> dict:
    """Train R's visual encoder + room head for ``train.room_steps`` steps; copy them into D.

    Returns a summary (samples, steps, first and last loss, seconds). Does nothing (steps 0) when
    the dataset has no paired sample with an RIR."""
    t = params.train
    t0 = time.perf_counter()
    images, targets = collect_rooms(dataset, params)
    n = len(images)
    if n == 0 or t.room_steps <= 0:
        return {"samples": n, "steps": 0}
    r = state.converters["reverb"]
    net = r.net
    device = r.device
    gen = torch.Generator().manual_seed(t.seed + 4242)
    opt = torch.optim.AdamW(
        list(net.visual.parameters()) + list(net.room.parameters()), lr=t.lr, betas=(0.9, 0.99)
    )
    losses = []
    net.train()
    with progress_bar("room head: image -> room", t.room_steps) as advance:
        for step in range(t.room_steps):
            idx = torch.randint(0, n, (min(t.room_batch, n),), generator=gen)
            img = images[idx].to(device).float() / 255
            if t.augment:
                img = augment(img, gen)
            room = net.room(net.visual(img)[0])
            loss = param_loss(room, targets.index(idx))
            # band levels and the early part have no direct target: the decay-curve loss of a few
            # synthesised RIRs teaches them (T60 and DRR detached: it would pull them off their targets)
            k = min(EDC_SAMPLES, len(idx))
            sub = room.index(torch.arange(k))
            shape = Room(sub.t60.detach(), sub.drr_db.detach(), sub.band_db, sub.early_db)
            truth = targets.index(idx[:k])
            rir = rir_from_room(shape, ac.DIRECT_INDEX + truth.edc.shape[-1] * EDC_HOP, gen)
            loss = loss + edc_loss(rir, truth)
            for g in opt.param_groups:  # cosine decay: the last steps settle instead of jumping
                g["lr"] = t.lr * cosine_decay(step, t.room_steps)
            opt.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
                opt.step()
            losses.append(float(loss.detach()))
            advance(1)
    d = state.converters["dereverb"]
    for part in ("visual", "room"):
        getattr(d.net, part).load_state_dict(getattr(net, part).state_dict())
        for conv in (r, d):
            getattr(conv.ema, part).load_state_dict(getattr(net, part).state_dict())
    if log_csv:
        with open(log_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "room_loss"])
            w.writerows((i + 1, round(v, 6)) for i, v in enumerate(losses))
    k = max(1, len(losses) // 10)
    summary = {
        "samples": n,
        "steps": len(losses),
        "loss_first": sum(losses[:k]) / k,
        "loss_last": sum(losses[-k:]) / k,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log.info("room head: %s", summary)
    return summary
