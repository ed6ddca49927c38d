"""How much does unpaired data buy? Mutual learning against paired-only training, by paired fraction.

    .venv/bin/python benchmarks/data_efficiency.py [--fractions 0.1,0.25,0.66] [--seeds 0] [--rounds 1] \
        [--split test_unseen] [--root build/data-efficiency] [--set KEY=VALUE ...]

For each paired fraction f of SimRooms' training pool (1,600 samples by default: f of them paired,
the rest split evenly into dry-only and room-only pools; the same rooms, and the same val and
test samples, whatever f — see ``mvsd.sim.synth.plan_samples``) and each seed:

1. ``mvsd synth`` with ``simrooms.pool_ratios`` set to (f, (1-f)/2, (1-f)/2);
2. round 0 on the paired samples (``mvsd train --round 0``), shared by both regimes;
3. mutual learning: ROUNDS x (``mvsd pseudo`` from the unpaired pools -> ``mvsd train``);
4. paired only: the same rounds with the same steps and seed, from the same round 0, with
   ``train.pseudo_fraction=0`` (every batch from the paired samples);
5. ``mvsd eval --no-baselines`` of round 0 and every round of both regimes on the same samples.

Writes ``results.md`` and ``report.html`` (mean ± 95 % CI per regime, and the paired difference mutual - paired only;
the last round, then every round), ``results.json``, ``curve.png`` (STFT distance and PESQ against
the paired fraction, one line per regime) and ``rounds.png`` (the same against the round) to
``--root``. Every step is an ordinary CLI call; finished steps are skipped when rerun
(a killed experiment resumes). ``--set`` overrides go to every call but ``mvsd eval``, which takes
its settings from the checkpoints (tests run it at tiny size).
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mvsd.eval.result import paired_difference

METRICS = {"vam": ("stft_distance", "rt60_error", "drr_error"), "dereverb": ("pesq", "estoi", "si_sdr")}
LOWER_IS_BETTER = {"stft_distance", "rt60_error", "drr_error"}
STEPS = ("synth", "train", "pseudo", "eval")


def mvsd(*args: str, sets: list[str], times: Path | None = None, run: str = "") -> None:
    """One CLI call; its wall time is appended to ``times`` (JSON lines) when given."""
    cli = Path(sys.executable).with_name("mvsd")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-c", "from mvsd.cli import app; app()"]
    cmd += [*args, *[a for s in sets for a in ("--set", s)]]
    print("$", " ".join(cmd[1:] if cli.exists() else cmd[3:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    if times is not None:
        with open(times, "a") as f:
            f.write(
                json.dumps({"run": run, "step": args[0], "seconds": round(time.perf_counter() - t0, 1)})
                + "\n"
            )


def wall_times(root: Path) -> dict[str, dict[str, float]]:
    """run -> {step: seconds, "total": seconds} of the calls that ran (a rerun adds what it redid)."""
    out: dict[str, dict[str, float]] = {}
    path = root / "times.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        e = json.loads(line)
        d = out.setdefault(e["run"], {})
        for k in (e["step"], "total"):
            d[k] = round(d.get(k, 0.0) + e["seconds"], 1)
    return out


def ratios(f: float) -> list[str]:
    rest = round((1 - f) / 2, 6)
    return [
        f"simrooms.pool_ratios.paired={f}",
        f"simrooms.pool_ratios.clean_only={rest}",
        f"simrooms.pool_ratios.reverb_only={rest}",
    ]


def run_fraction(
    root: Path, f: float, seed: int, rounds: int, split: str, limit: int, sets: list[str]
) -> list[Path]:
    """Everything for one (fraction, seed); returns the evaluation's per-sample tables."""
    pct = f"p{round(f * 100):02d}"
    data = str(root / f"simrooms-{pct}")
    run = f"{pct}-s{seed}"
    mutual_ck, paired_ck = root / "ck-mutual", root / "ck-paired"
    common = [*sets, f"train.seed={seed}"]
    done = lambda ck, k: (ck / run / f"round-{k}" / "reverb.safetensors").exists()  # noqa: E731

    def call(*args: str, sets: list[str]) -> None:  # every call of this run, timed
        mvsd(*args, sets=sets, times=root / "times.jsonl", run=run)

    if not (Path(data) / "manifest.parquet").exists():
        call("synth", "--out", data, sets=[*sets, *ratios(f)])
    at = ["--dataset", data, "--run", run, "--round"]  # + the round, then where its checkpoints go
    if not done(mutual_ck, 0):
        call("train", *at, "0", "--checkpoints", str(mutual_ck), sets=common)
    if not (paired_ck / run / "round-0").exists():
        shutil.copytree(mutual_ck / run / "round-0", paired_ck / run / "round-0")
    for k in range(1, rounds + 1):
        if not done(mutual_ck, k):
            call("pseudo", *at, str(k - 1), "--checkpoints", str(mutual_ck), sets=common)
            call("train", *at, str(k), "--checkpoints", str(mutual_ck), sets=common)
        if not done(paired_ck, k):  # the planner finds the run's pseudo-pair sets; fraction 0 leaves them out
            paired_only = [*common, "train.pseudo_fraction=0"]
            call("train", *at, str(k), "--checkpoints", str(paired_ck), sets=paired_only)
    # every round of both regimes, so that the table can show where the rounds saturate; a rerun
    # with more rounds scores only the new ones, into one more table beside the earlier ones
    folders = [mutual_ck / run / "round-0"]
    folders += [ck / run / f"round-{k}" for k in range(1, rounds + 1) for ck in (mutual_ck, paired_ck)]
    tables = sorted((root / "eval").glob(f"{run}-{split}*-samples.parquet"))
    scored = {s for t in tables for s in pq.read_table(t, columns=["system"]).column("system").to_pylist()}
    todo = [d for d in folders if str(d) not in scored]
    if todo:
        name = f"{run}-{split}" + (f"-{len(tables)}" if tables else "")
        args = ["--dataset", data, "--split", split, "--limit", str(limit), "--no-baselines"]
        args += [a for d in todo for a in ("--round", str(d))] + ["--name", name, "--out", str(root / "eval")]
        call("eval", *args, sets=[])  # eval takes its settings from the checkpoints: no --set
        tables.append(root / "eval" / f"{name}-samples.parquet")
    return tables


