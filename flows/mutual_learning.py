"""``python -m flows.mutual_learning --rounds N``: round 0, then N x (pseudo-pairs -> train), then
evaluation. Each step is a cached task, so a rerun skips what is unchanged and redoes the rest."""

from __future__ import annotations

from prefect import flow

from flows import tasks
from flows.common import main, params, plain
from flows.evaluate import publish
from mvsd.train.rounds import check_dataset, pseudo_dir, round_dir, round_inputs


@flow(name="mutual-learning", log_prints=True)
def mutual_learning(
    dataset: str = "datasets/simrooms",
    run: str = "demo",
    rounds: int = 1,
    checkpoints: str = "checkpoints",
    synth: bool = False,
    evaluate: bool = True,
    split: str = "test_unseen",
    limit: int | None = None,
    report: str | None = "reports/latest",
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Train round 0 of RUN on DATASET (made first with SYNTH), then ROUNDS mutual-learning rounds;
    EVALUATE compares every round with the baselines on SPLIT."""
    p = plain(params(params_file, overrides))
    if synth:
        tasks.synth(dataset, p)
    check_dataset(dataset)
    done = [tasks.train_round(dataset, run, 0, checkpoints, p, out=str(round_dir(checkpoints, run, 0)))]
    for k in range(1, rounds + 1):
        tasks.pseudo_pairs(dataset, done[-1], str(pseudo_dir(dataset, run, k - 1)), k - 1, p)
        pseudo, init = round_inputs(dataset, run, k, checkpoints, sets=p["train"]["pseudo_sets"])
        done.append(
            tasks.train_round(
                dataset, run, k, checkpoints, p, pseudo=pseudo, init_from=str(init),
                out=str(round_dir(checkpoints, run, k)),
            )
        )  # fmt: skip
    result: dict = {"rounds": done, "pseudo": round_inputs(dataset, run, rounds, checkpoints, sets=p["train"]["pseudo_sets"])[0]}
    if evaluate:
        ev = tasks.evaluate(
            dataset, split, done, "metrics", f"{run}-{split}", report, limit=limit, params_dict=p
        )
        publish(ev, f"{run}-{split}")
        result["evaluation"] = ev
    return result


if __name__ == "__main__":
    main(mutual_learning)
