"""Source adapters: ``mvsd ingest SOURCE PATH --out DATASET``.

Each adapter scans a folder into a sorted list of input files, plans them into work items grouped
by (split, kind), and turns one work item into a :class:`~mvsd.data.sample.Sample` inside a
builder worker (:func:`mvsd.data.builder.build_dataset` does the rest: shards, manifest,
quarantine, resume).

=================  ============================================================  ==============
source             layout                                                        kind
=================  ============================================================  ==============
``soundspaces``    ``<root>/<split>/<scene>/<utterance>.pkl`` (SoundSpaces-Speech  ``paired``
                   as AViTAR/VIDA read it: ``source_audio``, ``receiver_audio``,
                   ``rir``, ``rgb``, ``depth`` [, ``semantic``])
``avspeech``       ``<root>/.../img/<id>.png`` + ``<root>/.../audio/<id>.wav``     ``reverb_only``
                   (Acoustic AVSpeech); split hashed from the video id
``clean-folder``   any tree of dry speech files; speaker = parent folder           ``clean_only``
``reverb-folder``  images + reverberant recordings matched by file stem            ``reverb_only``
=================  ============================================================  ==============

Every adapter brings audio to 16 kHz mono at ``audio.rms_db`` (peak below ``audio.peak_db``) and
images to RGB uint8. An input that cannot be used (unreadable, empty, NaN, odd sample rate, no
partner file, a pickle that imports code, a split folder we do not know) is quarantined with its
reason; the others are ingested.

The input root may be an fsspec URL (``s3://bucket/corpus``): it is listed once and each worker
reads its own files straight from there (nothing is copied to local disk first); errors name the
file's URL.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mvsd.audio_io import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    load_audio,
    prepare_audio,
    rms_normalize,
    scale_pair,
)
from mvsd.config import AudioConfig, IngestConfig, Params, to_dict
from mvsd.data import storage
from mvsd.data.builder import BuildSummary, build_dataset, plan_tasks
from mvsd.data.safe_pickle import safe_load
from mvsd.data.sample import SPLITS, Sample
from mvsd.errors import BadInput, OutputError, printable
from mvsd.images import load_image, rgb_from_array

# Bump when an adapter's output for the same inputs changes, so old build state is not resumed.
ADAPTER_VERSION = 1
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Inputs refused while planning go to this pseudo-group: its tasks only quarantine (no shard).
REJECTED = ("rejected", "inputs")
# SoundSpaces-Speech split folders (AViTAR: train, val[-mini], test-seen, test-unseen) -> ours.
SOUNDSPACES_SPLITS = {
    "train": "train",
    "val": "val",
    "val-mini": "val",
    "val_mini": "val",
    "test-seen": "test_seen",
    "test_seen": "test_seen",
    "test-unseen": "test_unseen",
    "test_unseen": "test_unseen",
}
# Semantic class of the speaker in SoundSpaces-Speech's ``semantic`` views (AViTAR's remove_oov
# filter counts these pixels to decide whether the speaker is in view).
SPEAKER_CLASS = 41

Groups = dict[tuple[str, str], list["Item"]]


@dataclass(frozen=True)
class Item:
    """A work item: one sample's input files (relative POSIX paths) and what planning decided."""

    key: str
    split: str
    kind: str
    files: tuple[str, ...]
    room_id: str | None = None
    speaker_id: str | None = None
    problem: str | None = None  # set: the input is quarantined with this reason


@dataclass(frozen=True)
class IngestJob:
    """The picklable ``make_sample`` of an ingest: adapter name, input root, level settings."""

    source: str
    root: str
    audio: AudioConfig

    def __call__(self, item: Item) -> Sample:
        if item.problem:
            raise BadInput(str(self.path(item.files[0])), item.problem)
        return ADAPTERS[self.source].make(self, item)

    def path(self, rel: str) -> Path | str:
        """An input's path, or its URL when the root is one."""
        return storage.join(self.root, rel)


@dataclass(frozen=True)
class Adapter:
    """How one source is scanned (``scan``), planned (``plan``) and read (``make``)."""

    name: str
    what: str  # what its inputs are called in "no ... found"
    own_splits: bool  # the source decides splits itself, so ``--split`` is refused
    scan: Callable[[Path | str, Path | str | None], list[str]]
    plan: Callable[[list[str], IngestConfig, str], Groups]
    make: Callable[[IngestJob, Item], Sample]