def read_tables(samples: Path | list[Path]) -> list[dict]:
    """The per-sample rows of one evaluation table or several (the same samples, other systems)."""
    return [
        r for t in ([samples] if isinstance(samples, Path) else samples) for r in pq.read_table(t).to_pylist()
    ]


def systems(rows: list[dict], k: int) -> dict[str, str]:
    """regime -> the evaluation's system name of round ``k`` (``mvsd eval`` labels rounds by folder)."""
    names = sorted({r["system"] for r in rows})
    pick = lambda *parts: next(n for n in names if all(p in n for p in parts))  # noqa: E731
    return {
        "round 0 (paired)": pick("round-0"),
        "paired only": pick("ck-paired", f"round-{k}"),
        "mutual learning": pick("ck-mutual", f"round-{k}"),
    }


def ci95(x: np.ndarray) -> float:
    return float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def compare(rows: list[dict], regimes: dict[str, str]) -> dict:
    """Mean ± 95 % CI of each regime on the samples all of them scored, and mutual - paired only."""
    of = {regime: [r for r in rows if r["system"] == name] for regime, name in regimes.items()}
    out: dict = {"means": {}, "diff": {}}
    for family, metrics in METRICS.items():
        by = {rg: {r["key"]: r for r in rs if r["family"] == family} for rg, rs in of.items()}
        keys = sorted(set.intersection(*(set(v) for v in by.values())))
        for m in metrics:
            vals = {rg: np.array([by[rg][k][m] for k in keys], float) for rg in by}
            ok = np.logical_and.reduce([np.isfinite(v) for v in vals.values()])
            for rg, v in vals.items():
                out["means"].setdefault(rg, {})[m] = (float(v[ok].mean()), ci95(v[ok]), int(ok.sum()))
            out["diff"][m] = paired_difference(
                [r for r in of["paired only"] if r["family"] == family],
                [r for r in of["mutual learning"] if r["family"] == family],
                m,
            )
    return out


