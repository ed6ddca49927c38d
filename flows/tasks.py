"""Prefect tasks: each one calls one ``mvsd`` function (no tensor code here).

Tasks take params as a plain dict (``params_dict``) so that the params their stage reads
(:mod:`mvsd.stages`) can enter their cache key (:func:`flows.common.key_fn`). Computing tasks are cached and never retried; I/O tasks
(``ingest``, ``copy_files``, ``dvc_push``) retry.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from flows.common import cached_task
from mvsd import pipeline
from mvsd.config import Params, build


def _params(d: dict) -> Params:
    return build(Params, d)


def _folder_listing(path: str) -> str:
    """Names, sizes and modification times of every file under ``path`` (an ingest's input)."""
    h = hashlib.sha256()
    root = Path(path)
    for f in sorted(root.rglob("*")) if path and root.exists() else []:
        if f.is_file():
            st = f.stat()
            name = os.fsencode(f.relative_to(root))  # bytes: names need not be UTF-8
            h.update(name + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def worth_retrying(task, task_run, state) -> bool:
    """Prefect's retry condition for I/O tasks: retry what may pass (a network or storage blip),
    not what cannot — a full disk, a file refused as bad input or a busy dataset folder."""
    from mvsd.errors import MvsdError

    try:
        state.result(raise_on_failure=True)
    except OSError as e:
        return e.errno not in (errno.ENOSPC, errno.EDQUOT)
    except MvsdError:
        return False
    except Exception:
        return True
    return True


def _dataset_out(args: dict) -> str:
    return str(Path(args["out"], "dataset.json"))


@cached_task(
    name="synth",
    output=_dataset_out,
    stage="synth",
    extra=lambda a: _folder_listing(a.get("speech_dir") or ""),
)
def synth(out: str, params_dict: dict, speech_dir: str | None = None) -> dict:
    """SimRooms (espeak-ng speech, or the recordings under ``speech_dir``) into ``out``."""
    from mvsd.sim.synth import synth as run

    summary = run(out, _params(params_dict), speech_dir)
    get_run_logger().info(summary.line())
    return {"dataset": out, "version": summary.version, "summary": summary.line()}


@cached_task(
    name="ingest",
    output=_dataset_out,
    stage="ingest",
    extra=lambda a: _folder_listing(a["path"]),
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=worth_retrying,
)
def ingest(source: str, path: str, out: str, params_dict: dict, split: str | None = None) -> dict:
    """A source folder -> shards + manifest (:func:`mvsd.pipeline.ingest`). Bad files are
    quarantined, not fatal."""
    res = pipeline.ingest(source, path, out, params_dict, split=split)
    log = get_run_logger()
    log.info(res["summary"])
    if res["quarantined"]:
        log.warning("%s: %d file(s) quarantined, see %s/quarantine.parquet", path, res["quarantined"], out)
    return res


@cached_task(
    name="train-round",
    output=lambda a: a["out"] and str(Path(a["out"], "round.json")),
    stage="train",
    datasets=("dataset", "pseudo"),
    rounds=("init_from",),
)
def train_round(
    dataset: str,
    run: str,
    k: int,
    checkpoints: str,
    params_dict: dict,
    pseudo: list[str] | None = None,
    init_from: str | None = None,
    out: str | None = None,
) -> str:
    """Round ``k`` of ``run`` on Ray (:func:`mvsd.pipeline.train_round`; ``out`` is only there for
    the cache key)."""
    folder = pipeline.train_round(dataset, run, k, checkpoints, params_dict, pseudo, init_from)
    get_run_logger().info("round %d of %s: %s (pseudo-pair sets: %d)", k, run, folder, len(pseudo or []))
    return folder


@cached_task(
    name="pseudo-pairs",
    output=lambda a: str(Path(a["out"], "pseudo.json")),
    stage="pseudo",
    datasets=("dataset", "image_dataset"),
    rounds=("round_dir",),
)
def pseudo_pairs(
    dataset: str, round_dir: str, out: str, k: int, params_dict: dict, image_dataset: str | None = None
) -> dict:
    summary = pipeline.pseudo_pairs(dataset, round_dir, out, k, params_dict, image_dataset=image_dataset)
    get_run_logger().info(
        "pseudo-pairs of %s with %s: %d of %d candidates kept (%s)",
        dataset,
        round_dir,
        summary["accepted"],
        summary["candidates"],
        summary["by_kind"],
    )
    return summary


@cached_task(
    name="evaluate",
    output=lambda a: str(Path(a["out"], f"{a['name']}.json")),
    stage="evaluate",
    datasets=("dataset",),
    rounds=("rounds",),
)
def evaluate(
    dataset: str,
    split: str,
    rounds: list[str],
    out: str,
    name: str,
    report: str | None,
    limit: int | None = None,
    blind_rt60: bool = True,
    rt60_cache: str = "checkpoints/rt60",
    params_dict: dict | None = None,
) -> dict:
    """:func:`mvsd.pipeline.evaluate`: metrics (``out/<name>.json`` ...) and the listening page;
    returns the Markdown table and paths."""
    res = pipeline.evaluate(dataset, split, rounds, out, name, report, limit, blind_rt60, rt60_cache, params_dict)
    get_run_logger().info("evaluation %s:\n%s", name, res["table"])
    return res


# -- files and versions --------------------------------------------------------------------------


@task(name="copy-files", retries=2, retry_delay_seconds=5, retry_condition_fn=worth_retrying)
def copy_files(files: list[tuple[str, str]], dest: str) -> int:
    """:func:`mvsd.inbox.copy_files` (each file atomically; a retried copy resumes)."""
    from mvsd.inbox import copy_files as run

    return run(files, dest)


@task(name="dvc-add")
def dvc_add(paths: list[str], message: str, repo: str | None = None) -> list[str]:
    """:func:`mvsd.versioning.dvc_add`: a new DVC version of each path, ``.dvc`` files committed.
    Callers hold the repository lock."""
    from mvsd.versioning import dvc_add as run

    return run(paths, message, repo)


@task(name="dvc-push", retries=2, retry_delay_seconds=10)
def dvc_push(targets: list[str], repo: str | None = None) -> None:
    """:func:`mvsd.versioning.dvc_push` to the default DVC remote (DVC's reason on failure)."""
    from mvsd.versioning import dvc_push as run

    run(targets, repo)
