"""Datasets on object storage (issue 15): synth and ingest read from and write to fsspec URLs.

A real S3 API stands in for a bucket: moto's server on 127.0.0.1, reached by s3fs (and by DVC's
dvc-s3) through ``AWS_ENDPOINT_URL`` with dummy credentials; ``memory://`` where one process is
enough. Every build is compared with the same build on a local folder: same version, same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SIMROOMS, init_git_dvc, tool_env
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import LoaderConfig, load_params
from mvsd.data.adapters import ingest
from mvsd.data.builder import BUILD_DIR, FAULT_SHARD_ENV, stored_version
from mvsd.data.loader import make_loader
from mvsd.data.manifest import read_manifest, read_quarantine
from mvsd.data.storage import open_dir
from mvsd.errors import OutputError
from mvsd.sim.synth import synth

moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

BUCKET = "mvsd-test"
INGEST = ["ingest.workers=1", "shards.samples_per_shard=2"]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server for this module; s3fs (in this process and in child processes, which
    inherit the environment) talks to it. Yields the S3 filesystem."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fsspec.filesystem("s3").clear_instance_cache()  # no s3fs made before the variables were set
    fs = fsspec.filesystem("s3", use_listings_cache=False)
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()
        fsspec.filesystem("s3").clear_instance_cache()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class PutLog(logging.Handler):
    """The paths of the PUT requests the moto server answers (its werkzeug access log)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.puts: list[str] = []

    def emit(self, record):
        m = re.search(r'"PUT (\S+) HTTP', record.getMessage())
        if m:
            self.puts.append(m.group(1).split("?")[0])


@pytest.fixture
def put_log():
    log, handler = logging.getLogger("werkzeug"), PutLog()
    level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def url_files(url: str) -> dict[str, bytes]:
    fs, base = fsspec.core.url_to_fs(url, use_listings_cache=False)
    base = base.rstrip("/")
    return {f[len(base) + 1 :]: fs.cat_file(f) for f in fs.find(base)}


def without_local_lock(files: dict[str, bytes]) -> dict[str, bytes]:
    """A local build keeps its (empty) flock file; a URL build deletes its lock object."""
    return {k: v for k, v in files.items() if k != f"{BUILD_DIR}/lock"}


@pytest.fixture(scope="module")
def local_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "simrooms"
    synth(out, load_params(None, TINY_SIMROOMS))
    return out


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A folder of dry speech: 5 good recordings in two speakers' folders and one broken file."""
    root = tmp_path_factory.mktemp("rec") / "recordings"
    rng = np.random.default_rng(0)
    for i in range(5):
        (root / f"spk{i % 2}").mkdir(parents=True, exist_ok=True)
        sf.write(root / f"spk{i % 2}" / f"take{i}.wav", 0.1 * rng.standard_normal(4000), 16000)
    (root / "spk0" / "broken.wav").write_bytes(b"RIFF not really a wav")
    (root / ".hidden").mkdir()
    sf.write(root / ".hidden" / "skip.wav", 0.1 * rng.standard_normal(4000), 16000)
    return root


