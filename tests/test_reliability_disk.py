"""A full disk is one line naming the path and "no space left", exit 2, and no temporary files
left behind (issue 12, case 17). The disk is a real one: a 200 KB tmpfs (needs the right to
mount; skipped without it)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mvsd.cli import app

runner = CliRunner()


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_is_one_line_naming_the_path(small_disk, tmp_path, workers):
    src = tmp_path / "speech"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # about 1 MB of shards: five times the disk
        sf.write(src / f"s{i}.wav", 0.1 * rng.standard_normal(32000), 16000)
    out = small_disk / "ds"
    r = runner.invoke(app, ["ingest", "clean-folder", str(src), "--out", str(out),
                            "--set", f"ingest.workers={workers}", "--set", "shards.samples_per_shard=4"])  # fmt: skip
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, r.output
    assert line.startswith(f"error: no space left on the device writing {out}/"), line
    assert not [p for p in small_disk.rglob("*") if ".tmp-" in p.name]


def test_training_checkpoint_on_a_full_disk_names_the_file_and_leaves_nothing(small_disk):
    """Case 17, training side: torch's "basic_ios::clear: iostream error" becomes ENOSPC naming the
    checkpoint, its temporary file is removed, and stale temporaries of a killed run go at start."""
    import errno

    from mvsd.config import load_params
    from mvsd.train.loop import _save, remove_stale_temporaries
    from mvsd.train.state import TrainState

    params = load_params(None, ["model.size=small"])  # a few MB of weights: more than the disk
    state = TrainState.new(params.model, params.train)
    target = small_disk / "state.pt"
    with pytest.raises(OSError) as info:
        _save(state, target)
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value)
    assert list(small_disk.iterdir()) == []  # no half checkpoint, no temporary file
    (small_disk / "state.pt.tmp-12345").write_bytes(b"left by a killed run")
    remove_stale_temporaries(target)
    assert list(small_disk.iterdir()) == []
