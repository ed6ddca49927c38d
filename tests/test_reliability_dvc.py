"""Importing the package on a normal machine (one that writes ``__pycache__``) must not make DVC
think the code changed (issue 12, case 15): ``.dvcignore`` covers bytecode and tool caches, so
``dvc status`` stays clean and ``dvc repro`` reruns nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml
from conftest import ROOT, init_git_dvc, tool_env


def sh(repo, *cmd, env=None):
    proc = subprocess.run(cmd, cwd=repo, env=env or tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def test_bytecode_and_caches_leave_dvc_status_clean(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    shutil.copytree(ROOT / "mvsd", repo / "mvsd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".dvcignore", repo / ".dvcignore")
    # One stage that depends on every code path the real pipeline's stages depend on.
    real = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    code = sorted({d for s in real.values() for d in s.get("deps", []) if d.startswith("mvsd")})
    stage = {"cmd": "echo built > out.txt", "deps": code, "outs": ["out.txt"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"build": stage}}))
    init_git_dvc(repo)
    sh(repo, "dvc", "repro")
    assert "up to date" in sh(repo, "dvc", "status")

    # A normal Python: bytecode writing on, no cache prefix; import what the stages depend on.
    env = {k: v for k, v in tool_env().items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    modules = "mvsd.cli, mvsd.config, mvsd.audio_io, mvsd.data.adapters, mvsd.data.loader, mvsd.converter"
    sh(repo, sys.executable, "-c", f"import {modules}", env=env)
    assert any((repo / "mvsd").rglob("__pycache__/*.pyc")), "no bytecode was written"
    for cache in (".pytest_cache", ".ruff_cache", ".mypy_cache", "mvsd/.ruff_cache"):
        (repo / cache).mkdir(exist_ok=True)
        (repo / cache / "x").write_text("cache")

    status = sh(repo, "dvc", "status")
    assert "Data and pipelines are up to date" in status, status
    assert "Running stage" not in sh(repo, "dvc", "repro")
    assert os.path.exists(repo / "out.txt")
