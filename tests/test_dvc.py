"""The project's real ``dvc.yaml`` run by real DVC in a scratch git repository with tiny params:
``dvc repro`` end to end, a second ``dvc repro`` that does nothing, ``dvc exp run -S`` that reruns
only what the changed knob feeds, and ``dvc push`` to the local directory remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SIMROOMS

from mvsd.config import apply_overrides

ROOT = Path(__file__).resolve().parent.parent
TINY_PIPELINE = [
    *TINY_SIMROOMS,
    "model.size=tiny",
    "train.batch_size=2",
    "train.segment_seconds=0.32",
    "train.checkpoint_every=2",
    "train.steps=2",
    "train.workers=0",
    "loader.num_workers=0",
    "pseudo.chunk=4",
    "pseudo.threads=1",
    "evaluate.limit=2",
    "evaluate.report_samples=1",
]


def sh(repo: Path, *cmd: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("dvcrepo") / "project"
    repo.mkdir()
    shutil.copytree(ROOT / "mvsd", repo / "mvsd", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / f, repo / f)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = apply_overrides(params, [*TINY_PIPELINE, f"train.storage_path={repo / 'checkpoints' / 'ray'}"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the project's remote + settings
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny pipeline")
    return repo


def test_dvc_repro_runs_the_whole_pipeline_then_is_a_no_op(repo):
    out = sh(repo, "dvc", "repro")
    for stage in ("synth", "train_round0", "pseudo_round0", "train_round1", "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert (repo / "reports" / "demo" / "index.html").exists()
    metrics = json.loads((repo / "metrics" / "demo.json").read_text())
    assert "vam/round-1/stft_distance" in metrics and "dereverb/round-0/si_sdr" in metrics
    r1 = json.loads((repo / "checkpoints" / "demo" / "round-1" / "round.json").read_text())
    assert r1["steps"] == 2 and any("simrooms-pseudo" in p for p in r1["datasets"]["pseudo"])
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"synth", "train_round0", "pseudo_round0", "train_round1", "evaluate"}
    assert lock["stages"]["train_round0"]["params"]["params.yaml"]["train"]["steps"] == 2

    again = sh(repo, "dvc", "repro")
    assert "Running stage" not in again and "up to date" in again

    sh(repo, "dvc", "push")
    remote = repo / "dvc-remote"  # .dvc/config: url = ../dvc-remote, relative to .dvc/
    assert remote.is_dir() and sum(1 for f in remote.rglob("*") if f.is_file()) > 10


def test_dvc_exp_run_reruns_only_what_a_knob_feeds(repo):
    if not (repo / "dvc.lock").exists():
        sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline results")
    out = sh(repo, "dvc", "exp", "run", "-S", "train.steps=3")
    assert "Running stage 'synth'" not in out  # the dataset does not read train.*
    assert "Running stage 'train_round0'" in out and "Running stage 'evaluate'" in out
    assert json.loads((repo / "checkpoints" / "demo" / "round-1" / "round.json").read_text())["steps"] == 3
    shown = sh(repo, "dvc", "exp", "show", "--no-pager", "--csv")
    assert "train.steps" in shown.splitlines()[0]
