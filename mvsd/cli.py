"""The ``mvsd`` command line. Each subcommand is a thin shell over one function of the package.

mvsd synth --out datasets/simrooms          # the built-in simulated dataset
mvsd ingest avspeech /data/avspeech --out datasets/avspeech
mvsd data stats datasets/simrooms
mvsd data verify datasets/simrooms
"""

from __future__ import annotations

import errno
import functools
import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from mvsd.config import Params, load_params
from mvsd.errors import MvsdError, Terminated, on_sigterm, reset_terminated

app = typer.Typer(
    help="MVSD: visual acoustic matching and dereverberation. Every knob lives in params.yaml; "
    "override one with --set section.key=value.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring paragraphs reflow instead of keeping source line breaks
)
data_app = typer.Typer(
    help="Inspect and check datasets (shards + manifest).", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(data_app, name="data")


def _print_version(value: bool) -> None:
    if value:
        from mvsd import __version__

        typer.echo(f"mvsd {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass  # only the global --version; the help text is the app's (above)


err = Console(stderr=True, soft_wrap=True)  # long paths in errors stay on one line

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", help="params file (default: ./params.yaml or $MVSD_PARAMS).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a param, e.g. --set simrooms.train_samples=200 (repeatable)."),
]


EXIT_FAILED = 2  # nothing done, or not all of it: bad arguments, params or inputs; no space left
EXIT_TERMINATED = 143  # 128 + SIGTERM, the shell's convention


def _friendly_errors(fn):
    """Expected failures (bad input, bad params, missing files, a full disk) print one clear line
    and exit 2; SIGTERM stops the command's workers, removes its temporary files and exits 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        reset_terminated()
        try:
            previous = signal.signal(signal.SIGTERM, on_sigterm)
        except ValueError:  # not the main thread: leave signals alone
            previous = None
        try:
            return fn(*args, **kwargs)
        except (MvsdError, FileNotFoundError, NotADirectoryError, ValueError) as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}")  # the text of an error is not markup
            raise typer.Exit(EXIT_FAILED) from None
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            where = f" writing {escape(str(e.filename))}" if e.filename else ""
            err.print(
                f"[bold red]error:[/] no space left on the device{where}; free some space and run "
                "the command again (finished work is kept and resumed)"
            )
            raise typer.Exit(EXIT_FAILED) from None
        except Terminated:
            err.print("[bold red]terminated[/] (SIGTERM): workers stopped; run the command again to resume")
            raise typer.Exit(EXIT_TERMINATED) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _params(params: Path | None, overrides: list[str] | None) -> Params:
    return load_params(params, overrides or [])


@app.command()
@_friendly_errors
def synth(
    out: Annotated[
        str, typer.Option(help="Dataset folder to write, or an fsspec URL (s3://bucket/simrooms).")
    ] = "datasets/simrooms",
    speech_dir: Annotated[
        Path | None,
        typer.Option(
            help="Use real recordings (any wav/flac, any rate, mono or stereo) instead of espeak-ng."
        ),
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
    path: Annotated[str, typer.Argument(help="Root folder of the source's files, or an fsspec URL.")],
    out: Annotated[str, typer.Option(help="Dataset folder to write, or an fsspec URL (s3://bucket/ds).")],
    split: Annotated[
        str | None, typer.Option(help="Split for folder sources (default train); corpora keep their own.")
    ] = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Convert a corpus or a folder into shards + manifest.

    * `soundspaces`: `<split>/<scene>/<utterance>.pkl` (SoundSpaces-Speech as used by AViTAR) -> paired
    * `avspeech`: `img/*.png` + `audio/*.wav` matched by stem (Acoustic AVSpeech) -> reverb_only
    * `clean-folder`: any tree of dry speech files -> clean_only
    * `reverb-folder`: image + reverberant audio matched by stem -> reverb_only

    Audio is resampled to 16 kHz mono and level-normalised. Bad files are quarantined
    (`quarantine.parquet`, with the reason) and the rest goes through. Rerunning resumes.
    """
    from mvsd.data.adapters import ingest as run

    summary = run(source, path, out, _params(params, set_), split=split)
    typer.echo(summary.line())


DEFAULT_CHECKPOINTS = Path("checkpoints/latest")
# Converters that come with mvsd (the quality recipe on SimRooms; mvsd/pretrained/README.md), the
# default until a round of your own is published to checkpoints/latest.
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "pretrained"


def default_checkpoint(direction: str) -> Path:
    """``checkpoints/latest/<direction>.safetensors`` if this folder has one, else the shipped one."""
    mine = DEFAULT_CHECKPOINTS / f"{direction}.safetensors"
    if mine.exists():
        return mine
    shipped = SHIPPED_CHECKPOINTS / f"{direction}.safetensors"
    if not shipped.exists():
        raise FileNotFoundError(
            f"{mine}: no {direction} checkpoint, and none shipped with this mvsd; "
            "pass --checkpoint or train one (`make demo`, or mvsd train --publish)"
        )
    typer.echo(
        f"using the converters shipped with mvsd ({shipped.parent}); "
        f"a round published to {DEFAULT_CHECKPOINTS} takes their place",
        err=True,
    )
    return shipped


def _convert_command(
    direction: str,
    image: Path,
    speech: Path,
    out: Path,
    checkpoint: Path | None,
    steps: int | None,
    device: str,
    seed: int,
    overwrite: bool,
    keep_rate: bool = False,
) -> None:
    from mvsd.inference import convert_files

    ckpt = checkpoint or default_checkpoint(direction)
    summary = convert_files(
        direction, ckpt, image, speech, out, steps=steps, device=device, seed=seed,
        overwrite=overwrite, report=typer.echo, keep_rate=keep_rate,
    )  # fmt: skip
    if summary.failed:  # some inputs were not converted: a script must not mistake this for success
        raise typer.Exit(1)


ImageOpt = Annotated[
    Path,
    typer.Option(
        help="Room image (jpg/png, any size; grayscale/RGBA converted), or a folder of images matched to the speech files by stem."
    ),
]
CkptOpt = Annotated[
    Path | None,
    typer.Option(
        help="Converter checkpoint (.safetensors). Default: checkpoints/latest/reverb.safetensors (dereverb: dereverb.safetensors), "
        "else the converters shipped with mvsd (mvsd/pretrained)."
    ),
]
StepsOpt = Annotated[
    int | None, typer.Option(help="Sampling steps (network evaluations); default from the checkpoint.")
]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")]
SeedOpt = Annotated[
    int, typer.Option(help="Seed of the sampler's noise: the same seed gives the same output.")
]
KeepRateOpt = Annotated[
    bool,
    typer.Option(
        help="Write each output at its input's sample rate and length (resampled from the model's "
        "16 kHz; nothing above 8 kHz is restored) instead of 16 kHz."
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        help="Replace output files that exist already (without it they are refused). An output "
        "that is one of the inputs is refused even so."
    ),
]


@app.command()
@_friendly_errors
def reverb(
    image: ImageOpt,
    speech: Annotated[
        Path, typer.Option(help="Dry speech file (wav/flac, any rate, mono or stereo) or a folder of them.")
    ],
    out: Annotated[Path, typer.Option(help="Output wav file, or a folder when --speech is a folder.")],
    checkpoint: CkptOpt = None,
    steps: StepsOpt = None,
    device: DeviceOpt = "cpu",
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    keep_rate: KeepRateOpt = False,
) -> None:
    """Make dry speech sound as if recorded in the room shown in IMAGE (visual acoustic matching).

    Input is resampled to 16 kHz and downmixed to mono; any length works (shorter than one
    segment, 2.56 s by default, is zero-padded; longer is converted in overlapping segments). The
    output is 16 kHz mono at the input's loudness (--keep-rate: at the input's sample rate).

    Inputs are never overwritten; existing outputs only with --overwrite. Exit status: 0 all
    converted, 1 some inputs skipped (each named), 2 nothing done (a bad argument).
    """
    _convert_command("reverb", image, speech, out, checkpoint, steps, device, seed, overwrite, keep_rate)


@app.command()
@_friendly_errors
def dereverb(
    image: ImageOpt,
    speech: Annotated[
        Path,
        typer.Option(
            help="Reverberant speech file (wav/flac, any rate, mono or stereo) or a folder of them."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output wav file, or a folder when --speech is a folder.")],
    checkpoint: CkptOpt = None,
    steps: StepsOpt = None,
    device: DeviceOpt = "cpu",
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    keep_rate: KeepRateOpt = False,
) -> None:
    """Remove the reverberation of the room shown in IMAGE from speech recorded there.

    Input is resampled to 16 kHz and downmixed to mono; any length works (shorter than one
    segment, 2.56 s by default, is zero-padded; longer is converted in overlapping segments). The
    output is 16 kHz mono at the input's loudness (--keep-rate: at the input's sample rate).

    Inputs are never overwritten; existing outputs only with --overwrite. Exit status: 0 all
    converted, 1 some inputs skipped (each named), 2 nothing done (a bad argument).
    """
    _convert_command("dereverb", image, speech, out, checkpoint, steps, device, seed, overwrite, keep_rate)


DatasetOpt = Annotated[Path, typer.Option(help="Dataset folder with paired train samples.")]
RunOpt = Annotated[str, typer.Option(help="Run name: the rounds go to checkpoints/RUN/round-K/.")]
CheckpointsOpt = Annotated[Path, typer.Option(help="Where runs are exported.")]


@app.command()
@_friendly_errors
def train(
    dataset: DatasetOpt = Path("datasets/simrooms"),
    run: RunOpt = "demo",
    round_: Annotated[
        int,
        typer.Option(
            "--round", help="Round to train: 0 on paired data; k > 0 adds the pseudo-pairs of rounds < k."
        ),
    ] = 0,
    checkpoints: CheckpointsOpt = Path("checkpoints"),
    publish: Annotated[
        bool,
        typer.Option(
            help="Also copy the round to CHECKPOINTS/latest, the default model of mvsd reverb/dereverb "
            "(the pipeline's last round does; a trial run should not)."
        ),
    ] = False,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train both converters (R and D) for one round on Ray (train.workers; 0 = this process).

    Resumes from the last checkpoint when run again after a kill, and stops at train.steps.
    Losses per step are logged with DVCLive to checkpoints/RUN/round-K-live/ (dvc plots show
    draws them). The default model of `mvsd
    reverb/dereverb` (CHECKPOINTS/latest) changes only with --publish.
    """
    from mvsd.train.distributed import fit_round
    from mvsd.train.rounds import check_dataset, publish_latest, round_inputs

    p = _params(params, set_)
    check_dataset(dataset)
    pseudo, init = round_inputs(dataset, run, round_, checkpoints, sets=p.train.pseudo_sets)
    out = fit_round(p, {"paired": str(dataset), "pseudo": pseudo}, checkpoints, run, round_, init_from=init)
    typer.echo(f"round {round_} of {run}: {out}")
    latest = checkpoints / "latest"
    if publish:
        publish_latest(out, latest)
        typer.echo(f"{latest} (the default model of mvsd reverb/dereverb) is now this round")
    else:
        typer.echo(f"{latest} unchanged (pass --publish to make this round the default model)")


@app.command()
@_friendly_errors
def pseudo(
    dataset: DatasetOpt = Path("datasets/simrooms"),
    run: RunOpt = "demo",
    round_: Annotated[int, typer.Option("--round", help="Use round K's converters.")] = 0,
    checkpoints: CheckpointsOpt = Path("checkpoints"),
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Make pseudo-pairs from the unpaired pools with round K's converters, keep the best.

    clean_only -> R -> pseudo_reverb (scored by D's cycle); reverb_only -> D -> pseudo_clean
    (scored by R's cycle). Written to DATASET-pseudo/RUN/round-K/; an interrupted job resumes.
    """
    from mvsd.train.pseudo import make_pseudo_pairs
    from mvsd.train.rounds import pseudo_dir, round_dir

    src = round_dir(checkpoints, run, round_)
    summary = make_pseudo_pairs(dataset, src, pseudo_dir(dataset, run, round_), _params(params, set_), round_)
    typer.echo(f"pseudo-pairs of round {round_}: {summary}")


@app.command()
@_friendly_errors
def mutual(
    dataset: DatasetOpt = Path("datasets/simrooms"),
    run: RunOpt = "demo",
    rounds: Annotated[
        int, typer.Option(help="Rounds after round 0 (each: pseudo-pairs, then training).")
    ] = 1,
    checkpoints: CheckpointsOpt = Path("checkpoints"),
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    """Mutual learning: round 0 on paired data, then ROUNDS x (pseudo-pairs -> train)."""
    from mvsd.train.rounds import mutual as run_mutual

    out = run_mutual(dataset, _params(params, set_), rounds, run, checkpoints)
    typer.echo(f"{run}: last round in {out} (copied to {checkpoints / 'latest'})")


def round_labels(folders: list[Path]) -> dict[str, Path]:
    """``{label: folder}`` for ``--round`` folders: ``round-1`` as it is, ``run/round-1`` when two
    runs' rounds share a name, the path itself when that is not enough (none is dropped)."""
    for label in (
        lambda p: p.name if p.name.startswith("round") else str(p),
        lambda p: f"{p.resolve().parent.name}/{p.name}",
        str,
    ):
        names = [label(p) for p in folders]
        if len(set(names)) == len(names):
            return dict(zip(names, folders))
    raise typer.BadParameter("the same --round folder is given twice", param_hint="--round")


@app.command("eval")
@_friendly_errors
def eval_(
    dataset: DatasetOpt = Path("datasets/simrooms"),
    split: Annotated[str, typer.Option(help="test_unseen | test_seen | val")] = "test_unseen",
    round_: Annotated[
        list[Path] | None,
        typer.Option(
            "--round",
            help="Round folder(s) of converters (checkpoints/RUN/round-K); repeat to compare rounds.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Output name (default: the split).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for NAME.json, NAME-samples.parquet, NAME.md.")] = Path(
        "metrics"
    ),
    steps: Annotated[int | None, typer.Option(help="Sampling steps (default: the checkpoint's).")] = None,
    sweep: Annotated[
        str | None, typer.Option(help="Comma-separated step counts to sweep, e.g. 1,2,4,8.")
    ] = None,
    blank_image: Annotated[
        bool, typer.Option(help="Feed the converters a uniform grey image instead of each room's (only).")
    ] = False,
    ablation: Annotated[
        bool,
        typer.Option(
            help="Also the image ablation: the last --round again with a grey image, "
            "rows ROUND-blank-image next to the pictures' in every file and the report."
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples of the split (0: all).")] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Score the baselines too (or only the converters).")
    ] = True,
    blind_rt60: Annotated[
        bool,
        typer.Option(
            help="Also the blind-estimator RT60 error (trains the estimator once per dataset, about 30 s)."
        ),
    ] = True,
    report: Annotated[
        Path | None, typer.Option(help="Also write the listening page (see `mvsd report`) to this folder.")
    ] = None,
    report_samples: Annotated[int, typer.Option(help="Samples shown on the listening page.")] = 4,
) -> None:
    """Score the baselines and the converters on one split with the field's metrics.

    VAM: STFT distance (AViTAR), its log variant, RT60 and DRR error by deconvolution. Dereverberation:
    wide-band PESQ, STOI, ESTOI, SI-SDR. Writes a flat JSON (dvc metrics), a per-sample Parquet table
    and a Markdown table of mean ± 95% confidence interval.
    """
    from mvsd.eval.run import markdown, run_evaluation

    rounds = round_labels(round_ or [])
    result, paths = run_evaluation(
        dataset,
        split,
        rounds,
        out,
        name,
        report=report,
        report_samples=report_samples,
        blind_rt60=blind_rt60,
        steps=steps,
        sweep=[int(k) for k in sweep.split(",")] if sweep else None,
        blank_image=blank_image,
        ablation=ablation,
        limit=limit or None,
        baselines=baselines,
    )
    typer.echo(markdown(result))
    typer.echo("written: " + ", ".join(str(p) for p in paths.values()))
    if report is not None:
        typer.echo(f"report: {paths['report'].resolve()}")


@app.command()
@_friendly_errors
def report(
    dataset: DatasetOpt = Path("datasets/simrooms"),
    split: Annotated[str, typer.Option(help="test_unseen | test_seen | val")] = "test_unseen",
    round_: Annotated[
        list[Path] | None, typer.Option("--round", help="Round folder(s) of converters to include.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report folder (index.html + media/).")] = Path("reports/latest"),
    samples: Annotated[int, typer.Option(help="How many samples to show.")] = 4,
    limit: Annotated[
        int | None, typer.Option(help="Samples scored for the metric tables (default: the whole split).")
    ] = None,
) -> None:
    """A static HTML listening page (room image, audio players and spectrograms for the source,
    the ground truth, every baseline and the converters; metric tables and plots). It opens from
    disk, no server needed."""
    from mvsd.eval.report import make_report
    from mvsd.eval.run import evaluate

    rounds = round_labels(round_ or [])
    result = evaluate(dataset, split, rounds, limit=limit, examples=samples)
    page = make_report(result, out, title=f"{dataset}, split {split}")
    typer.echo(f"report: {page.resolve()}")


@data_app.command("stats")
@_friendly_errors
def data_stats(
    dataset: Annotated[str, typer.Argument(help="Dataset folder or URL (holds manifest.parquet).")],
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
def data_verify(
    dataset: Annotated[str, typer.Argument(help="Dataset folder or URL (holds manifest.parquet).")],
) -> None:
    """Re-read every shard and check it against the manifest (keys, members, SHA-256, decoding).

    Exits with status 1 when anything is wrong, listing each problem.
    """
    from mvsd.data.inspect import verify_dataset

    report = verify_dataset(dataset)
    for p in report.problems[:200]:
        err.print(f"[red]{escape(str(p))}[/]")
    if len(report.problems) > 200:
        err.print(f"... and {len(report.problems) - 200} more")
    status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    typer.echo(f"{dataset}: {report.shards} shards, {report.samples} samples checked: {status}")
    if not report.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
