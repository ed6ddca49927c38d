"""``mvsd report``: a static listening page like the paper's demo page, opened from disk.

It renders what an evaluation (:func:`mvsd.eval.run.evaluate` with ``examples``) computed and
computes nothing itself. For the evaluation's first few samples: the room image, then for each
task (VAM: dry -> room; dereverberation: room -> dry) an audio player and a spectrogram for the
source, the ground truth and every system the evaluation ran (baselines, each round at each step
count, blank-image rows); below them the metric tables (mean ± 95% CI) and bar plots of the
headline metrics (the exact oracles left out: they would flatten every other bar); for each
round's reverberator, scatter plots of the room it reads from the picture (per-octave-band T60
and DRR, :class:`RoomComparison`) against the true RIR's, with what it reads from a blank grey
image beside them; and, when the evaluation has grey-image rows next to the picture rows
(``mvsd eval --ablation``), the image ablation table with paired differences. Every file is
referenced by a relative path, so the folder can be copied anywhere and opened with a browser,
no server.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mvsd.audio_io import SAMPLE_RATE
from mvsd.eval.metrics import METRICS
from mvsd.eval.result import (
    BAND_NAMES,
    BLANK,
    EXACT_ORACLES,
    HEADLINE_METRICS,
    EvalResult,
    RoomComparison,
    blank_twin,
    paired_difference,
)

TASKS = {"vam": ("clean", "reverb"), "dereverb": ("reverb", "clean")}  # family -> (source, truth)


def _file_safe(name: str) -> str:
    """A system name as a file name (labels like ``run/round-1`` hold a slash)."""
    return re.sub(r"[^\w@.+-]", "_", name)


def _spectrogram_png(x: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = np.abs(
        np.fft.rfft(
            np.lib.stride_tricks.sliding_window_view(np.pad(x, 256), 512)[::128] * np.hanning(512), axis=-1
        )
    )
    fig, ax = plt.subplots(figsize=(3.2, 1.6), dpi=80)
    ax.imshow(20 * np.log10(spec.T + 1e-5), origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=20,
              extent=(0, len(x) / SAMPLE_RATE, 0, SAMPLE_RATE / 2000))  # fmt: skip
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("kHz", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout(pad=0.2)
    fig.savefig(path)
    plt.close(fig)


def plotted(summary: dict, family: str) -> tuple[list[str], list[str]]:
    """The systems and metrics :func:`_bar_plot` draws for ``family``."""
    systems = [
        g.split("/", 1)[1]
        for g in summary
        if g.startswith(family + "/") and g.split("/", 1)[1] not in EXACT_ORACLES[family]
    ]
    metrics = [m for m in HEADLINE_METRICS[family] if any(m in summary[f"{family}/{x}"] for x in systems)]
    return systems, metrics


def _bar_plot(summary: dict, family: str, path: Path) -> bool:
    """One panel per headline metric of ``family``: a horizontal bar per system (mean, 95 % CI),
    the exact oracles left out so that the systems a reader compares share a readable scale.
    Returns whether there was anything to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems, metrics = plotted(summary, family)
    if not systems or not metrics:
        return False
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.9 + 0.28 * len(systems)), dpi=90, sharey=True
    )
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        nan = (float("nan"), float("nan"), 0)
        values = [summary[f"{family}/{x}"].get(m, nan) for x in systems]
        ax.barh(range(len(systems)), [v[0] for v in values], xerr=[v[1] for v in values], capsize=2,
                color=["#a0a0a0" if BLANK in x else "#4a6fa5" for x in systems])  # fmt: skip
        arrow = "lower is better" if METRICS[m].direction == "lower" else "higher is better"
        ax.set_title(f"{m} ({arrow})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes0 = np.atleast_1d(axes)[0]
    axes0.set_yticks(range(len(systems)), systems)
    axes0.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _room_scatter(c: RoomComparison, label: str, path: Path) -> None:
    """Predicted vs true T60 (one panel per octave band, log axes) and DRR: a dot per sample from
    its picture, a grey cross from a blank image; the diagonal is a perfect reading."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    fig, axes = plt.subplots(2, 4, figsize=(11, 5.5), dpi=90)
    panels = [(f"T60 {b} Hz (s)", c.true_t60[:, k], c.pred_t60[:, k], c.blank_t60[:, k], True)
              for k, b in enumerate(BAND_NAMES)]  # fmt: skip
    panels.append(("DRR (dB)", c.true_drr, c.pred_drr, c.blank_drr, False))
    for ax, (title, true, pred, blank, log) in zip(axes.flat, panels):
        ok = np.isfinite(true) & np.isfinite(pred)
        values = np.concatenate([true[ok], pred[ok], blank[ok]]) if ok.any() else np.array([0.1, 1.0])
        lo, hi = float(values.min()), float(values.max())
        lo, hi = (lo / 1.2, hi * 1.2) if log else (lo - 0.05 * (hi - lo) - 0.5, hi + 0.05 * (hi - lo) + 0.5)
        ax.plot([lo, hi], [lo, hi], color="#999", lw=0.8)
        ax.scatter(true[ok], blank[ok], marker="x", s=14, color="#aaa", label="blank image")
        ax.scatter(true[ok], pred[ok], s=12, color="#4a6fa5", label="picture")
        mae = float(np.mean(np.abs(pred[ok] - true[ok]))) if ok.any() else float("nan")
        mae_blank = float(np.mean(np.abs(blank[ok] - true[ok]))) if ok.any() else float("nan")
        ax.set_title(f"{title}\nMAE {mae:.2f} (blank image {mae_blank:.2f}), n={int(ok.sum())}", fontsize=8)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 4, 8) if lo <= t <= hi]
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(FixedLocator(ticks))
                axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_locator(NullLocator())
                axis.set_minor_formatter(NullFormatter())
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("true", fontsize=7)
        ax.set_ylabel("predicted", fontsize=7)
    legend = axes.flat[-1]
    legend.axis("off")
    legend.legend(*axes.flat[0].get_legend_handles_labels(), loc="center", fontsize=9)
    fig.suptitle(f"{label}: room read from the image vs the true RIR", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _ablation_html(result: EvalResult) -> str:
    """Systems evaluated both with pictures and with a grey image: their means side by side and
    the paired difference (grey minus picture, same samples) with its 95 % interval."""
    summary = result.summary
    out = []
    for g, values in summary.items():
        family, system = g.split("/", 1)
        blank = summary.get(f"{family}/{blank_twin(system)}")
        if blank is None or BLANK in system:
            continue
        mine, theirs = result.rows_of(family, system), result.rows_of(family, blank_twin(system))
        for m in (
            *[m for m, spec in METRICS.items() if spec.family == family],
            "room_t60_error",
            "room_drr_error",
        ):
            if m in values and m in blank:
                a, b = values[m][0], blank[m][0]
                ratio = f"{b / a:.2f}" if a else "-"
                d, ci, _ = paired_difference(mine, theirs, m)
                out.append(f"<tr><th>{html.escape(family)}/{html.escape(system)}</th><td>{m}</td>"
                           f"<td>{a:.4g}</td><td>{b:.4g}</td><td>{ratio}</td><td>{d:+.3g} ± {ci:.2g}</td></tr>")  # fmt: skip
    if not out:
        return ""
    return ("<h2>Image ablation</h2><p>The same converters given a uniform grey image instead of the room's, "
            "on the same samples.</p><table><tr><th>system</th><th>metric</th><th>picture</th>"
            "<th>grey image</th><th>grey / picture</th><th>grey − picture (paired, 95 % CI)</th></tr>"
            + "".join(out) + "</table>")  # fmt: skip


def _clip(out: Path, rel: str, x: np.ndarray) -> str:
    """Write a wav and its spectrogram; HTML for both."""
    wav, png = out / f"{rel}.wav", out / f"{rel}.png"
    wav.parent.mkdir(parents=True, exist_ok=True)
    peak = max(1e-9, float(np.max(np.abs(x))))
    sf.write(wav, x / max(1.0, peak), SAMPLE_RATE, subtype="PCM_16")
    _spectrogram_png(x, png)
    return f'<audio controls preload="metadata" src="{rel}.wav"></audio><br><img class="spec" src="{rel}.png" alt="spectrogram">'


def _table_html(summary: dict, family: str) -> str:
    metrics = [m for m, spec in METRICS.items() if spec.family == family]
    head = "".join(f"<th>{m} {'↓' if METRICS[m].direction == 'lower' else '↑'}</th>" for m in metrics)
    rows = []
    for g, values in summary.items():
        if g.startswith(family + "/"):
            cells = "".join(
                f"<td>{values[m][0]:.4g} ± {values[m][1]:.2g}</td>" if m in values else "<td>-</td>"
                for m in metrics
            )
            rows.append(f"<tr><th>{html.escape(g.split('/', 1)[1])}</th>{cells}</tr>")
    return f"<table><tr><th>system</th>{head}</tr>{''.join(rows)}</table>"


def _rooms_to_plot(result: EvalResult) -> dict[str, RoomComparison]:
    """The evaluation's room comparisons, one per round (a step sweep repeats the same one)."""
    out: dict[str, RoomComparison] = {}
    for name, c in result.rooms.items():
        if not any(c is d for d in out.values()):
            out[name.split("@")[0]] = c
    return out


def make_report(result: EvalResult, out: str | Path, title: str = "") -> Path:
    """Write ``out/index.html`` and its media from what an evaluation computed (its
    ``examples``, ``example_outputs``, ``summary`` and ``rooms``: nothing is recomputed); returns
    the page's path. ``title`` says what was evaluated (dataset and split)."""
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    samples, outputs = result.examples, result.example_outputs
    parts = [
        f"<h1>MVSD listening report</h1><p>{html.escape(title or result.name)}: {len(samples)} samples</p>"
    ]
    for i, s in enumerate(samples):
        Image.fromarray(s.image).save(out / "media" / f"{i}-room.png")
        meta = (
            f"room {html.escape(str(s.room_id))}, RT60 {s.rt60:.2f} s, DRR {s.drr:.1f} dB"
            if s.rt60 is not None
            else ""
        )
        parts.append(
            f'<h2>Sample {i + 1}: {html.escape(s.key)}</h2><p>{meta}</p><img class="room" src="media/{i}-room.png" alt="room image">'
        )
        for task, (src, truth) in TASKS.items():
            heading = (
                "Visual acoustic matching (dry → room)" if task == "vam" else "Dereverberation (room → dry)"
            )
            cells = [("Source", _clip(out, f"media/{i}-{task}-source", getattr(s, src))),
                     ("Ground truth", _clip(out, f"media/{i}-{task}-truth", getattr(s, truth)))]  # fmt: skip
            cells += [
                (name, _clip(out, f"media/{i}-{task}-{_file_safe(name)}", ys[i]))
                for (family, name), ys in outputs.items()
                if family == task and ys[i] is not None  # None: the sample lacks what it needs
            ]
            row = "".join(f"<td><b>{html.escape(name)}</b><br>{c}</td>" for name, c in cells)
            parts.append(f"<h3>{heading}</h3><table class='clips'><tr>{row}</tr></table>")
    parts.append("<h2>Metrics</h2>")
    for family in ("vam", "dereverb"):
        plot = (
            f"<br><img src='media/plot-{family}.png' alt='{family} plot'><br><small>The plots leave out "
            f"{', '.join(EXACT_ORACLES[family])} (its output is the target); grey bars: a grey image.</small>"
            if _bar_plot(result.summary, family, out / "media" / f"plot-{family}.png")
            else ""
        )
        parts.append(f"<h3>{family}</h3>{_table_html(result.summary, family)}{plot}")
    (out / "metrics.json").write_text(json.dumps(result.summary, indent=1))
    parts.append(_ablation_html(result))
    rooms = _rooms_to_plot(result)
    if rooms:
        parts.append("<h2>Room read from the image</h2><p>Each round's reverberator: the per-band T60 "
                     "and DRR its head reads from the picture (dots) and from a blank grey image "
                     "(crosses) against the true RIR's.</p>")  # fmt: skip
        for j, (label, comparison) in enumerate(rooms.items()):
            _room_scatter(comparison, label, out / "media" / f"room-{j}.png")
            parts.append(
                f"<h3>{html.escape(label)}</h3><img class='scatter' src='media/room-{j}.png' alt='room scatter {html.escape(label)}'>"
            )
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:4px;font-size:12px;vertical-align:top}img.room{width:256px}"
             "img.spec{width:220px}audio{width:220px}img.scatter{width:900px;max-width:100%}")  # fmt: skip
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>MVSD report</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    (out / "index.html").write_text(page)
    return out / "index.html"
