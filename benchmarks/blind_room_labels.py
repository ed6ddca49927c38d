"""Could room recordings alone teach R's room head? Blind T60 labels for the reverb-only pictures.

    .venv/bin/python benchmarks/blind_room_labels.py --dataset build/data-efficiency/simrooms-p10 \
        --extra build/devrooms [--seeds 0,1] [--steps 600]

A reverb-only sample has a picture and a room recording but no RIR, so round 0's room steps
(:func:`mvsd.train.room.pretrain_rooms`) never see it. A *blind* T60 estimate from the recording
would give it a label: reverberant speech cannot decay faster than the room does, so the fastest
decays of its sub-band envelopes track the room's T60. Features: per octave band (250 Hz - 4 kHz),
percentiles of the decay rates of 200 ms envelope windows that fall; a ridge regression on them
is fitted to the *paired* training samples' known per-band T60 (legitimate: their RIRs are known)
and applied to the reverb-only samples. Prints the labels' error against SimRooms' hidden truth
(``rt60`` in the manifest, never used to fit), then trains the ``small`` visual encoder + room head
as ``benchmarks/room_head.py`` does (batch 32, augmented, cosine lr, per-band log-T60 + DRR loss;
DRR only where known) on the paired samples alone and on paired + blind-labelled reverb-only
samples, and scores both on the test_unseen rooms of ``--extra`` (another SimRooms draw: choose
here, not on the dataset's own test_unseen).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from room_head import room_steps  # benchmarks/: the script's folder, on sys.path when run
from scipy.signal import butter, sosfiltfilt

from mvsd.audio_io import SAMPLE_RATE
from mvsd.eval.baselines import read_samples
from mvsd.eval.run import true_room
from mvsd.images import augment, resize_pixels
from mvsd.models.room import RoomHead
from mvsd.models.visual import VisualConfig, VisualEncoder

SIZE = (96, 128)
BANDS = (250, 500, 1000, 2000, 4000)
HOP = SAMPLE_RATE // 100  # 10 ms envelope frames
WINDOW = 20  # frames per decay-rate fit (200 ms)


def decay_features(x: np.ndarray) -> np.ndarray:
    """Per band: log of the 50/75/90/97th percentiles of the falling windows' decay rates (dB/s),
    log of their count, and the envelope's dynamic range (dB)."""
    out = []
    t = np.arange(WINDOW) * HOP / SAMPLE_RATE
    tc = t - t.mean()
    for f in BANDS:
        sos = butter(
            4, [f / np.sqrt(2), min(f * np.sqrt(2), 7900)], btype="band", fs=SAMPLE_RATE, output="sos"
        )
        y = sosfiltfilt(sos, np.asarray(x, np.float64))
        env = 10 * np.log10((y[: len(y) // HOP * HOP].reshape(-1, HOP) ** 2).mean(1) + 1e-12)
        env = np.convolve(env, np.ones(3) / 3, mode="same")
        floor = np.percentile(env, 5)
        rates = []
        for i in range(0, len(env) - WINDOW, 2):
            w = env[i : i + WINDOW]
            if w[0] < floor + 15:  # too close to the noise floor to show a decay
                continue
            slope = (tc * (w - w.mean())).sum() / (tc**2).sum()
            if slope < 0 and np.all(np.diff(w) < 1.0):  # falling throughout: a free decay, or nearly
                rates.append(-slope)
        rates = np.array(rates) if rates else np.array([60.0])
        out += [
            *np.log(np.percentile(rates, [50, 75, 90, 97]) + 1.0),
            np.log(len(rates) + 1),
            env.max() - floor,
        ]
    return np.array(out)


def fit_blind_t60(feats: np.ndarray, t60: np.ndarray, lam: float = 10.0):
    """Ridge regression of log T60 per band on standardised features; returns ``predict(feats)``."""
    mu, sd = feats.mean(0), feats.std(0) + 1e-9
    design = lambda f: np.c_[(f - mu) / sd, np.ones(len(f))]  # noqa: E731
    a = design(feats)
    ws = []
    for b in range(t60.shape[1]):
        ok = np.isfinite(t60[:, b])
        ws.append(np.linalg.solve(a[ok].T @ a[ok] + lam * np.eye(a.shape[1]), a[ok].T @ np.log(t60[ok, b])))
    w = np.stack(ws, 1)
    return lambda f: np.exp(design(f) @ w)


def band_error(pred: np.ndarray, t60: np.ndarray) -> float:
    """Mean over samples of the mean over measurable bands of |pred - true| (mvsd eval's T60 error)."""
    e = np.abs(pred - t60)
    return float(np.mean([np.nanmean(r) for r in e if np.isfinite(r).any()]))


def train_head(images, t60, drr, steps: int, seed: int):
    torch.manual_seed(seed)
    enc, head = VisualEncoder(VisualConfig((16, 32, 64, 128), 256, 3, SIZE)), RoomHead(256)

    def batch_loss(idx, gen):
        room = head(enc(augment(images[idx], gen))[0])
        t, d = t60[idx], drr[idx]
        ok, okd = torch.isfinite(t), torch.isfinite(d)
        log_err = (torch.log(room.t60) - torch.log(torch.nan_to_num(t, nan=1.0).clamp(min=0.05))).abs()
        loss = (log_err * ok).sum() / ok.sum().clamp(min=1)
        return loss + ((room.drr_db - torch.nan_to_num(d)).abs() * okd).sum() / okd.sum().clamp(min=1) / 10

    room_steps([enc, head], len(images), steps, seed, batch_loss)
    enc.eval(), head.eval()
    return lambda imgs: head(enc(imgs)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dataset", required=True, help="a SimRooms dataset with paired and reverb_only training pools"
    )
    ap.add_argument("--extra", required=True, help="another SimRooms draw: its test_unseen rooms are scored")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(1)
    paired = read_samples(args.dataset, ["train"], ["paired"])
    unpaired = read_samples(args.dataset, ["train"], ["reverb_only"])
    extra = read_samples(args.extra, ["test_unseen"])
    if not paired or not unpaired:
        raise SystemExit(f"{args.dataset}: needs paired and reverb_only training samples")
    t_p, d_p = true_room(paired)
    t_x, d_x = true_room(extra)
    predict = fit_blind_t60(np.stack([decay_features(s.reverb) for s in paired]), t_p)
    blind = predict(np.stack([decay_features(s.reverb) for s in unpaired]))
    truth = np.array([s.rt60 for s in unpaired], float)  # hidden truth: scoring only
    print(f"blind T60 labels of {len(unpaired)} reverb-only samples: MAE {np.nanmean(np.abs(blind.mean(1) - truth)):.3f} s "
          f"(broadband), predicting the paired mean {np.nanmean(np.abs(np.nanmean(t_p) - truth)):.3f} s; "
          f"Pearson r {np.corrcoef(blind.mean(1)[np.isfinite(truth)], truth[np.isfinite(truth)])[0, 1]:.2f}")  # fmt: skip
    images = lambda ss: torch.stack([torch.from_numpy(resize_pixels(s.image, SIZE)) for s in ss]).float()  # noqa: E731
    i_p, i_u, i_x = images(paired), images(unpaired), images(extra)
    mean_err = band_error(np.broadcast_to(np.nanmean(t_p, 0), t_x.shape), t_x)
    print(f"--extra test_unseen: {len(extra)} samples; predicting the training mean: T60 {mean_err:.3f} s")
    print("| seed | room head taught on | T60 error (s) | DRR error (dB) | s |")
    print("|---|---|---:|---:|---:|")
    f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, imgs, t60, drr in (
            ("paired (known RIRs)", i_p, t_p, d_p),
            ("paired + reverb-only with blind T60", torch.cat([i_p, i_u]), np.concatenate([t_p, blind]),
             np.concatenate([d_p, np.full(len(unpaired), np.nan)])),
        ):  # fmt: skip
            t0 = time.perf_counter()
            head = train_head(imgs, f32(t60), f32(drr), args.steps, seed)
            with torch.no_grad():
                room = head(i_x)
            print(f"| {seed} | {name} | {band_error(room.t60.numpy(), t_x):.3f} | "
                  f"{np.nanmean(np.abs(room.drr_db.numpy() - d_x)):.2f} | {time.perf_counter() - t0:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
