"""How well could *any* image -> room head do? T60 and DRR from the true room description.

    .venv/bin/python benchmarks/room_ceiling.py --dataset datasets/simrooms [--round checkpoints/demo/round-1]

The room head sees a picture and must infer from it the room's size, its surfaces' materials and
where the talker stands. This script skips the seeing: it gives simple predictors the *true*
description of each view (from SimRooms' ``rooms.json``: dimensions, each surface's measured
absorption per octave band, mic-to-talker distance), fits them on the training rooms and scores
them on ``--split`` (rooms never seen), with the same per-band T60 and DRR errors as
``mvsd eval``'s ``room_t60_error`` / ``room_drr_error``:

* ``train mean``: the training rooms' mean per band (what a head that ignores the image learns);
* ``Eyring``: Eyring's formula with the true absorption, uncalibrated;
* ``Eyring, calibrated``: log T60 = a + b log T60_Eyring per band, fit on the training rooms;
* ``perfect perception``: a ridge regression per band on log features of the true description
  (Eyring T60, volume, surface/volume, height, distance), fit on the training rooms: about the
  best a head that read the true description off the picture could do with these features.

DRR from the same features (distance over critical distance, in dB, calibrated linearly).
With ``--round``, the round's room head on the same samples, for comparison.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyroomacoustics as pra

from mvsd import acoustics as ac
from mvsd.eval.baselines import read_samples
from mvsd.eval.run import true_room
from mvsd.sim.rooms import MATERIALS

PRA_FREQS = (125, 250, 500, 1000, 2000, 4000, 8000)


def absorption(name: str) -> np.ndarray:
    """Energy absorption of a pyroomacoustics material at our octave bands."""
    coeffs = pra.Material(name).energy_absorption["coeffs"]
    return np.array([coeffs[PRA_FREQS.index(int(b))] for b in ac.BANDS])


WALL_NORMALS = {"west": (-1.0, 0.0), "east": (1.0, 0.0), "south": (0.0, -1.0), "north": (0.0, 1.0)}


def back_wall(view: dict) -> str:
    """The wall behind the camera (it looks from the mic at the talker): no picture shows it."""
    d = np.subtract(view["source"], view["mic"])[:2]
    return min(WALL_NORMALS, key=lambda w: float(np.dot(WALL_NORMALS[w], d)))


def class_absorption(cls: str) -> np.ndarray:
    """The mean absorption of a material class's pyroomacoustics materials: all a picture shows
    (the renderer draws the class; which of its materials the simulator used is not in the image)."""
    return np.mean([absorption(n) for n in MATERIALS[cls][0]], axis=0)


def view_features(
    view: dict, unseen: np.ndarray | None = None, by_class: bool = False
) -> dict[str, np.ndarray | float]:
    """Eyring T60 per band, volume, surface, height and talker distance of a view. ``unseen``, if
    given, is the absorption per band assumed for the wall behind the camera instead of its own;
    ``by_class``: each surface's class mean absorption instead of its own material's."""
    length, width, height = view["dims_m"]
    area = {
        "west": width * height, "east": width * height, "south": length * height,
        "north": length * height, "floor": length * width, "ceiling": length * width,
    }  # fmt: skip
    surface = sum(area.values())
    volume = length * width * height
    hidden = back_wall(view) if unseen is not None else None

    def alpha_of(surf: str, material: str) -> np.ndarray:
        if surf == hidden:
            return unseen
        return class_absorption(view["surfaces"][surf]) if by_class else absorption(material)

    alpha = sum(area[s] * alpha_of(s, m) for s, m in view["materials"].items()) / surface
    eyring = 0.161 * volume / (-surface * np.log(1 - np.clip(alpha, 1e-3, 0.99)))
    dist = float(np.linalg.norm(np.subtract(view["mic"], view["source"])))
    return {"eyring": eyring, "volume": volume, "surface": surface, "height": height, "dist": dist}


def t60_design(f: dict, band: int) -> np.ndarray:
    return np.array(
        [1.0, np.log(f["eyring"][band]), np.log(f["volume"]), np.log(f["surface"] / f["volume"]),
         np.log(f["height"]), np.log(f["dist"])]
    )  # fmt: skip


def drr_design(f: dict) -> np.ndarray:
    t60 = float(np.mean(f["eyring"]))
    critical = 0.057 * np.sqrt(f["volume"] / t60)  # metres: direct = reverberant energy there
    return np.array([1.0, 20 * np.log10(critical / f["dist"]), np.log(f["dist"])])


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-2) -> np.ndarray:
    reg = lam * np.eye(x.shape[1])
    reg[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def errors(pred_t60: np.ndarray, true_t60: np.ndarray, pred_drr: np.ndarray, true_drr: np.ndarray):
    """(mean over samples of the per-band mean |T60 error|, mean |DRR error|), as mvsd eval."""
    e = np.abs(pred_t60 - true_t60)
    per_sample = np.array([np.nanmean(r) for r in e if np.isfinite(r).any()])
    d = np.abs(pred_drr - true_drr)
    return float(per_sample.mean()), float(np.nanmean(d))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/simrooms")
    ap.add_argument("--split", default="test_unseen")
    ap.add_argument("--round", default=None, help="also score this round's room head on the same samples")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args()

    views = {v["view_id"]: v for v in json.loads((Path(args.dataset) / "rooms.json").read_text())}
    feats = {k: view_features(v) for k, v in views.items()}
    data = {}
    for split in ("train", args.split):
        samples = [s for s in read_samples(args.dataset, [split]) if s.rir is not None]
        t60, drr = true_room(samples)
        data[split] = (samples, [feats[s.meta["view"]] for s in samples], t60, drr)
    tr_samples, tr_f, tr_t60, tr_drr = data["train"]
    te_samples, te_f, te_t60, te_drr = data[args.split]
    n_bands = len(ac.BANDS)

    rows: dict[str, tuple[float, float]] = {}
    mean_t60 = np.nanmean(tr_t60, axis=0)
    rows["train mean"] = errors(
        np.tile(mean_t60, (len(te_f), 1)), te_t60, np.full(len(te_f), np.nanmean(tr_drr)), te_drr
    )

    drr_coef = ridge(np.stack([drr_design(f) for f in tr_f]), tr_drr)
    drr_pred = np.stack([drr_design(f) for f in te_f]) @ drr_coef
    eyring = np.stack([f["eyring"] for f in te_f])
    rows["Eyring"] = errors(eyring, te_t60, drr_pred, te_drr)

    cal = np.zeros((len(te_f), n_bands))
    full = np.zeros((len(te_f), n_bands))
    for b in range(n_bands):
        ok = np.isfinite(tr_t60[:, b])
        y = np.log(tr_t60[ok, b])
        x_full = np.stack([t60_design(f, b) for f, k in zip(tr_f, ok) if k])
        x_cal = x_full[:, :2]
        cal[:, b] = np.exp(np.stack([t60_design(f, b)[:2] for f in te_f]) @ ridge(x_cal, y))
        full[:, b] = np.exp(np.stack([t60_design(f, b) for f in te_f]) @ ridge(x_full, y))
    rows["Eyring, calibrated"] = errors(cal, te_t60, drr_pred, te_drr)
    rows["perfect perception"] = errors(full, te_t60, drr_pred, te_drr)

    # What the camera can see: the wall behind it in no picture, so a perfect reader of the
    # picture knows every surface but that one, for which it can only assume the training walls'
    # mean absorption.
    walls = [absorption(v["materials"][w]) for v in views.values() for w in WALL_NORMALS
             if v["room_id"] in {s.room_id for s in tr_samples}]
    prior = np.mean(walls, axis=0)
    readings: dict[str, np.ndarray] = {}  # per-band T60 each predictor reads, per sample
    for name, by_class in (
        ("perfect perception of what the camera sees (not the wall behind it)", False),
        ("... and of material classes, not materials (what the renderer draws)", True),
    ):
        tr_v = [view_features(views[s.meta["view"]], prior, by_class) for s in tr_samples]
        te_v = [view_features(views[s.meta["view"]], prior, by_class) for s in te_samples]
        seen = np.zeros((len(te_f), n_bands))
        for b in range(n_bands):
            ok = np.isfinite(tr_t60[:, b])
            x = np.stack([t60_design(f, b) for f, k in zip(tr_v, ok) if k])
            seen[:, b] = np.exp(np.stack([t60_design(f, b) for f in te_v]) @ ridge(x, np.log(tr_t60[ok, b])))
        drr_coef = ridge(np.stack([drr_design(f) for f in tr_v]), tr_drr)
        rows[name] = errors(seen, te_t60, np.stack([drr_design(f) for f in te_v]) @ drr_coef, te_drr)
        readings[name] = seen
    readings = {"perfect perception": full, **readings}

    if args.round:
        from mvsd.converter import Converter

        conv = Converter.from_checkpoint(Path(args.round) / "reverb.safetensors", expect_direction="reverb")

        def read(samples):
            room = conv.describe_room([s.image for s in samples], batch=len(samples))
            return (room.t60.detach().double().numpy().reshape(len(samples), -1),
                    room.drr_db.detach().double().numpy().reshape(-1))  # fmt: skip

        head_t60, head_drr = read(te_samples)
        rows[f"room head of {args.round}"] = errors(head_t60, te_t60, head_drr, te_drr)
        # Which part of DRR does the head miss? Its own T60 with the *true* volume and distance
        # (the DRR fit above, refit on the head's training-room readings), and with one of them.
        tr_head_t60, _ = read(tr_samples)
        for name, cols in (("volume and distance", [0, 1, 2]), ("distance only", [0, 2, 3]),
                           ("volume only", [0, 3, 4])):  # fmt: skip
            def design(f, t60, cols=cols):  # drr_design with the head's T60, then log T60, log volume
                full = [*drr_design({**f, "eyring": t60}), np.log(np.mean(t60)), np.log(f["volume"])]
                return np.array([full[c] for c in cols])

            coef = ridge(np.stack([design(f, t) for f, t in zip(tr_f, tr_head_t60)]), tr_drr)
            pred = np.stack([design(f, t) for f, t in zip(te_f, head_t60)]) @ coef
            rows[f"... DRR from its T60 and the true {name}"] = errors(head_t60, te_t60, pred, te_drr)

    print(f"{len(tr_samples)} training samples, {len(te_samples)} samples of {args.split}")
    print("| predictor (fit on train rooms) | T60 error (s, mean of bands) | DRR error (dB) |")
    print("|---|---:|---:|")
    for name, (t, d) in rows.items():
        print(f"| {name} | {t:.2f} | {d:.2f} |")
    # The split's driest and most reverberant views by their RIR's broadband RT60 (the two rooms
    # of hear_rooms.py): the mean over bands of the true T60 and of what each predictor reads.
    rt60 = np.array([s.rt60 for s in te_samples], dtype=float)
    print("\n| view | RT60 (s) | T60, mean of bands (s) | " + " | ".join(readings) + " |")
    print("|---|---:|---:|" + "---:|" * len(readings))
    for label, i in (("driest", int(np.nanargmin(rt60))), ("most reverberant", int(np.nanargmax(rt60)))):
        cells = " | ".join(f"{float(np.mean(r[i])):.2f}" for r in readings.values())
        print(f"| {label}: {te_samples[i].meta['view']} | {rt60[i]:.2f} | {np.nanmean(te_t60[i]):.2f} | {cells} |")
    if args.out:
        Path(args.out).write_text(json.dumps({k: {"t60_error": t, "drr_error": d} for k, (t, d) in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
