"""Baselines for both tasks, run by the evaluation on the same samples as the models.

Every baseline has one signature, ``fn(sample: Sample, ctx: BaselineContext) -> (T,) float32``:

* VAM (dry ``sample.clean`` -> reverberant): ``identity`` (the dry input), ``mean_rir`` (the typical
  training room: aligned RIRs, median energy envelope, :func:`mean_rir`), ``retrieval`` (the RIR of the training view whose image is
  nearest, Image2Reverb-style retrieval, :class:`RirBank`), ``oracle_rir`` (the true RIR).
* Dereverberation (``sample.reverb`` -> dry): ``identity``, ``wpe`` (nara-wpe, 1 channel, with
  :func:`tune_wpe` on val) and ``oracle_dry`` (the clean member).

Output level: every output is brought to the dataset's convention, RMS -25 dBFS with the peak
below -1 dBFS (:func:`mvsd.audio_io.rms_normalize`), the level of both members of every sample,
so that STFT distances compare room acoustics rather than loudness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np
from nara_wpe.utils import istft, stft
from nara_wpe.wpe import wpe
from PIL import Image
from scipy.signal import fftconvolve

from mvsd.audio_io import SAMPLE_RATE, rms_normalize
from mvsd.data.manifest import read_manifest
from mvsd.data.sample import DECODERS, Sample
from mvsd.data.shards import iter_shard
from mvsd.eval.metrics import FAMILIES, Reference, align_delay, score, si_sdr

RMS_DB, PEAK_DB = -25.0, -1.0  # params.yaml audio.rms_db / audio.peak_db
THUMB = (8, 6)  # (W, H) of the image thumbnail in the retrieval descriptor
HIST_BINS = 8  # per RGB channel
DIRECT_WINDOW_S = 0.0025  # +-2.5 ms: the direct sound, as in mvsd.sim.rooms.measure_drr


def level(x: np.ndarray) -> np.ndarray:
    """The output level convention (module docstring)."""
    return rms_normalize(np.asarray(x, dtype=np.float32), RMS_DB, PEAK_DB)


def reverberate(dry: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``(dry * rir)`` cut to ``len(dry)`` and levelled: how the dataset makes ``reverb``."""
    return level(fftconvolve(dry, rir)[: len(dry)])


# -- reading samples ------------------------------------------------------------------------------


def read_samples(
    dataset: str | Path, splits: Sequence[str], kinds: Sequence[str] = ("paired",), limit: int | None = None
) -> list[Sample]:
    """Decoded samples of a local dataset, in manifest order, the first ``limit`` if given."""
    rows = [r for r in read_manifest(dataset).to_pylist() if r["split"] in splits and r["kind"] in kinds]
    rows = rows[:limit] if limit is not None else rows
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(r["shard"], set()).add(r["key"])
    found: dict[str, Sample] = {}
    for shard, keys in wanted.items():
        for key, members in iter_shard(Path(dataset) / shard):
            if key in keys:
                found[key] = _to_sample(key, members)
    missing = [r["key"] for r in rows if r["key"] not in found]
    if missing:
        raise ValueError(
            f"{dataset}: {len(missing)} manifest keys missing from their shards, e.g. {missing[0]}"
        )
    return [found[r["key"]] for r in rows]


def _to_sample(key: str, members: dict[str, bytes]) -> Sample:
    d = {name: DECODERS[name](data) for name, data in members.items() if name in DECODERS}
    meta = d.get("json", {})
    return Sample(
        key=key, split=meta["split"], kind=meta["kind"], source=meta.get("source", ""),
        room_id=meta.get("room"), speaker_id=meta.get("speaker"),
        clean=d.get("clean.flac"), reverb=d.get("reverb.flac"), image=d.get("image.jpg"),
        depth=d.get("depth.png"), rir=d.get("rir.npy"), rt60=meta.get("rt60_s"), drr=meta.get("drr_db"),
        meta={"view": meta.get("view")},
    )  # fmt: skip


# -- the RIR bank: mean RIR and retrieval ---------------------------------------------------------


def direct_peak(rir: np.ndarray) -> int:
    """Index of the direct sound: the largest peak within 1 ms of the onset (first sample within
    20 dB of the maximum), the rule of :func:`mvsd.sim.rooms.measure_drr`."""
    a = np.abs(rir)
    onset = int(np.argmax(a >= 0.1 * a.max()))
    return onset + int(np.argmax(a[onset : onset + int(1e-3 * SAMPLE_RATE) + 1]))


