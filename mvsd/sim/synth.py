"""SimRooms: the built-in, physically simulated dataset (``mvsd synth``).

Two stages, both on all cores and both resumable:

1. **Views.** ``n_rooms_seen + n_rooms_unseen`` rooms, each with ``views_per_room`` (mic, source)
   placements. Each view gets its RIR (pyroomacoustics), measured RT60/DRR and its rendered image
   + depth map, cached under ``<out>/.build/views/``.
2. **Samples.** Each sample picks a view and a speaker, synthesizes a sentence (or crops a file of
   ``--speech-dir``), convolves it with the view's RIR and becomes one shard key.

Everything is a pure function of ``simrooms.seed`` and the sample's index, so a rerun (or a resumed
run) writes byte-identical shards.

Splits: rooms ``0..n_rooms_seen-1`` serve ``train``, ``val`` and ``test_seen`` (new utterances);
the remaining ``n_rooms_unseen`` serve only ``test_unseen``. The train split is divided between
``paired`` samples and the two unpaired pools (``clean_only``: dry speech and the image of a room
it was never recorded in; ``reverb_only``: a recording in a room and its image, no dry source) by
``simrooms.pool_ratios``; the pools never share an utterance with anything else.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from mvsd.audio_io import scale_pair
from mvsd.config import Params, to_dict
from mvsd.data import storage
from mvsd.data.builder import (
    BUILD_DIR,
    BuildSummary,
    build_dataset,
    check_in_process,
    open_build,
    parallel_map,
    plan_tasks,
)
from mvsd.data.sample import Sample
from mvsd.data.shards import write_bytes_atomic
from mvsd.sim import rooms
from mvsd.sim.render import render_panorama, render_view
from mvsd.sim.speech import FolderSpeech, SentenceGenerator, espeak_clip, make_speakers

SOURCE = "simrooms"


@dataclass(frozen=True)
class SampleSpec:
    """A work item: everything needed to make one sample, small and picklable."""

    index: int
    key: str
    split: str
    kind: str
    view_id: str
    room_id: str
    room_type: str  # a ROOM_TYPES name or "freeform"


@dataclass(frozen=True)
class SynthJob:
    """What a worker needs besides the spec (picklable)."""

    out: str
    params: Params
    speech_dir: str | None

    def __call__(self, spec: SampleSpec) -> Sample:
        return make_sample(self, spec)


# -- planning -------------------------------------------------------------------------------------


def plan_views(params: Params) -> list[rooms.View]:
    """All rooms and views, seen rooms first. Room ``i`` depends only on (seed, i)."""
    s = params.simrooms
    views = []
    for i in range(s.n_rooms_seen + s.n_rooms_unseen):
        rng = np.random.default_rng([s.seed, 1, i])
        room = rooms.sample_room(rng, f"room{i:04d}", s.room)
        for v in range(s.views_per_room):
            views.append(rooms.sample_view(rng, room, f"room{i:04d}v{v}", s.room))
    return views


def split_counts(params: Params) -> dict[tuple[str, str], int]:
    """Number of samples per (split, kind)."""
    s = params.simrooms
    r = s.pool_ratios
    n_clean = round(s.train_samples * r["clean_only"])
    n_reverb = round(s.train_samples * r["reverb_only"])
    counts = {
        ("train", "paired"): s.train_samples - n_clean - n_reverb,
        ("train", "clean_only"): n_clean,
        ("train", "reverb_only"): n_reverb,
        ("val", "paired"): s.val_samples,
        ("test_seen", "paired"): s.test_seen_samples,
        ("test_unseen", "paired"): s.test_unseen_samples,
    }
    return {k: n for k, n in counts.items() if n > 0}


def plan_samples(params: Params, views: list[rooms.View]) -> dict[tuple[str, str], list[SampleSpec]]:
    """Sample specs grouped by (split, kind). Views are dealt round-robin in a seeded order so
    every room is used about equally."""
    s = params.simrooms
    n_seen = s.n_rooms_seen * s.views_per_room
    pools = {"seen": views[:n_seen], "unseen": views[n_seen:]}
    groups: dict[tuple[str, str], list[SampleSpec]] = {}
    index = 0
    for (split, kind), n in split_counts(params).items():
        pool = pools["unseen" if split == "test_unseen" else "seen"]
        rng = np.random.default_rng([s.seed, 2, index])
        order = rng.permutation(len(pool))
        specs = []
        for j in range(n):
            key = f"{SOURCE}-{split}-{kind}-{j:06d}".replace("_", "")
            view = pool[order[j % len(pool)]]
            specs.append(
                SampleSpec(index, key, split, kind, view.view_id, view.room.room_id, view.room.room_type)
            )
            index += 1
        groups[(split, kind)] = specs
    return groups


def fingerprint(params: Params, speech_dir: str | None) -> str:
    """Everything that changes the dataset's bytes."""
    data = {"simrooms": to_dict(params.simrooms), "audio": to_dict(params.audio), "speech_dir": speech_dir}
    data["simrooms"].pop("workers")
    if not params.simrooms.image.material_looks:  # off, the bytes (and versions) of before the knob
        data["simrooms"]["image"].pop("material_looks")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# -- stage 1: views -------------------------------------------------------------------------------


