"""The project's real ``dvc.yaml`` run by real DVC in a scratch git repository with tiny params:
``dvc repro`` end to end, a second ``dvc repro`` that does nothing, ``dvc status`` and ``dvc exp run
-S`` that rerun only what the changed knob feeds, and ``dvc push`` to the local directory remote."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_PIPELINE, pipeline_repo, tool_env


def sh(repo: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=repo, env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("dvcrepo") / "project"
    pipeline_repo(
        repo, [*TINY_PIPELINE, "train.workers=0", f"train.storage_path={repo / 'checkpoints' / 'ray'}"]
    )
    return repo


def test_dvc_repro_runs_the_whole_pipeline_then_is_a_no_op(repo):
    out = sh(repo, "dvc", "repro")
    stages = {"synth", "train_round0", "pseudo_round0", "train_round1", "evaluate"}
    for stage in stages:
        assert f"Running stage '{stage}'" in out
    assert (repo / "reports" / "demo" / "index.html").exists()
    metrics = json.loads((repo / "metrics" / "demo.json").read_text())
    # each round refined (1 step) and its physical first estimate alone (0 steps)
    for key in (
        "vam/round-1@1steps/stft_distance",
        "vam/round-1@0steps/rt60_error",
        "dereverb/round-0@1steps/si_sdr",
    ):
        assert key in metrics, sorted(metrics)[:20]
    # the image ablation (the newest round fed a grey image) in the same file
    assert "vam/round-1-blank-image@1steps/stft_distance" in metrics, sorted(metrics)[:20]
    # the headline: round 1 at 1 step vs the best blind baseline, and what a grey image costs it
    head = json.loads((repo / "metrics" / "demo-headline.json").read_text())
    assert head["vam/model/stft_distance"] == metrics["vam/round-1@1steps/stft_distance"]
    assert head["dereverb/baseline/pesq"] == max(
        metrics[f"dereverb/{b}/pesq"] for b in ("identity", "wpe", "lebart_blind")
    )
    assert head["vam/grey_over_picture/rt60_error"] == pytest.approx(
        metrics["vam/round-1-blank-image@1steps/rt60_error"] / metrics["vam/round-1@1steps/rt60_error"],
        rel=1e-3,
    )
    assert len(head) <= 15
    r1 = json.loads((repo / "checkpoints" / "demo" / "round-1" / "round.json").read_text())
    assert r1["steps"] == 2 and any("simrooms-pseudo" in p for p in r1["datasets"]["pseudo"])
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == stages
    assert lock["stages"]["train_round0"]["params"]["params.yaml"]["train"]["steps"] == 2

    again = sh(repo, "dvc", "repro")
    assert "Running stage" not in again and "up to date" in again

    sh(repo, "dvc", "push")
    remote = repo / "dvc-remote"  # the scratch repository's remote (conftest.init_git_dvc)
    assert remote.is_dir() and sum(1 for f in remote.rglob("*") if f.is_file()) > 10


def test_an_inference_knob_makes_only_the_evaluation_stale(repo):
    """model.steps is read when converting (mvsd/stages.py): `dvc status` names the evaluation only."""
    if not (repo / "dvc.lock").exists():
        sh(repo, "dvc", "repro")
    params_file = repo / "params.yaml"
    before = params_file.read_text()
    data = yaml.safe_load(before)
    data["model"]["steps"] += 1
    params_file.write_text(yaml.safe_dump(data))
    try:
        status = json.loads(sh(repo, "dvc", "status", "--json").strip().splitlines()[-1])
    finally:
        params_file.write_text(before)
    assert set(status) == {"evaluate"}, status
    assert "model.steps" in json.dumps(status["evaluate"])


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
    header = shown.splitlines()[0]
    assert "train.steps" in header and "vam/model/stft_distance" in header
    assert "round-1@1steps" not in header  # the full table stays out of the experiment table
    # the metrics are in git (main) and in the experiment's commit: numbers, not "!"
    rows = list(csv.DictReader(io.StringIO(shown)))
    col = "vam/model/stft_distance"
    committed = [r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace"]
    assert len(committed) == 1 and float(committed[0][col]) > 0, rows
    exps = [r for r in rows if r["typ"] != "baseline"]
    assert exps and all(float(r[col]) > 0 for r in exps), rows
    # the losses per step (DVCLive, in git): `dvc plots show` finds both rounds' curves
    proc = subprocess.run(
        ["dvc", "plots", "show", "--json"], cwd=repo, env=tool_env(), capture_output=True, text=True
    )
    names = " ".join(json.loads(proc.stdout)["data"])
    assert (
        "round-0-live/plots/metrics/total.tsv" in names
        and "round-1-live/plots/metrics/cycle/clean.tsv" in names
    ), names


def test_a_fresh_clone_pulls_the_committed_results(repo, tmp_path):
    """dvc.lock is committed and its outputs pushed: a new clone gets every dataset, checkpoint
    and report with `dvc pull`, and DVC finds nothing to rerun."""
    if not (repo / "dvc.lock").exists():
        sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--allow-empty", "-qm", "results")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    assert not (clone / "checkpoints" / "demo" / "round-1" / "reverb.safetensors").exists()
    # the scratch remote lives inside `repo` (a user's default is ~/.cache/mvsd/dvc-remote, shared)
    sh(clone, "dvc", "remote", "modify", "--local", "local", "url", str(repo / "dvc-remote"))
    sh(clone, "dvc", "pull")
    for path in ("checkpoints/demo/round-1/reverb.safetensors", "datasets/simrooms/manifest.parquet", "reports/demo/index.html"):
        assert (clone / path).is_file(), path
    assert "up to date" in sh(clone, "dvc", "status")
