"""Building datasets never destroys the user's files and survives concurrent runs (issue 12,
cases 2 and 3): a non-empty --out that is not one of our datasets, or one that is the input or
above it, is refused; a second build of the same folder fails at once on the folder's lock; and
consolidation leaves exactly the planned shards."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import ShardsConfig
from mvsd.data.builder import BUILD_DIR, build_dataset, lock_folder, plan_tasks, unlock_folder
from mvsd.data.inspect import verify_dataset
from mvsd.data.sample import Sample
from mvsd.errors import OutputError

runner = CliRunner()
ONE_WORKER = ["--set", "ingest.workers=1"]


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture
def recordings(tmp_path):
    """A user's folder of dry speech that also holds folders named like ours."""
    d = tmp_path / "recordings"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (d / name).mkdir(parents=True)
        sf.write(d / name / "take1.wav", 0.1 * rng.standard_normal(8000), 16000)
    (d / "shards").mkdir()
    (d / "shards" / "notes.txt").write_text("the user's own shards folder")
    (d / ".build").mkdir()
    (d / ".build" / "Makefile").write_text("all:\n")
    return d


def ingest(src, out, *extra):
    return runner.invoke(app, ["ingest", "clean-folder", str(src), "--out", str(out), *ONE_WORKER, *extra])


def test_out_that_is_the_input_or_above_it_is_refused(recordings):
    before = digest(recordings.parent)
    for out in (recordings, recordings.parent):
        r = ingest(recordings, out)
        assert r.exit_code == 2 and "is the input folder" in r.output, r.output
    assert digest(recordings.parent) == before


def test_non_empty_out_that_is_not_a_dataset_is_refused(recordings, tmp_path):
    mine = tmp_path / "mine"
    (mine / "shards").mkdir(parents=True)
    (mine / "shards" / "keep.tar").write_bytes(b"the user's tar")
    (mine / ".build").mkdir()
    (mine / ".build" / "notes").write_text("mine")
    before = digest(mine)
    r = ingest(recordings, mine)
    assert r.exit_code == 2 and "not empty and not an mvsd dataset" in r.output, r.output
    assert digest(mine) == before
    # An empty folder, a new one, one inside the input, and our own dataset are fine.
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new", recordings / "ds", tmp_path / "new"):
        r = ingest(recordings, out)
        assert r.exit_code == 0 and "2 samples" in r.output, r.output
    assert (recordings / "shards" / "notes.txt").exists() and (recordings / ".build" / "Makefile").exists()


def make_sample(item):
    split, kind, i = item
    x = np.random.default_rng(i).standard_normal(800).astype(np.float32) * 0.1
    return Sample(key=f"s{i:04d}", split=split, kind=kind, source="test", clean=x)


def build(out, n=6, fingerprint="v1"):
    tasks = plan_tasks({("train", "clean_only"): [("train", "clean_only", i) for i in range(n)]}, 2)
    return build_dataset(out, tasks, make_sample, name="t", shards=ShardsConfig(samples_per_shard=2),
                         workers=1, fingerprint=fingerprint)  # fmt: skip


def test_a_second_build_of_a_locked_folder_fails_at_once(tmp_path):
    out = tmp_path / "ds"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from mvsd.data.builder import lock_folder; "
         f"lock_folder(Path({str(out)!r})); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with pytest.raises(OutputError, match="another run is building this dataset folder"):
            build(out)
        assert time.perf_counter() - t0 < 5
        assert not (out / "shards").exists()
    finally:
        holder.kill()
        holder.wait()
    assert build(out).samples == 6  # the lock went with its process
    lock_folder(out)  # re-entrant within one process, and released by unlock_folder
    unlock_folder(out)


def test_shards_not_in_the_plan_are_removed_and_verify_passes(tmp_path):
    out = tmp_path / "ds"
    build(out)
    # What a concurrent run of another plan left behind: a shard the manifest does not list,
    # and a temp file of a killed writer.
    (out / "shards" / "train" / "clean_only-000099.tar").write_bytes(b"x" * 1024)
    (out / "shards" / "train" / ".clean_only-000001.tar.tmp-12345").write_bytes(b"partial")
    s = build(out)
    assert s.samples == 6 and s.resumed_shards == 3
    assert sorted(p.name for p in (out / "shards" / "train").iterdir()) == [
        "clean_only-000000.tar", "clean_only-000001.tar", "clean_only-000002.tar"
    ]  # fmt: skip
    assert verify_dataset(out).ok
    assert (out / BUILD_DIR / "lock").read_bytes() == b""  # empty: the folder's hash stays stable
