"""Pseudo-pairs from unpaired pools with the round-k converters (``mvsd pseudo --round k``).

* ``clean_only`` + an image (its own; a training image drawn by key when it has none, as the
  paper does — from ``image_dataset`` when given, e.g. the paired set for an inbox of dry speech) -> R -> ``pseudo_reverb`` (trains D). Score: how well D brings the clean input back.
* ``reverb_only`` + its image -> D -> ``pseudo_clean`` (trains R). Score: how well R brings the
  reverberant input back.

The score is the cycle's STFT distance (MSE of magnitude spectrograms, AViTAR's definition;
lower is better). Candidates are made chunk by chunk — one output shard per chunk — on a Ray Data
actor pool where each actor holds both converters and converts a chunk as one batch. Each chunk
is written atomically with its part file (the dataset builder's resume mechanism), so an
interrupted job rerun makes exactly the missing chunks: no duplicate or lost pseudo-pairs. Then
the best ``pseudo.keep_fraction`` (and those under ``pseudo.max_distance``) are kept — of each
kind (``pseudo.accept: score``), or within each of ``pseudo.accept_bins`` bands of the reverberation
R reads from the picture (``rooms``: cycles of dry rooms are easy, so the plain ranking keeps mostly
dry rooms; ``benchmarks/pseudo_calibration.py``). The manifest lists the accepted pairs,
``candidates.parquet`` all of them with their scores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mvsd.cluster import DropHarmless
from mvsd.config import Params, to_dict
from mvsd.converter import Converter
from mvsd.data.builder import ShardTask, consolidate, open_build, plan_tasks, run_task, task_done
from mvsd.data.manifest import MANIFEST, MANIFEST_SCHEMA, read_manifest, to_table, write_table
from mvsd.data.sample import DECODERS, Sample
from mvsd.data.shards import iter_shard
from mvsd.errors import BadInput
from mvsd.eval.metrics import stft_distance
from mvsd.progress import progress_bar
from mvsd.stages import code_version, stage_params

SOURCE_KINDS = {"clean_only": "pseudo_reverb", "reverb_only": "pseudo_clean"}


@dataclass(frozen=True)
class Item:
    """One candidate: the unpaired sample (and where the image comes from when it has none)."""

    key: str
    shard: str
    kind: str  # clean_only | reverb_only
    image_key: str | None = None
    image_shard: str | None = None


def plan(dataset: str, params: Params, image_dataset: str | None = None) -> dict[tuple[str, str], list[Item]]:
    rows = read_manifest(dataset).to_pylist()
    image_rows = read_manifest(image_dataset).to_pylist() if image_dataset else rows
    images = [r for r in image_rows if r["split"] == "train" and r["sha256_image_jpg"]]
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for r in rows:
        if r["split"] != "train" or r["kind"] not in SOURCE_KINDS:
            continue
        image_key = image_shard = None
        if not r["sha256_image_jpg"]:
            if not images:
                raise BadInput(
                    image_dataset or dataset,
                    "clean_only samples have no image and the train split has none to draw",
                )
            pick = images[int(hashlib.sha1(r["key"].encode()).hexdigest(), 16) % len(images)]
            image_key = pick["key"]  # an absolute shard path when it lives in image_dataset
            image_shard = str(Path(image_dataset, pick["shard"])) if image_dataset else pick["shard"]
        groups[("train", SOURCE_KINDS[r["kind"]])].append(
            Item(r["key"], r["shard"], r["kind"], image_key, image_shard)
        )
    if params.pseudo.max_items:
        for k in groups:
            groups[k] = groups[k][: params.pseudo.max_items]
    return dict(groups)


def _read(dataset: str, wanted: dict[str, set[str]]) -> dict[str, dict[str, bytes]]:
    """Members of the ``wanted`` keys, by shard (relative to ``dataset``, or absolute)."""
    found = {}
    for shard, keys in wanted.items():
        for key, members in iter_shard(Path(dataset) / shard):
            if key in keys:
                found[key] = members
    return found


class ChunkMaker:
    """Ray Data actor: loads the round's converters once, then makes whole chunks."""

    def __init__(self, dataset: str, round_dir: str, out: str, params_dict: dict, k: int):
        from mvsd.config import Params, build

        self.dataset, self.out, self.k = dataset, out, k
        self.params: Params = build(Params, params_dict)
        self.conv = {
            d: Converter.from_checkpoint(Path(round_dir) / f"{d}.safetensors", expect_direction=d)
            for d in ("reverb", "dereverb")
        }
        torch.set_num_threads(max(1, self.params.pseudo.threads))

    def __call__(self, batch: dict) -> dict:
        done = []
        for task_json in batch["task"]:
            task = _task_from_json(task_json)
            samples = {s.parent_key: s for s in self.make(task)}
            run_task(task, lambda item: samples[item.key], self.out)  # noqa: B023 (called at once)
            done.append(task.shard)
        return {"shard": np.array(done)}

    def make(self, task: ShardTask) -> list[Sample]:
        wanted: dict[str, set[str]] = defaultdict(set)
        for it in task.items:
            wanted[it.shard].add(it.key)
            if it.image_key:
                wanted[it.image_shard].add(it.image_key)
        members = _read(self.dataset, wanted)
        first = task.items[0].kind
        src_name, fwd, back = (
            ("clean.flac", "reverb", "dereverb")
            if first == "clean_only"
            else ("reverb.flac", "dereverb", "reverb")
        )
        audio = [DECODERS[src_name](members[it.key][src_name]) for it in task.items]
        images = [DECODERS["image.jpg"](members[it.image_key or it.key]["image.jpg"]) for it in task.items]
        n = max(len(a) for a in audio)
        x = np.stack([np.pad(a, (0, n - len(a))) for a in audio])
        steps, seed = self.params.pseudo.steps, self.params.pseudo.seed + self.k
        made = self.conv[fwd].convert(x, images, steps=steps, seed=seed)
        again = self.conv[back].convert(made, images, steps=steps, seed=seed)
        scores = [stft_distance(a, b) for a, b in zip(again, x)]
        # the reverberation R reads from each picture (broadband: mean of the bands), for
        # pseudo.accept: rooms
        heard = self.conv["reverb"].describe_room(images, len(images)).t60.mean(1).tolist()
        metas = [json.loads(members[it.key]["json"]) for it in task.items]
        return [
            self._sample(it, a, m, img, float(sc), meta, t60)
            for it, a, m, img, sc, meta, t60 in zip(task.items, audio, made, images, scores, metas, heard)
        ]

    def _sample(
        self,
        it: Item,
        source: np.ndarray,
        made: np.ndarray,
        image: np.ndarray,
        score: float,
        meta: dict,
        heard_t60: float,
    ) -> Sample:
        clean, reverb = (
            (source, made[: len(source)]) if it.kind == "clean_only" else (made[: len(source)], source)
        )
        return Sample(
            key=f"{it.key}-r{self.k}",
            split="train",
            kind=SOURCE_KINDS[it.kind],
            source=meta.get("source", "pseudo"),
            room_id=meta.get("room"),
            speaker_id=meta.get("speaker"),
            clean=clean,
            reverb=reverb,
            image=image,
            round=self.k,
            score=score,
            parent_key=it.key,
            meta={
                "generated": "reverb.flac" if it.kind == "clean_only" else "clean.flac",
                "image_from": it.image_key or it.key,
                "heard_t60_s": round(float(heard_t60), 4),
            },
        )


