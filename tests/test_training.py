"""Ray training rounds, resume after a kill, pseudo-pairs and a full tiny mutual-learning round.

These start Ray for real (slow: minutes on 2 cores), so they are marked slow.
"""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
from conftest import TINY_SIMROOMS, TINY_TRAIN

from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.data.manifest import read_manifest
from mvsd.errors import BadInput
from mvsd.sim.synth import synth
from mvsd.train.losslog import read_losses


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "simrooms"
    synth(out, load_params(None, TINY_SIMROOMS))
    return out


def params(tmp_path, *extra):
    return load_params(None, [*TINY_TRAIN, f"train.storage_path={tmp_path / 'ray'}", *extra])


@pytest.mark.slow
def test_full_tiny_mutual_round(dataset, tmp_path, monkeypatch):
    from contextlib import contextmanager

    import mvsd.train.loop
    import mvsd.train.room
    from mvsd.train.rounds import mutual, pseudo_dir

    bars = []  # (description, total, steps advanced): what a terminal's bars would show

    @contextmanager
    def record(description, total):
        bars.append([description, total, 0])
        yield lambda n=1: bars[-1].__setitem__(2, bars[-1][2] + n)

    for module in (mvsd.train.loop, mvsd.train.room):
        monkeypatch.setattr(module, "progress_bar", record)
    p = params(tmp_path, "train.steps=2", "train.workers=0")
    last = mutual(dataset, p, rounds=1, run="t", checkpoints=tmp_path / "ck")
    # in this process (train.workers=0): the room steps of round 0, then each round's steps
    assert bars == [
        ["room head: image -> room", 8, 8],
        ["training both converters", 2, 2],
        ["training both converters", 2, 2],
    ]
    assert last == tmp_path / "ck" / "t" / "round-1"
    for k in (0, 1):
        for d in ("reverb", "dereverb"):
            conv = Converter.from_checkpoint(
                tmp_path / "ck" / "t" / f"round-{k}" / f"{d}.safetensors", expect_direction=d
            )
            assert conv.spec.size == "tiny"
    pseudo = read_manifest(pseudo_dir(dataset, "t", 0)).to_pylist()
    assert {r["kind"] for r in pseudo} == {"pseudo_reverb", "pseudo_clean"}
    assert all(r["round"] == 0 and r["parent_key"] and r["score"] >= 0 for r in pseudo)
    assert (tmp_path / "ck" / "latest" / "reverb.safetensors").exists()
    losses = read_losses(tmp_path / "ck" / "t" / "round-1-live")  # DVCLive's files
    assert [r["step"] for r in losses] == [1, 2] and all(r["cycle/clean"] >= 0 for r in losses)
    summary = json.loads((tmp_path / "ck" / "t" / "round-1-live" / "metrics.json").read_text())
    assert summary["step"] == 2 and summary["cycle"]["clean"] == losses[-1]["cycle/clean"]


