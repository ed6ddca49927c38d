"""The round planner (mvsd.train.rounds.round_inputs): what each round trains from, the same for
the CLI, the flows and dvc.yaml."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from mvsd.train.rounds import pseudo_dir, round_inputs

ROOT = Path(__file__).resolve().parent.parent


def make_set(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "manifest.parquet").write_bytes(b"")


def test_round_zero_trains_on_paired_data_alone(tmp_path):
    assert round_inputs(tmp_path / "ds", "r", 0, tmp_path / "ck") == ([], None)


def test_round_k_takes_every_earlier_set_and_starts_from_round_k_minus_1(tmp_path):
    ds, ck = tmp_path / "ds", tmp_path / "ck"
    for j in range(3):
        make_set(pseudo_dir(ds, "r", j))
    pseudo, init = round_inputs(ds, "r", 3, ck, sets="all")
    assert pseudo == [str(pseudo_dir(ds, "r", j)) for j in range(3)]
    assert init == ck / "r" / "round-2"


def test_latest_takes_only_the_set_of_round_k_minus_1(tmp_path):
    ds, ck = tmp_path / "ds", tmp_path / "ck"
    for j in range(3):
        make_set(pseudo_dir(ds, "r", j))
    assert round_inputs(ds, "r", 3, ck, sets="latest") == ([str(pseudo_dir(ds, "r", 2))], ck / "r" / "round-2")
    assert round_inputs(ds, "r", 1, ck, sets="latest")[0] == [str(pseudo_dir(ds, "r", 0))]
    assert round_inputs(ds, "r", 0, ck, sets="latest") == ([], None)
    # an older set that is gone does not matter to latest, and the inbox's batches are all kept
    shutil.rmtree(pseudo_dir(ds, "r", 0))
    batches = [str(tmp_path / "inbox" / "b1" / "pseudo-clean")]
    pseudo, _ = round_inputs(ds, "r", 3, ck, more_pseudo=batches, sets="latest")
    assert pseudo == [str(pseudo_dir(ds, "r", 2)), *batches]


def test_pseudo_sets_is_validated():
    from mvsd.config import load_params
    from mvsd.errors import ConfigError

    assert load_params(None, ["train.pseudo_sets=latest"]).train.pseudo_sets == "latest"
    with pytest.raises(ConfigError, match="train.pseudo_sets must be one of all, latest; got 'newest'"):
        load_params(None, ["train.pseudo_sets=newest"])


def test_a_missing_set_says_which_pseudo_command_makes_it(tmp_path):
    ds = tmp_path / "ds"
    make_set(pseudo_dir(ds, "r", 0))
    with pytest.raises(FileNotFoundError, match=r"round-1: no pseudo-pairs.*mvsd pseudo --round 1"):
        round_inputs(ds, "r", 3, tmp_path / "ck", sets="all")
    with pytest.raises(FileNotFoundError, match=r"round-2: no pseudo-pairs.*mvsd pseudo --round 2"):
        round_inputs(ds, "r", 3, tmp_path / "ck")  # latest: round 2's set


def test_the_inbox_adds_its_batches_and_skips_sets_the_run_never_made(tmp_path):
    ds = tmp_path / "ds"
    make_set(pseudo_dir(ds, "r", 0))
    batches = [str(tmp_path / "inbox" / "b1" / "pseudo-clean")]
    pseudo, init = round_inputs(ds, "r", 2, tmp_path / "ck", more_pseudo=batches, check=False, sets="all")
    assert pseudo == [str(pseudo_dir(ds, "r", 0)), *batches]
    assert init == tmp_path / "ck" / "r" / "round-1"


def test_dvc_yaml_trains_each_round_on_what_the_planner_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # dvc.yaml's relative paths, with every pseudo-pair set made
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    rounds = {int(m.group(1)): s for n, s in stages.items() if (m := re.fullmatch(r"train_round(\d+)", n))}
    assert sorted(rounds) == list(range(len(rounds))) and len(rounds) >= 2
    for k, stage in rounds.items():
        dataset = re.search(r"--dataset (\S+)", stage["cmd"]).group(1)
        run = re.search(r"--run (\S+)", stage["cmd"]).group(1)
        assert f"--round {k}" in stage["cmd"]
        for j in range(k):
            if not pseudo_dir(dataset, run, j).exists():
                make_set(pseudo_dir(dataset, run, j))
        pseudo, init = round_inputs(dataset, run, k, "checkpoints")
        data_deps = [d for d in stage["deps"] if not d.startswith("mvsd/")]
        assert data_deps == [dataset, *pseudo, *([str(init)] if init else [])]
        assert stage["outs"][0] == f"checkpoints/{run}/round-{k}"