# -- scanning and keys ----------------------------------------------------------------------------


def scan_files(root: Path | str, extensions: tuple[str, ...], skip: Path | str | None = None) -> list[str]:
    """Sorted POSIX paths relative to ``root`` (a folder or URL) of files with one of
    ``extensions`` (any case).

    Hidden files and folders (``.DS_Store``, ``.build``) and the ``skip`` folder (the output
    dataset, when it lies inside the input tree) are not searched.
    """
    if storage.is_url(root):
        return sorted(f for f in _list_url(str(root), skip) if os.path.splitext(f)[1].lower() in extensions)
    skip_real = os.path.realpath(skip) if skip is not None else None
    found = []
    for folder, dirs, names in os.walk(root):
        # Pruning in place keeps os.walk out of hidden folders and the output dataset.
        dirs[:] = [
            d for d in dirs
            if not d.startswith(".") and os.path.realpath(os.path.join(folder, d)) != skip_real
        ]  # fmt: skip
        rel = Path(folder).relative_to(root)
        for n in names:
            if not n.startswith(".") and os.path.splitext(n)[1].lower() in extensions:
                found.append((rel / n).as_posix())
    return sorted(found)


def _list_url(root: str, skip: Path | str | None) -> dict[str, dict]:
    """``{relative path: info}`` of every file under the URL ``root`` (one listing), without
    hidden files, files in hidden folders, and files under the URL ``skip``."""
    fs, base = storage.url_to_fs(root)
    base = base.rstrip("/")
    skip_path = None
    if skip is not None and storage.is_url(skip):
        skip_fs, skip_path = storage.url_to_fs(str(skip))
        skip_path = skip_path.rstrip("/") + "/" if skip_fs.protocol == fs.protocol else None
    found = {}
    for name, info in fs.find(base, detail=True).items():
        rel = name[len(base) + 1 :]
        if skip_path and (name + "/").startswith(skip_path):
            continue
        if rel and not any(part.startswith(".") for part in rel.split("/")):
            found[rel] = info
    return found


def _fetch(url: str) -> bytes:
    """An input object's bytes, or BadInput naming its URL."""
    try:
        return storage.read_bytes(url)
    except OSError as e:
        raise BadInput(url, f"unreadable ({type(e).__name__}: {e})") from None


def make_key(rel: str) -> str:
    """A shard key for an input: its sanitized path (readable) + a short SHA-1 of the exact path
    (unique: ``a b.wav`` and ``a_b.wav`` sanitize alike but hash apart). The hash is of the
    name's bytes, so a name that is not valid UTF-8 gets a key too."""
    stem = str(PurePosixPath(rel).with_suffix(""))
    token = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[-60:] or "input"
    return f"{token}-{hashlib.sha1(os.fsencode(rel)).hexdigest()[:10]}"


def hash_split(name: str, ingest: IngestConfig) -> str:
    """Deterministic split of a group name (a video id): its SHA-1 as a number in [0, 1)."""
    u = int.from_bytes(hashlib.sha1(os.fsencode(name)).digest()[:8], "big") / 2**64
    if u < ingest.val_fraction:
        return "val"
    if u < ingest.val_fraction + ingest.test_fraction:
        return "test_unseen"
    return "train"


def _reject(rel: str, reason: str) -> Item:
    return Item(make_key(rel), REJECTED[0], REJECTED[1], (rel,), problem=reason)


def _stem(rel: str) -> str:
    return PurePosixPath(rel).stem


# -- reading inputs -------------------------------------------------------------------------------


def read_audio(path: Path | str) -> np.ndarray:
    """A speech file (path or URL) as ``(T,)`` float32 at 16 kHz mono, or BadInput (unreadable,
    empty, NaN/Inf, unsupported sample rate, all zeros)."""
    x = load_audio(path, _fetch(path)) if storage.is_url(path) else load_audio(path)
    if not np.any(x):
        raise BadInput(str(path), "audio is all zeros")
    return x


def read_image(path: Path | str) -> np.ndarray:
    """An image file (path or URL) as ``(H, W, 3)`` uint8 RGB, read by :func:`mvsd.images.load_image`
    as inference reads it (EXIF rotation applied; 16-bit and float images scaled by their maximum),
    or BadInput naming the file."""
    return load_image(io.BytesIO(_fetch(path)) if storage.is_url(path) else path, str(path))