def _view_path(out: str | Path, view_id: str) -> str | Path:
    return storage.join(out, f"{BUILD_DIR}/views/{view_id}.npz")


@dataclass(frozen=True)
class ViewJob:
    out: str
    params: Params

    def __call__(self, view: rooms.View) -> str:
        """Simulate and render one view into its cache file (skipped if it is there)."""
        path = _view_path(self.out, view.view_id)
        if storage.exists(path):
            return view.view_id
        s = self.params.simrooms
        rir = rooms.simulate_rir(view, s.rir, seed=_view_seed(s.seed, view.view_id))
        img = s.image
        looks = view.room.materials if img.material_looks else None
        if img.panorama:
            rgb, depth = render_panorama(
                view.room.dims, view.room.surfaces, view.mic, view.source, img.pano_width, img.pano_height,
                materials=looks,
            )
        else:
            rgb, depth = render_view(
                view.room.dims,
                view.room.surfaces,
                view.mic,
                view.source,
                img.width,
                img.height,
                img.fov_deg,
                img.tilt_deg,
                materials=looks,
            )
        buf = io.BytesIO()
        np.savez(
            buf,
            rir=rir,
            rgb=rgb,
            depth=depth,
            rt60=rooms.measure_rt60(rir),
            drr=rooms.measure_drr(
                rir, direct=rooms.ALIGNED_DIRECT if s.rir.align_direct else rooms.direct_index(view)
            ),
        )
        write_bytes_atomic(path, buf.getvalue())
        return view.view_id