def mean_rir(rirs: Sequence[np.ndarray], statistic: str = "median", seed: int = 0) -> np.ndarray:
    """The "mean room" of a bank, ``(L,)`` float32, in three steps.

    1. Align every RIR at its direct sound (:func:`direct_peak`) and scale it to unit direct-sound
       energy (+-2.5 ms). Aligned, because source-mic distances differ: unaligned direct sounds
       land at different delays and average into a smear of small pulses instead of one.
    2. Direct sound: the mean waveform over +-2.5 ms (aligned direct sounds add coherently).
    3. After it: the per-time ``statistic`` over RIRs of their energy envelopes (10 ms moving
       average of ``h^2``), carried by white Gaussian noise (fixed ``seed``). Not the mean of
       waveforms: past the direct sound RIRs of different rooms are incoherent, their average
       cancels (tail energy falls as 1/N) and would leave an almost anechoic "mean". Not the mean of
       energies by default: late energy comes only from the most reverberant rooms, so its decay
       is theirs (SimRooms train: RT60 3.6 s, while the median view has 0.75 s). The median
       envelope decays like the median room (0.66 s, DRR -9 dB vs a median -7.6 dB).
    The direct sound sits at the bank's median direct delay; the tail's spectrum is white.
    """
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic {statistic!r} is not one of ('median', 'mean')")
    peaks = [direct_peak(h) for h in rirs]
    lead, w = int(np.median(peaks)), int(DIRECT_WINDOW_S * SAMPLE_RATE)
    n = max(lead + len(h) - p for h, p in zip(rirs, peaks, strict=True))
    aligned = np.zeros((len(rirs), n))
    for row, h, p in zip(aligned, rirs, peaks, strict=True):
        h = np.asarray(h, dtype=np.float64)[max(p - lead, 0) :]  # drop extra pre-delay silence
        start = max(lead - p, 0)
        row[start : start + len(h)] = h
        row /= np.sqrt(np.sum(row[max(lead - w, 0) : lead + w + 1] ** 2))
    direct = slice(max(lead - w, 0), lead + w + 1)
    energy = aligned**2
    energy[:, direct] = 0.0  # the envelope is the reverberant part's; keep the direct sound out of it
    k = int(0.01 * SAMPLE_RATE)
    envelopes = np.stack([np.convolve(e, np.ones(k) / k, mode="same") for e in energy])
    env = np.median(envelopes, axis=0) if statistic == "median" else envelopes.mean(axis=0)
    out = np.sqrt(env) * np.random.default_rng(seed).standard_normal(n)
    out[direct] = aligned[:, direct].mean(axis=0)
    return out.astype(np.float32)


def image_features(image: np.ndarray, depth: np.ndarray | None) -> np.ndarray:
    """A fixed descriptor of a room view (raw, before standardisation), 174 values:

    * 144: the RGB image shrunk to 8 x 6 (Pillow box filter), in [0, 1] — layout and the colours of
      the surfaces, which the renderer draws per material class;
    * 24: per-channel 8-bin colour histograms (fractions of pixels) — materials, whatever the layout;
    * 6: depth statistics in metres (mean, std, 10/50/90th percentile, max) — room size and shape;
      NaN without a depth map (standardisation then sets them to the bank mean).
    """
    rgb = np.asarray(image, dtype=np.uint8)
    thumb = np.asarray(Image.fromarray(rgb).resize(THUMB, Image.Resampling.BOX), dtype=np.float64) / 255
    hist = [np.histogram(rgb[..., c], bins=HIST_BINS, range=(0, 256))[0] / rgb[..., c].size for c in range(3)]
    if depth is None:
        stats = np.full(6, np.nan)
    else:
        d = np.asarray(depth, dtype=np.float64)
        stats = np.array([d.mean(), d.std(), *np.percentile(d, [10, 50, 90]), d.max()])
    return np.concatenate([thumb.ravel(), *hist, stats])


BLOCKS = (slice(0, THUMB[0] * THUMB[1] * 3), slice(144, 168), slice(168, 174))