def _pair(images: list[str], audios: list[str], pair_id: Callable[[str], str]) -> tuple[list, list]:
    """Match images and audio files with equal ``pair_id``.

    Returns ``(pairs, rejected)``: ``pairs`` are ``(image, audio)`` sorted by audio path;
    ``rejected`` are Items for files without (or with more than one) partner.
    """
    by_id: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for f in images:
        by_id[pair_id(f)][0].append(f)
    for f in audios:
        by_id[pair_id(f)][1].append(f)
    pairs, rejected = [], []
    for pid, (imgs, auds) in sorted(by_id.items()):
        if len(imgs) == 1 and len(auds) == 1:
            pairs.append((imgs[0], auds[0]))
        elif len(imgs) > 1 or len(auds) > 1:
            why = f"ambiguous partner: {imgs + auds} all share the name {pid!r}"
            rejected += [_reject(f, why) for f in imgs + auds]
        else:
            lacks = "audio" if imgs else "image"
            why = f"missing partner file: no {lacks} named {pid!r} for this file"
            rejected.append(_reject((imgs + auds)[0], why))
    return sorted(pairs, key=lambda p: p[1]), rejected


# -- soundspaces ----------------------------------------------------------------------------------


def _scan_soundspaces(root: Path | str, skip: Path | str | None) -> list[str]:
    return scan_files(root, (".pkl",), skip)


def _plan_soundspaces(files: list[str], ingest: IngestConfig, split: str) -> Groups:
    """Split from the first folder (AViTAR's names mapped to ours), room from the second."""
    groups: Groups = defaultdict(list)
    for rel in files:
        parts = rel.split("/")
        ours = SOUNDSPACES_SPLITS.get(parts[0]) if len(parts) > 1 else None
        if ours is None:
            where = f"folder {parts[0]!r}" if len(parts) > 1 else "the top folder"
            valid = ", ".join(sorted(SOUNDSPACES_SPLITS))
            why = f"pickle in {where}, which is not a split folder (expected one of {valid})"
            groups[REJECTED].append(_reject(rel, why))
            continue
        room = parts[1] if len(parts) > 2 else None
        groups[(ours, "paired")].append(
            Item(make_key(rel), ours, "paired", (rel,), room_id=room and printable(room))
        )
    return groups


def _field_audio(data: dict, field: str, sr: int, name: str, allow_silence: bool = False) -> np.ndarray:
    """A pickle's audio field as 16 kHz mono: ``(T,)``, ``(T, C)`` or ``(C, T)`` (binaural)."""
    x = np.asarray(data[field])
    if x.dtype.kind not in "fiu":
        raise BadInput(name, f"{field}: not a numeric array (dtype {x.dtype})")
    if x.ndim == 2 and x.shape[0] < x.shape[1]:
        x = x.T  # (C, T) -> (T, C): channels are the short axis
    try:
        return prepare_audio(x, sr, name, allow_silence=allow_silence)
    except BadInput as e:
        raise BadInput(name, f"{field}: {e.reason}") from None


def _views(v: Any) -> list[Any]:
    """A pickle's ``rgb``/``depth``/``semantic`` as a list of views (a list, a (V, H, W[, C])
    array, or one view)."""
    if isinstance(v, (list, tuple)):
        return list(v)
    arr = np.asarray(v)
    return list(arr) if arr.ndim == 4 else [arr]


def pick_view(data: dict, n_views: int) -> int:
    """Which of a SoundSpaces-Speech sample's views becomes ``image.jpg``.

    AViTAR stitches the views into a panorama and, for a limited field of view, evaluates on the
    first one. We take the view showing the most pixels of the speaker (``semantic`` class 41)
    when a ``semantic`` field has one map per view, else the first view.
    """
    sem = data.get("semantic")
    if sem is None:
        return 0
    maps = _views(sem)
    if len(maps) != n_views:
        return 0
    counts = [int(np.sum(np.asarray(m) == SPEAKER_CLASS)) for m in maps]
    return int(np.argmax(counts)) if max(counts, default=0) > 0 else 0


