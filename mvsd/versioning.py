"""Versioning with DVC from code: track folders (a new version each) and push them.

Callers hold the repository (flows: the repository lock); DVC runs as this environment's
``python -m dvc``, whatever PATH says.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

DVC = [sys.executable, "-m", "dvc"]
log = logging.getLogger(__name__)


def run(cmd: list[str], cwd: Path) -> str:
    """Run ``cmd`` in ``cwd``; a failure raises with the command's own words (the end of its output)."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        said = "\n".join(x for x in (proc.stdout[-1000:].strip(), proc.stderr[-2000:].strip()) if x)
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd} (exit {proc.returncode}):\n{said}")
    return proc.stdout


def dvc_add(paths: list[str], message: str, repo: str | Path | None = None) -> list[str]:
    """Track ``paths`` with DVC (a new version of each) and commit their ``.dvc`` files to git.
    Returns the ``.dvc`` files."""
    root = Path(repo) if repo else Path.cwd()
    rel = [str(Path(p).resolve().relative_to(root.resolve())) for p in paths]
    run([*DVC, "add", "--quiet", *rel], root)
    tracked = [f"{r}.dvc" for r in rel]
    ignores = sorted(
        {str(Path(r).parent / ".gitignore") for r in rel if (root / Path(r).parent / ".gitignore").exists()}
    )
    run(["git", "add", "--", *tracked, *ignores], root)
    staged = run(["git", "diff", "--cached", "--name-only", "--", *tracked, *ignores], root).split()
    if staged:
        run(
            ["git", "-c", "user.name=mvsd-flows", "-c", "user.email=mvsd-flows@localhost",
             "commit", "--quiet", "-m", message, "--", *staged],
            root,
        )  # fmt: skip
    log.info("versioned with DVC: %s", ", ".join(rel))
    return tracked


def dvc_push(targets: list[str], repo: str | Path | None = None) -> None:
    """Push ``targets`` (``.dvc`` files or stage names) to the default DVC remote. Not --quiet:
    that would hide why a push failed (a remote that is down, read-only or full)."""
    run([*DVC, "push", *targets], Path(repo) if repo else Path.cwd())
    log.info("pushed to the DVC remote: %s", ", ".join(targets))
