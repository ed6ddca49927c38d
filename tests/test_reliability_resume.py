"""Issue 12, case 18: a killed and resumed round equals an uninterrupted one, and logs each step once."""

import os
import subprocess
import sys

import pytest
from conftest import TINY_SIMROOMS, TINY_TRAIN
from safetensors.torch import load_file

from mvsd.config import load_params
from mvsd.sim.synth import synth
from mvsd.train.loop import FAULT_STEP_ENV
from mvsd.train.losslog import read_losses


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "simrooms"
    synth(out, load_params(None, TINY_SIMROOMS))
    return out


def train(dataset, ck, tmp_path, fault_step=None, schedule="constant"):
    overrides = [*TINY_TRAIN, "train.steps=6", "train.checkpoint_every=2", "train.workers=0",
                 "train.threads_per_worker=1", f"train.storage_path={tmp_path / 'ray'}",
                 f"train.lr_schedule={schedule}"]  # fmt: skip
    code = (
        "from mvsd.config import load_params; from mvsd.train.distributed import fit_round; "
        f"fit_round(load_params(None, {overrides!r}), {{'paired': {str(dataset)!r}}}, {str(ck)!r}, 't', 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != FAULT_STEP_ENV}
    if fault_step:
        env[FAULT_STEP_ENV] = str(fault_step)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])  # cosine: the rate depends on the step
def test_killed_and_resumed_round_equals_an_uninterrupted_one(dataset, tmp_path, schedule):
    whole = train(dataset, tmp_path / "a", tmp_path / "ra", schedule=schedule)
    assert whole.returncode == 0, whole.stderr[-3000:]
    # dies after step 3 (checkpoint: 2)
    died = train(dataset, tmp_path / "b", tmp_path / "rb", fault_step=3, schedule=schedule)
    assert died.returncode != 0
    assert list((tmp_path / "b" / "t").glob("round-0-state-*.fault-injected"))
    again = train(dataset, tmp_path / "b", tmp_path / "rb", fault_step=3, schedule=schedule)  # resumes from step 2
    assert again.returncode == 0, again.stderr[-3000:]
    for name in ("reverb.safetensors", "dereverb.safetensors"):
        a = load_file(tmp_path / "a" / "t" / "round-0" / name)
        b = load_file(tmp_path / "b" / "t" / "round-0" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert (a[k] == b[k]).all(), f"{name}: {k} differs after the resume"
    steps = [r["step"] for r in read_losses(tmp_path / "b" / "t" / "round-0-live")]
    assert steps == [1, 2, 3, 4, 5, 6]