def summarise(samples: Path | list[Path], rounds: int) -> dict:
    """The last round's comparison (``means``, ``diff``), and every round's under ``by_round``."""
    rows = read_tables(samples)
    by_round = {str(k): compare(rows, systems(rows, k)) for k in range(1, rounds + 1)}
    return {**by_round[str(rounds)], "by_round": by_round}


def _cells(means: dict) -> str:
    return " | ".join(f"{means[m][0]:.4g} ± {means[m][1]:.2g}" for ms in METRICS.values() for m in ms)


def _diff_cells(diff: dict) -> str:
    cells = []
    for m in (m for ms in METRICS.values() for m in ms):
        mean, ci, _ = diff[m]
        better = (mean < 0) if m in LOWER_IS_BETTER else (mean > 0)
        mark = "**" if abs(mean) > ci and better else ""
        cells.append(f"{mark}{mean:+.3g} ± {ci:.2g}{mark}")
    return " | ".join(cells)


def report(root: Path, results: dict[str, dict], split: str) -> None:
    header = " | ".join(m for ms in METRICS.values() for m in ms)
    rule = "---:|" * sum(map(len, METRICS.values()))
    lines = [f"# Mutual learning vs paired only, by paired fraction ({split})", ""]
    lines += [f"| paired fraction | seed | regime | {header} |", f"|---|---|---|{rule}"]
    for tag, res in results.items():
        f, seed = tag.split("/")
        for regime, means in res["means"].items():
            lines.append(f"| {f} | {seed} | {regime} | {_cells(means)} |")
        lines.append(f"| {f} | {seed} | mutual - paired only | {_diff_cells(res['diff'])} |")
    lines += ["", "Bold: mutual learning better beyond the paired 95 % interval.", ""]
    lines += [
        "## By round",
        "",
        f"| paired fraction | seed | round | regime | {header} |",
        f"|---|---|---:|---|{rule}",
    ]
    for tag, res in results.items():
        f, seed = tag.split("/")
        lines.append(f"| {f} | {seed} | 0 | round 0 (paired) | {_cells(res['means']['round 0 (paired)'])} |")
        for k, rk in res["by_round"].items():
            for regime in ("paired only", "mutual learning"):
                lines.append(f"| {f} | {seed} | {k} | {regime} | {_cells(rk['means'][regime])} |")
            lines.append(f"| {f} | {seed} | {k} | mutual - paired only | {_diff_cells(rk['diff'])} |")
    times = wall_times(root)
    if times:
        lines += ["", "## CPU wall time of the calls that ran (s)", ""]
        lines += ["| run | " + " | ".join(STEPS) + " | total |", "|---|" + "---:|" * (len(STEPS) + 1)]
        for run, t in times.items():
            lines.append(f"| {run} | " + " | ".join(f"{t.get(k, 0):.0f}" for k in (*STEPS, "total")) + " |")
    (root / "results.md").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_fraction = seed_means(results)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, m in zip(axes, ("stft_distance", "pesq")):
        for regime in ("paired only", "mutual learning"):
            xs = np.array(sorted(by_fraction))
            ys, es = np.array([by_fraction[f]["last"][regime][m] for f in xs]).T
            ax.errorbar(xs * 100, ys, yerr=es, marker="o", capsize=3, label=regime)
        ax.set_xlabel("paired share of the training pool (%)")
        ax.set_ylabel(m + (" ↓" if m in LOWER_IS_BETTER else " ↑"))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "curve.png", dpi=110)

    # where the rounds saturate: each metric against the round, one colour per fraction
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, m in zip(axes, ("stft_distance", "pesq")):
        for i, (f, res) in enumerate(sorted(by_fraction.items())):
            for regime, style in (("paired only", "--"), ("mutual learning", "-")):
                ks = sorted(res["rounds"])
                ys = [
                    res["rounds"][k].get(regime, res["rounds"][k].get("round 0 (paired)"))[m][0] for k in ks
                ]
                ax.plot(ks, ys, style, marker="o", color=f"C{i}", label=f"{round(f * 100)} % paired, {regime}",
                        mfc="white" if regime == "paired only" else None)  # fmt: skip
        ax.set_xlabel("round")
        ax.set_xticks(range(0, max(max(r["rounds"]) for r in by_fraction.values()) + 1))
        ax.set_ylabel(m + (" ↓" if m in LOWER_IS_BETTER else " ↑"))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(root / "rounds.png", dpi=110)
    (root / "report.html").write_text(html_page(lines, " ".join(sys.argv)))
    print(f"\n{root / 'results.md'}, {root / 'report.html'}, {root / 'curve.png'}, {root / 'rounds.png'}")


