"""``python -m flows.pseudo_pairs --round K``: pseudo-pairs from a dataset's unpaired pools with
round K's converters, scored by the cycle and filtered (``pseudo`` section of params.yaml)."""

from __future__ import annotations

from prefect import flow

from flows import tasks
from flows.common import main, params, plain
from mvsd.train.rounds import pseudo_dir, round_dir


@flow(name="pseudo-pairs", log_prints=True)
def pseudo_pairs(
    dataset: str = "datasets/simrooms",
    run: str = "demo",
    round: int = 0,  # noqa: A002
    checkpoints: str = "checkpoints",
    out: str | None = None,
    image_dataset: str | None = None,
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Make round ROUND's pseudo-pairs of DATASET into OUT (default DATASET-pseudo/RUN/round-ROUND).
    IMAGE_DATASET: where imageless dry speech draws its room images (default DATASET)."""
    return tasks.pseudo_pairs(
        dataset,
        str(round_dir(checkpoints, run, round)),
        out or str(pseudo_dir(dataset, run, round)),
        round,
        plain(params(params_file, overrides)),
        image_dataset=image_dataset,
    )


if __name__ == "__main__":
    main(pseudo_pairs)
