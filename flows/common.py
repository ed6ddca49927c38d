"""What every flow shares: Prefect settings, params, cache keys, the repository lock and a CLI.

Prefect keeps its database, results and logs under ``.prefect/`` in the project unless
``PREFECT_HOME`` says otherwise; a remote server is used when ``PREFECT_API_URL`` is set, else each
flow run starts a temporary local one (a few seconds).

**Caching.** A task that computes something (a dataset, a round, pseudo-pairs, an evaluation) is
keyed on what decides its output: the content versions of its input datasets (``dataset.json``),
the fingerprints of the rounds it reads (``round.json``), the params its stage reads
(:mod:`mvsd.stages`, the table ``dvc.yaml`` follows too), the code of
the ``mvsd`` package, and its arguments (output path included). Results are persisted
(``.prefect/storage``), so an unchanged step is skipped across flow runs; a task whose output was
deleted runs again and refreshes its cache entry (:func:`cached_task`).

**Retries** go on I/O tasks only (reading an inbox, copying files, DVC pushes): a failed training
step is not something to repeat blindly (Ray already retries lost workers).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mvsd")  # mvsd's own log lines in flow runs

from mvsd.config import Params, load_params, to_dict  # noqa: E402

if TYPE_CHECKING:  # Prefect, torch and the data layer load when a flow runs, not for --help
    from prefect.context import TaskRunContext

REPO_LIMIT = "mvsd-repository"  # global concurrency limit (1 slot) around work that changes the repo


def params(params_file: str | None = None, overrides: list[str] | None = None) -> Params:
    return load_params(Path(params_file) if params_file else None, overrides or [])


# -- cache keys ----------------------------------------------------------------------------------


def cache_key(**parts: Any) -> str:
    """A stable hash of ``parts`` (JSON-able)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def key_fn(
    stage: str,
    datasets: tuple[str, ...] = (),
    rounds: tuple[str, ...] = (),
    extra: Callable[[dict], str] | None = None,
) -> Callable[[TaskRunContext, dict], str]:
    """A Prefect ``cache_key_fn`` from a task's arguments: ``datasets`` and ``rounds`` name
    arguments holding paths (or lists of paths) whose versions enter the key; the params that
    ``stage`` reads (:data:`mvsd.stages.STAGES`) are taken from its ``params_dict`` argument, and
    the version of the code it runs (:func:`mvsd.stages.code_version`) enters too;
    ``extra`` adds anything else that decides the result (e.g. a listing of input files)."""

    def paths(v: Any) -> list[str]:
        return [str(x) for x in v] if isinstance(v, list | tuple) else [str(v)] if v else []

    def fn(ctx: TaskRunContext, args: dict) -> str:
        from mvsd.data.builder import stored_version
        from mvsd.stages import code_version, stage_params
        from mvsd.train.distributed import round_fingerprint

        p = args.get("params_dict") or {}
        return cache_key(
            task=ctx.task.name,
            code=code_version(stage),  # the files the stage runs: an upgrade invalidates its cache
            args={k: v for k, v in args.items() if k != "params_dict"},
            params=stage_params(p, stage) if p else None,
            datasets={a: [stored_version(x) for x in paths(args.get(a))] for a in datasets},
            rounds={a: [round_fingerprint(x) for x in paths(args.get(a))] for a in rounds},
            extra=extra(args) if extra else None,
        )

    return fn


def cached_task(
    *,
    name: str,
    output: Callable[[dict], str | None],
    stage: str,
    datasets: tuple[str, ...] = (),
    rounds: tuple[str, ...] = (),
    extra: Callable[[dict], str] | None = None,
    **task_options: Any,
):
    """A Prefect task cached on :func:`key_fn`, whose cached result is used only while its output
    (``output(arguments)``, a path) still exists: a deleted output is computed again."""
    from prefect import task

    def decorate(fn):
        t = task(name=name, cache_key_fn=key_fn(stage, datasets, rounds, extra), **task_options)(fn)
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            out = output(bound.arguments)
            return t.with_options(refresh_cache=bool(out) and not Path(out).exists())(*args, **kwargs)

        call.task = t
        return call

    return decorate


# -- the repository lock -------------------------------------------------------------------------


def ensure_repo_limit() -> None:
    """Create the 1-slot global concurrency limit that serializes work on the repository (DVC,
    git, the datasets folder), if the Prefect server does not have it yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(REPO_LIMIT)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=REPO_LIMIT, limit=1))


def repository_lock(timeout_seconds: float | None = None):
    """``with repository_lock(): ...`` holds the repository's one slot (waits for it)."""
    from prefect.concurrency.sync import concurrency

    ensure_repo_limit()
    return concurrency(REPO_LIMIT, occupy=1, timeout_seconds=timeout_seconds, strict=True)


# -- running a flow as a script ------------------------------------------------------------------


def main(flow) -> None:
    """``python -m flows.<name> --help``: a command line built from the flow's typed parameters."""
    import typer

    fn = flow.fn
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    def command(**kwargs):
        result = flow(**kwargs)
        typer.echo(json.dumps(result, indent=2, default=str) if result is not None else "done")

    command.__signature__ = inspect.signature(fn, eval_str=True)  # typer reads the options here
    command.__doc__ = inspect.getdoc(fn)
    app.command(name=flow.name)(command)
    app()


def plain(params_obj: Params) -> dict:
    """Params as the plain dict that tasks take (JSON-able, so it can enter cache keys)."""
    return to_dict(params_obj)
