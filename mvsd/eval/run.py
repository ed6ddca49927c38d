"""``mvsd eval``: every system — baselines and the converters — under one script, same samples.

For a split of a dataset and (optionally) a round folder of converters, every VAM system turns
each sample's dry speech into reverberant speech and every dereverberation system does the
inverse; each output is scored with the family's metrics (:mod:`mvsd.eval.metrics`). Written:

* ``metrics/<name>.json``          flat ``family/system/metric -> mean`` (for ``dvc metrics``)
* ``metrics/<name>-samples.parquet``  one row per (sample, family, system) with every metric
* ``metrics/<name>.md``            mean ± 95% confidence interval per system and metric
* ``metrics/<name>-headline.json`` a dozen numbers: the newest model vs the best blind baseline
  per headline metric, and what a grey image costs it (:func:`headline`; what ``dvc exp show``
  tabulates)

A baseline that needs what a sample lacks (the RIR-based rows without ``rir.npy``) is left out
for that sample (:class:`~mvsd.eval.baselines.MissingInput`); ``n`` in the summary says how many
samples each mean covers.

Each round's reverberator also describes the room it sees (``Converter.describe_room``): its
per-band T60 and DRR are compared with the true RIR's (:class:`RoomComparison`, kept in
:attr:`EvalResult.rooms` for the report's scatter plots) and the absolute errors join that
system's VAM rows as ``room_t60_error_<band>`` (seconds, bands 125 ... 4000 Hz),
``room_t60_error`` (mean over the bands) and ``room_drr_error`` (dB).

Ablation flags: ``blank_image`` feeds the converters a uniform grey image instead of the room's
(how much does the picture matter?); several ``rounds`` are evaluated side by side (paired-only
round 0 vs a mutual-learning round).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mvsd import acoustics as ac
from mvsd.audio_io import SAMPLE_RATE
from mvsd.converter import Converter
from mvsd.eval.baselines import (
    BASELINES,
    BLIND_BASELINES,
    BaselineContext,
    MissingInput,
    RirBank,
    read_samples,
    tune_wpe,
)
from mvsd.eval.metrics import METRICS, Reference, score
from mvsd.eval.pesq_helper import PesqHelper
from mvsd.eval.result import (
    BAND_NAMES,
    BLANK,
    EXACT_ORACLES,
    HEADLINE_METRICS,
    ROOM_METRICS,
    EvalResult,
    Outputs,
    RoomComparison,
    blank_twin,
    paired_difference,
)
from mvsd.progress import progress_bar

FAMILY_OF = {"reverb": "vam", "dereverb": "dereverb"}
__all__ = [
    "BAND_NAMES", "ROOM_METRICS", "EvalResult", "RoomComparison", "evaluate", "paired_difference", "run_evaluation",
]  # fmt: skip


def _reference(s, family: str) -> Reference:
    if family == "vam":
        return Reference(target=s.reverb, dry=s.clean, rt60=s.rt60, drr=s.drr)
    return Reference(target=s.clean)


def baseline_outputs(samples, ctx: BaselineContext) -> Outputs:
    """Every baseline's outputs, ``(family, name) -> [one per sample]``; ``None`` where the sample
    lacks what the baseline needs (:class:`~mvsd.eval.baselines.MissingInput`)."""
    out: dict[tuple[str, str], list[np.ndarray | None]] = {}
    for family, systems in BASELINES.items():
        for name, fn in systems.items():
            out[(family, name)] = [_try(fn, s, ctx) for s in samples]
    return out


def _try(fn, s, ctx: BaselineContext) -> np.ndarray | None:
    try:
        return fn(s, ctx)
    except MissingInput:
        return None


def true_room(samples) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 6)`` per-band T60 of each sample's RIR (measured, NaN where a band does not decay
    15 dB or the sample has no RIR) and ``(N,)`` DRR (the sample's, else its RIR's, else NaN)."""
    t60 = np.full((len(samples), len(ac.BANDS)), np.nan)
    drr = np.full(len(samples), np.nan)
    for i, s in enumerate(samples):
        if s.rir is not None:
            h = np.asarray(s.rir, dtype=np.float64)
            t60[i] = ac.band_t60_np(h[ac.onset(h) :])
        if s.drr is not None:
            drr[i] = s.drr
        elif s.rir is not None:
            drr[i] = ac.measure_drr(np.asarray(s.rir, dtype=np.float64))
    return t60, drr


