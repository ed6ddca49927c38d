"""``python -m flows.ingest SOURCE [PATH] --out DATASET``: a source -> shards + manifest.

Sources: ``simrooms`` (the built-in simulated dataset; PATH, if given, is a folder of dry speech to
use instead of espeak-ng) | ``soundspaces`` | ``avspeech`` | ``clean-folder`` | ``reverb-folder``
(see ``mvsd ingest --help``). Bad files are quarantined with their reason and the flow still
succeeds, saying how many.
"""

from __future__ import annotations

from prefect import flow

from flows import tasks
from flows.common import main, params, plain


@flow(name="ingest", log_prints=True)
def ingest(
    source: str,
    path: str | None = None,
    out: str = "datasets/simrooms",
    split: str | None = None,
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Ingest SOURCE files under PATH into the dataset folder OUT (cached: unchanged input files
    and params are not ingested again). SOURCE simrooms generates the built-in dataset."""
    p = plain(params(params_file, overrides))
    if source == "simrooms":
        return tasks.synth(out, p, speech_dir=path)
    if not path:
        raise ValueError(f"source {source!r} needs PATH, the folder of its files")
    return tasks.ingest(source, path, out, p, split=split)


if __name__ == "__main__":
    main(ingest)