def seed_means(results: dict[str, dict]) -> dict[float, dict]:
    """Per paired fraction, each regime's metrics averaged over the seeds: ``{"last": {regime:
    {metric: (mean, ci)}}, "rounds": {k: {regime: {metric: (mean, ci)}}}}`` (round 0 is the shared
    "round 0 (paired)"). The interval is the seeds' mean of their sample intervals: the seeds score
    the same samples, so it is not narrowed by their number."""
    groups: dict[float, list[dict]] = {}
    for tag, res in results.items():
        groups.setdefault(float(tag.split("/")[0]), []).append(res)

    def avg(parts: list[dict]) -> dict:
        return {m: tuple(float(np.mean([p[m][i] for p in parts])) for i in (0, 1)) for m in parts[0]}

    out = {}
    for f, runs in groups.items():
        regimes = runs[0]["means"]
        rounds = {0: {"round 0 (paired)": avg([r["means"]["round 0 (paired)"] for r in runs])}}
        for k in runs[0]["by_round"]:
            rounds[int(k)] = {
                g: avg([r["by_round"][k]["means"][g] for r in runs])
                for g in ("paired only", "mutual learning")
            }
        out[f] = {"last": {g: avg([r["means"][g] for r in runs]) for g in regimes}, "rounds": rounds}
    return out


def html_page(md_lines: list[str], command: str) -> str:
    """results.md as a page, with the two plots and the command that made it."""
    parts, table = [], []
    for line in [*md_lines, ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):  # not the rule under the header
                tag = "th" if not table else "td"
                cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
                bold = ["**" in c for c in line.strip("|").split("|")]
                table.append(
                    "".join(
                        f"<{tag}{' class=b' if b else ''}>{html.escape(c)}</{tag}>"
                        for c, b in zip(cells, bold)
                    )
                )
            continue
        if table:
            parts.append("<table>" + "".join(f"<tr>{r}</tr>" for r in table) + "</table>")
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
            if level == 1:
                parts.append(f"<p><code>{html.escape(command)}</code></p>")
                parts.append(
                    "<img src='curve.png' alt='metrics by paired fraction'><img src='rounds.png' alt='metrics by round'>"
                )
        elif line:
            parts.append(f"<p>{html.escape(line)}</p>")
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}.b{font-weight:bold}img{max-width:48%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Data efficiency</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Finished steps are skipped when rerun; rerun with a larger --rounds to add rounds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--fractions", default="0.1,0.25,0.66", help="paired fractions of the training pool, comma-separated")
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated (more seeds: tighter intervals)")
    ap.add_argument("--rounds", type=int, default=1, help="mutual-learning rounds after round 0 (each regime)")
    ap.add_argument("--split", default="test_unseen", help="the split every round is scored on")
    ap.add_argument("--limit", type=int, default=0, help="samples scored (0 = the whole split)")
    ap.add_argument("--root", default="build/data-efficiency", help="where data, checkpoints and results go")
    ap.add_argument(
        "--set", dest="sets", action="append", default=[], help="KEY=VALUE param override for every call but eval"
    )
    args = ap.parse_args()
    try:
        fractions = [float(x) for x in args.fractions.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as e:
        sys.exit(f"--fractions takes numbers and --seeds integers, comma-separated: {e}")
    if not all(0 < f < 1 for f in fractions):
        sys.exit(f"--fractions: each must be in (0, 1); got {args.fractions}")
    if args.rounds < 1:
        sys.exit(f"--rounds: at least 1 (round 0 is shared by both regimes); got {args.rounds}")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results = {}
    for f in fractions:
        for seed in seeds:
            t0 = time.perf_counter()
            samples = run_fraction(root, f, seed, args.rounds, args.split, args.limit, args.sets)
            results[f"{f}/{seed}"] = summarise(samples, args.rounds)
            print(f"fraction {f}, seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    report(root, results, args.split)


if __name__ == "__main__":
    main()
