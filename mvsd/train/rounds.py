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
    dataset: str | Path, run: str, k: int, checkpoints: str | Path
) -> tuple[list[str], Path | None]:
    """What round ``k`` of ``run`` trains from besides the paired data: the pseudo-pair sets of
    rounds < k (each must exist) and the round it starts from (None for round 0)."""
    pseudo = [str(pseudo_dir(dataset, run, j)) for j in range(k)]
    missing = [q for q in pseudo if not Path(q, "manifest.parquet").exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: no pseudo-pairs; make them first (`mvsd pseudo --round {k - 1}`)"
        )
    return pseudo, round_dir(checkpoints, run, k - 1) if k > 0 else None


def mutual(
    dataset: str | Path, params: Params, rounds: int, run: str, checkpoints: str | Path = "checkpoints"
) -> Path:
    """Round 0, then ``rounds`` more rounds each on paired + all earlier accepted pseudo-pairs.
    Returns the last round's folder (also copied to ``checkpoints/latest``)."""
    check_dataset(dataset)
    prev = fit_round(params, {"paired": str(dataset)}, checkpoints, run, 0)
    pseudo: list[str] = []
    for k in range(1, rounds + 1):
        out = pseudo_dir(dataset, run, k - 1)
        make_pseudo_pairs(dataset, prev, out, params, k - 1)
        pseudo.append(str(out))
        prev = fit_round(
            params, {"paired": str(dataset), "pseudo": pseudo}, checkpoints, run, k, init_from=prev
        )
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


__all__ = ["mutual", "check_dataset", "pseudo_dir", "publish_latest", "round_dir", "round_inputs"]
