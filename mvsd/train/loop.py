"""The training loop of one worker: plain PyTorch with three Ray touch points.

``train_loop_per_worker(config)`` is what Ray Train runs on each worker (and what the in-process
mode calls directly). Ray appears only where it must: the checkpoint to resume from
(``ray.train.get_checkpoint``), DDP wrapping (``ray.train.torch.prepare_model``) and
``ray.train.report`` of metrics + checkpoints. Everything else is the ordinary loop:

    state <- new (or the previous round's converters) <- the last checkpoint, if any
    until state.step == train.steps:  batch (paired + pseudo mix) -> train_step -> log
    every train.checkpoint_every steps and at the end: checkpoint

Batches mix paired samples with the accepted pseudo-pairs of earlier rounds in the ratio
``train.pseudo_fraction`` (each batch holds both, so every DDP rank runs both converters).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from mvsd.config import Params, build, loader_config
from mvsd.converter import CheckpointError, Converter
from mvsd.data.loader import make_loader
from mvsd.errors import MvsdError, raise_if_terminated
from mvsd.progress import progress_bar
from mvsd.train.losslog import LossLog
from mvsd.train.room import freeze_rooms, pretrain_rooms, rirs_known
from mvsd.train.state import DIRECTIONS, TrainState, apply_schedule, set_room_lr, unwrap
from mvsd.train.step import train_step

STATE_FILE = "state.pt"
# Fault injection for tests: with this variable set in the driver, the worker process dies
# (os._exit) once at that step, leaving a marker file so that the retried worker goes on.
# Exercises FailureConfig for real.
FAULT_STEP_ENV = "MVSD_FAULT_INJECT_STEP"


class TrainingError(MvsdError):
    """Training cannot go on (e.g. the loss stayed non-finite)."""


def _batches(
    dataset: str, params: Params, kinds: list[str], batch: int, seed: int, steps: int
) -> Iterator[dict]:
    """An endless stream of batches of ``batch`` samples (resampled: equal on every rank)."""
    # Whole clips (model.segment_seconds): the physical estimate needs the tail; the step crops
    # train.segment_seconds for the U-Net.
    cfg = loader_config(params, batch)
    loader = make_loader(
        dataset, cfg, splits=["train"], kinds=kinds, seed=seed, epoch_samples=max(1, steps) * batch
    )
    while True:
        yield from loader


def _concat(a: dict, b: dict) -> dict:
    return {k: torch.cat([a[k], b[k]]) if torch.is_tensor(a[k]) else a[k] + b[k] for k in a}


def mixed_batches(params: Params, datasets: dict, seed: int) -> Iterator[dict]:
    """Paired batches, with ``train.pseudo_fraction`` of each batch from pseudo-pair datasets."""
    t = params.train
    pseudo = datasets.get("pseudo") or []
    # at least one of each batch when asked for at all; 0 = paired only, pseudo-pairs or not
    n_pseudo = max(1, round(t.batch_size * t.pseudo_fraction)) if pseudo and t.pseudo_fraction > 0 else 0
    paired = _batches(datasets["paired"], params, ["paired"], t.batch_size - n_pseudo, seed, t.steps)
    streams = [
        _batches(p, params, ["pseudo_reverb", "pseudo_clean"], n_pseudo, seed + 1 + i, t.steps)
        for i, p in enumerate(pseudo if n_pseudo else [])
    ]
    i = 0
    for b in paired:
        if streams:
            b = _concat(b, next(streams[i % len(streams)]))
            i += 1
        yield b


def _save(state: TrainState, path: str | Path) -> None:
    """torch.save to a temp file, then rename: a kill never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:  # closed on failure too, so a full disk gets its space back
            torch.save(state.state_dict(), f)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        # torch reports a full disk as "basic_ios::clear: iostream error" or "PytorchStreamWriter
        # failed writing file": say what it is, naming the file
        full = getattr(e, "errno", None) == errno.ENOSPC or shutil.disk_usage(path.parent).free < 64 * 2**20
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        raise


def remove_stale_temporaries(path: str | Path) -> None:
    """Temporary files of :func:`_save` that a killed run left next to ``path``."""
    path = Path(path)
    for tmp in path.parent.glob(path.name + ".tmp-*"):
        tmp.unlink(missing_ok=True)


def load_state_file(path: str | Path, state: TrainState) -> None:
    """Restore a TrainState checkpoint (tensors only: ``weights_only=True``)."""
    state.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _init_from(state: TrainState, round_dir: str) -> None:
    """Start from an earlier round's exported converters (weights and EMA; fresh optimizers)."""
    for d in DIRECTIONS:
        path = Path(round_dir) / f"{d}.safetensors"
        prev = Converter.from_checkpoint(path, expect_direction=d)
        want = state.converters[d].spec
        if (prev.spec.size, prev.spec.widths, prev.spec.process) != (want.size, want.widths, want.process):
            raise CheckpointError(
                f"{path}: a {prev.spec.size}/{prev.spec.process} converter, but params ask for {want.size}/{want.process}"
            )
        state.converters[d].net.load_state_dict(prev.net.state_dict())
        state.converters[d].ema.load_state_dict(prev.ema.state_dict())


