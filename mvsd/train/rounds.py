"""Mutual-learning rounds: round 0 on paired data, then pseudo-pairs -> the next round.

    checkpoints/<run>/round-0/              R and D trained on paired samples
    <dataset>-pseudo/<run>/round-0/         pseudo-pairs made by round 0's converters
    checkpoints/<run>/round-1/              R and D trained on paired + round-0 pseudo-pairs
    ...
    checkpoints/latest/                     a copy of the newest round (the CLI's default)

Every step is resumable: an exported round or a finished pseudo-pair set is reused as it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from mvsd.config import Params
from mvsd.data.manifest import read_manifest
from mvsd.errors import BadInput
from mvsd.train.distributed import ROUND_FILES, fit_round, round_dir
from mvsd.train.pseudo import make_pseudo_pairs


def check_dataset(dataset: str | Path) -> None:
    """A clear error for a missing dataset or one without paired training samples."""
    try:
        rows = read_manifest(dataset).to_pydict()
    except FileNotFoundError as e:
        raise BadInput(
            str(dataset), f"no dataset here ({e}); build one with `mvsd synth` or `mvsd ingest`"
        ) from None
    if not any(s == "train" and k == "paired" for s, k in zip(rows["split"], rows["kind"])):
        raise BadInput(str(dataset), "no paired samples in the train split: nothing to train round 0 on")


def pseudo_dir(dataset: str | Path, run: str, k: int) -> Path:
    return Path(f"{Path(dataset)}-pseudo") / run / f"round-{k}"


def round_inputs(
    dataset: str | Path,
    run: str,
    k: int,
    checkpoints: str | Path,
    more_pseudo: Sequence[str] = (),
    check: bool = True,
    sets: str = "latest",
) -> tuple[list[str], Path | None]:
    """The round planner: what round ``k`` of ``run`` trains from besides the paired data — the
    run's pseudo-pair sets (made with ``mvsd pseudo``; round k-1's, or every earlier round's), then ``more_pseudo`` (the
    inbox's batches) — and the round it starts from (None for round 0).

    Every caller plans with it: ``mvsd train``, :func:`mutual`, the train-round, mutual-learning
    and inbox flows; ``tests/test_rounds_plan.py`` holds ``dvc.yaml`` to it. ``check``: a missing
    set of the run is an error that says how to make it; without it (the inbox, whose rounds
    after the first train on its batches' pairs) missing sets are left out. ``sets``
    (``train.pseudo_sets``): ``all`` the run's sets of every earlier round, ``latest`` round k-1's
    alone (each ``mvsd pseudo`` converts and scores the same pools again with newer converters)."""
    rounds = range(k) if sets == "all" else range(max(k - 1, 0), k)
    own = [str(pseudo_dir(dataset, run, j)) for j in rounds]
    missing = [(j, q) for j, q in zip(rounds, own) if not Path(q, "manifest.parquet").exists()]
    if missing and check:
        j, q = missing[0]
        raise FileNotFoundError(f"{q}: no pseudo-pairs; make them first (`mvsd pseudo --round {j}`)")
    missing = [q for _, q in missing]
    pseudo = [q for q in own if q not in missing] + [str(q) for q in more_pseudo]
    return pseudo, round_dir(checkpoints, run, k - 1) if k > 0 else None


def latest_round(checkpoints: str | Path, run: str) -> int | None:
    """The highest exported round of ``run`` (None: none yet)."""
    ks = [int(p.name.split("-")[1]) for p in Path(checkpoints, run).glob("round-*") if (p / "round.json").exists()]
    return max(ks) if ks else None


def mutual(
    dataset: str | Path, params: Params, rounds: int, run: str, checkpoints: str | Path = "checkpoints"
) -> Path:
    """Round 0, then ``rounds`` more rounds, each on paired data + the pseudo-pairs made by the round
    before (``train.pseudo_sets: all``: by every earlier round).
    Returns the last round's folder (also copied to ``checkpoints/latest``)."""
    check_dataset(dataset)
    prev = fit_round(params, {"paired": str(dataset)}, checkpoints, run, 0)
    for k in range(1, rounds + 1):
        make_pseudo_pairs(dataset, prev, pseudo_dir(dataset, run, k - 1), params, k - 1)
        pseudo, init = round_inputs(dataset, run, k, checkpoints, sets=params.train.pseudo_sets)
        prev = fit_round(params, {"paired": str(dataset), "pseudo": pseudo}, checkpoints, run, k, init_from=init)
    publish_latest(prev, Path(checkpoints) / "latest")
    return prev


def publish_latest(round_folder: Path, latest: Path) -> None:
    tmp = latest.with_name(latest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in ROUND_FILES:
        shutil.copy2(round_folder / f, tmp / f)
    shutil.rmtree(latest, ignore_errors=True)
    tmp.rename(latest)


__all__ = ["mutual", "check_dataset", "latest_round", "pseudo_dir", "publish_latest", "round_dir", "round_inputs"]
