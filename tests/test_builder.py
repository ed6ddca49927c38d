"""The dataset builder: parallel, resumable, quarantining, deterministic."""

import sys
from dataclasses import dataclass, replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from mvsd.config import ShardsConfig
from mvsd.data.builder import BUILD_DIR, build_dataset, plan_tasks
from mvsd.data.manifest import read_manifest, read_quarantine
from mvsd.data.sample import Sample
from mvsd.data.shards import iter_shard
from mvsd.errors import BadInput

SHARDS = ShardsConfig(samples_per_shard=3)


@dataclass(frozen=True)
class Maker:
    """Item i -> a sample with i-dependent audio; items listed in ``bad`` raise BadInput."""

    bad: tuple[int, ...] = ()
    crash: tuple[int, ...] = ()

    def __call__(self, item):
        split, kind, i = item
        if i in self.bad:
            raise BadInput(f"file{i}.wav", "audio contains NaN or Inf samples")
        if i in self.crash:
            raise ZeroDivisionError("a bug in a decoder")
        x = np.random.default_rng(i).standard_normal(800).astype(np.float32) * 0.1
        return Sample(key=f"s{i:04d}", split=split, kind=kind, source="test", clean=x, room_id=f"r{i % 2}")


def groups(n=10):
    return {
        ("train", "clean_only"): [("train", "clean_only", i) for i in range(n)],
        ("val", "clean_only"): [("val", "clean_only", i) for i in range(n, n + 4)],
    }


def build(out, maker=Maker(), workers=1, fingerprint="v1", n=10, executor="local"):
    tasks = plan_tasks(groups(n), SHARDS.samples_per_shard)
    if executor == "ray":  # Ray's workers cannot import this test module: send Maker by value
        import ray.cloudpickle

        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    shards = replace(SHARDS, executor=executor)
    return build_dataset(
        out, tasks, maker, name="test", shards=shards, workers=workers, fingerprint=fingerprint
    )


# The builder's promises hold on both executors: local processes and Ray tasks (a local Ray here;
# tests/test_builder_ray.py runs a multi-node cluster).
EXECUTORS = pytest.mark.parametrize("executor", ["local", "ray"])


def test_plan_cuts_groups_into_named_shards():
    tasks = plan_tasks(groups(10), 3)
    assert [t.shard for t in tasks] == [
        "shards/train/clean_only-000000.tar",
        "shards/train/clean_only-000001.tar",
        "shards/train/clean_only-000002.tar",
        "shards/train/clean_only-000003.tar",
        "shards/val/clean_only-000000.tar",
        "shards/val/clean_only-000001.tar",
    ]
    assert sum(len(t.items) for t in tasks) == 14


@pytest.mark.parametrize("workers, executor", [(1, "local"), (2, "local"), (2, "ray")])
def test_build_writes_shards_and_manifest(tmp_path, workers, executor):
    s = build(tmp_path / "ds", workers=workers, executor=executor)
    assert (s.samples, s.quarantined, s.shards) == (14, 0, 6)
    m = read_manifest(tmp_path / "ds").to_pydict()
    assert m["key"] == [f"s{i:04d}" for i in range(14)]
    assert set(m["split"]) == {"train", "val"}
    assert all(v == s.version for v in m["dataset_version"])
    assert m["sha256_clean_flac"][0] and m["sha256_reverb_flac"][0] is None
    keys = [k for shard in sorted(set(m["shard"])) for k, _ in iter_shard(tmp_path / "ds" / shard)]
    assert sorted(keys) == m["key"]


def test_manifest_uses_dictionary_encoding_and_row_groups(tmp_path):
    build(tmp_path / "ds")
    meta = pq.ParquetFile(tmp_path / "ds" / "manifest.parquet").metadata
    cols = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    assert "RLE_DICTIONARY" in str(cols["split"].encodings)


@EXECUTORS
def test_bad_inputs_are_quarantined_and_the_rest_goes_through(tmp_path, executor):
    s = build(tmp_path / "ds", Maker(bad=(3, 11), crash=(5,)), workers=2, executor=executor)
    assert (s.samples, s.quarantined) == (11, 3)
    q = read_quarantine(tmp_path / "ds").to_pydict()
    assert {"file11.wav", "file3.wav"} <= set(q["file"])
    assert any("NaN or Inf" in r for r in q["reason"])
    assert any("ZeroDivisionError" in r for r in q["reason"])
    assert "quarantined 3" in s.line()
    assert len(read_manifest(tmp_path / "ds")) == 11


@EXECUTORS
def test_rerun_is_byte_identical(tmp_path, executor):
    build(tmp_path / "a")
    build(tmp_path / "b", workers=2, executor=executor)
    for rel in ["manifest.parquet", "shards/train/clean_only-000001.tar", "dataset.json"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@EXECUTORS
def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path, executor):
    out = tmp_path / "ds"
    first = build(out)
    reference = {p.relative_to(out): p.read_bytes() for p in (out / "shards").rglob("*.tar")}
    # Simulate a kill: one shard and its part gone, another shard written but its part not,
    # no manifest, and a stray temp file.
    (out / "shards/train/clean_only-000001.tar").unlink()
    (out / BUILD_DIR / "shards__train__clean_only-000001.json").unlink()
    (out / BUILD_DIR / "shards__val__clean_only-000000.json").unlink()
    (out / "manifest.parquet").unlink()
    resumed = build(out, executor=executor)
    assert resumed.resumed_shards == 4
    assert resumed.samples == first.samples and resumed.version == first.version
    keys = read_manifest(out).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 14
    assert {p.relative_to(out): p.read_bytes() for p in (out / "shards").rglob("*.tar")} == reference


def test_changed_plan_starts_fresh(tmp_path):
    out = tmp_path / "ds"
    build(out, n=10)
    s = build(out, n=4, fingerprint="v2")
    assert s.resumed_shards == 0 and s.samples == 8
    assert not (out / "shards/train/clean_only-000003.tar").exists()  # stale shard removed


def test_shard_lost_after_its_part_was_written_is_rebuilt(tmp_path):
    out = tmp_path / "ds"
    build(out)
    (out / "shards/train/clean_only-000001.tar").unlink()
    s = build(out)
    assert s.resumed_shards == 5
    assert (out / "shards/train/clean_only-000001.tar").exists()