def _view_seed(seed: int, view_id: str) -> int:
    """A 32-bit seed for a view's ray tracing, from the dataset seed and the view's name."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{view_id}".encode()).digest()[:4], "little")


@lru_cache(maxsize=64)
def _load_view(out: str, view_id: str) -> dict[str, np.ndarray]:
    path = _view_path(out, view_id)
    with np.load(
        io.BytesIO(storage.read_bytes(path)) if storage.is_url(path) else path, allow_pickle=False
    ) as z:
        return {k: z[k] for k in z.files}


# -- stage 2: samples -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _speakers(n: int, seed: int):
    return make_speakers(n, seed)


@lru_cache(maxsize=1)
def _sentences() -> SentenceGenerator:
    return SentenceGenerator()


@lru_cache(maxsize=2)
def _folder(root: str) -> FolderSpeech:
    return FolderSpeech(root)


def dry_speech(job: SynthJob, spec: SampleSpec) -> tuple[np.ndarray, str, dict]:
    """(clip, speaker_id, extra metadata) for a sample; depends only on (seed, index)."""
    s = job.params.simrooms
    rng = np.random.default_rng([s.seed, 3, spec.index])
    if job.speech_dir:
        folder = _folder(job.speech_dir)
        audio, speaker, path = folder.clip(int(rng.integers(len(folder))), rng, s.clip_seconds)
        return audio, speaker, {"speech_file": path}
    speakers = _speakers(s.n_speakers, s.seed)
    speaker = speakers[int(rng.integers(len(speakers)))]
    audio, text = espeak_clip(speaker, rng, s.clip_seconds, _sentences())
    return audio, speaker.speaker_id, {"text": text}


def make_sample(job: SynthJob, spec: SampleSpec) -> Sample:
    view = _load_view(job.out, spec.view_id)
    a = job.params.audio
    clean, speaker, extra = dry_speech(job, spec)
    reverb = fftconvolve(clean, view["rir"])[: len(clean)].astype(np.float32)
    clean, reverb = scale_pair(clean, reverb, a.rms_db, a.peak_db)
    has = {
        "paired": ("clean", "reverb", "rir"),
        "clean_only": ("clean",),
        "reverb_only": ("reverb",),
    }[spec.kind]
    return Sample(
        key=spec.key,
        split=spec.split,
        kind=spec.kind,
        source=SOURCE,
        room_id=spec.room_id,
        speaker_id=speaker,
        clean=clean if "clean" in has else None,
        reverb=reverb if "reverb" in has else None,
        image=view["rgb"],
        depth=view["depth"],
        rir=view["rir"] if "rir" in has else None,
        rt60=float(view["rt60"]),
        drr=float(view["drr"]),
        meta={"view": spec.view_id, "room_type": spec.room_type, **extra},
    )


def synth(out: str | Path, params: Params, speech_dir: str | None = None) -> BuildSummary:
    """Generate the SimRooms dataset into ``out``, a folder or an fsspec URL (resuming a killed run)."""
    d = storage.open_dir(out)
    out = d.location
    s = params.simrooms
    check_in_process(out, s.workers, params.shards.executor)
    if speech_dir:
        _folder(str(speech_dir))  # index the folder now, so a bad --speech-dir fails before any work
    views = plan_views(params)
    tasks = plan_tasks(plan_samples(params, views), params.shards.samples_per_shard)
    fp = fingerprint(params, str(speech_dir) if speech_dir else None)
    open_build(out, tasks, fp)
    try:
        job = ViewJob(str(out), params)
        for _ in parallel_map(job, views, s.workers, "rooms: RIRs + images", executor=params.shards.executor):
            pass
        write_rooms_table(out, views)
    except BaseException:
        d.unlock()  # a lock object on a URL outlives this process unless deleted
        raise
    job = SynthJob(str(out), params, str(speech_dir) if speech_dir else None)
    summary = build_dataset(
        out,
        tasks,
        job,
        name=SOURCE,
        shards=params.shards,
        workers=s.workers,
        fingerprint=fp,
        description="samples",
    )
    d.remove_tree(f"{BUILD_DIR}/views")
    return summary


def write_rooms_table(out: str | Path, views: list[rooms.View]) -> None:
    """``rooms.json``: every view's geometry, materials, positions and measured acoustics."""
    rows = []
    for v in views:
        z = _load_view(str(out), v.view_id)
        rows.append(
            {
                "view_id": v.view_id,
                "room_id": v.room.room_id,
                "room_type": v.room.room_type,
                "dims_m": list(v.room.dims),
                "surfaces": v.room.surfaces,
                "materials": v.room.materials,
                "mic": list(v.mic),
                "source": list(v.source),
                "rt60_s": round(float(z["rt60"]), 4),
                "drr_db": round(float(z["drr"]), 3),
            }
        )
    write_bytes_atomic(storage.join(out, "rooms.json"), (json.dumps(rows, indent=1) + "\n").encode())
