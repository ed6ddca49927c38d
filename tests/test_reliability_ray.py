"""Issue 12, case 16: a Ray the user started (`ray start --head`) does not break our commands."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_pids() -> set[int]:
    # -ww: without it ps cuts lines at $COLUMNS (pytest sets it), and ".../site-packages/ray/..."
    # of Ray's monitor, log monitor and dashboard fell past the cut, so they were never stopped
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "ray" in line and line.split()[0].isdigit()}


def _stop(before: set[int]) -> None:
    """Kill the Ray processes that appeared during the test (the user's `ray start` and its
    workers), not Rays that were running before it; fails if any of them is still there."""
    left: set[int] = set()
    for _ in range(10):
        left = {p for p in _ray_pids() - before - {os.getpid()} if not _zombie(p)}
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    raise AssertionError(f"Ray processes left running after the test: {sorted(left)}")


def _zombie(pid: int) -> bool:
    """A killed process whose parent has not reaped it yet (it holds no memory or port)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True  # gone


def _start_head(port: int, env: dict) -> subprocess.CompletedProcess:
    """The user's `ray start --head` (1 CPU, no dashboard) on ``port``."""
    return subprocess.run(
        [str(RAY), "start", "--head", "--num-cpus=1", f"--port={port}",
         "--include-dashboard=false", "--disable-usage-stats"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(not RAY.exists(), reason="ray CLI not installed")
def test_a_running_ray_does_not_capture_our_commands():
    # the default temp dir: `ray start` leaves its address where ray.init() looks for one
    port = _free_port()
    before = _ray_pids()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = _start_head(port, env)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        code = (
            "import os, ray; from mvsd.config import load_params; from mvsd.train.distributed import init_ray; "
            "init_ray(load_params(None)); print('CPUS', int(ray.cluster_resources()['CPU']), os.cpu_count())"
        )
        t0 = time.time()
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
        )
        assert run.returncode == 0, run.stderr[-3000:]
        cpus, cores = run.stdout.split("CPUS")[1].split()
        # a private instance with our resources, not the user's 1-CPU cluster
        assert int(cpus) == int(cores), run.stdout
        assert time.time() - t0 < 300
    finally:
        _stop(before)


@pytest.mark.skipif(not RAY.exists(), reason="ray CLI not installed")
def test_joining_a_ray_start_cluster_by_address_handles_its_token(tmp_path):
    """Issue 15: `ray start --head` turns token authentication on (Ray >= 2.59), and a driver
    joining it by address looped on "InvalidAuthToken" and failed with a traceback. With the
    token on this machine (where the head wrote it) our commands join (and say how to skip the
    refused first try); without it they fail in one line that says what to do."""
    port = _free_port()
    before = _ray_pids()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    started = _start_head(port, env)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        code = "import ray; from mvsd.cluster import init_ray; init_ray(); print('CPUS', int(ray.cluster_resources()['CPU']))"
        join = {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=join, timeout=180)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.split("CPUS")[1].split()[0] == "1"  # the user's 1-CPU cluster
        assert "joining with the token on this machine" in run.stderr
        elsewhere = {**join, "HOME": str(tmp_path)}  # a machine without the token
        cli = [sys.executable, "-m", "mvsd.cli", "synth", "--out", str(tmp_path / "ds"), "--set", "shards.executor=ray"]
        run = subprocess.run(cli, capture_output=True, text=True, env=elsewhere, timeout=180)
        assert run.returncode == 2
        err = run.stderr.strip().splitlines()
        assert err[-1].startswith("error: cannot join the Ray cluster at RAY_ADDRESS=127.0.0.1:"), run.stderr[-2000:]
        assert "export RAY_AUTH_MODE=token" in err[-1] and "Traceback" not in run.stderr
    finally:
        _stop(before)


def test_ray_train_controller_timeouts_stay_off_the_console():
    """On a busy machine Ray Train's controller logs a timed-out autoscaler request and a slow
    placement-group cleaner, each with a traceback. The worker set-up hook drops exactly those,
    and its filters outlive Ray Train's own logging configuration (a dictConfig of ray.train)."""
    import logging
    import logging.config

    from mvsd.cluster import quiet_worker_logs

    quiet_worker_logs()
    seen: list[str] = []
    train = logging.getLogger("ray.train")
    saved = (train.level, train.handlers[:], train.propagate)

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logging.config.dictConfig(  # as Ray Train configures its controller
        {"version": 1, "disable_existing_loggers": False, "handlers": {"keep": {"()": Keep}},
         "loggers": {"ray.train": {"level": "DEBUG", "handlers": ["keep"], "propagate": False}}}  # fmt: skip
    )
    client = logging.getLogger("ray.train.v2._internal.execution.scaling_policy.autoscaling_coordinator_client")
    callback = logging.getLogger("ray.train.v2._internal.callbacks.placement_group_callback")
    try:
        raise TimeoutError("Get timed out")
    except TimeoutError:
        client.warning("Failed to send resource request for x. ... it's safe to ignore this error.", exc_info=True)
        callback.exception("Failed to stop PlacementGroupCleaner gracefully.")
    client.warning("Autoscaling requests expired")  # anything else still reaches the console
    train.level, train.handlers, train.propagate = saved
    assert seen == ["Autoscaling requests expired"]