def room_comparison(conv: Converter, samples, blank_image: bool = False) -> RoomComparison:
    """What the reverberator ``conv`` reads from each sample's image (or a grey one with
    ``blank_image``) and from a grey image, next to the truth (:func:`true_room`)."""
    grey = [np.full_like(s.image, 128) for s in samples]
    room = conv.describe_room(grey if blank_image else [s.image for s in samples], batch=len(samples))
    blank = conv.describe_room(grey[0], batch=1)
    true_t60, true_drr = true_room(samples)
    n = len(samples)
    return RoomComparison(
        keys=[s.key for s in samples],
        true_t60=true_t60,
        pred_t60=room.t60.detach().cpu().double().numpy().reshape(n, -1),
        blank_t60=np.repeat(blank.t60.detach().cpu().double().numpy().reshape(1, -1), n, axis=0),
        true_drr=true_drr,
        pred_drr=room.drr_db.detach().cpu().double().numpy().reshape(n),
        blank_drr=np.repeat(blank.drr_db.detach().cpu().double().numpy().reshape(1), n),
    )


def converter_outputs(
    round_dir: Path,
    label: str,
    samples,
    steps: int | None | list[int],
    blank_image: bool,
    timing: dict,
    rooms: dict | None = None,
) -> Outputs:
    """Both converters' outputs for every sample: labelled ``label`` at ``steps`` (None: the
    checkpoint's default), or ``label@<k>steps`` for each k of a list (a sweep; the image is
    encoded and the physical estimate made once for all, :meth:`Converter.convert_steps`).
    Seconds per second of audio go into ``timing`` (what each output costs on its own); with
    ``rooms``, the reverberator's :func:`room_comparison` goes into ``rooms[name]``."""
    out: Outputs = {}
    for direction, family in FAMILY_OF.items():
        conv = Converter.from_checkpoint(round_dir / f"{direction}.safetensors", expect_direction=direction)
        sweep = isinstance(steps, list)
        ks = steps if sweep else [conv.spec.steps if steps is None else steps]
        names = [f"{label}@{k}steps" for k in ks] if sweep else [label]
        if rooms is not None and direction == "reverb":
            comparison = room_comparison(conv, samples, blank_image)  # the room does not depend on the steps
            rooms.update(dict.fromkeys(names, comparison))
        x = np.stack([s.clean if direction == "reverb" else s.reverb for s in samples])
        images = [np.full_like(s.image, 128) if blank_image else s.image for s in samples]
        seconds: dict[int, float] = {}
        ys = conv.convert_steps(x, images, ks, seed=0, seconds=seconds)
        for name, k in zip(names, ks, strict=True):
            out[(family, name)] = list(ys[k])
            timing[f"{family}/{name}/rtf"] = seconds[k] / (x.size / SAMPLE_RATE)
    return out


def evaluate(
    dataset: str | Path,
    split: str = "test_unseen",
    rounds: dict[str, Path] | None = None,
    steps: int | None = None,
    sweep: list[int] | None = None,
    blank_image: bool = False,
    limit: int | None = None,
    baselines: bool = True,
    wpe_val: int = 12,
    rt60_model=None,
    examples: int = 0,
) -> EvalResult:
    """Score baselines (fit on the train split, WPE tuned on ``wpe_val`` val pairs) and each
    round's converters (``{label: round folder}``) on ``split``, at ``steps`` (None: the
    checkpoint's default) or at each step count of ``sweep`` (quality vs time). With
    ``rt60_model`` (:func:`rt60_estimator_for`) VAM rows also get ``blind_rt60_error``. The first
    ``examples`` samples and every system's outputs for them are kept in the result (the report's
    listening page plays them)."""
    samples = read_samples(dataset, [split], limit=limit)
    if not samples:
        raise ValueError(f"{dataset}: no paired samples in split {split!r}")
    outputs: Outputs = {}
    if baselines:
        val = read_samples(dataset, ["val"], limit=wpe_val)
        wpe_params, _ = tune_wpe([(s.reverb, s.clean) for s in val])
        outputs.update(
            baseline_outputs(samples, BaselineContext(bank=RirBank.from_dataset(dataset), wpe=wpe_params))
        )
    timing: dict[str, float] = {}
    rooms: dict[str, RoomComparison] = {}
    for label, folder in (rounds or {}).items():
        tag = blank_twin(label) if blank_image else label
        outputs.update(converter_outputs(Path(folder), tag, samples, sweep or steps, blank_image, timing, rooms))
    errors = {system: comparison.errors() for system, comparison in rooms.items()}
    # Identical outputs (e.g. the physical estimate, 0 steps, of rounds whose head did not
    # change) are scored once.
    twins = identical_outputs(outputs)
    jobs = [
        ((family, system), i, pred, _reference(s, family), family)
        for (family, system), preds in outputs.items()
        if (family, system) not in twins
        for i, (s, pred) in enumerate(zip(samples, preds))
        if pred is not None  # None: the sample lacks what this baseline needs
    ]
    scored = {}
    # PESQ (half of the scoring's CPU time, single-threaded C) runs in a helper process while
    # this one scores the rest, torch leaving the helper a core (on 2 cores its second thread
    # only spun against the helper; BENCHMARKS.md, "Where evaluation's minutes go").
    threads = torch.get_num_threads()
    with PesqHelper() as pesq, progress_bar("scoring", len(jobs)) as advance:
        pesq_jobs = {
            (key, i): pesq.submit(ref.target, pred) for key, i, pred, ref, family in jobs if family == "dereverb"
        }
        torch.set_num_threads(max(1, threads - 1))
        try:
            for key, i, pred, ref, family in jobs:
                scored[key, i] = score(pred, ref, family, with_pesq=False)
                advance(1)
        finally:
            torch.set_num_threads(threads)
        for k, job in pesq_jobs.items():
            scored[k] = {"pesq": pesq.result(job), **scored[k]}
    for system, twin in twins.items():
        for i in range(len(samples)):
            if (twin, i) in scored:
                scored[system, i] = scored[twin, i]
    rows = []
    for family, system in outputs:
        for i, s in enumerate(samples):
            if ((family, system), i) not in scored:
                continue
            room = errors[system][i] if family == "vam" and system in errors else {}
            rows.append({"key": s.key, "family": family, "system": system, **scored[(family, system), i], **room})
    if rt60_model is not None:  # RT60 error the second way: AViTAR's blind estimator, in batches
        add_blind_rt60(rows, outputs, samples, rt60_model)
    return EvalResult(
        f"{split}",
        rows,
        summarize(rows),
        timing,
        rooms,
        examples=samples[:examples],
        example_outputs={system: preds[:examples] for system, preds in outputs.items()} if examples else {},
    )


