"""``shards.executor: ray``: the dataset builder's shard tasks on Ray (a local instance, and a real
multi-node cluster on this machine) build exactly the dataset the local processes build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_SIMROOMS, tool_env

from mvsd.config import load_params
from mvsd.data.builder import BUILD_DIR, FAULT_SHARD_ENV, stored_version
from mvsd.data.manifest import read_manifest
from mvsd.errors import ConfigError
from mvsd.sim.synth import synth


@pytest.fixture(scope="module")
def local_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "ds"
    synth(out, load_params(None, TINY_SIMROOMS))
    return out


def _same_dataset(a: Path, b: Path) -> None:
    assert stored_version(a) == stored_version(b)
    cols = ["key", "shard", "split", "kind", "sha256_reverb_flac", "sha256_image_jpg"]
    assert read_manifest(a).select(cols).to_pylist() == read_manifest(b).select(cols).to_pylist()
    assert sorted(p.relative_to(a) for p in (a / "shards").rglob("*.tar")) == sorted(
        p.relative_to(b) for p in (b / "shards").rglob("*.tar")
    )


def _mvsd(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mvsd.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # the same through the CLI on a private local Ray (tests/test_builder.py runs it in-process)
def test_ray_executor_builds_the_dataset_the_local_processes_build(local_build, tmp_path):
    out = tmp_path / "ds"
    env = {k: v for k, v in tool_env().items() if k != "RAY_ADDRESS"}  # a private local Ray
    sets = [x for o in [*TINY_SIMROOMS, "shards.executor=ray"] for x in ("--set", o)]
    r = _mvsd("synth", "--out", str(out), *sets, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    _same_dataset(local_build, out)


def test_multi_node_cluster_build_survives_a_killed_worker(local_build, tmp_path):
    """A head and two worker nodes (separate raylets, as separate machines would be); the worker
    writing one shard dies (os._exit, as kill -9) once: Ray runs the task again and the dataset
    is the local build's, with no temporary file left and `mvsd data verify` clean."""
    from ray.cluster_utils import Cluster

    shard = read_manifest(local_build).column("shard").to_pylist()[0]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "ds"
        env = {**tool_env(), "RAY_ADDRESS": cluster.address, FAULT_SHARD_ENV: shard}
        sets = [x for o in [*TINY_SIMROOMS, "shards.executor=ray"] for x in ("--set", o)]
        r = _mvsd("synth", "--out", str(out), *sets, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        marker = out / BUILD_DIR / (shard.replace("/", "__").removesuffix(".tar") + ".json.fault-injected")
        assert marker.read_text().startswith("killed before writing")  # the fault did fire
        _same_dataset(local_build, out)
        assert not list(out.rglob(".*.tmp-*"))
        v = _mvsd("data", "verify", str(out), env=env)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        cluster.shutdown()


def test_executor_is_range_checked():
    with pytest.raises(ConfigError, match=r"shards\.executor = .spark. is not one of: local, ray"):
        load_params(None, ["shards.executor=spark"])


def test_executor_is_not_part_of_the_fingerprint():
    """A build started on one executor resumes on the other: the executor does not change the
    bytes, so it is not in what decides whether a folder can be resumed."""
    from mvsd.sim.synth import fingerprint

    local = load_params(None, TINY_SIMROOMS)
    ray = load_params(None, [*TINY_SIMROOMS, "shards.executor=ray"])
    assert fingerprint(local, None) == fingerprint(ray, None)
    assert fingerprint(local, None) != fingerprint(load_params(None, [*TINY_SIMROOMS, "simrooms.seed=9"]), None)
