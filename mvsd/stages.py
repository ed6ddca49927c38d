"""The pipeline's stages, written once: the params each one reads and the code it runs.

Everything that decides whether a stage's result is still valid reads this table:

* ``dvc.yaml`` (each stage's ``params:`` and code ``deps:``; ``tests/test_stages.py`` checks that
  the file says the same),
* the training fingerprint (:func:`mvsd.train.distributed.fingerprint`) and the pseudo-pairs'
  build fingerprint, so that a knob a stage does not read never retrains or remakes it,
* the Prefect tasks' cache keys (``flows/tasks.py``).

Keys are params sections (``"train"``) or dotted keys (``"model.steps"``), as ``dvc.yaml`` writes
them. ``model.steps`` is an inference knob: training does not read it (the exported converters
record it as their default), evaluation does, so changing it re-runs evaluation only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mvsd.config import ModelConfig, Params, to_dict

# Model keys read when converting, not when training.
INFERENCE_KEYS = ("model.steps",)
_MODEL_TRAINING_KEYS = tuple(
    f"model.{f.name}" for f in dataclasses.fields(ModelConfig) if f"model.{f.name}" not in INFERENCE_KEYS
)
_TRAIN_CODE = (
    "mvsd/train",
    "mvsd/models",
    "mvsd/diffusion",
    "mvsd/converter.py",
    "mvsd/losses.py",
    "mvsd/acoustics.py",
    "mvsd/images.py",
    "mvsd/audio.py",
    "mvsd/data/loader.py",
)


@dataclass(frozen=True)
class Stage:
    params: tuple[str, ...]  # sections or dotted keys the stage reads
    code: tuple[str, ...]  # files or folders (from the repository root) of the code it runs


STAGES: dict[str, Stage] = {
    "synth": Stage(
        ("audio", "simrooms", "shards"),
        ("mvsd/sim", "mvsd/data", "mvsd/acoustics.py", "mvsd/audio_io.py", "mvsd/config.py"),
    ),
    "ingest": Stage(("audio", "ingest", "shards"), ("mvsd/data", "mvsd/audio_io.py", "mvsd/config.py")),  # flows only
    "train": Stage(("audio", "loader", *_MODEL_TRAINING_KEYS, "train"), _TRAIN_CODE),
    "pseudo": Stage(("pseudo", "shards"), ("mvsd/train/pseudo.py", "mvsd/converter.py", "mvsd/data")),
    "evaluate": Stage(
        ("evaluate", *INFERENCE_KEYS),
        ("mvsd/eval", "mvsd/acoustics.py", "mvsd/models", "mvsd/converter.py"),
    ),
}


def _lookup(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def stage_params(params: Params | dict, stage: str) -> dict[str, Any]:
    """The values of the params ``stage`` reads, by key (plain data: JSON-able, hashable by value).

    ``params``: a :class:`Params` or its plain-dict form (``to_dict``)."""
    data = to_dict(params) if not isinstance(params, dict) else params
    return {key: _lookup(data, key) for key in STAGES[stage].params}
