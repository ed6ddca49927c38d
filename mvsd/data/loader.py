"""Streaming loader: shards in local folders or fsspec URLs -> batches for training and inference.

Per DataLoader worker, the pipeline is a ``webdataset`` 1.0 ``DataPipeline`` of these stages::

    shard URLs ── SimpleShardList (shuffled per epoch when training)
                     ── split_by_node ── split_by_worker
              or  ResampledShards (train + epoch_samples: every DDP rank yields equal batches)
      ── fsspec.open + iter_shard (refuses unsafe member names) ── keep the selected keys
      ── shuffle buffer (train) ── decode (soundfile, Pillow) + aligned crop ── collate

For DDP training pass ``epoch_samples``: without it, ranks read disjoint shards and may yield
different numbers of batches, which hangs DDP (fine for evaluation, where each sample is read
once by one rank).

A batch is a dict::

    clean, reverb                     (B, T) float32, T = segment_seconds x 16 kHz; zeros where
                                      the member is absent and after the end of a short clip
    image                             (B, 3, H, W) float32 in [0, 1], (H, W) = cfg.image_size
    has_clean, has_reverb, has_image  (B,) bool
    rt60                              (B,) float32 seconds, nan where unknown
    rir, has_rir                      (B, RIR_SAMPLES) float32 (zero-padded or cut), (B,) bool
    key                               list[str]
    meta                              list[dict], the ``json`` member

All randomness (shard order, shuffle buffer, crop offsets) derives from ``seed``, the epoch, the
rank and the worker id, so a run is reproducible. ``memory://`` filesystems live inside one
process: read them with ``num_workers=0``.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info
from webdataset.utils import pytorch_worker_info

from mvsd.audio_io import SAMPLE_RATE, decode_flac
from mvsd.config import LoaderConfig
from mvsd.data.manifest import MANIFEST
from mvsd.data.sample import KINDS, SPLITS, decode_npy
from mvsd.data.shards import iter_shard
from mvsd.errors import BadInput
from mvsd.images import resize_pixels

log = logging.getLogger(__name__)

# A resampled stream never ends by itself: when this many shards in a row hold no selected key,
# or this many samples in a row fail to decode, the data is broken; stop with an error instead.
MAX_EMPTY_SHARDS = 100
MAX_BAD_SAMPLES = 1000
RIR_SAMPLES = 48000  # rir.npy in a batch: 3 s at 16 kHz (the room head's supervision)


# -- selecting shards from the manifest -----------------------------------------------------------


def join_url(dataset: str, rel: str) -> str:
    """``rel`` (a manifest ``shard``, always ``/``-separated) inside a dataset folder or URL."""
    return f"{str(dataset).rstrip('/')}/{rel}"


def _names(values: str | Iterable[str] | None, valid: tuple[str, ...], what: str) -> list[str] | None:
    if values is None:
        return None
    names = [values] if isinstance(values, str) else list(values)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid: {', '.join(valid)}")
    return names


def read_selection(dataset: str, splits=None, kinds=None, where: pc.Expression | None = None) -> pa.Table:
    """The manifest rows of ``dataset`` (a folder or fsspec URL) in the selected splits and kinds
    that also satisfy the pyarrow expression ``where`` (e.g. ``pc.field("rt60") > 0.5``)."""
    splits = _names(splits, SPLITS, "split(s)")
    kinds = _names(kinds, KINDS, "kind(s)")
    url = join_url(dataset, MANIFEST)
    try:
        with fsspec.open(url, "rb") as f:
            table = pq.read_table(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{dataset}: no {MANIFEST} (is it a dataset built by mvsd?)") from None
    for column, names in (("split", splits), ("kind", kinds)):
        if names is not None:
            table = table.filter(pc.field(column).isin(names))
    return table if where is None else table.filter(where)


def select_shards(dataset: str, splits=None, kinds=None, where=None) -> tuple[list[str], set[str]]:
    """Shard URLs holding any selected sample (manifest order) and the set of selected keys.

    Args:
        dataset: a dataset folder or fsspec URL (``s3://bucket/simrooms``, ``memory://ds``...).
        splits, kinds: a name or names to keep (None keeps all); see ``mvsd.data.sample``.
        where: an optional pyarrow filter expression over manifest columns.
    Raises:
        FileNotFoundError: no manifest; ValueError: unknown names or nothing selected.
    """
    table = read_selection(dataset, splits, kinds, where)
    if table.num_rows == 0:
        raise ValueError(f"{dataset}: no samples match splits={splits!r}, kinds={kinds!r}, where={where}")
    shards = dict.fromkeys(table.column("shard").to_pylist())  # unique, in manifest order
    return [join_url(dataset, s) for s in shards], set(table.column("key").to_pylist())


# -- decoding one sample --------------------------------------------------------------------------


def load_image(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """``(3, H, W)`` float32 in [0, 1], resized by :func:`mvsd.images.resize_pixels` to ``size = (H, W)``.

    Like :func:`mvsd.data.sample.decode_image` (grayscale/RGBA converted to RGB), but a JPEG far
    larger than ``size`` is decoded at 1/2..1/8 scale first (``draft``), which costs a fraction of
    a full decode, and an image already at ``size`` is not resampled.
    """
    h, w = size
    with Image.open(io.BytesIO(data)) as im:
        im.draft(None, (w, h))
        pixels = np.asarray(im.convert("RGB"))  # (H, W, 3) uint8
    return resize_pixels(pixels, size)  # the same resize as inference (mvsd.images)


def _mono(data: bytes) -> np.ndarray:
    x = decode_flac(data)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {x.shape}")
    return x


def crop_pair(
    clean: np.ndarray | None, reverb: np.ndarray | None, length: int, rng: random.Random | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Cut clean and reverb at one shared offset to ``(length,)``, zero-padding short clips.

    The offset is uniform over the positions where the shorter clip still fills the segment
    (``rng``), or 0 when ``rng`` is None (evaluation: deterministic).
    """
    n = min((len(x) for x in (clean, reverb) if x is not None), default=0)
    offset = rng.randint(0, n - length) if rng is not None and n > length else 0
    return tuple(None if x is None else _fit(x[offset : offset + length], length) for x in (clean, reverb))


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    if len(x) == length:
        return x  # a view: collate copies it once, into the batch
    out = np.zeros(length, np.float32)
    out[: len(x)] = x
    return out


def decode_sample(
    members: dict[str, bytes], length: int, size: tuple[int, int], rng: random.Random | None
) -> dict[str, Any]:
    """One sample with the batch's fields (module docstring), without the batch dimension.

    Absent members give zeros and a false ``has_*``; raises on corrupt bytes.
    """
    meta = json.loads(members["json"]) if "json" in members else {}
    if not isinstance(meta, dict):
        raise ValueError("json member is not an object")
    clean = _mono(members["clean.flac"]) if "clean.flac" in members else None
    reverb = _mono(members["reverb.flac"]) if "reverb.flac" in members else None
    image = load_image(members["image.jpg"], size) if "image.jpg" in members else None
    clean, reverb = crop_pair(clean, reverb, length, rng)
    rir = None
    if "rir.npy" in members:
        rir = decode_npy(members["rir.npy"]).astype(np.float32).reshape(-1)
    rt60 = meta.get("rt60_s")
    return {
        "clean": np.zeros(length, np.float32) if clean is None else clean,
        "reverb": np.zeros(length, np.float32) if reverb is None else reverb,
        "image": np.zeros((3, *size), np.float32) if image is None else image,
        "has_clean": clean is not None,
        "has_reverb": reverb is not None,
        "has_image": image is not None,
        "rt60": np.float32(math.nan if rt60 is None else rt60),
        "rir": np.zeros(RIR_SAMPLES, np.float32) if rir is None else _fit(rir[:RIR_SAMPLES], RIR_SAMPLES),
        "has_rir": rir is not None and bool(np.any(rir)),
        "meta": meta,
    }


TENSOR_FIELDS = ("clean", "reverb", "image", "has_clean", "has_reverb", "has_image", "rt60", "rir", "has_rir")


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of :func:`decode_sample` (plus ``key``) into a batch (module docstring)."""
    batch = {f: _stack([s[f] for s in samples]) for f in TENSOR_FIELDS}
    batch["key"] = [s["key"] for s in samples]
    batch["meta"] = [s["meta"] for s in samples]
    return batch


def _stack(values: list[Any]) -> torch.Tensor:
    """``(B, ...)`` tensor of equal-shaped arrays or scalars."""
    if get_worker_info() is not None:
        # default_collate stacks straight into shared memory inside a DataLoader worker: the
        # batch then reaches the main process without the copy made when pickling a tensor.
        return default_collate([torch.as_tensor(v) for v in values])
    # In the main process, numpy: torch.stack would wake torch's intra-op threads, whose
    # spin-wait burns most of a second core per batch for a copy of a few MB.
    return torch.from_numpy(np.stack(values))


# -- the stream -----------------------------------------------------------------------------------


def _seed(*parts: int) -> int:
    """A 63-bit seed mixing integers (stable across processes, unlike ``hash`` of a str)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


class ShardStream(IterableDataset):
    """Decoded samples of the selected keys, streamed from shards (see the module docstring).

    ``stats`` counts skipped members, samples and shards in this process (workers log theirs).
    Call :meth:`set_epoch` before each epoch for a new shard order and shuffle when the stream is
    wrapped in a plain DataLoader; :class:`ShardLoader` does it for you.
    """

    def __init__(
        self,
        urls: list[str],
        keys: set[str],
        cfg: LoaderConfig,
        *,
        train: bool,
        seed: int,
        epoch_samples: int | None,
    ):
        super().__init__()
        if epoch_samples is not None and not train:
            raise ValueError("epoch_samples makes a resampled training stream; use train=True")
        if epoch_samples is not None and epoch_samples <= 0:
            raise ValueError(f"epoch_samples must be > 0; got {epoch_samples}")
        self.urls, self.keys, self.cfg = list(urls), keys, cfg
        self.train, self.seed, self.epoch_samples = train, seed, epoch_samples
        self.length = round(cfg.segment_seconds * SAMPLE_RATE)
        self.epoch = 0
        self.stats: Counter[str] = Counter()

    @property
    def resampled(self) -> bool:
        return self.epoch_samples is not None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches_per_rank(self) -> int:
        """Batches each rank yields per resampled epoch: ``ceil(epoch_samples / batch_size)``."""
        return -(-self.epoch_samples // self.cfg.batch_size)

    def _worker_samples(self, worker: int, num_workers: int) -> int:
        """Whole batches for this worker, so that the rank's workers sum to batches_per_rank."""
        n, extra = divmod(self.batches_per_rank(), num_workers)
        return (n + (worker < extra)) * self.cfg.batch_size

    def _shard_stages(self) -> list[Any]:
        if self.resampled:
            # Each (rank, worker) draws its own shards (wds seeds them with rank and worker id):
            # no splitting, never runs dry. A draw yields all the shard's selected samples, so
            # every selected sample is equally likely however the selection spreads over shards.
            seed = _seed(self.seed, self.epoch)
            return [wds.ResampledShards(self.urls, seed=seed, deterministic=True)]
        # The same order on every rank (seed and epoch only), then disjoint slices of it.
        order = _seed(self.seed, self.epoch) if self.train else None
        return [wds.SimpleShardList(self.urls, seed=order), wds.split_by_node, wds.split_by_worker]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, _, worker, num_workers = pytorch_worker_info()
        rng = random.Random(_seed(self.seed, self.epoch, rank, worker)) if self.train else None
        stages = [*self._shard_stages(), self._read_shards]
        if self.train and self.cfg.shuffle_buffer > 1:
            stages.append(wds.shuffle(self.cfg.shuffle_buffer, self.cfg.shuffle_buffer, rng=rng))
        stages.append(functools.partial(self._decode, rng=rng))
        pipeline = wds.DataPipeline(*stages)
        if not self.resampled:
            return iter(pipeline)
        n = self._worker_samples(worker, num_workers)
        # with_epoch(0) would mean "no limit": a worker with no batch to make yields nothing.
        return iter(pipeline.with_epoch(n)) if n else iter(())

    def _read_shards(self, src: Iterable[dict[str, str]]) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        """``(url, key, members)`` of the selected keys in each shard ``{"url": u}`` of ``src``."""
        empty = 0
        for item in src:
            url, found = item["url"], 0
            try:
                with fsspec.open(url, "rb") as f:
                    for key, members in iter_shard(f, name=url, on_bad=self._bad_member):
                        if key in self.keys:
                            found += 1
                            yield url, key, members
            except BadInput as e:  # corrupt or truncated: keep what was read, go on with the next
                self.stats["bad_shards"] += 1
                log.warning("skipping the rest of shard %s", e)
            empty = 0 if found else empty + 1
            if self.resampled and empty >= MAX_EMPTY_SHARDS:
                raise RuntimeError(f"{empty} shards in a row gave no usable sample (last: {url})")

    def _bad_member(self, e: BadInput) -> None:
        self.stats["bad_members"] += 1
        log.warning("skipped tar member: %s", e)

    def _decode(self, src: Iterable[tuple[str, str, dict[str, bytes]]], rng: random.Random | None):
        size, bad_run = tuple(self.cfg.image_size), 0
        for url, key, members in src:
            try:
                sample = decode_sample(members, self.length, size, rng)
            except Exception as e:  # soundfile, Pillow and json raise many types on corrupt bytes
                self.stats["bad_samples"] += 1
                log.warning("%s: skipping sample %r (%s: %s)", url, key, type(e).__name__, e)
                bad_run += 1
                if self.resampled and bad_run >= MAX_BAD_SAMPLES:
                    raise RuntimeError(f"{bad_run} samples in a row failed to decode") from e
                continue
            bad_run = 0
            sample["key"] = key
            yield sample


class ShardLoader(DataLoader):
    """A DataLoader over a :class:`ShardStream` that starts a new epoch each time it is iterated.

    The epoch is set in this process before the workers start (they get a fresh copy of the
    stream each epoch), so shard order and shuffles change per epoch and stay reproducible.
    """

    def __init__(self, dataset: ShardStream, **kwargs: Any):
        super().__init__(dataset, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration uses (as DistributedSampler.set_epoch)."""
        self.epoch = int(epoch)

    def __iter__(self):
        self.dataset.set_epoch(self.epoch)
        self.epoch += 1
        return super().__iter__()

    def __len__(self) -> int:
        """Batches per epoch on this rank; known only for resampled streams."""
        if not self.dataset.resampled:
            raise TypeError("the number of batches of a non-resampled stream is not known ahead")
        return self.dataset.batches_per_rank()


def make_dataset(
    dataset: str,
    cfg: LoaderConfig,
    *,
    splits=None,
    kinds=None,
    train: bool = True,
    seed: int = 0,
    epoch_samples: int | None = None,
    where: pc.Expression | None = None,
) -> ShardStream:
    """A stream of decoded samples (not yet batched) of ``dataset`` (a folder or fsspec URL).

    Args:
        splits, kinds, where: the selection, as :func:`select_shards`.
        train: shuffle shards and samples and crop at random offsets; False reads every selected
            sample once, in manifest order per worker, cropped from the start.
        epoch_samples: samples per rank per epoch (rounded up to whole batches) from shards drawn
            with replacement; for DDP, where every rank must yield the same number of batches.
    """
    urls, keys = select_shards(dataset, splits, kinds, where)
    return ShardStream(urls, keys, cfg, train=train, seed=seed, epoch_samples=epoch_samples)


def make_loader(
    dataset: str,
    cfg: LoaderConfig,
    *,
    splits=None,
    kinds=None,
    train: bool = True,
    seed: int = 0,
    epoch_samples: int | None = None,
    where: pc.Expression | None = None,
    multiprocessing_context: str = "spawn",
) -> ShardLoader:
    """Batches (see the module docstring) of :func:`make_dataset`'s stream.

    Workers start with ``multiprocessing_context`` (spawn by default: forking a process that
    holds threads, as torch and Ray do, can deadlock). Each rank needs at least
    ``cfg.num_workers`` shards (world size x workers in all) or some workers stay idle.
    """
    stream = make_dataset(
        dataset,
        cfg,
        splits=splits,
        kinds=kinds,
        train=train,
        seed=seed,
        epoch_samples=epoch_samples,
        where=where,
    )
    if not stream.resampled and len(stream.urls) < cfg.num_workers:
        log.warning(
            "%s: %d shard(s) for %d workers: some stay idle",
            dataset,
            len(stream.urls),
            cfg.num_workers,
        )
    return ShardLoader(
        stream,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=collate,
        multiprocessing_context=multiprocessing_context if cfg.num_workers > 0 else None,
    )