@pytest.mark.slow
def test_pseudo_pairs_rerun_has_no_duplicates_or_gaps(dataset, tmp_path, capfd):
    from mvsd.train.distributed import fit_round
    from mvsd.train.pseudo import make_pseudo_pairs

    p = params(tmp_path, "train.steps=1", "train.workers=0", "pseudo.keep_fraction=1.0")
    r0 = fit_round(p, {"paired": str(dataset)}, tmp_path / "ck", "t", 0)
    out = tmp_path / "pseudo"
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = make_pseudo_pairs(dataset, r0, out, p, 0)
    console = "".join(capfd.readouterr())
    assert "execution finished in" not in console, console[-2000:]  # Ray Data's own line: mvsd's bar says it
    # Ray's core-worker E line about restartable actors, and the deprecation of the knob that stops it
    assert "constructor arguments in the object store" not in console, console[-2000:]
    assert not [w for w in caught if "ray_remote_args" in str(w.message)]
    # an interrupted job: one chunk's shard and part gone, no manifest
    (out / "shards" / "train" / "pseudo_reverb-000000.tar").unlink()
    (out / ".build" / "shards__train__pseudo_reverb-000000.json").unlink()
    (out / "manifest.parquet").unlink()
    again = make_pseudo_pairs(dataset, r0, out, p, 0)
    assert again == first
    keys = read_manifest(out).column("parent_key").to_pylist()
    unpaired = [
        r["key"] for r in read_manifest(dataset).to_pylist() if r["kind"] in ("clean_only", "reverb_only")
    ]
    assert sorted(keys) == sorted(unpaired)


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_step_count(dataset, tmp_path):
    overrides = [*TINY_TRAIN, "train.steps=8", "train.workers=0", f"train.storage_path={tmp_path / 'ray'}"]
    code = (
        "import sys; from mvsd.config import load_params; from mvsd.train.distributed import fit_round; "
        f"p = load_params(None, {overrides!r}); "
        f"fit_round(p, {{'paired': {str(dataset)!r}}}, {str(tmp_path / 'ck')!r}, 't', 0)"
    )
    run_dir = tmp_path / "ck" / "t"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(run_dir.glob("round-0-state-*.pt")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(run_dir.glob("round-0-state-*.pt")), "no checkpoint before the kill"
    assert not (tmp_path / "ck" / "t" / "round-0" / "round.json").exists(), "killed too late to test a resume"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    import json

    info = json.loads((tmp_path / "ck" / "t" / "round-0" / "round.json").read_text())
    assert info["steps"] == 8
    steps = [r["step"] for r in read_losses(tmp_path / "ck" / "t" / "round-0-live")]
    assert steps[-1] == 8 and len(steps) == len(set(steps))  # resumed: no step logged twice


@pytest.mark.slow
def test_two_ray_workers(dataset, tmp_path):
    from mvsd.train.distributed import fit_round

    p = params(tmp_path, "train.steps=2", "train.workers=2", "train.threads_per_worker=1")
    out = fit_round(p, {"paired": str(dataset)}, tmp_path / "ck", "ddp", 0)
    import json

    assert json.loads((out / "round.json").read_text())["steps"] == 2


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    from mvsd.train.rounds import check_dataset

    with pytest.raises(BadInput, match="no dataset here"):
        check_dataset(tmp_path / "nothing")


def test_round_from_another_model_size_is_refused(tmp_path):
    from mvsd.converter import CheckpointError
    from mvsd.train.loop import _init_from
    from mvsd.train.state import TrainState

    small = load_params(None, ["model.size=small"])
    for d in ("reverb", "dereverb"):
        Converter.new(d, small.model).save(tmp_path / f"{d}.safetensors")
    tiny = load_params(None, ["model.size=tiny"])
    state = TrainState.new(tiny.model, tiny.train)
    with pytest.raises(CheckpointError, match="a small/flow converter, but params ask for tiny/flow"):
        _init_from(state, tmp_path)


@pytest.mark.slow
def test_worker_killed_mid_training_is_retried(dataset, tmp_path, monkeypatch):
    """A Ray worker process dies at step 3; FailureConfig restarts it from the step-2 checkpoint."""
    import json

    from mvsd.train.distributed import fit_round
    from mvsd.train.loop import FAULT_STEP_ENV

    monkeypatch.setenv(FAULT_STEP_ENV, "3")
    p = params(tmp_path, "train.steps=4", "train.workers=1", "train.max_failures=1")
    out = fit_round(p, {"paired": str(dataset)}, tmp_path / "ck", "crash", 0)
    assert list((tmp_path / "ck" / "crash").glob("round-0-state-*.fault-injected"))  # it did die
    assert json.loads((out / "round.json").read_text())["steps"] == 4


@pytest.mark.slow
def test_full_disk_in_a_worker_is_not_retried(dataset, tmp_path, monkeypatch):
    """Issue 12, case 17: a full disk cannot pass by retrying: one attempt, then ENOSPC naming
    the file, although train.max_failures allows two retries."""
    import errno

    from mvsd.train.distributed import fit_round
    from mvsd.train.loop import FAULT_STEP_ENV

    monkeypatch.setenv(FAULT_STEP_ENV, "2:enospc")
    p = params(tmp_path, "train.steps=4", "train.workers=1", "train.max_failures=2")
    with pytest.raises(OSError) as info:
        fit_round(p, {"paired": str(dataset)}, tmp_path / "ck", "full", 0)
    assert info.value.errno == errno.ENOSPC and "round-0-state-" in str(info.value)
    (marker,) = (tmp_path / "ck" / "full").glob("round-0-state-*.fault-injected")
    assert marker.read_text().splitlines() == ["enospc at step 2"]  # fired once: no retry
    assert not (tmp_path / "ck" / "full" / "round-0").exists()


@pytest.mark.slow
def test_diverged_training_is_one_error_and_not_retried(dataset, tmp_path, monkeypatch):
    """Losses that stay non-finite would diverge the same way again from the last checkpoint: one
    attempt, then mvsd's own TrainingError (one line at the CLI), not Ray's wrapped traceback."""
    from mvsd.train.distributed import fit_round
    from mvsd.train.loop import FAULT_STEP_ENV, TrainingError

    monkeypatch.setenv(FAULT_STEP_ENV, "3:nan")
    p = params(tmp_path, "train.steps=6", "train.workers=1", "train.max_failures=2", "train.max_nan_steps=2")
    with pytest.raises(TrainingError, match=r"round 0: loss was not finite for 2 steps in a row \(step 3\)"):
        fit_round(p, {"paired": str(dataset)}, tmp_path / "ck", "nan", 0)
    (marker,) = (tmp_path / "ck" / "nan").glob("round-0-state-*.fault-injected")
    assert marker.read_text().splitlines() == ["nan at step 3"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_a_ray_training_says_only_what_the_user_needs(dataset, tmp_path, workers):
    """The console of `mvsd train` on a private Ray: no per-checkpoint "Reporting training result"
    lines from Ray Train's workers, no warning that Ray turned token authentication on, no
    core-worker error line about the preemption watcher (a node drain cannot happen here), no
    note that local mode (``train.workers=0``) runs the function in this process."""
    sets = [*TINY_TRAIN, "train.steps=2", "train.checkpoint_every=1", f"train.workers={workers}",
            f"train.storage_path={tmp_path / 'ray'}"]  # fmt: skip
    cmd = [sys.executable, "-m", "mvsd.cli", "train", "--dataset", str(dataset), "--run", "t",
           "--checkpoints", str(tmp_path / "ck"), *[x for o in sets for x in ("--set", o)]]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    console = run.stdout + run.stderr
    assert "round 0 of t:" in console
    for noise in ("Reporting training result", "Token authentication is enabled", "Traceback", "PreemptionWatcher",
                  "Running in local mode"):
        assert noise not in console, console[-3000:]
