"""``python -m flows.inbox``: ingest new unpaired files from the inbox and learn from them.

What a run does — the ledger, batches, quarantine, pseudo-pairs, the next round, its evaluation,
DVC versions and pending pushes — is :func:`mvsd.inbox.process_inbox` (read its docstring; it runs
without Prefect too). This flow adds what Prefect is for: the repository lock (a global
concurrency limit of one slot, so two runs never touch DVC or the datasets at once), retries on
I/O steps, cached computing steps, the schedule (``flows/serve.py``) and a Markdown artifact of
each batch.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.common import main, params, plain, repository_lock
from flows.evaluate import publish
from mvsd.inbox import INBOX_DATA, Steps, pending_pushes, process_inbox, summary_markdown
from mvsd.inbox import scan as scan_inbox

__all__ = ["INBOX_DATA", "inbox", "pending_pushes"]

scan = task(name="scan-inbox", retries=2, retry_delay_seconds=5)(scan_inbox)


def prefect_steps() -> Steps:
    """The inbox's steps as this package's Prefect tasks (retries on I/O, cached computing)."""
    return Steps(
        scan=scan,
        copy_files=tasks.copy_files,
        ingest=tasks.ingest,
        train_round=tasks.train_round,
        pseudo_pairs=tasks.pseudo_pairs,
        evaluate=tasks.evaluate,
        dvc_add=tasks.dvc_add,
        dvc_push=tasks.dvc_push,
        published=publish,
    )


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
    with repository_lock(o.lock_timeout_s):
        summary = process_inbox(
            inbox, dataset, run, checkpoints, Path(data), plain(p), evaluate, version,
            o.eval_split, o.eval_limit or None, prefect_steps(),
        )  # fmt: skip
    if "batch" in summary:
        create_markdown_artifact(
            markdown=summary_markdown(summary), key=f"inbox-{summary['batch']}", description="mvsd inbox run"
        )
    return summary


if __name__ == "__main__":
    main(inbox)