def _moments(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation over the values that are not NaN; (0, 1) for a
    dimension with none (no depth maps) and scale 1 for a constant one (it carries no information)."""
    have = ~np.isnan(raw)
    count = np.maximum(have.sum(axis=0), 1)
    center = np.where(have, raw, 0.0).sum(axis=0) / count
    scale = np.sqrt((np.where(have, raw - center, 0.0) ** 2).sum(axis=0) / count)
    return center, np.where(scale > 1e-8, scale, 1.0)


@dataclass
class RirBank:
    """The training views (one RIR and one image each) the VAM baselines draw from.

    Attributes:
        rirs: one ``(L_i,)`` float32 RIR per view.
        room_ids, view_ids: per view.
        features: ``(N, 174)`` standardised descriptors (:meth:`standardise`).
        center, scale: per-dimension mean and standard deviation of the raw descriptors.
        mean: :func:`mean_rir` of ``rirs``.
    """

    rirs: list[np.ndarray]
    room_ids: list[str]
    view_ids: list[str]
    features: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    mean: np.ndarray = field(repr=False)

    @classmethod
    def from_samples(cls, samples: Iterable[Sample]) -> RirBank:
        """One entry per view (``meta['view']``, else the key) among samples with a RIR and an image."""
        views: dict[str, Sample] = {}
        for s in samples:
            if s.rir is not None and s.image is not None:
                views.setdefault(s.meta.get("view") or s.key, s)
        if not views:
            raise ValueError("no sample has both a RIR and an image: cannot build a RIR bank")
        raw = np.stack([image_features(s.image, s.depth) for s in views.values()])
        center, scale = _moments(raw)
        rirs = [np.asarray(s.rir, dtype=np.float32) for s in views.values()]
        bank = cls(
            rirs, [s.room_id or "" for s in views.values()], list(views), raw, center, scale, mean_rir(rirs)
        )
        bank.features = bank.standardise(raw)
        return bank

    @classmethod
    def from_dataset(cls, dataset: str | Path, split: str = "train") -> RirBank:
        """The bank of a dataset split (its paired samples: the ones with a RIR)."""
        return cls.from_samples(read_samples(dataset, [split], ("paired",)))

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """z-score each dimension, then divide each block by sqrt(its size) so the thumbnail (144
        values), the histograms (24) and the depth statistics (6) weigh the same in L2 distance."""
        z = np.nan_to_num((np.atleast_2d(raw) - self.center) / self.scale)
        for b in BLOCKS:
            z[:, b] /= np.sqrt(b.stop - b.start)
        return z

    def nearest(self, image: np.ndarray, depth: np.ndarray | None = None) -> int:
        """Index of the view whose descriptor is nearest (Euclidean) to that of ``image``/``depth``."""
        q = self.standardise(image_features(image, depth))
        return int(np.argmin(np.sum((self.features - q) ** 2, axis=1)))

    def save(self, path: str | Path) -> None:
        """To an ``.npz`` (no pickles): RIRs concatenated with their offsets."""
        offsets = np.cumsum([0, *(len(h) for h in self.rirs)])
        np.savez_compressed(
            path, rirs=np.concatenate(self.rirs), offsets=offsets, room_ids=np.array(self.room_ids),
            view_ids=np.array(self.view_ids), features=self.features, center=self.center,
            scale=self.scale, mean=self.mean,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> RirBank:
        with np.load(path, allow_pickle=False) as z:
            o = z["offsets"]
            rirs = [z["rirs"][a:b] for a, b in zip(o[:-1], o[1:], strict=True)]
            return cls(rirs, z["room_ids"].tolist(), z["view_ids"].tolist(), z["features"], z["center"],
                       z["scale"], z["mean"])  # fmt: skip


# -- baselines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WpeParams:
    """nara-wpe settings: prediction ``taps`` and ``delay`` in STFT frames, ``iterations``; the STFT
    (``n_fft``, ``hop`` in samples; nara-wpe's Blackman window)."""

    taps: int = 10
    delay: int = 3
    iterations: int = 3
    n_fft: int = 512
    hop: int = 128


@dataclass(frozen=True)
class BaselineContext:
    """What baselines may use besides the sample: the training RIR bank and the WPE settings."""

    bank: RirBank | None = None
    wpe: WpeParams = WpeParams()


def _bank(ctx: BaselineContext, name: str) -> RirBank:
    if ctx.bank is None:
        raise ValueError(f"baseline {name!r} needs BaselineContext.bank (RirBank.from_dataset)")
    return ctx.bank


def vam_identity(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return level(s.clean)


def vam_mean_rir(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return reverberate(s.clean, _bank(ctx, "mean_rir").mean)


def vam_retrieval(s: Sample, ctx: BaselineContext) -> np.ndarray:
    bank = _bank(ctx, "retrieval")
    return reverberate(s.clean, bank.rirs[bank.nearest(s.image, s.depth)])


def vam_oracle_rir(s: Sample, ctx: BaselineContext) -> np.ndarray:
    if s.rir is None:
        raise ValueError(f"sample {s.key} has no RIR: oracle_rir needs one")
    return reverberate(s.clean, s.rir)


def wpe_dereverb(wet: np.ndarray, p: WpeParams = WpeParams()) -> np.ndarray:
    """Single-channel offline WPE (Nakatani et al. 2010; nara-wpe), ``(T,)`` -> ``(T,)``."""
    Y = stft(np.asarray(wet, dtype=np.float64)[None], size=p.n_fft, shift=p.hop)  # (1, frames, F)
    Z = wpe(Y.transpose(2, 0, 1), taps=p.taps, delay=p.delay, iterations=p.iterations)  # (F, 1, frames)
    return istft(Z.transpose(1, 2, 0), size=p.n_fft, shift=p.hop)[0, : len(wet)]


def dereverb_identity(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return level(s.reverb)


def dereverb_wpe(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return level(wpe_dereverb(s.reverb, ctx.wpe))


def dereverb_oracle(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return level(s.clean)


Baseline = Callable[[Sample, BaselineContext], np.ndarray]
BASELINES: dict[str, dict[str, Baseline]] = {
    "vam": {"identity": vam_identity, "mean_rir": vam_mean_rir, "retrieval": vam_retrieval,
            "oracle_rir": vam_oracle_rir},
    "dereverb": {"identity": dereverb_identity, "wpe": dereverb_wpe, "oracle_dry": dereverb_oracle},
}  # fmt: skip


def get_baseline(family: str, name: str) -> Baseline:
    if family not in BASELINES:
        raise ValueError(f"family {family!r} is not one of {FAMILIES}")
    if name not in BASELINES[family]:
        raise ValueError(f"no {family} baseline {name!r}; choose from {sorted(BASELINES[family])}")
    return BASELINES[family][name]


def tune_wpe(
    val_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    taps: Sequence[int] = (10, 20, 40),
    delays: Sequence[int] = (1, 3),
    iterations: Sequence[int] = (1, 3),
) -> tuple[WpeParams, list[dict]]:
    """Grid search on ``(reverberant, dry)`` val pairs by mean SI-SDR (dB, after :func:`align_delay`,
    as the evaluation scores it); returns the best parameters and one row per grid point
    (``taps, delay, iterations, si_sdr``), best first."""
    rows = []
    for t, d, it in product(taps, delays, iterations):
        p = WpeParams(taps=t, delay=d, iterations=it)
        sdr = float(
            np.mean([si_sdr(dry, align_delay(dry, wpe_dereverb(wet, p))[0]) for wet, dry in val_pairs])
        )
        rows.append({"taps": t, "delay": d, "iterations": it, "si_sdr": sdr})
    rows.sort(key=lambda r: -r["si_sdr"])
    best = rows[0]
    return WpeParams(taps=best["taps"], delay=best["delay"], iterations=best["iterations"]), rows


def reference(s: Sample, family: str) -> Reference:
    """What a ``family`` prediction for ``s`` is scored against."""
    if family == "vam":
        return Reference(target=s.reverb, dry=s.clean, rt60=s.rt60, drr=s.drr)
    return Reference(target=s.clean)


def evaluate_baseline(
    fn: Baseline, samples: Sequence[Sample], ctx: BaselineContext, family: str
) -> list[dict]:
    """Per-sample scores (``key`` + every metric of ``family``) of one baseline."""
    return [{"key": s.key, **score(fn(s, ctx), reference(s, family), family)} for s in samples]


def mean_scores(rows: Sequence[dict]) -> dict[str, float]:
    """Mean of each metric over samples. NaNs (a silent output, an unmeasurable RT60) are left out
    of the mean and counted under ``<metric>/nan``, so that they cannot hide."""
    out: dict[str, float] = {}
    for k in (k for k in rows[0] if k != "key"):
        values = np.array([r[k] for r in rows], dtype=np.float64)
        bad = int(np.isnan(values).sum())
        out[k] = float(np.mean(values[~np.isnan(values)])) if bad < len(values) else float("nan")
        if bad:
            out[f"{k}/nan"] = bad
    return out