def identical_outputs(outputs: dict) -> dict:
    """``{system: earlier system}`` for each system whose outputs equal, sample for sample and bit
    for bit, those of an earlier system of the same family: they are scored once."""
    twins, seen = {}, []
    for key, preds in outputs.items():
        for other in seen:
            if other[0] == key[0] and all(
                (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
                for a, b in zip(preds, outputs[other])
            ):
                twins[key] = other
                break
        else:
            seen.append(key)
    return twins


def merge(*results: EvalResult) -> EvalResult:
    """One result from several evaluations of the same split (e.g. with pictures and with
    ``blank_image``): rows, timing and room comparisons together, summary recomputed. The report
    shows the image ablation table from such a result."""
    rows = [r for res in results for r in res.rows]
    timing = {k: v for res in results for k, v in res.timing.items()}
    rooms = {k: v for res in results for k, v in res.rooms.items()}
    examples = next((res.examples for res in results if res.examples), [])
    n = len(examples)
    outputs = {k: v[:n] for res in results for k, v in res.example_outputs.items()}
    return EvalResult(results[0].name, rows, summarize(rows), timing, rooms, examples, outputs)


def add_blind_rt60(rows: list[dict], outputs: dict, samples, model) -> None:
    """``blind_rt60_error`` = |est(output) - est(target)| seconds for every VAM row."""
    from mvsd.eval.rt60 import estimate_rt60

    truth = estimate_rt60(model, np.stack([s.reverb for s in samples]))
    by_system = {}
    for (family, system), preds in outputs.items():
        have = [i for i, p in enumerate(preds) if p is not None]
        if family == "vam" and have:
            est = estimate_rt60(model, np.stack([preds[i] for i in have]))
            by_system[system] = dict(zip(have, est, strict=True))
    index = {s.key: i for i, s in enumerate(samples)}
    for r in rows:
        if r["family"] == "vam":
            i = index[r["key"]]
            r["blind_rt60_error"] = float(abs(by_system[r["system"]][i] - truth[i]))


def rt60_estimator_for(dataset: str | Path, cache: str | Path = "checkpoints/rt60"):
    """The blind RT60 estimator of ``dataset``: trained on its train split (measured RT60s) the
    first time, then loaded from ``cache/<dataset version>.pt``. Returns (model, report with its
    own val MAE)."""
    from mvsd.eval.rt60 import load_rt60_estimator, save_rt60_estimator, train_rt60_estimator

    version = json.loads((Path(dataset) / "dataset.json").read_text())["version"]
    path = Path(cache) / f"{version}.pt"
    if path.exists():
        return load_rt60_estimator(path)
    model, report = train_rt60_estimator(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_rt60_estimator(model, path, report)
    return model, report


def summarize(rows: list[dict]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Mean, 95% confidence half-width (normal approximation, 1.96 s/sqrt(n)) and n per metric;
    NaN values (e.g. PESQ of silence) are left out and n says how many remained."""
    groups: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        g = groups.setdefault(f"{r['family']}/{r['system']}", {})
        for m in (*METRICS, "blind_rt60_error", *ROOM_METRICS):
            if m in r and r[m] is not None:
                g.setdefault(m, []).append(r[m])
    out = {}
    for g, metrics in groups.items():
        out[g] = {}
        for m, values in metrics.items():
            v = np.array([x for x in values if math.isfinite(x)], dtype=float)
            ci = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
            out[g][m] = (float(v.mean()) if len(v) else float("nan"), float(ci), int(len(v)))
    return out


def markdown(result: EvalResult) -> str:
    """One table per family: systems as rows, metrics (with ↓/↑) as columns, mean ± 95% CI."""
    lines = []
    for family in ("vam", "dereverb"):
        metrics = [m for m, spec in METRICS.items() if spec.family == family]
        systems = [g.split("/", 1)[1] for g in result.summary if g.startswith(family + "/")]
        if not systems:
            continue
        if family == "vam" and any("blind_rt60_error" in result.summary[f"vam/{x}"] for x in systems):
            metrics.append("blind_rt60_error")
        arrows = {m: "↑" if m in METRICS and METRICS[m].direction == "higher" else "↓" for m in metrics}
        lines += [
            f"\n**{'VAM (dry -> room)' if family == 'vam' else 'Dereverberation (room -> dry)'}**, {result.name}\n"
        ]
        lines.append("| system | " + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |")
        lines.append("|---|" + "---:|" * len(metrics))
        for system in systems:
            cells = []
            for m in metrics:
                mean, ci, _ = result.summary[f"{family}/{system}"].get(m, (float("nan"), float("nan"), 0))
                cells.append(f"{mean:.4g} ± {ci:.2g}")
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
    room_systems = [
        g for g in result.summary if g.startswith("vam/") and "room_drr_error" in result.summary[g]
    ]
    if room_systems:
        lines.append(f"\n**Room read from the image (reverberator's head vs the true RIR)**, {result.name}\n")
        cols = [*(f"room_t60_error_{b}" for b in BAND_NAMES), "room_t60_error", "room_drr_error"]
        lines.append(
            "| system | "
            + " | ".join(f"T60 {b} Hz (s) ↓" for b in BAND_NAMES)
            + " | T60 mean (s) ↓ | DRR (dB) ↓ |"
        )
        lines.append("|---|" + "---:|" * len(cols))
        for g in room_systems:
            cells = []
            for m in cols:
                mean, ci, _ = result.summary[g].get(m, (float("nan"), float("nan"), 0))
                cells.append(f"{mean:.3g} ± {ci:.2g}")
            lines.append(f"| {g.split('/', 1)[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def newest_model(result: EvalResult, rounds: dict[str, Path], options: dict) -> str | None:
    """The system name of the last round at the most steps evaluated (a sweep's last count), with
    pictures: what the headline is about. None without rounds or in a ``blank_image``-only run."""
    if not rounds or options.get("blank_image"):
        return None
    label = list(rounds)[-1]
    names = [g.split("/", 1)[1] for g in result.summary if g.startswith("vam/")]
    mine = [n for n in names if n == label or n.startswith(f"{label}@")]
    return mine[-1] if mine else None


def headline(result: EvalResult, model: str | None) -> dict[str, float]:
    """A dozen numbers for a terminal: per family and headline metric, ``<family>/model/<metric>``
    (the system ``model``, e.g. the newest round at its default steps), ``<family>/baseline/<metric>``
    (the best of :data:`BLIND_BASELINES` on that metric) and, where the evaluation has the image
    ablation, ``vam/grey_over_picture/<metric>`` (the model's error with a grey image over its own:
    above 1, the picture helps)."""
    out: dict[str, float] = {}
    for family, metrics in HEADLINE_METRICS.items():
        for m in metrics:
            better = max if METRICS[m].direction == "higher" else min
            values = [
                result.summary[f"{family}/{b}"][m][0]
                for b in BLIND_BASELINES[family]
                if m in result.summary.get(f"{family}/{b}", {})
            ]
            if values:
                out[f"{family}/baseline/{m}"] = round(better(values), 6)
            if model and m in result.summary.get(f"{family}/{model}", {}):
                out[f"{family}/model/{m}"] = round(result.summary[f"{family}/{model}"][m][0], 6)
    grey = result.summary.get(f"vam/{blank_twin(model)}", {}) if model else {}
    for m in HEADLINE_METRICS["vam"]:
        if m in grey and out.get(f"vam/model/{m}"):
            out[f"vam/grey_over_picture/{m}"] = round(grey[m][0] / out[f"vam/model/{m}"], 4)
    return out


def paired_markdown(result: EvalResult, model: str) -> str:
    """``model`` against every other system of its family that scored the same samples: the mean
    per-sample difference (other minus model) with its 95 % interval per headline metric, and
    whether the model is measurably better (interval clear of 0 on the right side), worse, or
    neither. Two systems on the same samples share the samples' difficulty, so this is the test
    behind "beyond the CI" (unpaired intervals of two means overlap far more often)."""
    lines = [f"\n**Paired differences against {model}** (other − {model}, same samples, mean ± 95% CI)\n"]
    for family, metrics in HEADLINE_METRICS.items():
        mine = result.rows_of(family, model)
        others = [g.split("/", 1)[1] for g in result.summary if g.startswith(f"{family}/")]
        others = [o for o in others if o != model and o not in EXACT_ORACLES[family]]
        if not mine or not others:
            continue
        lines += ["| " + family + " system | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
        for other in others:
            theirs = result.rows_of(family, other)
            cells = []
            for m in metrics:
                d, ci, n = paired_difference(mine, theirs, m)
                if n < 2:
                    cells.append("-")
                    continue
                model_better = d > 0 if METRICS[m].direction == "lower" else d < 0
                verdict = "" if abs(d) <= ci else (" (model better)" if model_better else " (model worse)")
                cells.append(f"{d:+.3g} ± {ci:.2g}{verdict}")
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write(result: EvalResult, out_dir: str | Path, name: str, model: str | None = None) -> dict[str, Path]:
    """The files of the module docstring (the headline with ``model``, the system it is about);
    returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = {f"{g}/{m}": round(v[0], 6) for g, ms in result.summary.items() for m, v in ms.items()}
    flat.update({k: round(v, 6) for k, v in result.timing.items()})
    paths = {
        "json": out_dir / f"{name}.json",
        "parquet": out_dir / f"{name}-samples.parquet",
        "md": out_dir / f"{name}.md",
    }
    paths["json"].write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    columns = list(dict.fromkeys(k for r in result.rows for k in r))  # every row's keys, not the first's
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in result.rows]), paths["parquet"]
    )
    paths["md"].write_text(markdown(result) + (paired_markdown(result, model) if model else ""))
    if model is not None:
        paths["headline"] = out_dir / f"{name}-headline.json"
        paths["headline"].write_text(json.dumps(headline(result, model), indent=2, sort_keys=True) + "\n")
    return paths


def run_evaluation(
    dataset: str | Path,
    split: str,
    rounds: dict[str, Path],
    out: str | Path,
    name: str | None = None,
    *,
    report: str | Path | None = None,
    report_samples: int = 4,
    blind_rt60: bool = True,
    rt60_cache: str | Path = "checkpoints/rt60",
    ablation: bool = False,
    **kwargs,
) -> tuple[EvalResult, dict[str, Path]]:
    """``mvsd eval`` as one call (the CLI and the flows use it): score, write the metric files and,
    with ``report``, the listening page from the same scores. ``kwargs`` go to :func:`evaluate`.

    ``ablation``: the last of ``rounds`` (the newest model) is evaluated a second time with a
    uniform grey image instead of each room's, at the same steps (rows ``<label>-blank-image``,
    :func:`~mvsd.eval.result.blank_twin`), in the same files and report as the rest."""
    from mvsd.eval.report import make_report

    model = rt60_estimator_for(dataset, rt60_cache)[0] if blind_rt60 else None
    examples = report_samples if report else 0
    result = evaluate(dataset, split, rounds, rt60_model=model, examples=examples, **kwargs)
    if ablation and rounds and not kwargs.get("blank_image"):
        label, folder = list(rounds.items())[-1]
        options = {k: v for k, v in kwargs.items() if k in ("steps", "sweep", "limit")}
        blank = evaluate(
            dataset, split, {label: folder}, rt60_model=model, examples=examples,
            baselines=False, blank_image=True, **options,
        )  # fmt: skip
        result = merge(result, blank)
    suffix = BLANK if kwargs.get("blank_image") else ""
    paths = write(result, out, (name or split) + suffix, model=newest_model(result, rounds, kwargs))
    if report is not None:
        paths["report"] = make_report(result, report, title=f"{dataset}, split {split}")
    return result, paths
