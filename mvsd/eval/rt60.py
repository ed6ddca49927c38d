"""Blind RT60 estimator: reverberant speech -> RT60 in seconds, the "speech RT60" of AViTAR's protocol.

AViTAR (facebookresearch/visual-acoustic-matching, ``vam/models/visual_net.py`` and
``base_av_model.py: estimate_rt60``) scores a VAM output by the RT60 that a ResNet-18, trained on
reverberant speech with known RT60, reads from it: the input is ``log1p|STFT|`` (n_fft 512, hop 160,
win 400, Hamming), one channel, and a linear head on the pooled features. Here the same network
shape (a 7x7/2 stem, max pool, four stages of two basic blocks, average pool, linear) with small
widths (8-16-32-64 channels, 0.18 M parameters): the default 300 steps train in 32 s on the
2-core CPU (SimRooms val MAE 0.26 s; predicting the train mean gives 0.87 s). Two changes, both for robustness:
every clip is scaled to RMS -25 dBFS first (a model's output level should not read as
reverberation), and the head predicts log RT60 (trained with L1 in log: relative error, so 0.3 s
and 3 s rooms weigh alike).

Checkpoints are ``torch.save`` of plain data (config dict, state dict, training report), loaded
with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mvsd.eval.baselines import read_samples
from mvsd.models.visual import BasicBlock  # the same ResNet basic block as the visual encoder

FORMAT = "mvsd.rt60_estimator/1"
RMS_DB = -25.0  # the dataset's level (params.yaml audio.rms_db)


@dataclass(frozen=True)
class Rt60Config:
    """Network and spectrogram settings. ``width`` channels in the first stage, doubled per stage."""

    width: int = 8
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # ResNet-18
    n_fft: int = 512
    hop: int = 160
    win: int = 400


class Rt60Estimator(nn.Module):
    """``(B, T)`` 16 kHz waveforms -> ``(B,)`` RT60 in seconds."""

    def __init__(self, cfg: Rt60Config = Rt60Config()):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        layers: list[nn.Module] = [
            nn.Conv2d(1, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        ]  # fmt: skip
        c = w
        for i, n in enumerate(cfg.blocks):
            for j in range(n):
                out = w * 2**i
                layers.append(BasicBlock(c, out, 2 if (i > 0 and j == 0) else 1))
                c = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, 1)  # predicts ln(RT60 / 1 s)
        self.register_buffer("window", torch.hamming_window(cfg.win), persistent=False)

    def spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 1, 257, frames)`` log1p|STFT| of the clip scaled to RMS -25 dBFS."""
        rms = wav.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
        wav = wav * (10 ** (RMS_DB / 20) / rms)
        c = self.cfg
        spec = torch.stft(
            wav, c.n_fft, c.hop, c.win, window=self.window, pad_mode="constant", return_complex=True
        )
        return torch.log1p(spec.abs()).unsqueeze(1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.spectrogram(wav))).squeeze(1).exp()  # (B,) seconds


# -- training -------------------------------------------------------------------------------------