def _depth(v: Any, name: str) -> np.ndarray:
    """``(H, W)`` float32 depth (as stored: metres, or habitat's normalised [0, 1]); non-finite
    pixels (no reading) become 0."""
    d = np.asarray(v)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[..., 0]
    if d.ndim != 2 or d.size == 0 or d.dtype.kind not in "fiu":
        raise BadInput(name, f"depth must be an (H, W[, 1]) numeric array, got {d.shape} {d.dtype}")
    return np.nan_to_num(d.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _acoustics(rir: np.ndarray | None) -> tuple[float | None, float | None]:
    """(RT60 s, DRR dB) of a 16 kHz RIR; None where absent or not measurable."""
    if rir is None or not np.any(rir):
        return None, None
    # Imported here: mvsd.acoustics imports pyroomacoustics (~1 s) and only soundspaces needs it.
    from mvsd.acoustics import measure_drr, measure_rt60

    rt60, drr = measure_rt60(rir), measure_drr(rir)
    return (rt60 if np.isfinite(rt60) else None), (drr if np.isfinite(drr) else None)


def _make_soundspaces(job: IngestJob, item: Item) -> Sample:
    path = job.path(item.files[0])
    name = str(path)
    data = safe_load(_fetch(path) if storage.is_url(path) else path, name)
    if not isinstance(data, dict):
        raise BadInput(name, f"expected a pickled dict, got {type(data).__name__}")
    missing = [k for k in ("source_audio", "receiver_audio", "rgb") if k not in data]
    if missing:
        raise BadInput(name, f"missing field(s) {missing}; SoundSpaces-Speech pickles have "
                             "source_audio, receiver_audio, rir, rgb, depth")  # fmt: skip
    try:
        sr = int(data.get("sample_rate", SAMPLE_RATE))  # SoundSpaces-Speech audio is 16 kHz
    except (TypeError, ValueError):
        raise BadInput(name, f"sample_rate {data['sample_rate']!r} is not a number") from None
    clean = _field_audio(data, "source_audio", sr, name)
    reverb = _field_audio(data, "receiver_audio", sr, name)
    clean, reverb = scale_pair(clean, reverb, job.audio.rms_db, job.audio.peak_db)
    has_rir = data.get("rir") is not None
    rir = _field_audio(data, "rir", sr, name, allow_silence=True) if has_rir else None
    image, depth, view = _visuals(data, name)
    rt60, drr = _acoustics(rir)
    speaker = data.get("speaker_id", data.get("speaker"))
    return Sample(
        key=item.key, split=item.split, kind="paired", source=job.source, room_id=item.room_id,
        speaker_id=None if speaker is None else str(speaker), clean=clean, reverb=reverb,
        image=image, depth=depth, rir=rir, rt60=rt60, drr=drr,
        meta={"input": printable(item.files[0]), "view": view},
    )  # fmt: skip


def _visuals(data: dict, name: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(RGB image, depth or None, view index) of the chosen view (see :func:`pick_view`)."""
    rgbs = _views(data["rgb"])
    if not rgbs:
        raise BadInput(name, "rgb: no views")
    view = pick_view(data, len(rgbs))
    depths = _views(data["depth"]) if data.get("depth") is not None else []
    depth = _depth(depths[view], name) if view < len(depths) else None
    return rgb_from_array(rgbs[view], name), depth, view


# -- avspeech and reverb-folder: (image, reverberant audio) pairs ---------------------------------


def _strip_folder(rel: str, folder: str) -> str:
    """``a/img/x.png`` -> ``a/x`` for folder ``img``: the id that an image and its audio share."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    i = max(j for j, p in enumerate(parts[:-1]) if p == folder)
    return "/".join(parts[:i] + parts[i + 1 :])


def _in_folder(rel: str, folder: str) -> bool:
    return folder in rel.split("/")[:-1]


def _scan_avspeech(root: Path | str, skip: Path | str | None) -> list[str]:
    files = scan_files(root, IMAGE_EXTENSIONS + AUDIO_EXTENSIONS, skip)
    images, audios = _split_media(files)
    return sorted([f for f in images if _in_folder(f, "img")] + [f for f in audios if _in_folder(f, "audio")])


def video_id(stem: str) -> str:
    """AVSpeech clip ``<videoid>_<n>`` -> ``<videoid>``; any other stem is its own id."""
    m = re.fullmatch(r"(.+)_(\d+)", stem)
    return m.group(1) if m else stem


def _split_media(files: list[str]) -> tuple[list[str], list[str]]:
    images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return images, [f for f in files if not f.lower().endswith(IMAGE_EXTENSIONS)]


def _plan_avspeech(files: list[str], ingest: IngestConfig, split: str) -> Groups:
    """Pairs ``.../img/<id>`` with ``.../audio/<id>``; split hashed from the video id, so all clips
    of one video (one room) land in the same split."""
    images, audios = _split_media(files)
    image_set = set(images)

    def pair_id(f: str) -> str:
        return _strip_folder(f, "img" if f in image_set else "audio")

    pairs, rejected = _pair(images, audios, pair_id)
    groups: Groups = defaultdict(list)
    groups[REJECTED] += rejected
    for img, aud in pairs:
        vid = video_id(_stem(aud))
        s = hash_split(vid, ingest)
        item = Item(make_key(aud), s, "reverb_only", (img, aud), room_id=printable(vid))
        groups[(s, "reverb_only")].append(item)
    return groups


def _scan_reverb_folder(root: Path | str, skip: Path | str | None) -> list[str]:
    return scan_files(root, IMAGE_EXTENSIONS + AUDIO_EXTENSIONS, skip)


def _plan_reverb_folder(files: list[str], ingest: IngestConfig, split: str) -> Groups:
    """Pairs by file stem anywhere in the tree; a stem used more than once on either side is
    matched within its folder instead."""
    images, audios = _split_media(files)
    img_count = Counter(_stem(f) for f in images)
    aud_count = Counter(_stem(f) for f in audios)

    def pair_id(f: str) -> str:
        s = _stem(f)
        unique = img_count[s] <= 1 and aud_count[s] <= 1
        return s if unique else str(PurePosixPath(f).with_suffix(""))

    pairs, rejected = _pair(images, audios, pair_id)
    groups: Groups = defaultdict(list)
    groups[REJECTED] += rejected
    groups[(split, "reverb_only")] += [Item(make_key(a), split, "reverb_only", (i, a)) for i, a in pairs]
    return groups


def _make_reverb(job: IngestJob, item: Item) -> Sample:
    image_rel, audio_rel = item.files
    reverb = rms_normalize(read_audio(job.path(audio_rel)), job.audio.rms_db, job.audio.peak_db)
    return Sample(
        key=item.key, split=item.split, kind="reverb_only", source=job.source, room_id=item.room_id,
        reverb=reverb, image=read_image(job.path(image_rel)),
        meta={"image_file": printable(image_rel), "audio_file": printable(audio_rel)},
    )  # fmt: skip


# -- clean-folder ---------------------------------------------------------------------------------


def _scan_clean(root: Path | str, skip: Path | str | None) -> list[str]:
    return scan_files(root, AUDIO_EXTENSIONS, skip)


def _plan_clean(files: list[str], ingest: IngestConfig, split: str) -> Groups:
    """One clean_only sample per file; the speaker is the file's folder (None at the top)."""
    items = []
    for rel in files:
        parent = PurePosixPath(rel).parent.name or None
        items.append(
            Item(make_key(rel), split, "clean_only", (rel,), speaker_id=parent and printable(parent))
        )
    return {(split, "clean_only"): items}


def _make_clean(job: IngestJob, item: Item) -> Sample:
    clean = rms_normalize(read_audio(job.path(item.files[0])), job.audio.rms_db, job.audio.peak_db)
    return Sample(
        key=item.key, split=item.split, kind="clean_only", source=job.source,
        speaker_id=item.speaker_id, clean=clean, meta={"input": printable(item.files[0])},
    )  # fmt: skip


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Adapter("soundspaces", "SoundSpaces-Speech .pkl files", True,
                _scan_soundspaces, _plan_soundspaces, _make_soundspaces),
        Adapter("avspeech", "images under img/ or audio under audio/", True,
                _scan_avspeech, _plan_avspeech, _make_reverb),
        Adapter("clean-folder", "audio files", False, _scan_clean, _plan_clean, _make_clean),
        Adapter("reverb-folder", "images or audio files", False,
                _scan_reverb_folder, _plan_reverb_folder, _make_reverb),
    )
}  # fmt: skip


