"""Building a dataset folder: work items -> shards + manifest, in parallel, resumable.

Every producer (the SimRooms generator, each source adapter) reduces to the same shape: a
deterministic list of :class:`ShardTask` (which shard, which work items) and a picklable function
that turns one work item into a :class:`~mvsd.data.sample.Sample` or raises
:class:`~mvsd.errors.BadInput`. This module runs the tasks on all cores, writes each shard
atomically with a small part file beside it (rows + quarantined inputs), skips tasks whose part
already exists (so a killed run resumes without duplicates or gaps) and finally consolidates the
parts into ``manifest.parquet``, ``quarantine.parquet`` and ``dataset.json``.

Layout of a dataset folder::

    <dataset>/shards/<split>/<kind>-000000.tar
    <dataset>/manifest.parquet      one row per sample
    <dataset>/quarantine.parquet    one row per rejected input, with its reason
    <dataset>/dataset.json          name, version, counts
    <dataset>/.build/               part files (resume state), plan.sha256, lock

A build never deletes what it did not write: it refuses a non-empty folder that is not one of its
datasets (:func:`check_output_folder`), and holds an exclusive lock on the folder from
:func:`open_build` to the end of :func:`build_dataset`, so a second build of the same folder
fails at once instead of mixing its shards in.

The dataset folder may be an fsspec URL (``s3://bucket/ds``): the same layout, each object
uploaded whole, and a lock object instead of an flock (:mod:`mvsd.data.storage`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mvsd.config import ShardsConfig
from mvsd.data.manifest import (
    MANIFEST,
    MANIFEST_SCHEMA,
    QUARANTINE,
    QUARANTINE_SCHEMA,
    manifest_row,
    member_column,
    to_table,
    write_table,
)
from mvsd.data.sample import MEMBERS, Sample, encode_sample, sha256
from mvsd.data.shards import write_bytes_atomic, write_shard
from mvsd.data.storage import (  # noqa: F401 (lock_folder, unlock_folder, remove_temp_files: API)
    BUILD_DIR,
    LOCK_FILE,
    join,
    lock_folder,
    open_dir,
    read_bytes,
    remove_temp_files,
    unlock_folder,
)
from mvsd.errors import BadInput, OutputError
from mvsd.progress import progress_bar

DATASET_JSON = "dataset.json"
PLAN_FILE = "plan.sha256"  # in BUILD_DIR: the digest of the plan being built


@dataclass(frozen=True)
class ShardTask:
    """One shard to write: its path relative to the dataset folder and its work items."""

    shard: str
    items: tuple[Any, ...]

    @property
    def part_name(self) -> str:
        return self.shard.replace("/", "__").removesuffix(".tar") + ".json"


@dataclass(frozen=True)
class BuildSummary:
    dataset: Path | str  # a folder, or the URL it was built at
    samples: int
    quarantined: int
    shards: int
    resumed_shards: int
    seconds: float
    version: str

    def line(self) -> str:
        q = (
            f", quarantined {self.quarantined} (see {join(self.dataset, QUARANTINE)})"
            if self.quarantined
            else ", quarantined 0"
        )
        r = f", {self.resumed_shards} shard(s) already done" if self.resumed_shards else ""
        return (
            f"{self.dataset}: {self.samples} samples in {self.shards} shards{q}{r} "
            f"in {self.seconds:.1f} s (version {self.version})"
        )


def resolve_workers(workers: int) -> int:
    """0 means all cores."""
    return workers if workers > 0 else (os.cpu_count() or 1)


def plan_tasks(groups: dict[tuple[str, str], list[Any]], samples_per_shard: int) -> list[ShardTask]:
    """Cut each (split, kind) group of work items into shards of ``samples_per_shard``."""
    tasks = []
    for (split, kind), items in sorted(groups.items()):
        for i in range(0, len(items), samples_per_shard):
            shard = f"shards/{split}/{kind}-{i // samples_per_shard:06d}.tar"
            tasks.append(ShardTask(shard, tuple(items[i : i + samples_per_shard])))
    return tasks


def run_task(task: ShardTask, make_sample: Callable[[Any], Sample], out: str) -> tuple[int, int]:
    """Make, encode and write one shard and its part file. Returns (samples, quarantined)."""
    rows, bad, encoded = [], [], []
    for item in task.items:
        try:
            s = make_sample(item)
            members = encode_sample(s)
        except BadInput as e:
            bad.append({"file": e.file, "reason": e.reason, "shard": task.shard})
            continue
        except Exception as e:  # one broken input must not stop the other 999
            reason = f"unexpected {type(e).__name__}: {e} ({traceback.format_exc(limit=-1).strip()})"
            bad.append({"file": str(item), "reason": reason, "shard": task.shard})
            continue
        checksums = {m: sha256(b) for m, b in members.items()}
        rows.append(manifest_row(s, task.shard, members, checksums))
        encoded.append((s.key, members))
    _maybe_die(task, out)
    if encoded:
        write_shard(join(out, task.shard), encoded)
    part = {"rows": rows, "quarantine": bad}
    # after the shard: a part file says its shard is whole
    write_bytes_atomic(join(out, f"{BUILD_DIR}/{task.part_name}"), json.dumps(part).encode())
    return len(rows), len(bad)


FAULT_SHARD_ENV = "MVSD_FAULT_KILL_SHARD"  # tests: the worker writing this shard dies, once


def _maybe_die(task: ShardTask, out: str) -> None:
    """Injected fault (tests): kill this worker process, as ``kill -9`` would, the first time it
    is about to write the shard named by ``$MVSD_FAULT_KILL_SHARD`` (a marker file in the build
    folder remembers that it fired)."""
    if os.environ.get(FAULT_SHARD_ENV) != task.shard:
        return
    marker = f"{BUILD_DIR}/{task.part_name}.fault-injected"
    d = open_dir(out)
    if not d.exists(marker):
        write_bytes_atomic(d.path(marker), f"killed before writing {task.shard}\n".encode())
        os._exit(137)


def parallel_map(
    fn: Callable[..., Any],
    items: list[Any],
    workers: int,
    description: str,
    units: Callable[[Any], int] | None = None,
    total: int | None = None,
    executor: str = "local",
) -> Iterator[Any]:
    """``fn(item)`` for each item on ``workers`` processes (inline for 1), with a progress bar;
    with ``executor="ray"`` as Ray tasks instead (:func:`ray_map`).

    Results come in completion order. ``units(result)`` says how much each result advances the
    bar (default 1 per item) out of ``total``.
    """
    units = units or (lambda _: 1)
    if executor == "ray":
        with progress_bar(description, total if total is not None else len(items)) as advance:
            for r in ray_map(fn, items, workers):
                advance(units(r))
                yield r
        return
    workers = resolve_workers(workers)
    with progress_bar(description, total if total is not None else len(items)) as advance:
        if workers == 1 or len(items) <= 1:
            for item in items:
                r = fn(item)
                advance(units(r))
                yield r
            return
        # spawn, not fork: a forked child of a process holding threads (Ray, torch) can deadlock.
        ex = ProcessPoolExecutor(
            min(workers, len(items)),
            mp_context=get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        try:
            pending = {ex.submit(fn, item) for item in items}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    r = fut.result()
                    advance(units(r))
                    yield r
        except BaseException:
            # A failure, Ctrl-C or SIGTERM: stop the workers now instead of waiting for their
            # tasks (shutdown would), so nothing writes into the output after we return.
            _stop_workers(ex)
            raise
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


RAY_TASK_RETRIES = 3  # a task whose worker or node died runs again (its writes are atomic)
_END = object()


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def ray_map(fn: Callable[[Any], Any], items: list[Any], workers: int = 0) -> Iterator[Any]:
    """``fn(item)`` for each item as a Ray task (one CPU each) on the cluster at ``RAY_ADDRESS``,
    else on a local Ray (:func:`mvsd.cluster.init_ray`); at most ``workers`` at a time (0: as
    many as the cluster has CPUs). Results in completion order.

    A task whose worker process or node dies is run again (up to ``RAY_TASK_RETRIES`` times): a
    shard task writes its shard and part file atomically, so a rerun replaces, never duplicates.
    An exception raised by ``fn`` is not retried (bad input is quarantined inside the task; what
    escapes is a real error). On any failure, Ctrl-C or SIGTERM the remaining tasks are cancelled.
    ``fn`` and the items travel by pickle: every node needs the ``mvsd`` package.
    """
    from mvsd.cluster import init_ray

    init_ray()
    import ray

    faults = {k: os.environ[k] for k in (FAULT_SHARD_ENV,) if k in os.environ}  # tests only
    task = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_call)
    if faults:
        task = task.options(runtime_env={"env_vars": faults})
    fn_ref = ray.put(fn)
    # tasks in flight: workers, else twice the cluster's CPUs (a million items are not all
    # submitted at once, and no CPU waits for the driver)
    limit = workers if workers > 0 else 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue, pending = iter(items), []
    try:
        while True:
            while len(pending) < limit and (item := next(queue, _END)) is not _END:
                pending.append(task.remote(fn_ref, item))
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1)
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayTaskError as e:  # fn's own exception, with the worker's traceback
                raise e.as_instanceof_cause() from None
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the parent process is gone (even after kill -9, which
    runs no cleanup in the parent), so no orphan goes on writing shards into the output.

    On Linux the kernel kills the worker when its parent dies (PR_SET_PDEATHSIG), even in the
    middle of a long C call that holds the GIL; elsewhere a thread watches the parent's pid.
    """
    import threading

    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    processes = list((getattr(ex, "_processes", None) or {}).values())  # CPython keeps them here
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=10)


