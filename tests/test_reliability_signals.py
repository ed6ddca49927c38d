"""Workers die with their parent, and SIGTERM is a clean stop (issue 12, cases 7 and 20): after
``kill -9`` of ``mvsd synth`` its worker processes exit within seconds and write nothing more;
after SIGTERM it stops its workers, removes its temporary files, prints one line and exits 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY_SIMROOMS

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and /proc")


def start_synth(out: Path) -> subprocess.Popen:
    sets = [x for o in TINY_SIMROOMS if not o.startswith("simrooms.workers") for x in ("--set", o)]
    sets += ["--set", "simrooms.workers=2", "--set", "simrooms.n_rooms_seen=12"]  # ~10 s of work
    cmd = [str(Path(sys.executable).parent / "mvsd"), "synth", "--out", str(out), *sets]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def workers_of(proc: subprocess.Popen, n: int = 2, timeout: float = 120) -> list:
    """The pool's worker processes once ``n`` of them run."""
    parent = psutil.Process(proc.pid)
    t0 = time.time()
    while time.time() - t0 < timeout:
        kids = [k for k in parent.children(recursive=True) if "multiprocessing" in " ".join(k.cmdline())]
        workers = [k for k in kids if "resource_tracker" not in " ".join(k.cmdline())]
        if len(workers) >= n:
            time.sleep(1)  # let them start writing
            assert proc.poll() is None, "finished before the signal: make the work bigger"
            return kids
        time.sleep(0.2)
    raise AssertionError(f"no {n} workers after {timeout} s: {proc.communicate()}")


def running(procs: list, timeout: float = 5) -> list:
    """Those of ``procs`` still running after ``timeout`` s (zombies have exited: an orphan's
    zombie waits for a reaper that a container's first process may not be)."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def listing(out: Path) -> dict:
    return {str(p): p.stat().st_size for p in out.rglob("*") if p.is_file()}


def test_kill_9_takes_the_workers_with_it(tmp_path):
    out = tmp_path / "ds"
    proc = start_synth(out)
    kids = workers_of(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    alive = running(kids)
    assert not alive, f"{len(alive)} worker(s) outlived their parent"
    before = listing(out)
    time.sleep(1.5)
    assert listing(out) == before  # nothing writes into the output any more
    # (A rerun removes temporary files the killed workers left and resumes: test_builder.)


def test_sigterm_stops_workers_cleans_up_and_exits_143(tmp_path):
    out = tmp_path / "ds"
    proc = start_synth(out)
    kids = workers_of(proc)
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines() == [
        "terminated (SIGTERM): workers stopped; run the command again to resume"
    ]  # fmt: skip
    assert not running(kids)
    assert not list(out.rglob("*.tmp-*"))


def test_sigterm_stops_training_with_one_line_and_exit_143(tmp_path):
    """Case 20, training: Ray's own SIGTERM handler (stack dump, abort, exit 134) does not replace ours."""
    from conftest import TINY_TRAIN

    from mvsd.config import load_params
    from mvsd.sim.synth import synth

    synth(tmp_path / "ds", load_params(None, TINY_SIMROOMS))
    sets = [x for o in [*TINY_TRAIN, "train.steps=400", "train.workers=0"] for x in ("--set", o)]
    cmd = [str(Path(sys.executable).parent / "mvsd"), "train", "--dataset", str(tmp_path / "ds"), "--run", "t",
           "--checkpoints", str(tmp_path / "ck"), "--set", f"train.storage_path={tmp_path / 'ray'}", *sets]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "ck" / "t" / "round-0-live" / "plots" / "metrics" / "total.tsv"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
        time.sleep(0.5)
    assert log.exists(), "training never started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    shown = "\n".join(x for x in err.splitlines() if not x.startswith("Extension modules"))  # faulthandler's
    assert proc.returncode == 143, f"exit {proc.returncode}:\n{shown[-4000:]}"
    assert "terminated (SIGTERM)" in err and "Traceback" not in err and "SIGTERM received" not in err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped raise
def test_sigterm_inside_a_soundfile_callback_is_not_lost(monkeypatch):
    """Python drops an exception raised inside a C callback ("Exception ignored from cffi
    callback"): a SIGTERM that lands while soundfile reads a FLAC from memory must still stop the
    command (it once let a training run on to its end and exit 0)."""
    from types import SimpleNamespace

    import numpy as np

    from mvsd import audio_io
    from mvsd.errors import Terminated, on_sigterm, reset_terminated

    data = audio_io.encode_flac(np.zeros(1600, np.float32))

    class SigtermOnRead(audio_io.io.BytesIO):  # the signal arrives inside soundfile's vio_read
        def readinto(self, buf):
            os.kill(os.getpid(), signal.SIGTERM)
            return super().readinto(buf)

    monkeypatch.setattr(audio_io, "io", SimpleNamespace(**{**vars(audio_io.io), "BytesIO": SigtermOnRead}))
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    reset_terminated()
    try:
        for read in (audio_io.decode_flac, lambda d: audio_io.load_audio("x.flac", d)):
            reset_terminated()
            with pytest.raises(Terminated):
                read(data)
    finally:
        signal.signal(signal.SIGTERM, previous)
        reset_terminated()
