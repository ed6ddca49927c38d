"""One bad file never blocks the inbox for good (issue 12, cases 5 and 13): a file whose name is
not UTF-8, and a corrupt wav with the flow's default (relative) data path, are quarantined and
recorded in the ledger, and later runs go on (none new, or the next files)."""

from __future__ import annotations

import os
import subprocess

import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_bad_files_with_default_paths_never_block_the_inbox(harness, tmp_path, monkeypatch):
    from flows.inbox import INBOX_DATA, inbox

    monkeypatch.chdir(tmp_path)  # the project: the default data path datasets/inbox is relative
    box = tmp_path / "inbox"
    (box / "clean").mkdir(parents=True)
    (box / "clean" / "broken.wav").write_bytes(b"RIFF....WAVEfmt this is not audio")
    with open(os.path.join(os.fsdecode(os.fsencode(box / "clean")), os.fsdecode(b"caf\xe9.wav")), "wb") as f:
        f.write(b"not audio either")
    # Nothing here is good enough to ingest, so no round is trained: the dataset is never read.
    ov = ["orchestration.dvc=false", f"orchestration.inbox={box}", "orchestration.dataset=nowhere"]

    s = inbox(overrides=ov)  # data: the default, relative INBOX_DATA
    assert s["new"] == 2 and s["ingested"] == 0, s
    assert set(s["quarantined"]) == {"clean/broken.wav", "clean/caf\\xe9.wav"}
    reason = s["quarantined"]["clean/broken.wav"]
    assert reason.startswith("unreadable audio") and f"'{box}/clean/broken.wav'" in reason  # the inbox file
    ledger = pq.read_table(tmp_path / INBOX_DATA / "ledger.parquet").to_pylist()
    assert sorted((r["file"], r["status"]) for r in ledger) == [
        ("clean/broken.wav", "quarantined"), ("clean/caf\\xe9.wav", "quarantined")
    ]  # fmt: skip

    again = inbox(overrides=ov)
    assert again["new"] == 0 and again["files"] == 2  # recorded: not retried for ever
    (box / "clean" / "also-broken.wav").write_bytes(b"RIFF")
    third = inbox(overrides=ov)
    assert third["new"] == 1 and set(third["quarantined"]) == {"clean/also-broken.wav"}


def test_a_full_disk_is_not_retried(harness, tmp_path):
    """Prefect retries I/O tasks, but not a failure that cannot pass: no space left."""
    import numpy as np
    import soundfile as sf
    from prefect import flow
    from prefect.client.orchestration import get_client

    from flows import tasks
    from mvsd.config import load_params, to_dict

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        src = tmp_path / "speech"
        src.mkdir()
        for i in range(12):
            sf.write(src / f"s{i}.wav", 0.1 * np.random.default_rng(i).standard_normal(32000), 16000)
        pd = to_dict(load_params(None, ["ingest.workers=1", "shards.samples_per_shard=4"]))

        @flow
        def fill() -> tuple:
            state = tasks.ingest.task(
                "clean-folder", str(src), str(disk / "ds"), pd, split="train", return_state=True
            )
            try:
                state.result()
            except OSError as e:
                return state.state_details.task_run_id, str(e)
            return state.state_details.task_run_id, "succeeded"

        run_id, outcome = fill()
        assert "No space left on device" in outcome
        with get_client(sync_client=True) as client:
            assert client.read_task_run(run_id).run_count == 1  # not retried
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_push_to_a_remote_that_is_down_says_why_and_is_retried(harness, tmp_path, monkeypatch):
    """Case 19: the run fails with DVC's reason; the ledger keeps the files from being ingested
    twice, and the next run, though it finds nothing new, pushes what is pending."""
    from conftest import init_git_dvc

    from flows.inbox import inbox, pending_pushes

    monkeypatch.chdir(tmp_path)
    init_git_dvc(tmp_path)  # its remote is ./dvc-remote
    (tmp_path / "dvc-remote").write_text("not a folder: the remote is broken")
    box = tmp_path / "inbox"
    (box / "clean").mkdir(parents=True)
    (box / "clean" / "broken.wav").write_bytes(b"RIFF....WAVEfmt this is not audio")
    ov = [f"orchestration.inbox={box}", "orchestration.dataset=nowhere"]  # dvc: true (default)

    with pytest.raises(RuntimeError, match=r"dvc push .*failed.*\n(.|\n)*Not a directory"):
        inbox(overrides=ov)
    assert pending_pushes() == ["datasets/inbox.dvc"]

    (tmp_path / "dvc-remote").unlink()  # the remote is back
    s = inbox(overrides=ov)
    assert s["new"] == 0 and s["dvc"] == ["datasets/inbox.dvc"], s
    assert pending_pushes() == [] and any(p.is_file() for p in (tmp_path / "dvc-remote").rglob("*"))