def _task_to_json(t: ShardTask) -> str:
    return json.dumps({"shard": t.shard, "items": [it.__dict__ for it in t.items]})


def _task_from_json(s: str) -> ShardTask:
    d = json.loads(s)
    return ShardTask(d["shard"], tuple(Item(**it) for it in d["items"]))


def make_pseudo_pairs(
    dataset: str | Path,
    round_dir: str | Path,
    out: str | Path,
    params: Params,
    k: int,
    image_dataset: str | Path | None = None,
) -> dict:
    """Make, score and select round ``k``'s pseudo-pairs of ``dataset`` into ``out``.

    ``image_dataset``: where images for imageless clean_only samples are drawn (default ``dataset``).
    """
    import ray

    from mvsd.train.distributed import init_ray, round_fingerprint

    dataset, round_dir, out = (
        str(Path(dataset).resolve()),
        str(Path(round_dir).resolve()),
        Path(out).resolve(),
    )
    images = str(Path(image_dataset).resolve()) if image_dataset else None
    p = params.pseudo
    tasks = plan_tasks(plan(dataset, params, images), p.chunk)
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                dataset,
                round_dir,
                k,
                stage_params(params, "pseudo"),
                code_version("pseudo"),
                images,
                round_fingerprint(round_dir),
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    open_build(out, tasks, fingerprint)
    todo = [t for t in tasks if not task_done(out, t)]
    if todo:
        init_ray(params)
        # Each chunk writes its own shard; iterating runs them (streaming, without materialize's
        # check for free CPUs, which the actor pool holds by then). mvsd's bar instead of Ray
        # Data's: in a log, Ray's progress is seven lines every ten seconds.
        with _quiet_ray_data(), progress_bar(f"pseudo-pairs of round {k}", len(todo)) as advance:
            ds = ray.data.from_items(
                [{"task": _task_to_json(t)} for t in todo], override_num_blocks=len(todo)
            )
            # Ray Data restarts a dead actor by default, and Ray's core worker then prints an
            # error line on every run (the pool's constructor arguments sit in the object store:
            # ray-project/ray#53727). A chunk whose actor dies fails the command instead; run it
            # again and it resumes from the chunks already written.
            chunks = ds.map_batches(
                ChunkMaker,
                fn_constructor_args=(dataset, round_dir, str(out), to_dict(params), k),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=p.workers),
                num_cpus=p.threads,
                max_restarts=0,
            )
            for _ in chunks.iter_batches(batch_size=1):
                advance(1)
    consolidate(out, tasks, f"pseudo-round{k}", params.shards)
    return select(out, params)


