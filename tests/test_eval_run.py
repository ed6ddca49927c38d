"""`mvsd eval` on a tiny SimRooms split: baselines and converters, files written, oracles as oracles."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import TINY_SIMROOMS

from mvsd.acoustics import BANDS
from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.eval.run import evaluate, markdown, write
from mvsd.sim.synth import synth


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    synth(root / "ds", load_params(None, TINY_SIMROOMS))
    model = load_params(
        None, ["model.size=tiny", "model.steps=1", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model
    for d in ("reverb", "dereverb"):
        Converter.new(d, model).save(root / "round-0" / f"{d}.safetensors")
    return root


def test_eval_writes_tables_and_oracles_score_as_oracles(setup, tmp_path):
    result = evaluate(setup / "ds", "test_unseen", {"round-0": setup / "round-0"}, limit=2, wpe_val=2)
    systems = {(r["family"], r["system"]) for r in result.rows}
    assert ("vam", "round-0") in systems and ("dereverb", "round-0") in systems
    assert ("vam", "oracle_rir") in systems and ("dereverb", "wpe") in systems
    assert len(result.rows) == 2 * len(systems)
    assert result.summary["vam/oracle_rir"]["stft_distance"][0] < 1e-3
    assert result.summary["dereverb/oracle_dry"]["si_sdr"][0] > 50
    assert (
        result.summary["vam/identity"]["stft_distance"][0]
        > 10 * result.summary["vam/oracle_rir"]["stft_distance"][0]
    )
    for name in ("oracle_t60", "floor_envelope", "floor_expfit"):
        assert ("vam", name) in systems
    assert ("dereverb", "lebart_blind") in systems and ("dereverb", "lebart_oracle") in systems
    paths = write(result, tmp_path, "t")
    flat = json.loads(paths["json"].read_text())
    assert "vam/round-0/stft_distance" in flat and "vam/round-0/rtf" in flat
    table = pq.read_table(paths["parquet"])
    assert table.num_rows == len(result.rows)
    assert "±" in paths["md"].read_text() and "| round-0 |" in markdown(result)
    # the reverberator's room description against the true RIR: errors per band and DRR
    for band in BANDS:
        assert f"vam/round-0/room_t60_error_{band:g}" in flat
    assert flat["vam/round-0/room_drr_error"] >= 0 and "vam/oracle_rir/room_drr_error" not in flat
    assert "room_drr_error" in table.column_names  # though the first rows (baselines) lack it
    rooms = result.rooms["round-0"]
    assert rooms.pred_t60.shape == rooms.true_t60.shape == (2, len(BANDS)) and rooms.pred_drr.shape == (2,)
    assert np.allclose(rooms.true_drr, [r["drr_db"] for r in _meta(setup, rooms.keys)])
    assert "Room read from the image" in markdown(result)


def _meta(root, keys):
    from mvsd.eval.baselines import read_samples

    by_key = {s.key: s for s in read_samples(root / "ds", ["test_unseen"])}
    return [{"drr_db": by_key[k].drr} for k in keys]


def test_baselines_are_skipped_for_samples_without_what_they_need(setup, monkeypatch):
    import dataclasses

    import mvsd.eval.run as run

    real = run.read_samples

    def no_rir_for_the_first(*args, **kwargs):
        samples = real(*args, **kwargs)
        if args[1] == ["test_unseen"]:
            samples[0] = dataclasses.replace(samples[0], rir=None)
        return samples

    monkeypatch.setattr(run, "read_samples", no_rir_for_the_first)
    result = evaluate(setup / "ds", "test_unseen", None, limit=2, wpe_val=2)
    count = lambda system: sum(r["system"] == system for r in result.rows)  # noqa: E731
    for system in ("oracle_rir", "oracle_t60", "floor_envelope", "floor_expfit", "lebart_oracle"):
        assert count(system) == 1, system
    assert count("retrieval") == 2 and count("lebart_blind") == 2
    assert result.summary["vam/oracle_rir"]["stft_distance"][2] == 1  # n says so


def test_blank_image_ablation_and_step_sweep(setup):
    result = evaluate(
        setup / "ds",
        "test_unseen",
        {"r0": setup / "round-0"},
        limit=1,
        baselines=False,
        blank_image=True,
        sweep=[1, 2],
    )
    assert {r["system"] for r in result.rows} == {"r0-blank-image@1steps", "r0-blank-image@2steps"}
    assert set(result.timing) >= {"vam/r0-blank-image@1steps/rtf", "dereverb/r0-blank-image@2steps/rtf"}
    rooms = result.rooms["r0-blank-image@1steps"]
    assert rooms is result.rooms["r0-blank-image@2steps"]  # read once per round
    assert np.allclose(rooms.pred_t60, rooms.blank_t60)  # a grey image in, the grey image's room out
    assert "room_t60_error_1000" in result.summary["vam/r0-blank-image@2steps"]


def test_blind_rt60_error_column(setup):
    from mvsd.eval.baselines import read_samples
    from mvsd.eval.rt60 import Rt60Config, fit_rt60_estimator

    train = read_samples(setup / "ds", ["train"])
    x = np.stack([s.reverb for s in train])
    y = np.array([s.rt60 for s in train])
    model, _ = fit_rt60_estimator(x, y, Rt60Config(), steps=3, batch_size=4, lr=1e-3, seed=0)
    result = evaluate(setup / "ds", "test_unseen", None, limit=2, wpe_val=2, rt60_model=model)
    oracle = [r["blind_rt60_error"] for r in result.rows if r["system"] == "oracle_rir"]
    assert len(oracle) == 2 and max(oracle) < 0.05  # the oracle's output is the target
    assert all("blind_rt60_error" not in r for r in result.rows if r["family"] == "dereverb")
    assert "blind_rt60_error ↓" in markdown(result)


def test_eval_command_writes_its_files(setup, tmp_path):
    from typer.testing import CliRunner

    from mvsd.cli import app

    args = ["eval", "--dataset", str(setup / "ds"), "--split", "test_unseen", "--round", str(setup / "round-0"),
            "--limit", "1", "--no-blind-rt60", "--out", str(tmp_path), "--name", "cli"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| round-0 |" in result.output
    assert {p.name for p in tmp_path.iterdir()} == {"cli.json", "cli-samples.parquet", "cli.md", "cli-headline.json"}
    assert "Paired differences against round-0" in (tmp_path / "cli.md").read_text()
    head = json.loads((tmp_path / "cli-headline.json").read_text())
    flat = json.loads((tmp_path / "cli.json").read_text())
    assert head["vam/model/stft_distance"] == flat["vam/round-0/stft_distance"]
    assert head["vam/baseline/stft_distance"] == min(flat[f"vam/{b}/stft_distance"] for b in ("identity", "mean_rir", "retrieval"))


def test_identical_outputs_are_scored_once(setup, monkeypatch):
    import mvsd.eval.run as run

    calls = []
    real_score = run.score
    monkeypatch.setattr(run, "score", lambda *a, **kw: calls.append(a[2]) or real_score(*a, **kw))
    same = {"a": setup / "round-0", "b": setup / "round-0"}  # the same weights: the same outputs
    result = evaluate(setup / "ds", "test_unseen", same, limit=2, baselines=False, sweep=[0])
    assert len(calls) == 2 * 2  # two samples x two families, not x two rounds
    by = {(r["system"], r["family"], r["key"]): r for r in result.rows}
    for (system, family, key), r in by.items():
        if system == "b@0steps":
            twin = by["a@0steps", family, key]
            assert {k: v for k, v in r.items() if k != "system"} == {
                k: v for k, v in twin.items() if k != "system"
            }
    assert len(result.rows) == 2 * 2 * 2


def test_identical_outputs_pairs_only_equal_systems_of_one_family():
    from mvsd.eval.run import identical_outputs

    x, y = np.zeros(4), np.ones(4)
    outputs = {
        ("vam", "a"): [x, None],
        ("vam", "b"): [x.copy(), None],  # equal to a
        ("vam", "c"): [x, y],  # differs where a has nothing
        ("dereverb", "a"): [x, None],  # equal values, another family
        ("vam", "d"): [y, None],
    }
    assert identical_outputs(outputs) == {("vam", "b"): ("vam", "a")}


def test_paired_difference_against_known_answers():
    from mvsd.eval.run import paired_difference

    gen = np.random.default_rng(0)
    base = gen.normal(1.0, 0.5, 400)  # large between-sample spread
    a = [{"family": "vam", "key": f"k{i}", "m": float(v)} for i, v in enumerate(base)]
    shifted = [{**r, "m": r["m"] + 0.1} for r in a]  # every sample exactly 0.1 worse
    mean, ci, n = paired_difference(a, shifted, "m")
    assert (round(mean, 12), round(ci, 12), n) == (0.1, 0.0, 400)
    noisy = [{**r, "m": r["m"] + 0.1 + e} for r, e in zip(a, gen.normal(0, 0.2, 400))]
    noisy.append({"family": "vam", "key": "only-in-b", "m": 9.0})  # unpaired: left out
    noisy[0]["m"] = float("nan")  # not finite: left out
    mean, ci, n = paired_difference(a, noisy, "m")
    assert n == 399 and abs(mean - 0.1) < ci < 1.96 * 0.2 / np.sqrt(399) * 1.2


def test_ablation_lands_in_the_same_files_and_report(setup, tmp_path):
    """`mvsd eval --ablation`: the last round again with a grey image, same steps, same files."""
    import re
    import shutil

    from typer.testing import CliRunner

    from mvsd.cli import app
    from mvsd.eval.result import paired_difference

    shutil.copytree(setup / "round-0", tmp_path / "round-1")
    args = ["eval", "--dataset", str(setup / "ds"), "--split", "test_unseen", "--round", str(setup / "round-0"),
            "--round", str(tmp_path / "round-1"), "--limit", "2", "--sweep", "0,1", "--no-baselines",
            "--no-blind-rt60", "--ablation", "--out", str(tmp_path), "--name", "ab",
            "--report", str(tmp_path / "report"), "--report-samples", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    flat = json.loads((tmp_path / "ab.json").read_text())
    for k in (0, 1):  # the newest round only, at every step count of the sweep
        assert f"vam/round-1-blank-image@{k}steps/stft_distance" in flat
        assert f"dereverb/round-1-blank-image@{k}steps/pesq" in flat
    assert not any("round-0-blank-image" in key for key in flat)
    rows = pq.read_table(tmp_path / "ab-samples.parquet").to_pylist()
    pick = lambda system: [r for r in rows if r["family"] == "vam" and r["system"] == system]  # noqa: E731
    a, b = pick("round-1@1steps"), pick("round-1-blank-image@1steps")
    assert [r["key"] for r in a] == [r["key"] for r in b] and len(a) == 2
    want = np.mean([y["stft_distance"] - x["stft_distance"] for x, y in zip(a, b)])
    assert paired_difference(a, b, "stft_distance")[0] == pytest.approx(want)
    head = json.loads((tmp_path / "ab-headline.json").read_text())  # about round 1 at its last step count
    assert head["vam/model/drr_error"] == flat["vam/round-1@1steps/drr_error"]
    assert head["vam/grey_over_picture/stft_distance"] == pytest.approx(
        flat["vam/round-1-blank-image@1steps/stft_distance"] / flat["vam/round-1@1steps/stft_distance"], rel=1e-3
    )
    assert not any("/baseline/" in k for k in head)  # --no-baselines
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Image ablation" in page and "grey − picture (paired, 95 % CI)" in page
    row = re.search(r"<th>vam/round-1@1steps</th><td>stft_distance</td>(.*?)</tr>", page).group(1)
    assert f"{want:+.3g}" in row


def test_paired_markdown_says_better_worse_or_neither():
    from mvsd.eval.result import EvalResult
    from mvsd.eval.run import paired_markdown, summarize

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        hard = rng.uniform(0.1, 0.5)  # per-sample difficulty both systems share
        for system, offset in (("model", 0.0), ("worse", 0.02), ("same", 0.0), ("oracle_rir", -1.0)):
            noise = rng.normal(0, 0.002) if system != "model" else 0.0
            rows.append({"key": f"k{i}", "family": "vam", "system": system,
                         "stft_distance": hard + offset + noise, "rt60_error": hard, "drr_error": hard})  # fmt: skip
    text = paired_markdown(EvalResult("t", rows, summarize(rows), {}), "model")
    worse = next(line for line in text.splitlines() if line.startswith("| worse |"))
    same = next(line for line in text.splitlines() if line.startswith("| same |"))
    assert worse.split("|")[2].strip().startswith("+0.02") and "(model better)" in worse.split("|")[2]
    assert "(model" not in same.split("|")[2]  # a difference within its interval: no verdict
    assert "oracle_rir" not in text  # an exact oracle is not a comparison
