"""What DVC and Prefect add to each pipeline stage, against calling the CLI directly.

    .venv/bin/python benchmarks/bench_pipeline.py            # tiny params: overhead dominates
    .venv/bin/python benchmarks/bench_pipeline.py --demo     # the project's params (about 20 min x 3)

In a scratch git + DVC repository holding a copy of the project's code, dvc.yaml and params
(tiny sizes unless ``--demo``), the five stages run three ways, each from clean outputs:

* **cli**: the stage's ``mvsd`` command, as a subprocess;
* **dvc**: ``dvc repro`` of the whole pipeline; per-stage time from its "Running stage" lines;
* **prefect**: the same stage as a flow script (``python -m flows.<name>``), each a subprocess
  that starts a temporary Prefect server (no ``PREFECT_API_URL``), as a user running flows
  without a server does.

Prints a Markdown table (seconds, and each way's overhead against the CLI).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

RUN = "demo"
STAGES = {
    "synth": (
        ["mvsd", "synth", "--out", "datasets/simrooms"],
        ["flows.ingest", "simrooms", "--out", "datasets/simrooms"],
    ),
    "train_round0": (["mvsd", "train", "--round", "0"], ["flows.train_round", "--round", "0"]),
    "pseudo_round0": (["mvsd", "pseudo", "--round", "0"], ["flows.pseudo_pairs", "--round", "0"]),
    "train_round1": (["mvsd", "train", "--round", "1"], ["flows.train_round", "--round", "1"]),
    "evaluate": (None, None),  # filled from params (split, limit)
}


def env() -> dict:
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    e["PYTHONPATH"] = str(ROOT)
    e.pop("PREFECT_API_URL", None)
    return e


def sh(repo: Path, cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=repo, env=env(), capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0, p.stdout + p.stderr


def clean(repo: Path) -> None:
    for d in ("datasets", "checkpoints", "metrics", "reports", ".prefect"):
        shutil.rmtree(repo / d, ignore_errors=True)
    (repo / "dvc.lock").unlink(missing_ok=True)


def make_repo(demo: bool) -> Path:
    from conftest import TINY_PIPELINE, pipeline_repo

    repo = Path(tempfile.mkdtemp(prefix="bench-pipeline-")) / "project"
    params = pipeline_repo(repo, [] if demo else TINY_PIPELINE)
    ev = params["evaluate"]
    rounds = ["--round", f"checkpoints/{RUN}/round-0", "--round", f"checkpoints/{RUN}/round-1"]
    STAGES["evaluate"] = (
        ["mvsd", "eval", "--split", ev["split"], "--limit", str(ev["limit"]), *rounds, "--name", RUN,
         "--report", f"reports/{RUN}", "--report-samples", str(ev["report_samples"])],
        ["flows.evaluate", rounds[1], rounds[3], "--split", ev["split"],
         "--limit", str(ev["limit"] or ""), "--name", RUN, "--report", f"reports/{RUN}"],
    )  # fmt: skip
    if not ev["limit"]:
        STAGES["evaluate"][1][
            STAGES["evaluate"][1].index("--limit") : STAGES["evaluate"][1].index("--limit") + 2
        ] = []
    return repo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", action="store_true", help="the project's params instead of tiny ones")
    args = ap.parse_args()
    repo = make_repo(args.demo)
    times: dict[str, dict[str, float]] = {s: {} for s in STAGES}

    for stage, (cli, _) in STAGES.items():
        times[stage]["cli"] = sh(repo, cli)[0]
        print(f"cli {stage}: {times[stage]['cli']:.1f} s", flush=True)

    clean(repo)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["dvc", "repro"], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    marks = []
    for line in proc.stdout:
        m = re.search(r"Running stage '([^']+)'", line)
        if m:
            marks.append((m.group(1), time.perf_counter()))
    assert proc.wait() == 0, "dvc repro failed"
    end = time.perf_counter()
    for (stage, t), nxt in zip(marks, [*(t for _, t in marks[1:]), end]):
        times[stage]["dvc"] = nxt - t
    dvc_total = end - t0
    print(f"dvc repro: {dvc_total:.1f} s", flush=True)

    clean(repo)
    for stage in STAGES:
        times[stage]["prefect"] = sh(repo, [sys.executable, "-m", *STAGES[stage][1]])[0]
        print(f"prefect {stage}: {times[stage]['prefect']:.1f} s", flush=True)

    print(f"\n{'demo' if args.demo else 'tiny'} params, {os.cpu_count()} CPUs\n")
    print("| stage | CLI s | dvc repro s | overhead | Prefect flow s | overhead |")
    print("|---|---:|---:|---:|---:|---:|")
    for stage, t in times.items():
        print(
            f"| {stage} | {t['cli']:.1f} | {t.get('dvc', float('nan')):.1f} | {t.get('dvc', 0) - t['cli']:+.1f} "
            f"| {t['prefect']:.1f} | {t['prefect'] - t['cli']:+.1f} |"
        )
    total = sum(t["cli"] for t in times.values())
    print(f"| all | {total:.1f} | {dvc_total:.1f} | {dvc_total - total:+.1f} | | |")
    print(f"\nscratch repository: {repo}")


if __name__ == "__main__":
    main()