def fit_rt60_estimator(
    audio: np.ndarray,
    rt60: np.ndarray,
    cfg: Rt60Config = Rt60Config(),
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[Rt60Estimator, list[float]]:
    """Train on ``audio`` ``(N, T)`` reverberant clips with RT60s ``(N,)`` seconds; returns the model
    (in eval mode) and the loss (L1 of ln RT60) of every step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Rt60Estimator(cfg)
    with torch.no_grad():  # start at the mean log RT60: the first steps then learn shape, not offset
        model.head.bias.fill_(float(np.mean(np.log(rt60))))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    x_all, y_all = (
        torch.from_numpy(np.asarray(audio, np.float32)),
        torch.from_numpy(np.log(rt60).astype(np.float32)),
    )
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(len(x_all), size=min(batch_size, len(x_all)), replace=False))
        pred = model.head(model.features(model.spectrogram(x_all[idx]))).squeeze(1)
        loss = F.l1_loss(pred, y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


def _reverberant(dataset: str | Path, split: str, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    samples = [
        s for s in read_samples(dataset, [split], kinds) if s.reverb is not None and s.rt60 is not None
    ]
    if not samples:
        raise ValueError(f"{dataset}: no {split} samples of kinds {kinds} with reverb audio and an RT60")
    n = min(len(s.reverb) for s in samples)  # SimRooms clips all have one length
    return np.stack([s.reverb[:n] for s in samples]), np.array([s.rt60 for s in samples])


def train_rt60_estimator(
    dataset_dir: str | Path,
    steps: int = 300,
    cfg: Rt60Config = Rt60Config(),
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[Rt60Estimator, dict]:
    """Train on the dataset's train split (paired + reverb_only reverberant clips, their measured
    RT60) and report MAE (seconds) on its val split. Returns ``(model, report)``."""
    t0 = time.perf_counter()
    x, y = _reverberant(dataset_dir, "train", ("paired", "reverb_only"))
    xv, yv = _reverberant(dataset_dir, "val", ("paired", "reverb_only"))
    model, losses = fit_rt60_estimator(x, y, cfg, steps, batch_size, lr, seed)
    est = estimate_rt60(model, xv)
    report = {
        "steps": steps, "n_train": len(y), "n_val": len(yv), "seconds": round(time.perf_counter() - t0, 1),
        "val_mae_s": float(np.mean(np.abs(est - yv))),
        "val_mae_predict_mean_s": float(np.mean(np.abs(np.mean(y) - yv))),  # what a constant achieves
        "val_corr": float(np.corrcoef(est, yv)[0, 1]),
        "final_loss": float(np.mean(losses[-20:])),
    }  # fmt: skip
    return model, report


# -- inference, checkpoints -----------------------------------------------------------------------


@torch.no_grad()
def estimate_rt60(
    model: Rt60Estimator, audio_batch: np.ndarray | list[np.ndarray], batch_size: int = 32
) -> np.ndarray:
    """RT60 in seconds for ``(B, T)`` or ``(T,)`` audio, or a list of clips of any lengths -> ``(B,)``."""
    model.eval()
    if isinstance(audio_batch, np.ndarray) and audio_batch.ndim == 1:
        audio_batch = audio_batch[None]
    if isinstance(audio_batch, list):  # lengths may differ: one clip at a time, no padding
        return np.array(
            [float(model(torch.from_numpy(np.asarray(a, np.float32))[None])) for a in audio_batch]
        )
    x = torch.from_numpy(np.asarray(audio_batch, np.float32))
    return (
        torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        .numpy()
        .astype(np.float64)
    )


def blind_rt60_error(model: Rt60Estimator, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """AViTAR's ``speech_rt60``: ``|est(pred) - est(target)|`` seconds per clip, ``(B,)`` (lower is better)."""
    return np.abs(estimate_rt60(model, pred) - estimate_rt60(model, target))


def save_rt60_estimator(model: Rt60Estimator, path: str | Path, report: dict | None = None) -> None:
    """Config, weights and training report as plain data (see module docstring)."""
    cfg = asdict(model.cfg)
    cfg["blocks"] = list(cfg["blocks"])
    clean = {k: v for k, v in (report or {}).items() if isinstance(v, (int, float, str)) and not _nan(v)}
    torch.save({"format": FORMAT, "config": cfg, "state_dict": model.state_dict(), "report": clean}, path)


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def load_rt60_estimator(path: str | Path) -> tuple[Rt60Estimator, dict]:
    """``(model in eval mode, training report)`` from :func:`save_rt60_estimator`'s file."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not an RT60 estimator checkpoint (format {ckpt.get('format')!r}, expected {FORMAT})"
        )
    cfg = dict(ckpt["config"])
    cfg["blocks"] = tuple(cfg["blocks"])
    model = Rt60Estimator(Rt60Config(**cfg))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["report"]
