"""Datasets on object storage: `mvsd ingest` and `mvsd synth` writing to (and reading from) an S3
API, against a local folder, in the same run.

    .venv/bin/python benchmarks/bench_object_storage.py [--clips 2000] [--workers 2]

The bucket is moto's S3 server on 127.0.0.1 (the one the tests use: a real S3 API over HTTP,
objects kept in that server's memory), so the figures are the cost of mvsd's object-storage path
— one upload per object, listings without cache, inputs fetched one by one by the workers — not
of a network: a real bucket adds its latency and bandwidth on top. Rows:

* ingest, local folder -> local folder (the default path);
* ingest, local folder -> s3://;
* ingest, s3:// -> s3:// (the clips uploaded to the bucket first, not timed);
* synth (the bench_cluster workload, 208 samples) -> local folder and -> s3://.

Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cluster import SYNTH, make_clips, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synth-rooms", type=int, default=16)
    args = ap.parse_args()
    import logging

    import fsspec
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1", MVSD_QUIET="1",
    )  # fmt: skip
    os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]})
    fs.mkdir("bench")
    root = Path(tempfile.mkdtemp(prefix="bench-objstore-"))
    mvsd = [sys.executable, "-m", "mvsd.cli"]
    w = args.workers
    ingest_sets = ["--set", f"ingest.workers={w}", "--set", "shards.samples_per_shard=100"]
    synth_sets = [x for o in [*SYNTH, f"simrooms.n_rooms_seen={args.synth_rooms}", f"simrooms.workers={w}"]
                  for x in ("--set", o)]  # fmt: skip
    rows = []
    try:
        clips = root / "clips"
        make_clips(clips, args.clips)
        fs.put(str(clips), "bench/clips", recursive=True)
        ingest = lambda src, out: run([*mvsd, "ingest", "clean-folder", src, "--out", out, *ingest_sets], env)  # noqa: E731
        rows.append(("ingest", "local folder -> local folder", ingest(str(clips), str(root / "ing-local"))))
        rows.append(("ingest", "local folder -> s3://", ingest(str(clips), "s3://bench/ing-a")))
        rows.append(("ingest", "s3:// -> s3://", ingest("s3://bench/clips", "s3://bench/ing-b")))
        synth = lambda out: run([*mvsd, "synth", "--out", out, *synth_sets], env)  # noqa: E731
        rows.append(("synth", "-> local folder", synth(str(root / "synth-local"))))
        rows.append(("synth", "-> s3://", synth("s3://bench/synth")))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        server.stop()
    n_synth = 160 + 16 * 3
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {w} worker processes; ingest "
          f"{args.clips} clips of 1 s, synth {n_synth} samples; S3 = moto's server on 127.0.0.1")  # fmt: skip
    print("| command | input -> output | seconds | items/s | vs local folder |")
    print("|---|---|---:|---:|---:|")
    base = {"ingest": rows[0][2], "synth": rows[3][2]}
    for cmd, where, t in rows:
        n = args.clips if cmd == "ingest" else n_synth
        print(f"| {cmd} | {where} | {t:.1f} | {n / t:.0f} | {t / base[cmd]:.2f}x |")


if __name__ == "__main__":
    main()
