"""A real ``prefect server start`` on loopback, ``python -m flows.serve`` registering the inbox flow
on a short schedule, and a scheduled run of it completing: what a user's deployment does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def test_served_inbox_flow_runs_on_its_schedule(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PYTHONPATH": str(ROOT),
    }
    exe = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(exe / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    served = None
    try:
        deadline = time.time() + 120
        while True:
            try:
                if api(url, "/health") is True:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "prefect server did not become healthy"
            assert server.poll() is None, "prefect server exited"
            time.sleep(1)

        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "README.txt").write_text("not under clean/ or reverb/: ignored")
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["orchestration"].update(inbox=str(inbox), dvc=False)
        pfile = tmp_path / "params.yaml"
        pfile.write_text(yaml.safe_dump(params))
        log = open(tmp_path / "serve.log", "w")
        served = subprocess.Popen(
            [sys.executable, "-m", "flows.serve", "--interval", "3", "--params-file", str(pfile)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        deadline, done = time.time() + 180, []
        while not done:
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.time() < deadline, (
                "no scheduled run completed:\n" + (tmp_path / "serve.log").read_text()[-3000:]
            )
            time.sleep(2)
            runs = api(url, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}})
            done = [r for r in runs if r["deployment_id"] and r["auto_scheduled"]]
        deployment = api(url, f"/deployments/{done[0]['deployment_id']}")
        assert deployment["name"] == "mvsd-inbox"
        assert done[0]["parameters"]["params_file"] == str(pfile)
        assert not (tmp_path / "datasets" / "inbox" / "ledger.parquet").exists()  # nothing new: no ledger
    finally:
        if served is not None:
            stop(served)
        stop(server)


def test_serve_help_loads_neither_prefect_nor_torch(tmp_path):
    """`python -m flows.serve --help` answers without importing Prefect, torch or Ray (they load
    when the flow runs) and leaves nothing behind in the folder it runs in."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "flows.serve", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "Usage" in proc.stdout and "--cron" in proc.stdout, proc.stderr
    probe = "import sys, flows.serve; print(sorted({'prefect', 'torch', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    assert list(tmp_path.iterdir()) == []
