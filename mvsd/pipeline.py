"""Each step of a pipeline run as one plain call on plain data (params as a dict, results as
JSON-able dicts): what the Prefect tasks (``flows/tasks.py``) wrap with retries, caching and run
logs, and what :func:`mvsd.inbox.process_inbox` runs by default without Prefect."""

from __future__ import annotations

from pathlib import Path

from mvsd.config import Params, build


def _params(d: dict) -> Params:
    return build(Params, d)


def ingest(source: str, path: str, out: str, params_dict: dict, split: str | None = None) -> dict:
    """A source folder -> shards + manifest (:func:`mvsd.data.adapters.ingest`). Bad files are
    quarantined, not fatal."""
    from mvsd.data.adapters import ingest as run

    s = run(source, Path(path), Path(out), _params(params_dict), split=split)
    return {"dataset": out, "version": s.version, "samples": s.samples, "quarantined": s.quarantined,
            "summary": s.line()}  # fmt: skip


def train_round(
    dataset: str,
    run: str,
    k: int,
    checkpoints: str,
    params_dict: dict,
    pseudo: list[str] | None = None,
    init_from: str | None = None,
    out: str | None = None,  # noqa: ARG001 (the round's folder, named for the flows' cache key)
) -> str:
    """Round ``k`` of ``run`` (:func:`mvsd.train.distributed.fit_round`), then published to
    ``checkpoints/latest``; returns the round folder."""
    from mvsd.train.distributed import fit_round
    from mvsd.train.rounds import publish_latest

    folder = fit_round(
        _params(params_dict), {"paired": dataset, "pseudo": pseudo or []}, checkpoints, run, k, init_from
    )
    publish_latest(folder, Path(checkpoints) / "latest")
    return str(folder)


def pseudo_pairs(
    dataset: str, round_dir: str, out: str, k: int, params_dict: dict, image_dataset: str | None = None
) -> dict:
    """Round ``k``'s pseudo-pairs of ``dataset`` (:func:`mvsd.train.pseudo.make_pseudo_pairs`)."""
    from mvsd.train.pseudo import make_pseudo_pairs

    return {
        "dataset": out,
        **make_pseudo_pairs(dataset, round_dir, out, _params(params_dict), k, image_dataset=image_dataset),
    }


def evaluate(
    dataset: str,
    split: str,
    rounds: list[str],
    out: str,
    name: str,
    report: str | None,
    limit: int | None = None,
    blind_rt60: bool = True,
    rt60_cache: str = "checkpoints/rt60",
    params_dict: dict | None = None,
) -> dict:
    """Metrics (``out/<name>.json`` ...) and the listening page; returns the Markdown table and
    paths. Each round is evaluated at ``model.steps`` of ``params_dict`` (without it: its own)."""
    from mvsd.eval.run import markdown, run_evaluation

    result, paths = run_evaluation(
        dataset, split, {Path(r).name: Path(r) for r in rounds}, out, name, report=report,
        blind_rt60=blind_rt60, rt60_cache=rt60_cache, limit=limit,
        steps=_params(params_dict).model.steps if params_dict else None,
    )  # fmt: skip
    return {"table": markdown(result), **{k: str(v) for k, v in paths.items()}}
