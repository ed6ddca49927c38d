"""Baselines for both tasks, run by the evaluation on the same samples as the models.

Every baseline has one signature, ``fn(sample: Sample, ctx: BaselineContext) -> (T,) float32``:

* VAM (dry ``sample.clean`` -> reverberant): ``identity`` (the dry input), ``mean_rir`` (the typical
  training room: aligned RIRs, median energy envelope, :func:`mean_rir`), ``retrieval`` (the RIR of the training view whose image is
  nearest, Image2Reverb-style retrieval, :class:`RirBank`), ``oracle_rir`` (the true RIR);
  and the rows that bound the converters' physical path from above (they read the true RIR):
  ``oracle_t60`` (:func:`oracle_t60_rir`: the parametric RIR of :func:`mvsd.acoustics.synth_rir`
  given the room's true per-band T60, DRR and band levels — the best the reverberator's first
  estimate can do), ``floor_envelope`` (:func:`floor_envelope_rir`: the true per-band energy
  envelopes carried by new noise) and ``floor_expfit`` (:func:`floor_expfit_rir`: each band's
  envelope replaced by its exponential fit). A tail with the right envelopes but another noise
  realisation is as right as a model of the room can be; what such rows lose on STFT distance is
  the metric's floor for any generative reverberator.
* Dereverberation (``sample.reverb`` -> dry): ``identity``, ``wpe`` (nara-wpe, 1 channel, with
  :func:`tune_wpe` on val), ``oracle_dry`` (the clean member), and statistical late-reverberation
  suppression (:func:`mvsd.models.room.dereverb_estimate`, Lebart/Habets) driven by a blind,
  audio-only T60 estimate (``lebart_blind``, :func:`blind_t60`) or by the true per-band T60
  (``lebart_oracle``).

A baseline that needs a member the sample lacks (the RIR-based rows on data without ``rir.npy``)
raises :class:`MissingInput`; the evaluation then leaves that baseline out for that sample.

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
import torch
from nara_wpe.utils import istft, stft
from nara_wpe.wpe import wpe
from PIL import Image
from scipy.signal import fftconvolve

from mvsd import acoustics as ac
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


# -- RIRs rebuilt from the true one: the parametric upper bound and the floor rows -------------------

NOISE_SEED = 0  # one fixed noise realisation for every rebuilt RIR: rows are reproducible
ORACLE_RIR_SECONDS = 3.0  # the reverberator's longest synthesised RIR (model.rir_seconds)
ENVELOPE_SMOOTH_S = 0.005  # energy envelopes of floor_envelope: h^2 averaged over 5 ms
EXPFIT_EDC_DB = -40.0  # floor_expfit fits each band until its decay curve falls this far
LEVEL_ITERATIONS = 4  # band-level corrections (octave bands overlap, see _match_bands)


def _direct_window() -> int:
    return int(ac.DIRECT_WINDOW_MS * 1e-3 * SAMPLE_RATE)


def fill_bands(t60: np.ndarray, fallback: float = 0.5) -> np.ndarray:
    """Per-band T60 with the NaN bands (a band that does not decay 15 dB) filled by linear
    interpolation over the band index from the measured ones (the nearest one at the ends), or
    ``fallback`` when none is measured; clipped to :data:`mvsd.acoustics.T60_RANGE`."""
    t60 = np.asarray(t60, dtype=np.float64)
    ok = np.isfinite(t60) & (t60 > 0)
    if not ok.any():
        return np.full(t60.shape, float(np.clip(fallback, *ac.T60_RANGE)))
    k = np.arange(len(t60))
    return np.clip(np.interp(k, k[ok], t60[ok]), *ac.T60_RANGE)


def true_band_t60(h: np.ndarray) -> np.ndarray:
    """``(6,)`` T60 per octave band of a true RIR, measured from its direct sound on
    (:func:`mvsd.acoustics.band_t60_np`), NaN bands filled (:func:`fill_bands`; all-NaN: the
    broadband RT60, else 0.5 s)."""
    h = np.asarray(h, dtype=np.float64)
    t60 = ac.band_t60_np(h[ac.onset(h) :])
    broadband = ac.measure_rt60(h) if not np.isfinite(t60).any() else float("nan")
    return fill_bands(t60, broadband if np.isfinite(broadband) else 0.5)


def band_split_np(x: np.ndarray) -> np.ndarray:
    """:func:`mvsd.acoustics.band_split` in numpy (the same masks; single-threaded numpy FFTs are
    much faster than torch's here when training runs share the cores): ``(..., L)`` -> ``(..., 6, L)``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    n_fft = 1 << max(1, int(np.ceil(np.log2(2 * max(n, 1)))))
    masks = ac.band_masks(n_fft, dtype=torch.float64).numpy()
    return np.fft.irfft(np.fft.rfft(x, n_fft)[..., None, :] * masks, n_fft)[..., :n]


def band_energy(x: np.ndarray) -> np.ndarray:
    """``(..., 6)`` energy of each octave band of ``x (..., L)`` (:func:`mvsd.acoustics.band_split`)."""
    return np.sum(band_split_np(x) ** 2, axis=-1)


def _smooth(e: np.ndarray, seconds: float) -> np.ndarray:
    """Moving average of ``e (..., L)`` over ``seconds`` (same length, centred)."""
    k = max(1, int(seconds * SAMPLE_RATE))
    c = np.cumsum(np.pad(e, [(0, 0)] * (e.ndim - 1) + [(k // 2 + 1, k - k // 2 - 1)], mode="edge"), axis=-1)
    return (c[..., k:] - c[..., :-k]) / k


def _noise(n: int, seed: int) -> np.ndarray:
    """``(6, n)`` octave-band noise (:func:`mvsd.acoustics.band_noise`), each band at unit RMS."""
    z = ac.band_noise(1, n, torch.Generator().manual_seed(seed))[0].double().numpy()
    return z / np.sqrt(np.mean(z**2, axis=-1, keepdims=True)).clip(min=1e-12)


def _match_bands(components: np.ndarray, target: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``sum_k g_k components[k]`` with gains ``g`` such that the octave-band energies of the
    whole RIR ``[head, sum]``, measured like the true RIR's (:func:`band_energy`), equal
    ``target (6,)``.

    The bands of :func:`mvsd.acoustics.band_split` overlap (raised-cosine crossovers that sum to
    one in amplitude, not in power), so a component made for band k also lands partly in its
    neighbours, and a band filter's ringing mixes the direct part into the start of the tail; a
    few multiplicative corrections ``g_k *= sqrt((target_k - head_k) / (measured_k - head_k))``
    converge (to about 0.1 dB) because each band is dominated by its own component."""
    target = np.maximum(np.asarray(target, dtype=np.float64), 1e-12 * max(float(np.max(target)), 1e-30))
    pad = np.zeros(components.shape[-1])
    own = band_energy(np.concatenate([head, pad]))
    g = np.ones(len(components))
    for _ in range(LEVEL_ITERATIONS):
        got = band_energy(np.concatenate([head, g @ components]))
        want, have = (target - own).clip(min=1e-3 * target), (got - own).clip(min=1e-3 * target)
        g *= np.sqrt(want / have)
    return g @ components


def _place_direct(rir: np.ndarray, direct: int) -> np.ndarray:
    """A synthesised RIR (direct sound at :data:`mvsd.acoustics.DIRECT_INDEX`) shifted so that its
    direct sound lands at ``direct`` (the true RIR's: same propagation delay as the target)."""
    shift = direct - ac.DIRECT_INDEX
    return np.concatenate([np.zeros(shift), rir]) if shift >= 0 else rir[-shift:]


def oracle_t60_rir(h: np.ndarray, n_out: int | None = None, seed: int = NOISE_SEED) -> np.ndarray:
    """The parametric path's upper bound: :func:`mvsd.acoustics.synth_rir` given the true room.

    * ``t60``: the true RIR's per-band T60 (:func:`true_band_t60`), corrected so that the
      synthesised RIR, measured the same way (:func:`mvsd.acoustics.band_t60_np`), has the true
      per-band T60 (a band's noise overlaps its neighbours', whose slower or faster decay would
      otherwise pull its measured T60; a few multiplicative corrections, clipped to x2);
    * ``drr_db``: its DRR, :func:`mvsd.acoustics.measure_drr` around :func:`mvsd.acoustics.onset`;
    * ``band_db``: the tail's colour. The band noises of :func:`mvsd.acoustics.band_noise` carry
      energy in proportion to their bandwidth and overlap their neighbours, so the level of each
      band is not read off a formula but fitted: ``band_db`` is set so that the octave-band
      energies of the synthesised tail, measured like the true one's (:func:`band_energy` over
      the same span after the direct window), equal the true tail's (a few multiplicative
      corrections, :data:`LEVEL_ITERATIONS`, made together with the T60 ones). Only the ratios between bands matter: the DRR
      sets the tail's total level;
    * ``early_db`` 0 (no early-reflection model), the noise of seed ``seed``.

    As long as the reverberator's own (``model.rir_seconds``, at most ``n_out`` samples), with
    the direct sound moved to the true RIR's onset. ``(L,)`` float64.
    """
    h = np.asarray(h, dtype=np.float64)
    d, w = ac.onset(h), _direct_window()
    length = round(ORACLE_RIR_SECONDS * SAMPLE_RATE)
    length = max(min(length, n_out) if n_out else length, 2 * (ac.DIRECT_INDEX + w + 1))
    start = ac.DIRECT_INDEX + w + 1
    true_tail = h[d + w + 1 :]
    span = min(len(true_tail), length - start)
    target = band_energy(true_tail[:span]) if span > 0 else np.ones(len(ac.BANDS))
    target = np.maximum(target, 1e-12 * max(float(target.max()), 1e-30))
    true_t60 = true_band_t60(h)
    t60 = torch.tensor(true_t60)[None]
    drr = torch.tensor([float(np.clip(ac.measure_drr(h, direct=d), *ac.DRR_RANGE))], dtype=torch.float64)
    noise = ac.band_noise(1, length, torch.Generator().manual_seed(seed)).double()
    band_db = torch.zeros(1, len(ac.BANDS), dtype=torch.float64)
    early = torch.zeros(1, dtype=torch.float64)
    for i in range(LEVEL_ITERATIONS + 1):
        rir = ac.synth_rir(t60, drr, band_db, early, length, noise)[0].numpy()
        if span <= 0 or i == LEVEL_ITERATIONS:
            break
        got = band_energy(rir[start : start + span]).clip(min=1e-30)
        band_db += torch.from_numpy(10 * np.log10(target / got))[None]
        band_db -= band_db.mean()
        measured = ac.band_t60_np(rir[ac.DIRECT_INDEX :])
        ratio = np.where(np.isfinite(measured) & (measured > 0), true_t60 / measured, 1.0)
        t60 = (t60 * torch.from_numpy(np.clip(ratio, 0.5, 2.0))[None]).clamp(*ac.T60_RANGE)
    return _place_direct(rir, d)


def _direct_and_tail(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true RIR up to 2.5 ms after its direct sound (kept as it is), and the rest."""
    h = np.asarray(h, dtype=np.float64)
    cut = ac.onset(h) + _direct_window() + 1
    return h[:cut], h[cut:]


def floor_envelope_rir(h: np.ndarray, seed: int = NOISE_SEED) -> np.ndarray:
    """A physically right tail with another noise realisation (the floor of any model of the room).

    The true RIR's direct part (up to 2.5 ms after :func:`mvsd.acoustics.onset`) is kept; after
    it, each octave band (:func:`mvsd.acoustics.band_split`) of the true tail gives its amplitude
    envelope (energy averaged over :data:`ENVELOPE_SMOOTH_S`, square root), which multiplies that
    band of new unit-RMS noise (:func:`mvsd.acoustics.band_noise`, seed ``seed``); the bands are
    summed with gains that give the sum the true tail's octave-band energies (:func:`_match_bands`).
    """
    head, tail = _direct_and_tail(h)
    if len(tail) == 0:
        return head
    bands = band_split_np(tail)  # (6, n)
    env = np.sqrt(_smooth(bands**2, ENVELOPE_SMOOTH_S).clip(min=0))
    new = _match_bands(env * _noise(len(tail), seed), band_energy(np.concatenate([head, tail])), head)
    return np.concatenate([head, new])


def expfit_envelopes(tail: np.ndarray) -> np.ndarray:
    """``(6, n)`` amplitude envelopes: per octave band of ``tail``, an exponential fitted to the
    band's energy envelope (:data:`ENVELOPE_SMOOTH_S`), from the tail's start until the band's
    decay curve (:func:`mvsd.acoustics.edc_db`) falls :data:`EXPFIT_EDC_DB` dB.

    The decay rate is the least-squares slope of the envelope in dB (a noise envelope's log is
    biased low by a constant, which leaves the slope alone); the level is then the least-squares
    amplitude in linear energy, which is unbiased."""
    n = len(tail)
    bands = band_split_np(tail)
    energy = _smooth(bands**2, ENVELOPE_SMOOTH_S).clip(min=0)
    edc = ac.edc_db(torch.from_numpy(bands)).numpy()
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros_like(bands)
    for k in range(len(bands)):
        end = int(np.argmax(edc[k] <= EXPFIT_EDC_DB)) if np.any(edc[k] <= EXPFIT_EDC_DB) else n
        end = max(end, min(n, int(0.02 * SAMPLE_RATE)))
        e = energy[k, :end]
        if not np.any(e > 0):
            continue
        log_e = 10 * np.log10(e.clip(min=1e-12 * e.max()))
        slope = np.polyfit(t[:end], log_e, 1)[0]  # dB per second
        t60 = float(np.clip(-60.0 / slope if slope < 0 else ac.T60_RANGE[1], *ac.T60_RANGE))
        g = np.exp(-2 * ac.LN_1000 * t / t60)  # energy decay
        a = float(np.dot(e, g[:end]) / max(np.dot(g[:end], g[:end]), 1e-30))
        out[k] = np.sqrt(max(a, 0.0) * g)
    return out


def floor_expfit_rir(h: np.ndarray, seed: int = NOISE_SEED) -> np.ndarray:
    """:func:`floor_envelope_rir` with each band's envelope replaced by its exponential fit
    (:func:`expfit_envelopes`): a smooth per-band decay at the fitted level, new noise (seed
    ``seed``), the true direct part. Compared with :func:`oracle_t60_rir` (the same kind of RIR,
    so the two rows are close but not the same): the T60 is the envelope's slope instead of the
    decay curve's T30, the band levels follow the fit (the late decay) instead of matching the
    bands' total energies (early reflections included), the direct sound is the true waveform
    instead of a unit impulse, and the DRR is what the fit implies instead of being imposed."""
    head, tail = _direct_and_tail(h)
    if len(tail) == 0:
        return head
    env = expfit_envelopes(tail)
    own = band_energy(np.concatenate([head, np.zeros(len(tail))]))
    new = _match_bands(env * _noise(len(tail), seed), own + (env**2).sum(-1), head)
    return np.concatenate([head, new])


# -- blind T60 and late-reverberation suppression --------------------------------------------------

BLIND_FRAME_S, BLIND_HOP_S = 0.05, 0.008  # Hann frames of the energy envelope
BLIND_SKIP_DB = 3.0  # the first dB of a decay are left out of its fit (the direct sound's fall)
BLIND_TOLERANCE_DB = 3.0  # a free decay may fluctuate this much above its running minimum
BLIND_MIN_S = 0.06  # shortest fitted decay
BLIND_PERCENTILE = 20.0  # of the decays' T60s: the fast end (the room bounds how fast energy falls)
BLIND_FALLBACK_WINDOW_S = 0.15
BLIND_T60_DEFAULT = 0.5  # seconds, for a silent input


def _envelope_db(x: np.ndarray) -> np.ndarray:
    w, hop = int(BLIND_FRAME_S * SAMPLE_RATE), int(BLIND_HOP_S * SAMPLE_RATE)
    x = np.asarray(x, dtype=np.float64)
    if len(x) < w:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(x, w)[::hop]
    e = np.mean((frames * np.hanning(w)) ** 2, axis=1)
    return 10 * np.log10(e + 1e-12 * np.mean(x**2) + 1e-30)


def _free_decays(e: np.ndarray, min_drop_db: float) -> list[float]:
    """T60s (s) of the free decays in an energy envelope ``e`` (dB per frame): from each local
    maximum at least 15 dB above the floor, the frames that stay within
    :data:`BLIND_TOLERANCE_DB` of their running minimum and 5 dB above the floor, cut at that
    minimum; a line fitted from :data:`BLIND_SKIP_DB` below the start on, when the fitted part
    lasts :data:`BLIND_MIN_S` and falls ``min_drop_db``."""
    floor = max(float(np.percentile(e, 5)), float(e.max()) - 60.0)
    n, i, out = len(e), 0, []
    while i < n - 2:
        if e[i] < floor + 15 or e[i] < e[max(i - 1, 0)] or e[i] < e[i + 1]:
            i += 1
            continue
        j, low = i, e[i]
        while j + 1 < n and e[j + 1] <= low + BLIND_TOLERANCE_DB and e[j + 1] > floor + 5:
            j += 1
            low = min(low, e[j])
        seg = e[i : j + 1]
        seg = seg[: int(np.argmin(seg)) + 1]
        below = np.nonzero(seg <= seg[0] - BLIND_SKIP_DB)[0]
        fit = seg[below[0] :] if len(below) else seg[:0]
        if len(fit) * BLIND_HOP_S >= BLIND_MIN_S and fit[0] - fit[-1] >= min_drop_db:
            slope = np.polyfit(np.arange(len(fit)) * BLIND_HOP_S, fit, 1)[0]
            if slope < 0:
                out.append(-60.0 / slope)
        i = max(i + 1, i + len(seg) - 1)
    return out


def blind_t60(x: np.ndarray) -> float:
    """Broadband T60 (s) of reverberant speech ``x`` alone, from the distribution of its decay
    rates (in the spirit of Ratnam et al. 2003 and Löllmann et al. 2010, without their
    maximum-likelihood model).

    After a speech offset the energy can fall no faster than the room lets it, so the room's decay
    is at the fast end of the decay rates found in the energy envelope (50 ms Hann frames, 8 ms
    hop): :func:`_free_decays` collects the free decays that fall 10 dB (6 dB if fewer than two
    do), and the estimate is the :data:`BLIND_PERCENTILE`-th percentile of their T60s. When even
    that finds fewer than two (dense speech in a long-reverberant room: no gap lets the tail fall),
    the fastest sustained fall is used: the 1st percentile of least-squares slopes over 150 ms
    windows of the envelope. NaN for a clip shorter than a frame or silent.

    Measured on four espeak clips (2.5-4.8 s) convolved with exponential RIRs (DRR -5, 0, +5 dB):
    T60 0.4 s is read within -19 % ... +46 % (mean absolute error 16 %), 1.2 s reads short by
    4-47 % (mean 34 %): long decays are rarely free in speech, and noisy ones fit steep. On
    SimRooms val (2.56 s clips of dense speech, T60 up to 4 s) it is worse still (long rooms read
    short), so ``lebart_blind`` is a weak, audio-only reference, not a tuned estimator.
    """
    e = _envelope_db(x)
    if len(e) < 3 or not np.isfinite(e).all() or e.max() - e.min() < 1e-6:
        return float("nan")
    for min_drop in (10.0, 6.0):
        t60s = _free_decays(e, min_drop)
        if len(t60s) >= 2:
            return float(np.clip(np.percentile(t60s, BLIND_PERCENTILE), *ac.T60_RANGE))
    w = max(2, int(round(BLIND_FALLBACK_WINDOW_S / BLIND_HOP_S)))
    if len(e) <= w:
        return float("nan")
    win = np.lib.stride_tricks.sliding_window_view(e, w)
    t = (np.arange(w) - (w - 1) / 2) * BLIND_HOP_S
    slopes = (win - win.mean(1, keepdims=True)) @ t / np.sum(t**2)
    steepest = float(np.percentile(slopes, 1))
    return float(np.clip(-60.0 / steepest if steepest < 0 else ac.T60_RANGE[1], *ac.T60_RANGE))


def lebart(wet: np.ndarray, t60: np.ndarray) -> np.ndarray:
    """Late reverberation of ``wet (T,)`` suppressed with per-band ``t60 (6,)`` seconds: the
    dereverberator's first estimate, :func:`mvsd.models.room.dereverb_estimate` (Lebart/Habets
    gain on the default STFT, not advanced: the evaluation aligns delays), in numpy."""
    from mvsd.audio import StftConfig
    from mvsd.models.room import Room, dereverb_estimate

    k = len(ac.BANDS)
    t = torch.as_tensor(np.clip(np.asarray(t60, dtype=np.float32), *ac.T60_RANGE)).reshape(1, k)
    room = Room(t, torch.zeros(1), torch.zeros(1, k), torch.zeros(1))
    y = dereverb_estimate(torch.from_numpy(np.asarray(wet, dtype=np.float32))[None], room, StftConfig(), advance=0)
    return y[0].numpy()


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


class MissingInput(ValueError):
    """A sample lacks a member a baseline needs (e.g. no ``rir.npy``): the evaluation skips that
    baseline for that sample instead of failing."""


def _rir(s: Sample, name: str) -> np.ndarray:
    if s.rir is None:
        raise MissingInput(f"sample {s.key} has no RIR: {name} needs one")
    return np.asarray(s.rir, dtype=np.float64)


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
    return reverberate(s.clean, _rir(s, "oracle_rir"))


def vam_oracle_t60(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return reverberate(s.clean, oracle_t60_rir(_rir(s, "oracle_t60"), len(s.clean)))


def vam_floor_envelope(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return reverberate(s.clean, floor_envelope_rir(_rir(s, "floor_envelope")))


def vam_floor_expfit(s: Sample, ctx: BaselineContext) -> np.ndarray:
    return reverberate(s.clean, floor_expfit_rir(_rir(s, "floor_expfit")))


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


def dereverb_lebart_blind(s: Sample, ctx: BaselineContext) -> np.ndarray:
    t60 = blind_t60(s.reverb)
    return level(lebart(s.reverb, np.full(len(ac.BANDS), t60 if np.isfinite(t60) else BLIND_T60_DEFAULT)))


def dereverb_lebart_oracle(s: Sample, ctx: BaselineContext) -> np.ndarray:
    h = _rir(s, "lebart_oracle")
    return level(lebart(s.reverb, true_band_t60(h)))


Baseline = Callable[[Sample, BaselineContext], np.ndarray]
BASELINES: dict[str, dict[str, Baseline]] = {
    "vam": {"identity": vam_identity, "mean_rir": vam_mean_rir, "retrieval": vam_retrieval,
            "oracle_rir": vam_oracle_rir, "oracle_t60": vam_oracle_t60,
            "floor_envelope": vam_floor_envelope, "floor_expfit": vam_floor_expfit},
    "dereverb": {"identity": dereverb_identity, "wpe": dereverb_wpe, "oracle_dry": dereverb_oracle,
                 "lebart_blind": dereverb_lebart_blind, "lebart_oracle": dereverb_lebart_oracle},
}  # fmt: skip


# Baselines a user could run on their own data: no true RIR, no clean reference. The headline
# metrics compare the model with the best of these.
BLIND_BASELINES = {"vam": ("identity", "mean_rir", "retrieval"), "dereverb": ("identity", "wpe", "lebart_blind")}


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