@contextmanager
def _quiet_ray_data() -> Iterator[None]:
    import ray

    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start
    ctx.enable_progress_bars = ctx.print_on_execution_start = False
    note = logging.getLogger("ray.data._internal.progress")  # "Progress bars disabled. To enable, ..."
    drop = DropHarmless("Progress bars disabled")
    note.addFilter(drop)
    # "Dataset dataset_0358... execution finished in 48.54 seconds": mvsd's bar and summary say it
    done = logging.getLogger("ray.data._internal.execution.streaming_executor")
    finished = DropHarmless("execution finished in")
    done.addFilter(finished)
    try:
        with warnings.catch_warnings():
            # max_restarts (above) is one of the extra remote args Ray deprecates without a named
            # replacement yet (removal announced for Ray 2.64, hence the pin in pyproject.toml)
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved
        note.removeFilter(drop)
        done.removeFilter(finished)


def _heard_t60(out: Path, rows: list[dict]) -> dict[str, float]:
    """key -> the broadband T60 R read from the candidate's picture (its metadata)."""
    keys = {r["key"] for r in rows}
    heard = {}
    for shard in sorted({r["shard"] for r in rows}):
        for key, members in iter_shard(out / shard):
            if key in keys:
                meta = json.loads(members["json"])
                if "heard_t60_s" not in meta:
                    raise BadInput(
                        str(out / shard),
                        f"{key}: no heard_t60_s (made before pseudo.accept: rooms existed); make the pseudo-pairs again",
                    )
                heard[key] = float(meta["heard_t60_s"])
    return heard


def _bands(group: list[dict], heard: dict[str, float], bins: int) -> list[list[dict]]:
    """``group`` split into ``bins`` bands of equal count by heard T60 (one band: as it is)."""
    if bins <= 1:
        return [list(group)]
    ordered = sorted(group, key=lambda r: (heard[r["key"]], r["key"]))
    return [list(b) for b in np.array_split(np.array(ordered, dtype=object), bins) if len(b)]


def select(out: Path, params: Params) -> dict:
    """Keep the best candidates; the manifest lists them, candidates.parquet lists all."""
    p = params.pseudo
    table = read_manifest(out)
    write_table(table, out / "candidates.parquet", params.shards.row_group_size, params.shards.compression)
    rows = table.to_pylist()
    heard = _heard_t60(out, rows) if p.accept == "rooms" else {}
    accepted = []
    for kind in sorted({r["kind"] for r in rows}):
        group = [r for r in rows if r["kind"] == kind]
        for band in _bands(group, heard, p.accept_bins if p.accept == "rooms" else 1):
            band.sort(key=lambda r: (r["score"], r["key"]))
            n = int(np.ceil(len(band) * p.keep_fraction))
            accepted += [r for r in band[:n] if p.max_distance is None or r["score"] <= p.max_distance]
    accepted.sort(key=lambda r: r["key"])
    write_table(
        to_table(accepted, MANIFEST_SCHEMA),
        out / MANIFEST,
        params.shards.row_group_size,
        params.shards.compression,
    )
    summary = {
        "candidates": len(rows),
        "accepted": len(accepted),
        "by_kind": {k: sum(r["kind"] == k for r in accepted) for k in SOURCE_KINDS.values()},
    }
    (out / "pseudo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
