"""The ``mvsd`` command line. Each subcommand is a thin shell over one function of the package.

    mvsd synth --out datasets/simrooms          # the built-in simulated dataset
    mvsd ingest avspeech /data/avspeech --out datasets/avspeech
    mvsd data stats datasets/simrooms
    mvsd data verify datasets/simrooms
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mvsd.config import Params, load_params
from mvsd.errors import MvsdError

app = typer.Typer(
    help="MVSD: visual acoustic matching and dereverberation. Every knob lives in params.yaml; "
    "override one with --set section.key=value.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and check datasets (shards + manifest).", no_args_is_help=True)
app.add_typer(data_app, name="data")
err = Console(stderr=True)

ParamsOpt = Annotated[Path | None, typer.Option("--params", help="params file (default: ./params.yaml or $MVSD_PARAMS).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a param, e.g. --set simrooms.train_samples=200 (repeatable)."),
]


def _friendly_errors(fn):
    """Expected failures (bad input, bad params, missing files) print one clear line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (MvsdError, FileNotFoundError, ValueError) as e:
            err.print(f"[bold red]error:[/] {e}")
            raise typer.Exit(2) from None

    return wrapper


def _params(params: Path | None, overrides: list[str] | None) -> Params:
    return load_params(params, overrides or [])


@app.command()
@_friendly_errors
def synth(
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = Path("datasets/simrooms"),
    speech_dir: Annotated[
        Path | None,
        typer.Option(help="Use real recordings (any wav/flac, any rate, mono or stereo) instead of espeak-ng."),
    ] = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Generate SimRooms: simulated rooms (RIRs + rendered images) and speech in them.

    Writes paired samples and the unpaired pools (clean_only, reverb_only) for the splits train,
    val, test_seen and test_unseen as WebDataset shards + manifest.parquet under OUT. Sizes come
    from the simrooms section of params.yaml. Deterministic by simrooms.seed; a killed run
    resumes where it stopped when run again.
    """
    from mvsd.sim.synth import synth as run

    summary = run(out, _params(params, set_), str(speech_dir) if speech_dir else None)
    typer.echo(summary.line())


@app.command()
@_friendly_errors
def ingest(
    source: Annotated[str, typer.Argument(help="soundspaces | avspeech | clean-folder | reverb-folder")],
    path: Annotated[Path, typer.Argument(help="Root folder of the source's files.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")],
    split: Annotated[
        str | None, typer.Option(help="Split for folder sources (default train); corpora keep their own.")
    ] = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Convert a corpus or a folder into shards + manifest.

    soundspaces: <split>/<scene>/<utterance>.pkl (SoundSpaces-Speech as used by AViTAR) -> paired.
    avspeech: img/*.png + audio/*.wav matched by stem (Acoustic AVSpeech) -> reverb_only.
    clean-folder: any tree of dry speech files -> clean_only.
    reverb-folder: image + reverberant audio matched by stem -> reverb_only.
    Audio is resampled to 16 kHz mono and level-normalised. Bad files are quarantined
    (quarantine.parquet, with the reason) and the rest goes through.
    """
    from mvsd.data.adapters import ingest as run

    summary = run(source, path, out, _params(params, set_), split=split)
    typer.echo(summary.line())


@data_app.command("stats")
@_friendly_errors
def data_stats(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (holds manifest.parquet).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts by split x kind, hours of audio, rooms, speakers and the RT60 distribution."""
    from mvsd.data.inspect import dataset_stats, print_stats

    stats = dataset_stats(dataset)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
    else:
        print_stats(stats)


@data_app.command("verify")
@_friendly_errors
def data_verify(dataset: Annotated[Path, typer.Argument(help="Dataset folder (holds manifest.parquet).")]) -> None:
    """Re-read every shard and check it against the manifest (keys, members, SHA-256, decoding).

    Exits with status 1 when anything is wrong, listing each problem.
    """
    from mvsd.data.inspect import verify_dataset

    report = verify_dataset(dataset)
    for p in report.problems[:200]:
        err.print(f"[red]{p}[/]")
    if len(report.problems) > 200:
        err.print(f"... and {len(report.problems) - 200} more")
    status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    typer.echo(f"{dataset}: {report.shards} shards, {report.samples} samples checked: {status}")
    if not report.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
