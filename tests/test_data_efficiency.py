"""benchmarks/data_efficiency.py: the pools of each paired fraction, the regimes' summary maths,
and (slow) the whole experiment at tiny size with a rerun that redoes nothing."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, TINY_SIMROOMS, TINY_TRAIN

from mvsd.config import load_params
from mvsd.sim.synth import plan_samples, plan_views, split_counts

sys.path.insert(0, str(ROOT / "benchmarks"))
import data_efficiency as de  # noqa: E402


@pytest.mark.parametrize("f", [0.1, 0.25, 0.66])
def test_each_fraction_keeps_the_pool_size_and_the_test_samples(f):
    base = load_params(None, [])
    p = load_params(None, de.ratios(f))
    counts = split_counts(p)
    train = sum(n for (split, _), n in counts.items() if split == "train")
    assert train == base.simrooms.train_samples
    assert abs(counts[("train", "paired")] / train - f) < 0.01
    assert abs(counts[("train", "clean_only")] - counts[("train", "reverb_only")]) <= 1
    # the same val and test samples (keys, rooms, views) whatever the fraction
    views = plan_views(base)
    for split in ("val", "test_unseen"):
        a = plan_samples(base, views)[(split, "paired")]
        b = plan_samples(p, plan_views(p))[(split, "paired")]
        assert [(s.index, s.key, s.view_id) for s in a] == [(s.index, s.key, s.view_id) for s in b]


def test_summary_means_and_paired_differences(tmp_path):
    rng = np.random.default_rng(0)
    keys = [f"k{i}" for i in range(50)]
    base = rng.uniform(0.1, 0.3, 50)
    systems = {
        "ck-mutual/r/round-0": 0.0,
        "ck-paired/r/round-1": 0.01,
        "ck-mutual/r/round-1": -0.02,
        "ck-paired/r/round-2": 0.02,
        "ck-mutual/r/round-2": -0.04,
    }
    rows = []
    for name, shift in systems.items():
        for k, b in zip(keys, base):
            rows.append(
                {
                    "key": k,
                    "family": "vam",
                    "system": name,
                    "stft_distance": b + shift,
                    "rt60_error": 1.0,
                    "drr_error": 2.0,
                }
            )
            rows.append(
                {
                    "key": k,
                    "family": "dereverb",
                    "system": name,
                    "pesq": 1.5 - shift,
                    "estoi": 0.5,
                    "si_sdr": float("nan") if k == "k0" else -5.0,
                }
            )
    columns = [
        "key",
        "family",
        "system",
        "stft_distance",
        "rt60_error",
        "drr_error",
        "pesq",
        "estoi",
        "si_sdr",
    ]
    rows = [{c: r.get(c) for c in columns} for r in rows]  # as mvsd eval writes them: every column
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "s.parquet")
    out = de.summarise(tmp_path / "s.parquet", rounds=2)
    # a rerun with more rounds scores them into a second table: read together, the same summary
    later = [r for r in rows if "round-2" in r["system"]]
    pq.write_table(pa.Table.from_pylist([r for r in rows if r not in later]), tmp_path / "s1.parquet")
    pq.write_table(pa.Table.from_pylist(later), tmp_path / "s2.parquet")
    assert de.summarise([tmp_path / "s1.parquet", tmp_path / "s2.parquet"], rounds=2) == out
    mean, ci, n = out["means"]["paired only"]["stft_distance"]  # the last round
    assert mean == pytest.approx(base.mean() + 0.02) and n == 50 and ci > 0
    d, ci, n = out["diff"]["stft_distance"]
    assert d == pytest.approx(-0.06) and ci == pytest.approx(0, abs=1e-12)  # the same shift on every sample
    assert out["diff"]["pesq"][0] == pytest.approx(0.06)
    assert out["diff"]["si_sdr"][2] == 49  # a NaN drops that sample from every regime
    # every round, each against round 0 on the same samples
    assert list(out["by_round"]) == ["1", "2"]
    assert out["by_round"]["1"]["diff"]["stft_distance"][0] == pytest.approx(-0.03)
    r0 = out["by_round"]["1"]["means"]["round 0 (paired)"]["stft_distance"][0]
    assert r0 == pytest.approx(base.mean())
    (tmp_path / "times.jsonl").write_text(
        '{"run": "p10-s0", "step": "train", "seconds": 300.0}\n{"run": "p10-s0", "step": "train", "seconds": 60.5}\n'
        '{"run": "p10-s0", "step": "eval", "seconds": 100.0}\n'
    )
    assert de.wall_times(tmp_path) == {"p10-s0": {"train": 360.5, "eval": 100.0, "total": 460.5}}
    de.report(tmp_path, {"0.1/0": out}, "val")
    table = (tmp_path / "results.md").read_text()
    assert "| p10-s0 | 0 | 360 | 0 | 100 | 460 |" in table  # synth, train, pseudo, eval, total
    page = (tmp_path / "report.html").read_text()
    assert (
        "<img src='curve.png'" in page and "<td class=b>-0.03 ± " in page and "<th>stft_distance</th>" in page
    )
    assert "| 0.1 | 0 | 1 | mutual - paired only | **-0.03 ± " in table  # better: bold
    assert "| 0.1 | 0 | 2 | paired only |" in table
    assert (tmp_path / "rounds.png").stat().st_size > 10_000

    # a second seed 0.01 worse everywhere: the plots average the seeds of each fraction
    def shifted(res, by):
        return {
            "means": {
                g: {m: (v[0] + by, v[1], v[2]) for m, v in ms.items()} for g, ms in res["means"].items()
            },
            "diff": res["diff"],
            "by_round": {k: shifted(r, by) for k, r in res.get("by_round", {}).items()},
        }

    results = {"0.1/0": out, "0.1/1": shifted(out, 0.01), "0.66/0": out}
    avg = de.seed_means(results)
    assert sorted(avg) == [0.1, 0.66]
    m, ci = avg[0.1]["last"]["paired only"]["stft_distance"]
    assert m == pytest.approx(base.mean() + 0.02 + 0.005) and ci == pytest.approx(
        out["means"]["paired only"]["stft_distance"][1]
    )
    assert avg[0.66]["last"]["paired only"]["stft_distance"][0] == pytest.approx(base.mean() + 0.02)
    assert sorted(avg[0.1]["rounds"]) == [0, 1, 2]
    assert avg[0.1]["rounds"][0]["round 0 (paired)"]["stft_distance"][0] == pytest.approx(base.mean() + 0.005)
    assert avg[0.1]["rounds"][1]["mutual learning"]["stft_distance"][0] == pytest.approx(
        base.mean() - 0.02 + 0.005
    )
    de.report(tmp_path, results, "val")  # two seeds of one fraction plot without error
    assert "| 0.1 | 1 | 2 | paired only |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_the_experiment_at_tiny_size_and_its_rerun(tmp_path):
    sets = [a for s in [*TINY_SIMROOMS, *TINY_TRAIN, "train.steps=2"] for a in ("--set", s)]
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "data_efficiency.py"),
        "--fractions",
        "0.5",
        "--root",
        str(tmp_path),
        *sets,
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-3000:]
    table = (tmp_path / "results.md").read_text()
    for regime in ("round 0 (paired)", "paired only", "mutual learning", "mutual - paired only"):
        assert f"| 0.5 | 0 | {regime} |" in table
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    # the paired-only round trained without the pseudo-pairs, the mutual one with them
    assert (tmp_path / "ck-paired" / "p50-s0" / "round-1" / "reverb.safetensors").exists()
    assert (tmp_path / "simrooms-p50-pseudo" / "p50-s0" / "round-0" / "manifest.parquet").exists()
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "$ " not in again.stdout  # everything done: no step reruns
    assert (tmp_path / "results.md").read_text() == table
    # one more round: only that round trains (both regimes) and only its checkpoints are scored
    more = subprocess.run([*cmd, "--rounds", "2"], capture_output=True, text=True, cwd=ROOT)
    assert more.returncode == 0, more.stderr[-3000:]
    calls = [line for line in more.stdout.splitlines() if line.startswith("$ ")]
    assert [c.split()[1] for c in calls] == ["pseudo", "train", "train", "eval"], calls
    assert calls[-1].count("--round") == 2 and "round-2" in calls[-1] and "round-1" not in calls[-1]
    table = (tmp_path / "results.md").read_text()
    assert "| 0.5 | 0 | 2 | mutual learning |" in table and "| 0.5 | 0 | 1 | mutual learning |" in table


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0,a"], "--seeds integers"),
        (["--fractions", "0.1,1.5"], "each must be in (0, 1)"),
        (["--rounds", "0"], "--rounds: at least 1"),
    ],
)
def test_bad_arguments_stop_before_anything_is_made(tmp_path, args, message):
    root = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "data_efficiency.py"), "--root", str(root), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert not root.exists()
