"""The pipeline's stages, written once: the params each one reads and the code it runs.

Everything that decides whether a stage's result is still valid reads this table:

* ``dvc.yaml`` (each stage's ``params:`` and code ``deps:``; ``tests/test_stages.py`` checks that
  the file says the same; a stage's code is every file its entry modules import,
  :func:`stage_code`, so an edit reruns exactly the stages that run the edited file),
* the training fingerprint (:func:`mvsd.train.distributed.fingerprint`) and the pseudo-pairs'
  build fingerprint, so that a knob a stage does not read never retrains or remakes it,
* the Prefect tasks' cache keys (``flows/tasks.py``).

Keys are params sections (``"train"``) or dotted keys (``"model.steps"``), as ``dvc.yaml`` writes
them. ``model.steps`` is an inference knob: training does not read it (the exported converters
record it as their default), evaluation does, so changing it re-runs evaluation only.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvsd.config import ModelConfig, Params, to_dict

# Model keys read when converting, not when training.
INFERENCE_KEYS = ("model.steps",)
_MODEL_TRAINING_KEYS = tuple(
    f"model.{f.name}" for f in dataclasses.fields(ModelConfig) if f"model.{f.name}" not in INFERENCE_KEYS
)


@dataclass(frozen=True)
class Stage:
    params: tuple[str, ...]  # sections or dotted keys the stage reads
    entry: tuple[str, ...]  # the modules the stage's CLI command calls; its code is what they import


STAGES: dict[str, Stage] = {
    "synth": Stage(("audio", "simrooms", "shards"), ("mvsd.sim.synth",)),
    "ingest": Stage(("audio", "ingest", "shards"), ("mvsd.data.adapters",)),  # flows only
    "train": Stage(
        ("audio", "loader", *_MODEL_TRAINING_KEYS, "train"), ("mvsd.train.distributed", "mvsd.train.rounds")
    ),
    "pseudo": Stage(("pseudo", "shards"), ("mvsd.train.pseudo", "mvsd.train.rounds")),
    "evaluate": Stage(("evaluate", *INFERENCE_KEYS), ("mvsd.eval.run", "mvsd.eval.report")),
}

ROOT = Path(__file__).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(file: Path, module: str) -> set[str]:
    """The ``mvsd`` modules ``file`` imports anywhere in it (functions' lazy imports too)."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {name for name in found if name.split(".")[0] == "mvsd" and _module_file(name)}


@functools.cache
def stage_code(stage: str) -> tuple[str, ...]:
    """The files (from the repository root, sorted) of the code ``stage`` runs: its entry modules
    and every ``mvsd`` module they import, directly or not, with the packages' ``__init__.py``.

    ``dvc.yaml`` lists exactly these as the stage's code deps (``tests/test_stages.py``), so an
    edit to a file the stage never imports does not rerun it. ``mvsd/cli.py`` is left out: it
    parses the command line and calls the entry modules; the command itself is part of the
    stage (DVC reruns a stage whose ``cmd`` changed)."""
    seen: set[str] = set()
    todo = list(STAGES[stage].entry)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing runs the packages
        file = _module_file(module)
        if file is None:
            raise ValueError(f"stage {stage}: no module {module} under {ROOT}")
        todo.extend(_imports(file, module))
    files = {_module_file(m).relative_to(ROOT).as_posix() for m in seen}
    return tuple(sorted(files - {"mvsd/cli.py"}))


def _lookup(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def stage_params(params: Params | dict, stage: str) -> dict[str, Any]:
    """The values of the params ``stage`` reads, by key (plain data: JSON-able, hashable by value).

    ``params``: a :class:`Params` or its plain-dict form (``to_dict``)."""
    data = to_dict(params) if not isinstance(params, dict) else params
    return {key: _lookup(data, key) for key in STAGES[stage].params}


@functools.cache
def code_version(stage: str) -> str:
    """A hash of the contents of the files ``stage`` runs (:func:`stage_code`): part of the
    training and pseudo-pairs fingerprints and of the flows' cache keys, so that a changed
    loss or model is trained again rather than resumed from, or served by, an earlier result —
    as DVC reruns the stage. Computed once per process."""
    h = hashlib.sha256()
    for path in stage_code(stage):
        h.update(path.encode() + b"\0" + (ROOT / path).read_bytes() + b"\0")
    return h.hexdigest()[:16]


# dvc.yaml's stages and the table's entry each runs
DVC_STAGES = {
    "synth": "synth",
    "train_round0": "train",
    "train_round1": "train",
    "pseudo_round0": "pseudo",
    "evaluate": "evaluate",
}


def sync_dvc_yaml(path: Path) -> bool:
    """Rewrite the ``mvsd/`` code deps of each stage in ``path`` (a ``dvc.yaml``) to
    :func:`stage_code`, leaving every other line as it is. Returns whether anything changed."""
    text = path.read_text()
    out: list[str] = []
    stage = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            stage = line.strip()[:-1]
        if line.startswith("      - mvsd/") and stage in DVC_STAGES:
            while i < len(lines) and lines[i].startswith("      - mvsd/"):
                i += 1
            out.extend(f"      - {file}" for file in stage_code(DVC_STAGES[stage]))
            continue
        out.append(line)
        i += 1
    new = "\n".join(out)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # `python -m mvsd.stages [--write]`: the code deps dvc.yaml should list
    import sys

    if "--write" in sys.argv:
        changed = sync_dvc_yaml(ROOT / "dvc.yaml")
        print("dvc.yaml: code deps updated" if changed else "dvc.yaml: code deps already up to date")
    else:
        for name in STAGES:
            print(f"{name}:\n" + "".join(f"      - {path}\n" for path in stage_code(name)))