class _TaskRunner:
    """Picklable closure: run_task with the producer's function and output folder bound."""

    def __init__(self, make_sample: Callable[[Any], Sample], out: str):
        self.make_sample, self.out = make_sample, out

    def __call__(self, task: ShardTask) -> tuple[int, int]:
        return run_task(task, self.make_sample, self.out)


def _plan_digest(tasks: list[ShardTask], fingerprint: str) -> str:
    h = hashlib.sha256(fingerprint.encode())
    for t in tasks:
        h.update(t.shard.encode())
        h.update(repr(t.items).encode())
    return h.hexdigest()


def is_dataset_folder(out: str | Path) -> bool:
    """``out`` (a folder or URL) holds a dataset (or a started build) of ours: its build plan, lock
    or dataset.json."""
    d = open_dir(out)
    if d.exists(f"{BUILD_DIR}/{PLAN_FILE}") or d.exists(f"{BUILD_DIR}/{LOCK_FILE}"):
        return True
    try:
        info = json.loads(d.read_text(DATASET_JSON))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "version" in info and "samples" in info


def check_output_folder(out: str | Path) -> None:
    """Refuse an output that is a file, or a non-empty folder (or URL prefix) that is not one of
    our datasets: building there would delete the user's own ``shards/`` or ``.build/``."""
    d = open_dir(out)
    state = d.state()
    if state == "missing":
        return
    if state == "file":
        raise OutputError(f"{out}: a file, not a folder; the output must be a dataset folder")
    if not is_dataset_folder(out) and not d.is_empty():
        raise OutputError(
            f"{out}: not empty and not an mvsd dataset (no {DATASET_JSON}, no {BUILD_DIR}/{PLAN_FILE}); "
            "refusing to write into it: choose a new or empty folder"
        )


