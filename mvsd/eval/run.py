"""``mvsd eval``: every system — baselines and the converters — under one script, same samples.

For a split of a dataset and (optionally) a round folder of converters, every VAM system turns
each sample's dry speech into reverberant speech and every dereverberation system does the
inverse; each output is scored with the family's metrics (:mod:`mvsd.eval.metrics`). Written:

* ``metrics/<name>.json``          flat ``family/system/metric -> mean`` (for ``dvc metrics``)
* ``metrics/<name>-samples.parquet``  one row per (sample, family, system) with every metric
* ``metrics/<name>.md``            mean ± 95% confidence interval per system and metric

Ablation flags: ``blank_image`` feeds the converters a uniform grey image instead of the room's
(how much does the picture matter?); several ``rounds`` are evaluated side by side (paired-only
round 0 vs a mutual-learning round).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mvsd.audio_io import SAMPLE_RATE
from mvsd.converter import Converter
from mvsd.eval.baselines import BASELINES, BaselineContext, RirBank, read_samples, tune_wpe
from mvsd.eval.metrics import METRICS, Reference, score
from mvsd.progress import progress_bar

FAMILY_OF = {"reverb": "vam", "dereverb": "dereverb"}


@dataclass(frozen=True)
class EvalResult:
    name: str
    rows: list[dict]  # per sample
    summary: dict[str, dict[str, tuple[float, float, int]]]  # "family/system" -> metric -> (mean, ci95, n)
    timing: dict[str, float]  # "family/system/rtf" -> processing seconds per second of audio


def _reference(s, family: str) -> Reference:
    if family == "vam":
        return Reference(target=s.reverb, dry=s.clean, rt60=s.rt60, drr=s.drr)
    return Reference(target=s.clean)


def baseline_outputs(samples, ctx: BaselineContext) -> dict[tuple[str, str], list[np.ndarray]]:
    """Every baseline's outputs, ``(family, name) -> [one per sample]``."""
    return {
        (family, name): [fn(s, ctx) for s in samples]
        for family, systems in BASELINES.items()
        for name, fn in systems.items()
    }


def converter_outputs(
    round_dir: Path, label: str, samples, steps: int | None, blank_image: bool, timing: dict
) -> dict:
    """Both converters' outputs for every sample; seconds per clip of audio go into ``timing``."""
    out = {}
    for direction, family in FAMILY_OF.items():
        conv = Converter.from_checkpoint(round_dir / f"{direction}.safetensors", expect_direction=direction)
        x = np.stack([s.clean if direction == "reverb" else s.reverb for s in samples])
        images = [np.full_like(s.image, 128) if blank_image else s.image for s in samples]
        t0 = time.perf_counter()
        out[(family, label)] = list(conv.convert(x, images, steps=steps, seed=0))
        timing[f"{family}/{label}/rtf"] = (time.perf_counter() - t0) / (x.size / SAMPLE_RATE)
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
) -> EvalResult:
    """Score baselines (fit on the train split, WPE tuned on ``wpe_val`` val pairs) and each
    round's converters (``{label: round folder}``) on ``split``, at ``steps`` (None: the
    checkpoint's default) or at each step count of ``sweep`` (quality vs time). With
    ``rt60_model`` (:func:`rt60_estimator_for`) VAM rows also get ``blind_rt60_error``."""
    samples = read_samples(dataset, [split], limit=limit)
    if not samples:
        raise ValueError(f"{dataset}: no paired samples in split {split!r}")
    outputs: dict[tuple[str, str], list[np.ndarray]] = {}
    if baselines:
        val = read_samples(dataset, ["val"], limit=wpe_val)
        wpe_params, _ = tune_wpe([(s.reverb, s.clean) for s in val])
        outputs.update(
            baseline_outputs(samples, BaselineContext(bank=RirBank.from_dataset(dataset), wpe=wpe_params))
        )
    timing: dict[str, float] = {}
    for label, folder in (rounds or {}).items():
        tag = f"{label}-blank-image" if blank_image else label
        for k in sweep or [steps]:
            name = tag if not sweep else f"{tag}@{k}steps"
            outputs.update(converter_outputs(Path(folder), name, samples, k, blank_image, timing))
    rows = []
    with progress_bar("scoring", len(outputs) * len(samples)) as advance:
        for (family, system), preds in outputs.items():
            for s, pred in zip(samples, preds):
                rows.append(
                    {
                        "key": s.key,
                        "family": family,
                        "system": system,
                        **score(pred, _reference(s, family), family),
                    }
                )
                advance(1)
    if rt60_model is not None:  # RT60 error the second way: AViTAR's blind estimator, in batches
        add_blind_rt60(rows, outputs, samples, rt60_model)
    return EvalResult(f"{split}", rows, summarize(rows), timing)


def add_blind_rt60(rows: list[dict], outputs: dict, samples, model) -> None:
    """``blind_rt60_error`` = |est(output) - est(target)| seconds for every VAM row."""
    from mvsd.eval.rt60 import estimate_rt60

    truth = estimate_rt60(model, np.stack([s.reverb for s in samples]))
    by_system = {
        system: estimate_rt60(model, np.stack(preds))
        for (family, system), preds in outputs.items()
        if family == "vam"
    }
    index = {s.key: i for i, s in enumerate(samples)}
    for r in rows:
        if r["family"] == "vam":
            r["blind_rt60_error"] = float(
                abs(by_system[r["system"]][index[r["key"]]] - truth[index[r["key"]]])
            )


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
        for m in (*METRICS, "blind_rt60_error"):
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
    return "\n".join(lines) + "\n"


def write(result: EvalResult, out_dir: str | Path, name: str) -> dict[str, Path]:
    """The three files of the module docstring; returns their paths."""
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
    pq.write_table(pa.Table.from_pylist(result.rows), paths["parquet"])
    paths["md"].write_text(markdown(result))
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
    **kwargs,
) -> tuple[EvalResult, dict[str, Path]]:
    """``mvsd eval`` as one call (the CLI and the flows use it): score, write the metric files and,
    with ``report``, the listening page from the same scores. ``kwargs`` go to :func:`evaluate`."""
    model = rt60_estimator_for(dataset, rt60_cache)[0] if blind_rt60 else None
    result = evaluate(dataset, split, rounds, rt60_model=model, **kwargs)
    suffix = "-blank-image" if kwargs.get("blank_image") else ""
    paths = write(result, out, (name or split) + suffix)
    if report is not None:
        from mvsd.eval.report import make_report

        paths["report"] = make_report(dataset, split, rounds, report, n=report_samples, result=result)
    return result, paths
