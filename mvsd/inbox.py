"""The inbox: new unpaired files in, the next mutual-learning round out. Every decision, no Prefect.

The inbox (a folder or an fsspec URL such as ``s3://bucket/inbox``) holds

    clean/...           dry speech (any wav/flac/ogg, any rate)          -> clean_only samples
    reverb/...          an image and a room recording with the same stem -> reverb_only samples

:func:`process_inbox`:

1. lists the inbox and hashes every file; files whose content is already in the ledger
   (``<data>/ledger.parquet``) are skipped, so nothing is ingested twice;
2. copies the new files (a *batch*, named by the hash of their hashes) and ingests them into
   ``<data>/<batch>/{clean,reverb}``; bad files are quarantined with their reason and the run goes on;
3. makes pseudo-pairs from them with the run's newest round (dry speech without a picture draws a
   room image from the paired dataset), trains the next round on paired data + every pseudo-pair
   set so far (:func:`mvsd.train.rounds.round_inputs`), and evaluates it beside the previous round;
4. writes the ledger, then versions ``<data>`` and the new round with DVC and pushes them. A push
   that fails stays pending: every later run pushes it again first, until it succeeds.

The inbox itself is never modified. A run that fails part-way writes no ledger rows; a rerun finds
the same files, hence the same batch, and every step resumes or is skipped, so there are no
duplicates and nothing is lost.

Each step is a field of :class:`Steps`: by default plain mvsd calls (``process_inbox(...)`` works
in a script); ``flows/inbox.py`` passes its Prefect tasks instead (retries, caching) and adds the
repository lock, the schedule and the run's artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mvsd import pipeline
from mvsd.errors import printable
from mvsd.train.rounds import check_dataset, latest_round, round_dir, round_inputs

INBOX_DATA = "datasets/inbox"  # every ingested batch and the ledger: one DVC-tracked folder
KINDS = {"clean": "clean-folder", "reverb": "reverb-folder"}  # inbox folder -> ingest source
LEDGER_SCHEMA = pa.schema(
    [
        ("sha256", pa.string()),
        ("file", pa.string()),  # path inside the inbox
        ("kind", pa.string()),  # clean | reverb
        ("batch", pa.string()),
        ("status", pa.string()),  # ingested | quarantined | duplicate
        ("reason", pa.string()),
        ("at", pa.timestamp("s", tz="UTC")),
    ]
)
log = logging.getLogger(__name__)


def read_ledger(data: Path) -> pa.Table:
    f = data / "ledger.parquet"
    # Parquet has no seconds unit: "at" comes back in ms; cast, so the next batch's rows append.
    return pq.read_table(f).cast(LEDGER_SCHEMA) if f.exists() else LEDGER_SCHEMA.empty_table()


def scan(inbox: str) -> list[dict]:
    """Every file under ``inbox/clean`` and ``inbox/reverb`` with its SHA-256 (hidden files and
    other folders are ignored, and said so)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(inbox)
    if not fs.exists(root):
        log.warning("inbox %s does not exist: nothing to do", inbox)
        return []
    root = root.rstrip("/")
    found, ignored = [], []
    for path in sorted(fs.find(root)):
        rel = path[len(root) + 1 :]
        parts = rel.split("/")
        if any(p.startswith(".") for p in parts):
            continue
        if parts[0] not in KINDS or len(parts) < 2:
            ignored.append(rel)
            continue
        h = hashlib.sha256()
        with fs.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):  # noqa: B023
                h.update(chunk)
        url = path if "://" not in inbox else f"{inbox.split('://')[0]}://{path}"
        found.append({"url": url, "file": rel, "kind": parts[0], "sha256": h.hexdigest()})
    if ignored:
        log.warning(
            "%d file(s) outside clean/ and reverb/ ignored, e.g. %s", len(ignored), printable(ignored[0])
        )
    return found


def copy_files(files: list[tuple[str, str]], dest: str) -> int:
    """Copy ``(url or path, relative name)`` pairs into ``dest`` (fsspec, so s3:// works), each
    atomically; files already there with the same size are kept (a retried copy resumes)."""
    import fsspec

    n = 0
    for src, rel in files:
        target = Path(dest, rel)
        with fsspec.open(src, "rb") as f:
            data = f.read()
        if target.exists() and target.stat().st_size == len(data):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        n += 1
    return n


def split_new(files: list[dict], ledger: pa.Table) -> tuple[list[dict], list[dict]]:
    """(new files, duplicates of a new file within this listing); files the ledger holds are neither."""
    seen = set(ledger.column("sha256").to_pylist())
    new, dups, shas = [], [], set()
    for f in files:
        if f["sha256"] in seen:
            continue
        (dups if f["sha256"] in shas else new).append(f)
        shas.add(f["sha256"])
    return new, dups