def train_loop_per_worker(config: dict) -> None:
    """Train both converters for ``train.steps`` steps (resuming from the last checkpoint).

    ``config``: ``params`` (plain dict of Params), ``datasets`` ({"paired": url, "pseudo": [urls]}),
    ``init_from`` (a round folder or None), ``loss_dir`` (per-step losses with DVCLive, rank 0), ``threads`` and
    ``resume_file``: rank 0 also keeps the latest state there, because Ray Train's local mode
    (``train.workers: 0``) does not persist checkpoints; a restarted run resumes from Ray's
    checkpoint if it has one, else from this file.
    """
    import ray.train
    import ray.train.torch

    from mvsd.cluster import quiet_train_worker_logs

    quiet_train_worker_logs()
    params = build(Params, config["params"])
    t = params.train
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device() if t.use_gpu else torch.device("cpu")
    state = TrainState.new(params.model, t, device=str(device))
    if config.get("init_from"):
        _init_from(state, config["init_from"])
    checkpoint = ray.train.get_checkpoint()
    resume_file = config.get("resume_file")
    if resume_file and rank == 0:
        remove_stale_temporaries(resume_file)
    if checkpoint:
        with checkpoint.as_directory() as d:
            load_state_file(os.path.join(d, STATE_FILE), state)
    elif resume_file and os.path.exists(resume_file):
        load_state_file(resume_file, state)
    elif not config.get("init_from") and t.room_steps > 0:
        # round 0, from scratch: teach the image -> room head first (every rank alike; DDP then
        # starts all ranks from rank 0's weights)
        room_csv = (
            str(Path(config["loss_dir"]).with_name("room.csv"))
            if config.get("loss_dir") and rank == 0
            else None
        )
        pretrain_rooms(state, params, config["datasets"]["paired"], room_csv)
    if rirs_known(config["datasets"]["paired"]):
        if t.room_lr_scale == 0:
            freeze_rooms(state)  # pre-trained on known RIRs: kept as they are
    else:  # nothing to pre-train on: the head learns from the output losses, at the full rate
        for opt in state.optimizers.values():
            set_room_lr(opt, t.lr)
    if world > 1:
        for conv in state.converters.values():
            conv.net = ray.train.torch.prepare_model(conv.net, move_to_device=False)
    # A resumed round continues exactly where the checkpoint left it: the generator's state is
    # restored and the (seeded) data stream skips the batches already used, so a killed and
    # resumed round ends with the weights of an uninterrupted one.
    gen = torch.Generator().manual_seed(t.seed * 1000 + rank * 100_003 + (state.step if rank else 0))
    if state.rng is not None and rank == 0:  # the checkpoint holds rank 0's generator
        gen.set_state(state.rng)
    batches = mixed_batches(params, config["datasets"], seed=t.seed)
    for _ in range(state.batches_used):
        next(batches)
    log = LossLog(config.get("loss_dir") if rank == 0 else None, resume_step=state.step)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=t.use_gpu and t.bf16)
    skipped_in_a_row, t0, start = 0, time.perf_counter(), state.step
    # a bar on a terminal (this process's: Ray Train's local mode, train.workers=0)
    with progress_bar("training both converters", t.steps - state.step) as advance:
        while state.step < t.steps:
            raise_if_terminated()  # a SIGTERM that Python dropped in a C callback (mvsd.errors)
            before = state.skipped_steps
            batch = next(batches)
            state.batches_used += 1
            for opt in state.optimizers.values():
                apply_schedule(opt, t, state.step)
            with autocast:
                terms = train_step(state, batch, t, gen)
            state.rng = gen.get_state()
            skipped_in_a_row = skipped_in_a_row + 1 if state.skipped_steps > before else 0
            if skipped_in_a_row >= t.max_nan_steps:
                raise TrainingError(
                    f"loss was not finite for {skipped_in_a_row} steps in a row (step {state.step}); lower train.lr?"
                )
            if state.skipped_steps > before:
                continue
            metrics = {k: float(v) for k, v in terms.items()} | {"skipped_steps": float(state.skipped_steps)}
            metrics["samples_per_s"] = (
                (state.step - start) * t.batch_size * world / max(time.perf_counter() - t0, 1e-9)
            )
            log.write(state.step, metrics)
            advance(1)
            metrics["step"] = state.step
            _maybe_die(state.step, config.get("fault_step"), resume_file, state)
            if state.step % t.checkpoint_every == 0 or state.step == t.steps:
                with tempfile.TemporaryDirectory() as tmp:
                    if rank == 0:
                        _save(state, os.path.join(tmp, STATE_FILE))
                        if resume_file:
                            _save(state, resume_file)
                    ray.train.report(
                        metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None
                    )
    log.close()
    for conv in state.converters.values():
        conv.net = unwrap(conv.net)


def _maybe_die(
    step: int, fault_step: str | None, resume_file: str | None, state: TrainState | None = None
) -> None:
    """Injected faults (tests): ``"3"`` kills the worker process once at step 3; ``"3:enospc"``
    raises a full disk at step 3 every time; ``"3:nan"`` turns R's weights to NaN at step 3 (the
    losses then stay non-finite). Each firing appends a line to a marker file."""
    if not fault_step or not resume_file:
        return
    at, _, kind = fault_step.partition(":")
    if at != str(step):
        return
    marker = Path(resume_file).with_suffix(".fault-injected")
    fired = marker.exists()
    with open(marker, "a") as f:
        f.write(f"{kind or 'exit'} at step {step}\n")
    if kind == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device", resume_file)
    if kind == "nan" and state is not None:
        with torch.no_grad():
            for p in unwrap(state.converters["reverb"].net).unet.parameters():
                p.fill_(float("nan"))
        return
    if not fired:
        os._exit(17)
