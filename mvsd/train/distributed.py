"""All Ray plumbing of training in one place (demucs keeps its distributed glue in one module).

* ``init_ray``: join the cluster at ``$RAY_ADDRESS``, else start Ray here (:mod:`mvsd.cluster`).
* ``fit_round``: run :func:`mvsd.train.loop.train_loop_per_worker` under a ``TorchTrainer``
  (``train.workers`` workers; 0 runs it in this process through Ray Train's local mode) with
  up to ``train.max_failures`` retries from the last checkpoint (none for a full disk, a SIGTERM
  or diverged losses: they cannot pass by retrying), then export the round's converters to ``<run>/round-<k>/``.

A run is named ``<run>-round<k>-<fingerprint>`` under ``train.storage_path``: starting the same
round again after a kill resumes from its last checkpoint and stops at the same total step count.
The fingerprint hashes everything that decides the result (params, input datasets, the round it
starts from), so a changed knob (``dvc exp run -S train.lr=...``) never resumes stale state.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import traceback
from pathlib import Path

import torch

from mvsd import cluster
from mvsd.config import Params, to_dict
from mvsd.data.builder import stored_version
from mvsd.stages import code_version, stage_params
from mvsd.train.loop import FAULT_STEP_ENV, STATE_FILE, TrainingError, load_state_file, train_loop_per_worker
from mvsd.train.losslog import loss_dir
from mvsd.train.state import DIRECTIONS, TrainState

log = logging.getLogger(__name__)
# Ray Train's note, on every train.workers=0 round, that the function runs in this process
_LOCAL_MODE_NOTE = cluster.DropHarmless("Running in local mode")
ROUND_FILES = tuple(f"{d}.safetensors" for d in DIRECTIONS) + ("round.json",)


def init_ray(params: Params) -> None:
    """:func:`mvsd.cluster.init_ray` with the object store ``train.object_store_mb``."""
    cluster.init_ray(params.train.object_store_mb)


def threads_per_worker(params: Params) -> int:
    t = params.train
    return t.threads_per_worker or max(1, (os.cpu_count() or 1) // max(1, t.workers))


def round_dir(checkpoints: str | Path, run: str, k: int) -> Path:
    return Path(checkpoints) / run / f"round-{k}"


def fit_round(
    params: Params,
    datasets: dict,
    checkpoints: str | Path,
    run: str,
    k: int,
    init_from: str | Path | None = None,
) -> Path:
    """Train round ``k`` of ``run`` and export it; returns the round folder.

    ``datasets``: ``{"paired": dataset, "pseudo": [pseudo datasets]}``. A round already exported
    with the same fingerprint is returned as it is; one exported from other params or data is
    trained again.
    """
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out = round_dir(checkpoints, run, k)
    datasets = {"paired": _abs(datasets["paired"]), "pseudo": [_abs(p) for p in datasets.get("pseudo", [])]}
    fp = fingerprint(params, datasets, init_from)
    if all((out / f).exists() for f in ROUND_FILES):
        if round_fingerprint(out) == fp:
            return out
        log.info("%s was made from other params or data: training round %d again", out, k)
    init_ray(params)
    logging.getLogger("ray.train.v2.api.config").addFilter(_LOCAL_MODE_NOTE)  # added once
    storage = params.train.storage_path
    if "://" not in storage:
        storage = str(Path(storage).resolve())
    losses = loss_dir(Path(checkpoints).resolve(), run, k)
    losses.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "params": to_dict(params),
        "datasets": datasets,
        "init_from": str(Path(init_from).resolve()) if init_from else None,
        "loss_dir": str(losses),
        "threads": threads_per_worker(params),
        "resume_file": str(Path(checkpoints).resolve() / run / f"round-{k}-state-{fp[:12]}.pt"),
        "fault_step": os.environ.get(FAULT_STEP_ENV),
    }
    t = params.train

    def trainer(attempt: int):
        return TorchTrainer(
            train_loop_per_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(
                num_workers=t.workers, use_gpu=t.use_gpu, resources_per_worker=_resources(params)
            ),
            run_config=RunConfig(
                name=f"{run}-round{k}-{fp[:12]}" + (f"-retry{attempt}" if attempt else ""),
                storage_path=storage,
                failure_config=FailureConfig(max_failures=0),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
                # Ray Train's own INFO lines (worker group started, each checkpoint, the failure
                # policy's copy of a worker's traceback) stay in Ray's log files; its warnings
                # (e.g. a cluster without the resources asked for) still reach the console.
                logging_config=LoggingConfig(log_level="WARNING"),
            ),
        )

    # Retries are ours, not Ray's (FailureConfig would retry a full disk too): a failed attempt
    # is started again from rank 0's resume file, unless what failed cannot pass by retrying.
    for attempt in range(t.max_failures + 1):
        try:
            result = trainer(attempt).fit()
            break
        except Exception as e:  # Ray wraps the worker's error: read what it was
            text = "".join(traceback.format_exception(e))
            if "mvsd.errors.Terminated" in text:  # SIGTERM in the training function
                from mvsd.errors import Terminated

                raise Terminated() from None
            if "No space left on device" in text:  # no retry: it cannot succeed
                raise OSError(errno.ENOSPC, "No space left on device", str(config["resume_file"])) from None
            found = re.search(r"mvsd\.train\.loop\.TrainingError: (.*)", text)
            if found:  # non-finite losses: the same steps would diverge again
                raise TrainingError(f"round {k}: {found.group(1).strip()}") from None
            if attempt == t.max_failures:
                raise
            log.warning(
                "round %d: training failed (%s); retrying from the last checkpoint (%d of %d)",
                k, str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__,
                attempt + 1, t.max_failures,
            )
    info = {"run": run, "round": k, "datasets": datasets, "fingerprint": fp}
    if t.workers == 0 or result.checkpoint is None:  # local mode: only our own file persists
        export_round(params, Path(config["resume_file"]), out, info)
    else:
        with result.checkpoint.as_directory() as d:
            export_round(params, Path(d) / STATE_FILE, out, info)
    return out


def round_fingerprint(round_folder: str | Path) -> str | None:
    """The training fingerprint an exported round records in ``round.json`` (None: no round)."""
    f = Path(round_folder) / "round.json"
    return json.loads(f.read_text()).get("fingerprint") if f.exists() else None


def fingerprint(params: Params, datasets: dict, init_from: str | Path | None) -> str:
    """What decides a round's result: the params training reads (``mvsd.stages``: not, e.g., the
    sampling steps of inference), the code it runs, the input datasets' content versions, the
    start. A killed round resumes from its state file only when all of them are the same."""
    blob = {
        "params": stage_params(params, "train"),
        "code": code_version("train"),
        "paired": stored_version(datasets["paired"]) or datasets["paired"],
        "pseudo": [stored_version(p) or p for p in datasets.get("pseudo", [])],
        "init_from": round_fingerprint(init_from) if init_from else None,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _resources(params: Params) -> dict | None:
    if params.train.workers == 0:
        return None
    return {"CPU": threads_per_worker(params)} if not params.train.use_gpu else None


def _abs(dataset: str) -> str:
    return dataset if "://" in dataset else str(Path(dataset).resolve())


def export_round(params: Params, state_file: Path, out: Path, info: dict) -> None:
    """Write both converters (self-describing safetensors) and ``round.json`` to ``out``."""
    state = TrainState.new(params.model, params.train)
    load_state_file(state_file, state)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for d, conv in state.converters.items():
        conv.save(tmp / f"{d}.safetensors", extra={"round": info["round"], "step": state.step})
    info = {
        **info,
        "steps": state.step,
        "skipped_steps": state.skipped_steps,
        "params": to_dict(params),
        "torch": torch.__version__,
    }
    (tmp / "round.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