def open_build(out: str | Path, tasks: list[ShardTask], fingerprint: str) -> None:
    """Make ``out`` (a folder or URL) ready to build ``tasks``: kept as it is when it was started
    with the same plan (a resumed run), emptied of every earlier output when the plan differs.

    Refuses (OutputError) a folder that holds anything but one of our datasets, and one that
    another process is building; takes the folder's lock (see :func:`lock_folder` and
    :class:`mvsd.data.storage.RemoteDir`).
    """
    d = open_dir(out)
    check_output_folder(out)
    d.lock()
    d.remove_temp_files()
    digest = _plan_digest(tasks, fingerprint)
    plan_file = f"{BUILD_DIR}/{PLAN_FILE}"
    if d.exists(plan_file) and d.read_text(plan_file) == digest:
        return
    d.remove_tree("shards")
    d.clear_build_dir()
    for f in (MANIFEST, QUARANTINE, DATASET_JSON):
        d.remove(f)
    write_bytes_atomic(d.path(plan_file), digest.encode())


def build_dataset(
    out: str | Path,
    tasks: list[ShardTask],
    make_sample: Callable[[Any], Sample],
    *,
    name: str,
    shards: ShardsConfig,
    workers: int = 0,
    fingerprint: str = "",
    description: str = "writing shards",
) -> BuildSummary:
    """Run ``tasks`` (skipping those already done) and consolidate the dataset folder.

    ``out`` is a folder or an fsspec URL (module docstring). ``fingerprint`` is any string that
    changes when the meaning of the work items changes (the producer's params); with the task
    list it decides whether an existing folder can be resumed.
    """
    t0 = time.perf_counter()
    d = open_dir(out)
    check_in_process(out, workers, shards.executor)
    out = d.location
    open_build(out, tasks, fingerprint)
    try:
        is_done = [task_done(out, t) for t in tasks]
        todo = [t for t, done in zip(tasks, is_done) if not done]
        runner = _TaskRunner(make_sample, str(out))
        total = sum(len(t.items) for t in todo)
        for _ in parallel_map(runner, todo, workers, description, sum, total, shards.executor):
            pass
        d.remove_temp_files()  # of task attempts killed mid-write and run again (executor ray)
        version = consolidate(out, tasks, name, shards)
    except BaseException:
        d.remove_temp_files()  # of workers stopped mid-write; finished shards stay for a rerun
        raise
    finally:
        d.unlock()
    rows = json.loads(d.read_text(DATASET_JSON))
    return BuildSummary(
        out,
        rows["samples"],
        rows["quarantined"],
        rows["shards"],
        sum(is_done),
        time.perf_counter() - t0,
        version,
    )


