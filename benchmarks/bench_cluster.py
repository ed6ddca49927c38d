"""The dataset builder on Ray: `mvsd synth` and `mvsd ingest` on a local multi-node Ray cluster
with 1, 2 and 4 worker nodes, against the local-process path, in the same run.

    .venv/bin/python benchmarks/bench_cluster.py [--clips 2000] [--nodes 1,2,4] [--synth-rooms 16]

Each Ray configuration is a fresh cluster started with Ray's own test utility
(``ray.cluster_utils.Cluster``: a head with no CPUs, so every task runs on a worker node, and N
worker nodes of one CPU each, separate raylets as separate machines would be); the commands join
it through ``RAY_ADDRESS`` with ``--set shards.executor=ray``, exactly as a user on a cluster
would. The ingest reads a folder of ``--clips`` short WAV files made once (dry-speech-like noise
bursts, 16 kHz). Also measured: the per-task overhead of a Ray task (no-op tasks, round trip).
On a machine with C cores, more than C worker nodes share the cores: the rows beyond C show
overhead, not speed-up. Prints Markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SYNTH = [
    "simrooms.n_rooms_unseen=4",
    "simrooms.views_per_room=2",
    "simrooms.train_samples=160",
    "simrooms.val_samples=16",
    "simrooms.test_seen_samples=16",
    "simrooms.test_unseen_samples=16",
    "shards.samples_per_shard=16",
]


def make_clips(folder: Path, n: int, seconds: float = 1.0) -> None:
    folder.mkdir(parents=True)
    gen = np.random.default_rng(0)
    t = int(16000 * seconds)
    for i in range(n):
        env = np.abs(np.sin(np.linspace(0, gen.uniform(3, 9) * np.pi, t)))  # syllable-like bursts
        x = (gen.standard_normal(t) * env * 0.1).astype(np.float32)
        sf.write(folder / f"clip{i:05d}.wav", x, 16000, subtype="PCM_16")


def run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def workloads(root: Path, clips: Path, n_rooms: int, executor: str, workers: int, env: dict) -> dict:
    mvsd = [sys.executable, "-m", "mvsd.cli"]
    sets = lambda extra: [x for o in extra for x in ("--set", o)]  # noqa: E731
    out = {}
    ds = root / f"synth-{executor}-{workers}"
    out["synth"] = run(
        [*mvsd, "synth", "--out", str(ds),
         *sets([*SYNTH, f"simrooms.n_rooms_seen={n_rooms}", f"simrooms.workers={workers}",
                f"shards.executor={executor}"])],
        env,
    )  # fmt: skip
    ing = root / f"ingest-{executor}-{workers}"
    out["ingest"] = run(
        [*mvsd, "ingest", "clean-folder", str(clips), "--out", str(ing),
         *sets([f"ingest.workers={workers}", f"shards.executor={executor}", "shards.samples_per_shard=100"])],
        env,
    )  # fmt: skip
    shutil.rmtree(ds)
    shutil.rmtree(ing)
    return out


def task_overhead(address: str, n: int = 200) -> float:
    """Seconds per no-op Ray task, submitted all at once (driver round trip included)."""
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get([noop.remote() for _ in range(10)])  # warm the workers
        t0 = time.perf_counter()
        ray.get([noop.remote() for _ in range(n)])
        return (time.perf_counter() - t0) / n
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--nodes", default="1,2,4")
    ap.add_argument("--synth-rooms", type=int, default=16, help="seen rooms of the synth workload")
    ap.add_argument("--ray-only", action="store_true", help="skip the local-process rows")
    args = ap.parse_args()
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    clips = root / "clips"
    make_clips(clips, args.clips)
    n_synth = 160 + 16 * 3
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["MVSD_QUIET"] = "1"
    rows = []
    try:
        for workers in (1, 2) if not args.ray_only else ():
            t = workloads(root, clips, args.synth_rooms, "local", workers, env)
            rows.append((f"local processes ({workers})", t, None))
        for nodes in [int(x) for x in args.nodes.split(",")]:
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
            try:
                for _ in range(nodes):
                    cluster.add_node(num_cpus=1)
                cluster.wait_for_nodes()
                t = workloads(root, clips, args.synth_rooms, "ray", 0, {**env, "RAY_ADDRESS": cluster.address})
                overhead = task_overhead(cluster.address)
                rows.append((f"Ray, {nodes} worker node(s) x 1 CPU", t, overhead))
            finally:
                cluster.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0][1]  # the first row: 1 local process (or the first Ray row with --ray-only)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; synth {n_synth} samples "
          f"({(args.synth_rooms + 4) * 2} views), ingest {args.clips} clips of 1 s")  # fmt: skip
    print("| executor | synth (s) | synth samples/s | ingest (s) | ingest clips/s | vs 1 local process (ingest) | Ray task overhead (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, t, overhead in rows:
        oh = f"{overhead * 1e3:.1f}" if overhead is not None else ""
        print(
            f"| {name} | {t['synth']:.1f} | {n_synth / t['synth']:.1f} | {t['ingest']:.1f} | "
            f"{args.clips / t['ingest']:.0f} | {base['ingest'] / t['ingest']:.2f}x | {oh} |"
        )


if __name__ == "__main__":
    main()