def batch_name(new: list[dict]) -> str:
    """The batch's name: the hash of its files' hashes (a rerun after a failure finds the same)."""
    return hashlib.sha256("".join(sorted(f["sha256"] for f in new)).encode()).hexdigest()[:12]


# -- the steps and what runs them ----------------------------------------------------------------


def _dvc_add(paths: list[str], message: str) -> list[str]:
    from mvsd.versioning import dvc_add

    return dvc_add(paths, message)


def _dvc_push(targets: list[str]) -> None:
    from mvsd.versioning import dvc_push

    dvc_push(targets)


@dataclass
class Steps:
    """What runs each step of :func:`process_inbox` (same arguments and results as the defaults)."""

    scan: Callable[[str], list[dict]] = scan
    copy_files: Callable[[list[tuple[str, str]], str], int] = copy_files
    ingest: Callable[..., dict] = pipeline.ingest
    train_round: Callable[..., str] = pipeline.train_round
    pseudo_pairs: Callable[..., dict] = pipeline.pseudo_pairs
    evaluate: Callable[..., dict] = pipeline.evaluate
    dvc_add: Callable[[list[str], str], list[str]] = _dvc_add
    dvc_push: Callable[[list[str]], None] = _dvc_push
    published: Callable[[dict, str], None] = field(default=lambda result, name: None)  # an evaluation's table


# -- pushes an earlier run could not make ---------------------------------------------------------


def _pending_file() -> Path:
    # In DVC's own scratch folder: git ignores it, and it is not inside any tracked dataset.
    return Path.cwd() / ".dvc" / "tmp" / "mvsd-pending-push.json"


def pending_pushes() -> list[str]:
    """``.dvc`` files an earlier run committed but could not push (the remote was down)."""
    f = _pending_file()
    return json.loads(f.read_text()) if f.exists() else []


def push_pending(new: list[str], push: Callable[[list[str]], None]) -> list[str]:
    """Push ``new`` and every push still pending. The list is written before the push and
    removed after it, so a failed push (whose cause the error shows) is retried by the next run,
    even one that finds nothing new in the inbox. Returns what was pushed."""
    targets = sorted(set(pending_pushes()) | set(new))
    if not targets:
        return []
    f = _pending_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(targets))
    push(targets)
    f.unlink()
    return targets


def is_dvc_repo(repo: Path | None = None) -> bool:
    """Is ``repo`` (default: the working directory) a git + DVC repository?"""
    repo = repo or Path.cwd()
    return (repo / ".dvc").is_dir() and (repo / ".git").exists()


# -- one run --------------------------------------------------------------------------------------