def check_in_process(out: str | Path, workers: int, executor: str) -> None:
    """``memory://`` exists only in this process: refuse other processes writing there."""
    if open_dir(out).in_process and (workers != 1 or executor != "local"):
        raise ValueError(
            f"{out}: an in-process filesystem; build it with workers=1 and shards.executor=local "
            f"(got workers={workers}, executor={executor})"
        )


def task_done(out: str | Path, task: ShardTask) -> bool:
    """A task is done when its part file exists and so does its shard (unless every input of
    the task was quarantined, in which case no shard is written)."""
    d = open_dir(out)
    part = f"{BUILD_DIR}/{task.part_name}"
    if not d.exists(part):
        return False
    return not json.loads(d.read_text(part))["rows"] or d.exists(task.shard)


def _read_parts(out: str | Path, tasks: list[ShardTask]) -> tuple[list[dict], list[dict]]:
    d = open_dir(out)
    rows, bad = [], []
    for t in tasks:
        part = json.loads(d.read_text(f"{BUILD_DIR}/{t.part_name}"))
        rows += part["rows"]
        bad += part["quarantine"]
    return rows, bad


def stored_version(dataset: str | Path) -> str | None:
    """The content version in ``<dataset>/dataset.json`` (a folder or URL), or None when it is
    not there."""
    try:
        return json.loads(read_bytes(join(dataset, DATASET_JSON))).get("version")
    except (FileNotFoundError, NotADirectoryError):
        return None


def dataset_version(rows: list[dict]) -> str:
    """Content hash of a dataset: its keys and member checksums, in manifest order."""
    h = hashlib.sha256()
    for r in rows:
        h.update(r["key"].encode())
        for m in MEMBERS:
            h.update((r[member_column(m)] or "-").encode())
    return h.hexdigest()[:16]


def consolidate(out: str | Path, tasks: list[ShardTask], name: str, shards: ShardsConfig) -> str:
    """Merge part files into the manifest, quarantine table and dataset.json; return the version.

    Shards under ``shards/`` that the plan does not name (left by a run of another plan) are
    removed, so the folder holds exactly what the manifest lists."""
    d = open_dir(out)
    planned = {t.shard for t in tasks}
    for tar in d.files("shards", ".tar"):
        if tar not in planned:
            d.remove(tar)
    rows, bad = _read_parts(out, tasks)
    dupes = [k for k, n in Counter(r["key"] for r in rows).items() if n > 1]
    if dupes:
        raise RuntimeError(f"{out}: duplicate sample keys {dupes[:5]} (a producer bug)")
    version = dataset_version(rows)
    for r in rows:
        r["dataset_version"] = version
    source = rows[0]["source"] if rows else name
    for b in bad:
        b["source"] = source
    write_table(to_table(rows, MANIFEST_SCHEMA), d.path(MANIFEST), shards.row_group_size, shards.compression)
    write_table(
        to_table(bad, QUARANTINE_SCHEMA), d.path(QUARANTINE), shards.row_group_size, shards.compression
    )
    counts = Counter(f"{r['split']}/{r['kind']}" for r in rows)
    info = {
        "name": name,
        "version": version,
        "samples": len(rows),
        "quarantined": len(bad),
        "shards": len({r["shard"] for r in rows}),
        "counts": dict(sorted(counts.items())),
    }
    write_bytes_atomic(d.path(DATASET_JSON), (json.dumps(info, indent=2) + "\n").encode())
    return version
