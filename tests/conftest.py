"""Shared test fixtures: tiny params and tiny datasets, each test making its own data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mvsd.config import load_params

os.environ.setdefault("MVSD_QUIET", "1")


TINY_SIMROOMS = [
    "simrooms.n_rooms_seen=3",
    "simrooms.n_rooms_unseen=1",
    "simrooms.views_per_room=2",
    "simrooms.n_speakers=4",
    "simrooms.train_samples=12",
    "simrooms.val_samples=2",
    "simrooms.test_seen_samples=2",
    "simrooms.test_unseen_samples=2",
    "simrooms.clip_seconds=1.0",
    "simrooms.rir.max_seconds=0.5",
    "simrooms.rir.n_rays=500",
    "simrooms.image.width=32",
    "simrooms.image.height=24",
    "simrooms.workers=1",
    "shards.samples_per_shard=4",
]


@pytest.fixture
def tiny_params():
    """A SimRooms config that builds in a few seconds: 4 rooms, 18 samples, 1 s clips."""
    return load_params(None, TINY_SIMROOMS)


# Tiny training, pseudo-pairs and evaluation: a round in seconds (Ray still starts for real).
TINY_TRAIN = [
    "model.size=tiny",
    "train.batch_size=2",
    "train.segment_seconds=0.32",
    "train.checkpoint_every=2",
    "train.room_steps=8",  # the room head's pre-training (600 steps by default) at tiny size
    "loader.num_workers=0",
    "pseudo.chunk=4",
    "pseudo.steps=1",
    "pseudo.threads=1",
]
# The whole dvc.yaml pipeline at tiny size (tests/test_dvc.py, benchmarks/bench_pipeline.py).
TINY_PIPELINE = [
    *TINY_SIMROOMS,
    *TINY_TRAIN,
    "train.steps=2",
    "evaluate.limit=2",
    "evaluate.report_samples=1",
]

ROOT = Path(__file__).resolve().parent.parent


def tool_env() -> dict:
    """This environment's executables (dvc, mvsd, prefect) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def init_git_dvc(repo: Path) -> None:
    """``git init`` + ``dvc init`` with the project's DVC settings and .gitignore."""
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=repo, check=True, env=tool_env(), capture_output=True)
    # the project's settings, but the remote inside the scratch repository (./dvc-remote): the
    # project's default remote is the user's machine-wide one, which tests never write to
    config = (ROOT / ".dvc" / "config").read_text()
    assert "url = ~/.cache/mvsd/dvc-remote" in config, config
    (repo / ".dvc" / "config").write_text(config.replace("~/.cache/mvsd/dvc-remote", "../dvc-remote"))
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")


def pipeline_repo(repo: Path, overrides: list[str]) -> dict:
    """A scratch git + DVC repository with a copy of the code, dvc.yaml and params.yaml (with
    ``overrides``), committed. Returns the params written."""
    from mvsd.config import apply_overrides

    repo.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "mvsd", repo / "mvsd", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / f, repo / f)
    params = apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init_git_dvc(repo)
    for cmd in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline"],
    ):
        subprocess.run(cmd, cwd=repo, check=True, env=tool_env(), capture_output=True)
    return params
