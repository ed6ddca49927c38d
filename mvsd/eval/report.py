"""``mvsd report``: a static listening page like the paper's demo page, opened from disk.

For a handful of test samples: the room image, then for each task (VAM: dry -> room;
dereverberation: room -> dry) an audio player and a spectrogram for the source, the ground truth,
every baseline and every round's converter; below them the metric tables (mean ± 95% CI of an
``mvsd eval`` run on the same split) and bar plots. Every file is referenced by a relative path,
so the folder can be copied anywhere and opened with a browser, no server.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from mvsd.audio_io import SAMPLE_RATE
from mvsd.eval.baselines import BaselineContext, RirBank, read_samples
from mvsd.eval.metrics import METRICS
from mvsd.eval.run import EvalResult, baseline_outputs, converter_outputs

TASKS = {"vam": ("clean", "reverb"), "dereverb": ("reverb", "clean")}  # family -> (source, truth)


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


def _bar_plot(summary: dict, family: str, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        (g.split("/", 1)[1], v[metric])
        for g, v in summary.items()
        if g.startswith(family + "/") and metric in v
    ]
    fig, ax = plt.subplots(figsize=(5, 2.4), dpi=90)
    ax.bar(
        [g for g, _ in groups],
        [m for _, (m, _, _) in groups],
        yerr=[c for _, (_, c, _) in groups],
        capsize=3,
        color="#4a6fa5",
    )
    arrow = "lower is better" if METRICS[metric].direction == "lower" else "higher is better"
    ax.set_title(f"{metric} ({arrow})", fontsize=9)
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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


def make_report(
    dataset: str | Path,
    split: str,
    rounds: dict[str, Path],
    out: str | Path,
    n: int = 4,
    result: EvalResult | None = None,
) -> Path:
    """Write ``out/index.html`` and its media; returns the page's path."""
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    samples = read_samples(dataset, [split], limit=n)
    ctx = BaselineContext(bank=RirBank.from_dataset(dataset))
    outputs = baseline_outputs(samples, ctx)
    for label, folder in rounds.items():
        outputs.update(converter_outputs(Path(folder), label, samples, None, False, {}))
    parts = [
        f"<h1>MVSD listening report</h1><p>{html.escape(str(dataset))}, split <b>{split}</b>, {len(samples)} samples</p>"
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
            title = (
                "Visual acoustic matching (dry → room)" if task == "vam" else "Dereverberation (room → dry)"
            )
            cells = [("Source", _clip(out, f"media/{i}-{task}-source", getattr(s, src))),
                     ("Ground truth", _clip(out, f"media/{i}-{task}-truth", getattr(s, truth)))]  # fmt: skip
            cells += [
                (name, _clip(out, f"media/{i}-{task}-{name}", ys[i]))
                for (family, name), ys in outputs.items()
                if family == task
            ]
            row = "".join(f"<td><b>{html.escape(name)}</b><br>{c}</td>" for name, c in cells)
            parts.append(f"<h3>{title}</h3><table class='clips'><tr>{row}</tr></table>")
    if result is not None:
        parts.append("<h2>Metrics</h2>")
        for family, metric in (("vam", "stft_distance"), ("dereverb", "si_sdr")):
            _bar_plot(result.summary, family, metric, out / "media" / f"plot-{family}.png")
            parts.append(
                f"<h3>{family}</h3>{_table_html(result.summary, family)}<img src='media/plot-{family}.png' alt='{metric} plot'>"
            )
        (out / "metrics.json").write_text(json.dumps(result.summary, indent=1))
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:4px;font-size:12px;vertical-align:top}img.room{width:256px}"
             "img.spec{width:220px}audio{width:220px}")  # fmt: skip
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>MVSD report</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    (out / "index.html").write_text(page)
    return out / "index.html"
