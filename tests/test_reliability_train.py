"""`mvsd train` changes the user's default model (checkpoints/latest) only when asked to
(issue 12, case 14), and says which it did."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import ShardsConfig, load_params
from mvsd.data.builder import build_dataset, plan_tasks
from mvsd.data.sample import Sample
from mvsd.train.distributed import fingerprint

runner = CliRunner()


def paired(item):
    i = item
    rng = np.random.default_rng(i)
    x = (0.1 * rng.standard_normal(1600)).astype(np.float32)
    img = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    return Sample(key=f"p{i}", split="train", kind="paired", source="t", clean=x, reverb=x, image=img)


def test_train_replaces_latest_only_with_publish(tmp_path):
    ds, ck = tmp_path / "ds", tmp_path / "ck"
    build_dataset(
        ds, plan_tasks({("train", "paired"): [0, 1]}, 2), paired, name="t", shards=ShardsConfig(), workers=1
    )
    overrides = ["model.size=tiny", "train.steps=2"]
    # Round 0 of the trial, already trained with these params and data: `mvsd train` returns it
    # as it is (the same path a finished training takes), so the test needs no training.
    fp = fingerprint(load_params(None, overrides), {"paired": str(ds.resolve()), "pseudo": []}, None)
    rnd = ck / "trial" / "round-0"
    rnd.mkdir(parents=True)
    for d in ("reverb", "dereverb"):
        (rnd / f"{d}.safetensors").write_bytes(f"trial {d}".encode())
    (rnd / "round.json").write_text(json.dumps({"fingerprint": fp}))
    latest = ck / "latest"
    latest.mkdir()
    (latest / "reverb.safetensors").write_bytes(b"the user's chosen model")

    args = ["train", "--dataset", str(ds), "--run", "trial", "--checkpoints", str(ck)]
    args += [x for o in overrides for x in ("--set", o)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "latest unchanged (pass --publish" in r.output
    assert (latest / "reverb.safetensors").read_bytes() == b"the user's chosen model"

    r = runner.invoke(app, [*args, "--publish"])
    assert r.exit_code == 0, r.output
    assert "is now this round" in r.output
    assert (latest / "reverb.safetensors").read_bytes() == b"trial reverb"