def process_inbox(
    inbox: str,
    dataset: str,
    run: str,
    checkpoints: str,
    data: Path,
    params_dict: dict,
    evaluate: bool = True,
    version: bool = True,
    eval_split: str = "test_unseen",
    eval_limit: int | None = None,
    steps: Steps | None = None,
) -> dict:
    """One inbox run (module docstring). Returns its summary: files, new, duplicates, and for a
    batch its name, ingested and quarantined files (with reasons), the new round, the evaluation
    and the DVC files versioned. The caller serialises runs on the repository (flows: a lock)."""
    do = steps or Steps()
    ledger = read_ledger(data)
    files = do.scan(inbox)
    new, dups = split_new(files, ledger)
    summary: dict[str, Any] = {"inbox": inbox, "files": len(files), "new": len(new), "duplicates": len(dups)}
    if not new:
        log.info("inbox %s: %d file(s), none new", inbox, len(files))
        if version and is_dvc_repo() and pending_pushes():
            summary["dvc"] = push_pending([], do.dvc_push)  # what an earlier run could not push
        return summary
    batch = batch_name(new)
    staging, batch_dir = data / ".staging" / batch, data / batch
    log.info("inbox %s: %d new file(s) -> batch %s", inbox, len(new), batch)

    do.copy_files([(f["url"], f["file"]) for f in new], str(staging))
    # Files are named by their printable inbox path (names that are not UTF-8 escaped), the form
    # the quarantine table and the ledger hold.
    ingested, status = {}, {printable(f["file"]): ("ingested", "") for f in new}
    for kind, source in KINDS.items():
        if not any(f["kind"] == kind for f in new):
            continue
        res = do.ingest(source, str(staging / kind), str(batch_dir / kind), params_dict, split="train")
        status |= _quarantined(kind, res["dataset"], staging / kind, inbox)
        if res["samples"]:
            ingested[kind] = res["dataset"]
    quarantined = {f: r for f, (s, r) in status.items() if s == "quarantined"}
    summary |= {"batch": batch, "ingested": sum(s == "ingested" for s, _ in status.values()),
                "quarantined": quarantined}  # fmt: skip

    if ingested:
        check_dataset(dataset)
        k = latest_round(checkpoints, run)
        if k is None:  # no round yet: round 0 on the paired data first
            do.train_round(dataset, run, 0, checkpoints, params_dict, out=str(round_dir(checkpoints, run, 0)))
            k = 0
        prev = str(round_dir(checkpoints, run, k))
        for kind, ds in ingested.items():
            do.pseudo_pairs(
                ds, prev, str(batch_dir / f"pseudo-{kind}"), k, params_dict, image_dataset=dataset
            )
        batches = sorted(str(p.parent) for p in data.glob("*/pseudo-*/manifest.parquet"))
        sets = params_dict["train"]["pseudo_sets"]  # the run's own sets; every inbox batch is kept
        pseudo, init = round_inputs(dataset, run, k + 1, checkpoints, more_pseudo=batches, check=False, sets=sets)
        summary["round"] = do.train_round(
            dataset, run, k + 1, checkpoints, params_dict, pseudo=pseudo, init_from=str(init),
            out=str(round_dir(checkpoints, run, k + 1)),
        )  # fmt: skip
        if evaluate:
            name = f"inbox-{batch}"
            ev = do.evaluate(
                dataset, eval_split, [prev, summary["round"]], "metrics", name, f"reports/{name}",
                limit=eval_limit, params_dict=params_dict,
            )  # fmt: skip
            do.published(ev, name)
            summary["evaluation"] = {"table": ev["table"], "report": ev.get("report")}

    _append_ledger(data, ledger, new, dups, status, batch)
    shutil.rmtree(data / ".staging", ignore_errors=True)

    if version and is_dvc_repo():
        tracked = [str(data)] + ([summary["round"]] if "round" in summary else [])
        dvc_files = do.dvc_add(tracked, f"inbox batch {batch}: {summary['ingested']} file(s)")
        push_pending(dvc_files, do.dvc_push)
        summary["dvc"] = dvc_files
    elif version:
        log.warning("not a git + DVC repository: %s and the new round are not versioned", data)
    log.info("inbox batch %s done: %s", batch, summary_markdown(summary).splitlines()[0])
    return summary


def _quarantined(kind: str, ingested: str, staged: Path, inbox: str) -> dict[str, tuple[str, str]]:
    """``{inbox file: ("quarantined", reason)}`` of one ingest, named as in the inbox."""
    from mvsd.data.manifest import read_quarantine

    # The quarantine names files by absolute path: compare with the absolute staging folder,
    # whatever form (relative, through a link) the data folder was given in.
    root = printable(os.path.realpath(staged))
    found = {}
    for q in read_quarantine(ingested).to_pylist():
        rel = q["file"].removeprefix(root + "/") if Path(q["file"]).is_absolute() else q["file"]
        found[f"{kind}/{Path(rel).as_posix()}"] = (
            "quarantined",
            q["reason"].replace(root, inbox.rstrip("/") + f"/{kind}"),
        )
    return found


def _append_ledger(
    data: Path, ledger: pa.Table, new: list[dict], dups: list[dict], status: dict, batch: str
) -> None:
    now = pa.scalar(int(time.time()), pa.timestamp("s", tz="UTC")).as_py()
    rows = [
        {"sha256": f["sha256"], "file": printable(f["file"]), "kind": f["kind"], "batch": batch,
         "status": status[printable(f["file"])][0], "reason": status[printable(f["file"])][1], "at": now}
        for f in new
    ] + [
        {"sha256": f["sha256"], "file": printable(f["file"]), "kind": f["kind"], "batch": batch,
         "status": "duplicate", "reason": "same content as another file of this batch", "at": now}
        for f in dups
    ]  # fmt: skip
    table = pa.concat_tables([ledger, pa.Table.from_pylist(rows, LEDGER_SCHEMA)])
    tmp = data / "ledger.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(data / "ledger.parquet")


def summary_markdown(summary: dict) -> str:
    """A batch's summary as Markdown: the counts, then a table of quarantined files and reasons."""
    quarantined = summary.get("quarantined", {})
    lines = [f"**{summary.get('ingested', 0)}** file(s) ingested into batch `{summary.get('batch')}`, "
             f"**{len(quarantined)}** quarantined, **{summary['duplicates']}** duplicate(s)."]  # fmt: skip
    if quarantined:
        lines += ["", "| quarantined file | reason |", "|---|---|"]
        lines += [f"| {f} | {r} |" for f, r in sorted(quarantined.items())]
    return "\n".join(lines)
