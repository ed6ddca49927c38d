"""``python -m flows.inbox``: ingest new unpaired files from the inbox and learn from them.

The inbox (``orchestration.inbox``: a folder or an fsspec URL such as ``s3://bucket/inbox``) holds

    clean/...           dry speech (any wav/flac/ogg, any rate)          -> clean_only samples
    reverb/...          an image and a room recording with the same stem -> reverb_only samples

Each run, under the repository lock (a Prefect global concurrency limit of one slot, so two runs
never touch DVC or the datasets at once):

1. lists the inbox and hashes every file; files whose content is already in the ledger
   (``datasets/inbox/ledger.parquet``) are skipped, so nothing is ingested twice;
2. copies the new files (a *batch*, named by the hash of their hashes) and ingests them into
   ``datasets/inbox/<batch>/{clean,reverb}``; bad files are quarantined with their reason and the
   run goes on;
3. makes pseudo-pairs from them with the run's newest round (dry speech without a picture draws
   a room image from the paired dataset), trains the next round on paired data + every
   pseudo-pair set so far, and evaluates it beside the previous round (metrics, report, artifact);
4. writes the ledger, then versions ``datasets/inbox`` (a new dataset version) and the new round
   with DVC, commits the ``.dvc`` files and pushes them to the DVC remote. A push that fails
   (the remote is down) fails the run with DVC's reason and stays pending: every later run
   pushes it again first, until it succeeds.

The inbox itself is never modified. A run that fails part-way leaves it as it was and writes no
ledger rows; the retry finds the same files, hence the same batch, and every step resumes or is
skipped (datasets, pseudo-pairs and rounds are resumable and cached), so there are no duplicates
and nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from flows import tasks
from flows.common import main, params, plain, repository_lock
from flows.evaluate import publish
from mvsd.data.manifest import read_quarantine
from mvsd.errors import printable
from mvsd.train.rounds import check_dataset, round_dir, round_inputs

INBOX_DATA = "datasets/inbox"  # every ingested batch and the ledger: one DVC-tracked folder
KINDS = {"clean": "clean-folder", "reverb": "reverb-folder"}
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


def read_ledger(data: Path) -> pa.Table:
    f = data / "ledger.parquet"
    # Parquet has no seconds unit: "at" comes back in ms; cast, so the next batch's rows append.
    return pq.read_table(f).cast(LEDGER_SCHEMA) if f.exists() else LEDGER_SCHEMA.empty_table()


@task(name="scan-inbox", retries=2, retry_delay_seconds=5)
def scan(inbox: str) -> list[dict]:
    """Every file under ``inbox/clean`` and ``inbox/reverb`` with its SHA-256 (hidden files and
    other folders are ignored, and said so)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(inbox)
    if not fs.exists(root):
        get_run_logger().warning("inbox %s does not exist: nothing to do", inbox)
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
        get_run_logger().warning(
            "%d file(s) outside clean/ and reverb/ ignored, e.g. %s", len(ignored), printable(ignored[0])
        )
    return found


def _pending_file() -> Path:
    # In DVC's own scratch folder: git ignores it, and it is not inside any tracked dataset.
    return Path.cwd() / ".dvc" / "tmp" / "mvsd-pending-push.json"


def pending_pushes() -> list[str]:
    """``.dvc`` files an earlier run committed but could not push (the remote was down)."""
    f = _pending_file()
    return json.loads(f.read_text()) if f.exists() else []


def push_pending(new: list[str]) -> list[str]:
    """Push ``new`` and every push still pending. The list is written before the push and
    removed after it, so a failed push (whose cause the error shows) is retried by the next run,
    even one that finds nothing new in the inbox. Returns what was pushed."""
    targets = sorted(set(pending_pushes()) | set(new))
    if not targets:
        return []
    f = _pending_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(targets))
    tasks.dvc_push(targets)
    f.unlink()
    return targets


def latest_round(checkpoints: str, run: str) -> int | None:
    ks = [
        int(p.name.split("-")[1])
        for p in Path(checkpoints, run).glob("round-*")
        if (p / "round.json").exists()
    ]
    return max(ks) if ks else None


