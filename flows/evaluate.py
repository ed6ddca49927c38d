"""``python -m flows.evaluate --round checkpoints/demo/round-1``: metrics + listening report.

Scores the baselines and each round on a split (``mvsd eval``), writes ``metrics/<name>.*`` and the
report, and publishes the metric table with a link to the report as a Prefect artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.common import main, params, plain


def publish(result: dict, name: str) -> None:
    """The metric table and a link to the report as a Markdown artifact (key ``evaluation-<name>``)."""
    link = (
        f"\n\n[Listening report]({Path(result['report']).resolve().as_uri()})" if result.get("report") else ""
    )
    key = "evaluation-" + "".join(c if c.isalnum() else "-" for c in name.lower())
    create_markdown_artifact(markdown=result["table"] + link, key=key, description=f"mvsd evaluation {name}")


@flow(name="evaluate", log_prints=True)
def evaluate(
    rounds: list[str],
    dataset: str = "datasets/simrooms",
    split: str = "test_unseen",
    name: str | None = None,
    out: str = "metrics",
    report: str | None = "reports/latest",
    limit: int | None = None,
    blind_rt60: bool = True,
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Evaluate ROUNDS (round folders) and the baselines on SPLIT; write metrics and the report."""
    result = tasks.evaluate(
        dataset,
        split,
        rounds,
        out,
        name or split,
        report,
        limit=limit,
        blind_rt60=blind_rt60,
        params_dict=plain(params(params_file, overrides)),
    )
    publish(result, name or split)
    if result.get("report"):
        print(f"report: {Path(result['report']).resolve()}")
    return result


if __name__ == "__main__":
    main(evaluate)