# -- the entry point ------------------------------------------------------------------------------


def fingerprint(source: str, root: Path | str, files: list[str], params: Params, split: str) -> str:
    """SHA-256 of what decides an ingest's output: source, each input's path, size and mtime
    (on a URL: size and ETag, else modification time), the ``audio`` and ``ingest`` params (not
    ``workers``), the split and the adapter version."""
    if storage.is_url(root):
        info = _list_url(str(root), None)
        inputs = [[f, info[f].get("size"), _stamp(info[f])] for f in files]
    else:
        inputs = [[f, st.st_size, st.st_mtime_ns] for f in files for st in [(Path(root) / f).stat()]]
    ingest_params = to_dict(params.ingest)
    ingest_params.pop("workers")
    data = {
        "source": source, "split": split, "inputs": inputs, "version": ADAPTER_VERSION,
        "audio": to_dict(params.audio), "ingest": ingest_params,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _input_root(path: str | Path, source: str) -> Path | str:
    """The input folder (a Path) or URL (a str, without a trailing ``/``), which must exist."""
    if storage.is_url(path):
        url = str(path).rstrip("/")
        fs, base = storage.url_to_fs(url)
        if fs.isfile(base):
            raise NotADirectoryError(f"{url}: not a folder ({source} reads a folder tree)")
        if not fs.isdir(base):
            raise FileNotFoundError(f"{url}: no such folder")
        return url
    root = storage.local_path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder ({source} reads a folder tree)")
    return root


def _check_out_not_above(root: Path | str, out: str | Path) -> None:
    """Refuse an output that is the input folder or above it (building would empty the input)."""
    if storage.is_url(root) != storage.is_url(out):
        return  # one on a local disk, the other on object storage
    if storage.is_url(root):
        (root_fs, real_root), (out_fs, real_out) = storage.url_to_fs(str(root)), storage.url_to_fs(str(out))
        sep, same_fs = "/", root_fs.protocol == out_fs.protocol
        real_root, real_out = real_root.rstrip("/"), real_out.rstrip("/")
    else:
        real_out, real_root = os.path.realpath(storage.local_path(out)), os.path.realpath(root)
        sep, same_fs = os.sep, True
    if same_fs and (real_root == real_out or real_root.startswith(real_out.rstrip(sep) + sep)):
        raise OutputError(
            f"--out {out} is the input folder {root} or contains it; write the dataset to a folder "
            "outside the input (or inside it: the input's subfolders are fine)"
        )


def _stamp(info: dict) -> str:
    """What changes when an object is replaced: its ETag (S3, GCS), else its modification time."""
    for k in ("ETag", "etag", "md5Hash", "LastModified", "mtime", "updated", "created"):
        if info.get(k) is not None:
            return str(info[k])
    return ""


def _check_args(source: str, split: str | None) -> tuple[Adapter, str]:
    if source not in ADAPTERS:
        raise ValueError(f"unknown source {source!r}; valid sources: {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[source]
    if split is not None and adapter.own_splits:
        raise ValueError(f"{source} decides splits itself; --split applies to clean-folder and reverb-folder")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return adapter, split or "train"


def ingest(
    source: str, path: str | Path, out: str | Path, params: Params, split: str | None = None
) -> BuildSummary:
    """Ingest the ``source`` data under ``path`` into the dataset folder ``out`` (each a folder or
    an fsspec URL such as ``s3://bucket/prefix``).

    A rerun with the same inputs and params resumes (finished shards are kept); any change to the
    inputs (a file added, removed or modified) or to the params rebuilds ``out``.

    Args:
        source: one of :data:`ADAPTERS` (``soundspaces``, ``avspeech``, ``clean-folder``,
            ``reverb-folder``).
        path: the folder to read.
        out: the dataset folder to write (shards, manifest.parquet, quarantine.parquet).
        params: ``audio`` (levels), ``ingest`` (val/test fractions, workers), ``shards``.
        split: for ``clean-folder`` and ``reverb-folder`` only (default ``train``).
    Raises:
        ValueError: unknown source or split, or a split for a source that has its own.
        FileNotFoundError: ``path`` does not exist.
        BadInput: ``path`` holds no input of that source.
        OutputError: ``out`` is ``path`` or above it, holds files that are not one of our
            datasets, or is being built by another process.
    """
    adapter, split_name = _check_args(source, split)
    root = _input_root(path, source)
    _check_out_not_above(root, out)
    files = adapter.scan(root, out if storage.is_url(out) else storage.local_path(out))
    if not files:
        raise BadInput(str(root), f"no {adapter.what} found")
    groups = adapter.plan(files, params.ingest, split_name)
    tasks = plan_tasks(groups, params.shards.samples_per_shard)
    job = IngestJob(source, root if storage.is_url(root) else str(root.resolve()), params.audio)
    return build_dataset(
        out, tasks, job, name=source, shards=params.shards, workers=params.ingest.workers,
        fingerprint=fingerprint(source, root, files, params, split_name),
        description=f"ingest {source}",
    )  # fmt: skip