@flow(name="inbox", log_prints=True)
def inbox(
    inbox: str | None = None,
    dataset: str | None = None,
    run: str | None = None,
    checkpoints: str | None = None,
    data: str = INBOX_DATA,
    evaluate: bool = True,
    version: bool | None = None,
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Ingest new files of INBOX, make pseudo-pairs, train the next round of RUN, evaluate it and
    version everything with DVC. Options left out come from the orchestration section of params."""
    p = params(params_file, overrides)
    o = p.orchestration
    inbox, dataset, run = inbox or o.inbox, dataset or o.dataset, run or o.run
    checkpoints = checkpoints or o.checkpoints
    version = o.dvc if version is None else version
    pd, out = plain(p), Path(data)
    with repository_lock(o.lock_timeout_s):
        return _process(inbox, dataset, run, checkpoints, out, pd, evaluate, version, o)


def _process(inbox, dataset, run, checkpoints, out: Path, pd: dict, evaluate: bool, version: bool, o) -> dict:
    log = get_run_logger()
    ledger = read_ledger(out)
    seen = set(ledger.column("sha256").to_pylist())
    files = scan(inbox)
    new, dups, shas = [], [], set()
    for f in files:
        if f["sha256"] in seen:
            continue
        (dups if f["sha256"] in shas else new).append(f)
        shas.add(f["sha256"])
    summary: dict = {"inbox": inbox, "files": len(files), "new": len(new), "duplicates": len(dups)}
    if not new:
        log.info("inbox %s: %d file(s), none new", inbox, len(files))
        if version and tasks.is_dvc_repo() and pending_pushes():
            summary["dvc"] = push_pending([])  # what an earlier run could not push
        return summary
    batch = hashlib.sha256("".join(sorted(f["sha256"] for f in new)).encode()).hexdigest()[:12]
    staging, batch_dir = out / ".staging" / batch, out / batch
    log.info("inbox %s: %d new file(s) -> batch %s", inbox, len(new), batch)

    tasks.copy_files([(f["url"], f["file"]) for f in new], str(staging))
    # Files are named by their printable inbox path (names that are not UTF-8 escaped), the form
    # the quarantine table and the ledger hold.
    ingested, status = {}, {printable(f["file"]): ("ingested", "") for f in new}
    for kind, source in KINDS.items():
        if not any(f["kind"] == kind for f in new):
            continue
        res = tasks.ingest(source, str(staging / kind), str(batch_dir / kind), pd, split="train")
        # The quarantine names files by absolute path: compare with the absolute staging folder,
        # whatever form (relative, through a link) ``data`` was given in.
        kind_root = printable(os.path.realpath(staging / kind))
        for q in read_quarantine(res["dataset"]).to_pylist():
            rel = q["file"].removeprefix(kind_root + "/") if Path(q["file"]).is_absolute() else q["file"]
            reason = q["reason"].replace(kind_root, inbox.rstrip("/") + f"/{kind}")
            status[f"{kind}/{Path(rel).as_posix()}"] = ("quarantined", reason)
        if res["samples"]:
            ingested[kind] = res["dataset"]
    quarantined = {f: r for f, (s, r) in status.items() if s == "quarantined"}
    summary |= {"batch": batch, "ingested": sum(s == "ingested" for s, _ in status.values()),
                "quarantined": quarantined}  # fmt: skip

    if ingested:
        check_dataset(dataset)
        k = latest_round(checkpoints, run)
        if k is None:  # no round yet: round 0 on the paired data first
            tasks.train_round(dataset, run, 0, checkpoints, pd, out=str(round_dir(checkpoints, run, 0)))
            k = 0
        prev = str(round_dir(checkpoints, run, k))
        for kind, ds in ingested.items():
            tasks.pseudo_pairs(ds, prev, str(batch_dir / f"pseudo-{kind}"), k, pd, image_dataset=dataset)
        batches = sorted(str(p.parent) for p in out.glob("*/pseudo-*/manifest.parquet"))
        pseudo, init = round_inputs(dataset, run, k + 1, checkpoints, more_pseudo=batches, check=False)
        new_round = tasks.train_round(
            dataset, run, k + 1, checkpoints, pd, pseudo=pseudo, init_from=str(init),
            out=str(round_dir(checkpoints, run, k + 1)),
        )  # fmt: skip
        summary["round"] = new_round
        if evaluate:
            name = f"inbox-{batch}"
            ev = tasks.evaluate(
                dataset, o.eval_split, [prev, new_round], "metrics", name, f"reports/{name}",
                limit=o.eval_limit or None, params_dict=pd,
            )  # fmt: skip
            publish(ev, name)
            summary["evaluation"] = {"table": ev["table"], "report": ev.get("report")}

    now = pa.scalar(int(time.time()), pa.timestamp("s", tz="UTC"))
    rows = [
        {"sha256": f["sha256"], "file": printable(f["file"]), "kind": f["kind"], "batch": batch,
         "status": status[printable(f["file"])][0], "reason": status[printable(f["file"])][1],
         "at": now.as_py()}
        for f in new
    ] + [
        {"sha256": f["sha256"], "file": printable(f["file"]), "kind": f["kind"], "batch": batch,
         "status": "duplicate", "reason": "same content as another file of this batch", "at": now.as_py()}
        for f in dups
    ]  # fmt: skip
    table = pa.concat_tables([ledger, pa.Table.from_pylist(rows, LEDGER_SCHEMA)])
    tmp = out / "ledger.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(out / "ledger.parquet")
    tasks.remove_tree(out / ".staging")

    if version and tasks.is_dvc_repo():
        tracked = [str(out)] + ([summary["round"]] if "round" in summary else [])
        dvc_files = tasks.dvc_add(tracked, f"inbox batch {batch}: {summary['ingested']} file(s)")
        push_pending(dvc_files)
        summary["dvc"] = dvc_files
    elif version:
        log.warning("not a git + DVC repository: %s and the new round are not versioned", out)

    lines = [f"**{summary['ingested']}** file(s) ingested into `{batch_dir}`, "
             f"**{len(quarantined)}** quarantined, **{len(dups)}** duplicate(s)."]  # fmt: skip
    if quarantined:
        lines += ["", "| quarantined file | reason |", "|---|---|"]
        lines += [f"| {f} | {r} |" for f, r in sorted(quarantined.items())]
    create_markdown_artifact(markdown="\n".join(lines), key=f"inbox-{batch}", description="mvsd inbox run")
    log.info("inbox batch %s done: %s", batch, lines[0])
    return summary


if __name__ == "__main__":
    main(inbox)
