"""``python -m flows.train_round --round K``: train round K of a run (both converters) on Ray.

Round 0 trains on the paired samples; round K > 0 starts from round K-1 and adds the accepted
pseudo-pairs of rounds < K (``<dataset>-pseudo/<run>/round-j``), which must exist.
"""

from __future__ import annotations

from prefect import flow

from flows import tasks
from flows.common import main, params, plain
from mvsd.train.rounds import check_dataset, round_dir, round_inputs


@flow(name="train-round", log_prints=True)
def train_round(
    dataset: str = "datasets/simrooms",
    run: str = "demo",
    round: int = 0,  # noqa: A002  (the CLI option is --round, as in `mvsd train`)
    checkpoints: str = "checkpoints",
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> str:
    """Train round ROUND of RUN on DATASET; returns the round folder."""
    check_dataset(dataset)
    p = params(params_file, overrides)
    pseudo, init = round_inputs(dataset, run, round, checkpoints, sets=p.train.pseudo_sets)
    return tasks.train_round(
        dataset,
        run,
        round,
        checkpoints,
        plain(p),
        pseudo=pseudo,
        init_from=str(init) if init else None,
        out=str(round_dir(checkpoints, run, round)),
    )


if __name__ == "__main__":
    main(train_round)