@pytest.fixture(scope="module")
def local_ingest(recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "ds"
    ingest("clean-folder", recordings, out, load_params(None, INGEST))
    return out


@pytest.fixture(scope="module")
def s3_recordings(s3, recordings):
    s3.put(str(recordings), f"{BUCKET}/recordings", recursive=True)
    return f"s3://{BUCKET}/recordings"


# -- building ---------------------------------------------------------------------------------------


def test_synth_to_s3_is_the_local_build_uploaded_whole(s3, local_synth, put_log):
    url = f"s3://{BUCKET}/simrooms"
    r = CliRunner().invoke(app, ["synth", "--out", url, *[x for o in TINY_SIMROOMS for x in ("--set", o)]])
    assert r.exit_code == 0, r.output
    assert stored_version(url) == stored_version(local_synth) is not None
    # Byte for byte the local dataset: shards, parts, manifest, quarantine, dataset.json, rooms.json.
    assert url_files(url) == without_local_lock(local_files(local_synth))
    # Each object went up in one PUT under its final name: no temp name, no second write, and the
    # lock object was created and deleted.
    shard_puts = [p for p in put_log.puts if "/shards/" in p]
    shards = sorted(set(read_manifest(url).column("shard").to_pylist()))
    assert sorted(shard_puts) == [f"/{BUCKET}/simrooms/{s}" for s in shards]
    assert not [p for p in put_log.puts if "tmp" in p]
    assert f"/{BUCKET}/simrooms/{BUILD_DIR}/lock" in put_log.puts
    assert not s3.exists(f"{BUCKET}/simrooms/{BUILD_DIR}/lock")


def test_synth_to_memory_is_the_local_build(local_synth):
    url = "memory://mvsd-test/simrooms"
    s = synth(url, load_params(None, TINY_SIMROOMS))
    assert s.version == stored_version(local_synth) and s.dataset == url
    assert url_files(url) == without_local_lock(local_files(local_synth))
    with pytest.raises(ValueError, match="in-process filesystem; build it with workers=1"):
        synth("memory://mvsd-test/other", load_params(None, [*TINY_SIMROOMS, "simrooms.workers=2"]))


def test_ingest_from_s3_to_s3_is_the_local_ingest(s3, s3_recordings, local_ingest):
    """The worker reads its inputs straight from the bucket (the Ray test below: other processes)."""
    url = f"s3://{BUCKET}/ingest"
    s = ingest("clean-folder", s3_recordings, url, load_params(None, INGEST))
    assert (s.samples, s.quarantined) == (5, 1)
    assert s.version == stored_version(local_ingest)
    assert url_files(f"{url}/shards") == local_files(local_ingest / "shards")
    q = read_quarantine(url).to_pylist()
    assert [r["file"] for r in q] == [f"{s3_recordings}/spk0/broken.wav"]  # the bad file's URL
    assert "unreadable audio" in q[0]["reason"]


def test_ingest_from_s3_on_ray_is_the_local_ingest(s3, s3_recordings, local_ingest, monkeypatch):
    """shards.executor=ray: Ray tasks get the URLs (no path) and read and write the bucket."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.shutdown()  # a Ray started earlier in this session lacks the endpoint in its workers' env
    try:
        url = f"s3://{BUCKET}/ingest-ray"
        params = load_params(None, [*INGEST, "shards.executor=ray", "ingest.workers=2"])
        s = ingest("clean-folder", s3_recordings, url, params)
    finally:
        ray.shutdown()
    assert (s.samples, s.quarantined) == (5, 1) and s.version == stored_version(local_ingest)
    assert url_files(f"{url}/shards") == local_files(local_ingest / "shards")


def test_killed_build_on_s3_resumes_without_duplicates_or_gaps(s3, s3_recordings, local_ingest):
    """The build process dies (as kill -9) before its second shard: finished shards stay, its
    lock object stays (stale), and the rerun on this host takes the lock over and finishes."""
    url = f"s3://{BUCKET}/killed"
    killed = "shards/train/clean_only-000001.tar"
    sets = [x for o in INGEST for x in ("--set", o)]
    r = subprocess.run(
        [sys.executable, "-m", "mvsd.cli", "ingest", "clean-folder", s3_recordings, "--out", url, *sets],
        env={**tool_env(), FAULT_SHARD_ENV: killed}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 137, r.stderr[-2000:]
    left = url_files(url)
    assert "shards/train/clean_only-000000.tar" in left and killed not in left
    assert "manifest.parquet" not in left and f"{BUILD_DIR}/lock" in left  # a stale lock
    s = ingest("clean-folder", s3_recordings, url, load_params(None, INGEST))
    assert s.resumed_shards == 1 and s.version == stored_version(local_ingest)
    keys = read_manifest(url).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 5
    assert url_files(f"{url}/shards") == local_files(local_ingest / "shards")
    assert not s3.exists(f"{BUCKET}/killed/{BUILD_DIR}/lock")


# -- what must not happen -------------------------------------------------------------------------


def test_a_second_build_of_a_locked_url_is_refused(s3, s3_recordings):
    url = f"s3://{BUCKET}/busy"
    params = load_params(None, INGEST)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from mvsd.data.storage import open_dir; "
         f"open_dir({url!r}).lock(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=tool_env(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match="another run on this machine is building"):
            ingest("clean-folder", s3_recordings, url, params)
        assert not s3.exists(f"{BUCKET}/busy/shards")
    finally:
        holder.kill()
        holder.wait()
    # The same lock object held by another machine: refused, saying how to clear a stale one.
    lock = f"{BUCKET}/busy/{BUILD_DIR}/lock"
    s3.pipe_file(lock, json.dumps({"host": "worker-7", "pid": 1, "started": "2026-01-01"}).encode())
    with pytest.raises(OutputError, match=r"host worker-7.*delete that object"):
        ingest("clean-folder", s3_recordings, url, params)
    assert not s3.exists(f"{BUCKET}/busy/shards")
    s3.rm_file(lock)
    assert ingest("clean-folder", s3_recordings, url, params).samples == 5


def test_a_prefix_that_is_not_an_mvsd_dataset_is_refused(s3, s3_recordings):
    mine = f"{BUCKET}/mine"
    s3.pipe_file(f"{mine}/shards/keep.tar", b"the user's tar")
    s3.pipe_file(f"{mine}/{BUILD_DIR}/notes", b"mine")
    before = url_files(f"s3://{mine}")
    r = CliRunner().invoke(
        app, ["ingest", "clean-folder", s3_recordings, "--out", f"s3://{mine}", "--set", "ingest.workers=1"]
    )
    assert r.exit_code == 2 and "not empty and not an mvsd dataset" in r.output, r.output
    assert url_files(f"s3://{mine}") == before
    r = CliRunner().invoke(  # the input itself, or a prefix above it
        app, ["ingest", "clean-folder", s3_recordings, "--out", f"s3://{BUCKET}", "--set", "ingest.workers=1"]
    )
    assert r.exit_code == 2 and "is the input folder" in r.output, r.output


# -- reading back ---------------------------------------------------------------------------------


def test_loader_and_verify_read_the_dataset_from_s3(s3, local_synth):
    url = f"s3://{BUCKET}/simrooms"
    if not s3.exists(f"{BUCKET}/simrooms/dataset.json"):
        synth(url, load_params(None, TINY_SIMROOMS))
    cfg = LoaderConfig(segment_seconds=0.5, batch_size=4, num_workers=0, image_size=(8, 12))
    batches = list(make_loader(url, cfg, splits="train", train=False))
    keys = [k for b in batches for k in b["key"]]
    want = read_manifest(local_synth).to_pylist()
    assert sorted(keys) == sorted(r["key"] for r in want if r["split"] == "train")
    assert batches[0]["clean"].shape == (4, 8000) and bool(batches[0]["has_reverb"].any())
    r = CliRunner().invoke(app, ["data", "verify", url])
    assert r.exit_code == 0 and "samples checked: OK" in r.output, r.output
    # A shard changed behind the manifest's back is caught on the URL too.
    shard = want[0]["shard"]
    s3.pipe_file(f"{BUCKET}/simrooms/{shard}", b"\0" * 1024)
    r = CliRunner().invoke(app, ["data", "verify", url])
    assert r.exit_code == 1 and shard in r.output, r.output
    s3.pipe_file(f"{BUCKET}/simrooms/{shard}", (local_synth / shard).read_bytes())


def test_dvc_import_url_gets_the_dataset_back(s3, local_synth, tmp_path):
    url = f"s3://{BUCKET}/simrooms"
    if not s3.exists(f"{BUCKET}/simrooms/dataset.json"):
        synth(url, load_params(None, TINY_SIMROOMS))
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    init_git_dvc(repo)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    r = subprocess.run(
        ["dvc", "import-url", url, "data/simrooms", "--fs-config", f"endpointurl={endpoint}"],
        cwd=repo, env=tool_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    got = local_files(repo / "data" / "simrooms")
    assert got == without_local_lock(local_files(local_synth))
    assert stored_version(repo / "data" / "simrooms") == stored_version(local_synth)
    dvc_file = (repo / "data" / "simrooms.dvc").read_text()
    assert url in dvc_file and "md5" in dvc_file


def test_paths_and_urls_name_the_same_folder(tmp_path, local_synth):
    """``file://`` is a local path: the local code path (temp + rename, flock)."""
    d = open_dir(f"file://{local_synth}")
    assert d.location == local_synth and d.exists("dataset.json")
    assert stored_version(f"file://{local_synth}") == stored_version(local_synth)
