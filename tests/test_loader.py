"""Tests of mvsd.data.loader on a tiny synthetic dataset (noise audio, 16x16 images)."""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.compute as pc
import pytest
import torch

from mvsd.audio_io import SAMPLE_RATE, decode_flac
from mvsd.config import LoaderConfig, ShardsConfig
from mvsd.data.builder import build_dataset, plan_tasks
from mvsd.data.loader import make_dataset, make_loader, select_shards
from mvsd.data.manifest import read_manifest
from mvsd.data.sample import Sample
from mvsd.data.shards import iter_shard

SEGMENT = 0.25  # seconds: 4000 samples
T = round(SEGMENT * SAMPLE_RATE)
SHORT = 1600  # samples of the deliberately short clips (padded by the loader)
LSB = 1 / 32768  # one step of the 16-bit FLAC members
# (split, kind) -> number of samples; 3 per shard gives 11 shards.
GROUPS = {
    ("train", "paired"): 12,
    ("train", "clean_only"): 6,
    ("train", "reverb_only"): 6,
    ("val", "paired"): 4,
}


def make_sample(item: tuple[str, str, str, int]) -> Sample:
    """Noise 'speech' of item-dependent length; reverb = 0.5 x clean for paired samples."""
    key, split, kind, i = item
    rng = np.random.default_rng(i)
    n = SHORT if i % 5 == 0 else int(SAMPLE_RATE * rng.uniform(0.3, 0.8))
    clean = (rng.uniform(-0.5, 0.5, n)).astype(np.float32)
    reverb = clean * 0.5 if kind == "paired" else clean
    return Sample(
        key=key,
        split=split,
        kind=kind,
        source="synthetic",
        room_id=f"room{i % 3}",
        clean=clean if kind != "reverb_only" else None,
        reverb=reverb if kind != "clean_only" else None,
        image=rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
        rt60=None if kind == "clean_only" else 0.1 + 0.01 * i,
    )


def build(out: Path) -> Path:
    groups, i = {}, 0
    for (split, kind), n in GROUPS.items():
        groups[(split, kind)] = [(f"{split}_{kind}_{j:03d}", split, kind, (i := i + 1)) for j in range(n)]
    tasks = plan_tasks(groups, samples_per_shard=3)
    build_dataset(out, tasks, make_sample, name="tiny", shards=ShardsConfig(samples_per_shard=3), workers=1)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture
def tiny_copy(tiny, tmp_path) -> Path:
    """A private copy of the dataset that a test may damage."""
    return Path(shutil.copytree(tiny, tmp_path / "tiny"))


def cfg(**kw) -> LoaderConfig:
    base = dict(segment_seconds=SEGMENT, batch_size=4, shuffle_buffer=8, num_workers=0, image_size=(8, 12))
    return LoaderConfig(**{**base, **kw})


def manifest_keys(ds, split=None, kind=None) -> set[str]:
    rows = read_manifest(ds).to_pylist()
    return {r["key"] for r in rows if split in (None, r["split"]) and kind in (None, r["kind"])}


def keys_of(loader) -> list[str]:
    return [k for b in loader for k in b["key"]]


# -- selection ------------------------------------------------------------------------------------


def test_select_shards_matches_manifest(tiny):
    urls, keys = select_shards(str(tiny), splits="train", kinds=["paired", "clean_only"])
    assert keys == manifest_keys(tiny, "train", "paired") | manifest_keys(tiny, "train", "clean_only")
    assert len(urls) == 6 and all(Path(u).exists() and "/train/" in u for u in urls)
    _, some = select_shards(str(tiny), where=pc.field("room_id") == "room0")
    assert some and some < manifest_keys(tiny)


def test_select_shards_errors(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        select_shards(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="tiny.*no samples"):
        select_shards(str(tiny), splits="test_unseen")
    with pytest.raises(ValueError, match="unknown kind"):
        select_shards(str(tiny), kinds="paried")


# -- batches --------------------------------------------------------------------------------------


def test_batch_shapes_and_masks(tiny):
    batches = list(make_loader(str(tiny), cfg(), splits="train"))
    assert [len(b["key"]) for b in batches] == [4] * 6
    expect = {"paired": (True, True), "clean_only": (True, False), "reverb_only": (False, True)}
    for b in batches:
        assert b["clean"].shape == b["reverb"].shape == (4, T) and b["clean"].dtype == torch.float32
        assert b["image"].shape == (4, 3, 8, 12) and b["image"].dtype == torch.float32
        assert b["image"].min() >= 0 and b["image"].max() <= 1 and b["has_image"].all()
        assert b["rt60"].dtype == torch.float32 and b["has_clean"].dtype == torch.bool
        for i, meta in enumerate(b["meta"]):
            assert meta["key"] == b["key"][i]
            assert (bool(b["has_clean"][i]), bool(b["has_reverb"][i])) == expect[meta["kind"]]
            for name in ("clean", "reverb"):
                if not b[f"has_{name}"][i]:
                    assert not b[name][i].any()
            assert bool(torch.isnan(b["rt60"][i])) == (meta["kind"] == "clean_only")


# One multi-worker case: each spawned worker costs about 2 s of imports.
@pytest.mark.parametrize(("num_workers", "train"), [(0, True), (0, False), (2, True)])
def test_each_selected_key_once_per_epoch(tiny, num_workers, train):
    loader = make_loader(str(tiny), cfg(num_workers=num_workers), splits="train", kinds="paired", train=train)
    for _ in range(2 if num_workers == 0 else 1):
        seen = keys_of(loader)
        assert len(seen) == len(set(seen)) and set(seen) == manifest_keys(tiny, "train", "paired")


def test_crop_is_aligned_and_random_in_training(tiny):
    train = {}
    for b in make_loader(str(tiny), cfg(), kinds="paired", seed=3):
        assert b["has_clean"].all() and b["has_reverb"].all()
        for k, clean, reverb in zip(b["key"], b["clean"], b["reverb"], strict=True):
            assert torch.allclose(reverb, 0.5 * clean, atol=1.5 * LSB), k  # same offset for both
            train[k] = clean
    moved = 0
    for b in make_loader(str(tiny), cfg(), kinds="paired", train=False):
        for k, clean, reverb in zip(b["key"], b["clean"], b["reverb"], strict=True):
            assert torch.allclose(reverb, 0.5 * clean, atol=1.5 * LSB), k
            moved += not torch.equal(train[k], clean)
    assert moved > len(train) // 2  # training crops really start at random offsets


def test_short_clips_are_zero_padded(tiny):
    members = {}
    for shard in sorted(tiny.glob("shards/val/*.tar")):
        members.update(iter_shard(shard))
    for b in make_loader(str(tiny), cfg(), splits="val", train=False):
        for k, clean in zip(b["key"], b["clean"], strict=True):
            x = decode_flac(members[k]["clean.flac"])
            n = min(len(x), T)
            assert torch.equal(clean[:n], torch.from_numpy(x[:n])) and not clean[n:].any()
    assert any(len(decode_flac(m["clean.flac"])) == SHORT for m in members.values())


def test_same_seed_same_batches(tiny):
    def run(seed, epochs=1):
        loader = make_loader(str(tiny), cfg(), seed=seed)
        return [b for _ in range(epochs) for b in loader]

    a, b = run(7, epochs=2), run(7, epochs=2)
    assert [x["key"] for x in a] == [x["key"] for x in b]
    assert all(
        torch.equal(x["clean"], y["clean"]) and torch.equal(x["image"], y["image"])
        for x, y in zip(a, b, strict=True)
    )
    n = len(a) // 2
    assert [x["key"] for x in a[:n]] != [x["key"] for x in a[n:]]  # epoch 2 is another order
    assert [x["key"] for x in run(8)] != [x["key"] for x in a[:n]]


# -- distributed ----------------------------------------------------------------------------------


def shards_of(ds, keys) -> set[str]:
    return {r["shard"] for r in read_manifest(ds).to_pylist() if r["key"] in keys}


def test_ranks_read_disjoint_shards_covering_all(tiny, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        per_rank.append(set(keys_of(make_loader(str(tiny), cfg(), splits="train", seed=5))))
    a, b = (shards_of(tiny, keys) for keys in per_rank)
    assert a and b and not a & b
    assert per_rank[0] | per_rank[1] == manifest_keys(tiny, "train")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resampled_epoch_gives_equal_batches_per_rank(tiny, monkeypatch, num_workers):
    monkeypatch.setenv("WORLD_SIZE", "2")
    c = cfg(num_workers=num_workers)
    ranks = (0, 1) if num_workers == 0 else (1,)
    seen = []
    for rank in ranks:
        monkeypatch.setenv("RANK", str(rank))
        loader = make_loader(str(tiny), c, splits="train", epoch_samples=10)
        for _ in range(2 if num_workers == 0 else 1):
            batches = list(loader)
            assert [len(b["key"]) for b in batches] == [4, 4, 4] and len(loader) == 3
            seen.append([k for b in batches for k in b["key"]])
    assert len({tuple(keys) for keys in seen}) == len(seen)  # ranks and epochs draw differently
    with pytest.raises(ValueError, match="train=True"):
        make_dataset(str(tiny), c, epoch_samples=10, train=False)


def test_resampling_gives_every_selected_sample_the_same_chance(tiny):
    rows = read_manifest(tiny).to_pylist()
    lone = next(r["key"] for r in rows if r["shard"] == "shards/train/paired-000000.tar")
    full = [r["key"] for r in rows if r["shard"] == "shards/train/paired-000001.tar"]
    where = pc.field("key").isin([lone, *full])
    stream = make_dataset(str(tiny), cfg(shuffle_buffer=0), where=where, epoch_samples=400)
    seen = Counter(s["key"] for s in stream)
    assert seen.total() == 400 and set(seen) == {lone, *full}
    # Half the shard draws hit the lone key's shard, but the other shard gives 3 samples a draw.
    assert 0.15 < seen[lone] / 400 < 0.35


# -- storage and bad data -------------------------------------------------------------------------


def test_memory_filesystem_loads_the_same_keys(tiny):
    fs = fsspec.filesystem("memory")
    for path in tiny.rglob("*"):
        if path.is_file() and ".build" not in path.parts:
            fs.pipe(f"/tiny-copy/{path.relative_to(tiny).as_posix()}", path.read_bytes())
    try:
        keys = keys_of(make_loader("memory://tiny-copy", cfg(), splits="val", train=False))
        assert sorted(keys) == sorted(manifest_keys(tiny, "val"))
    finally:
        fs.rm("/tiny-copy", recursive=True)


def rewrite_shard(shard: Path, edit) -> None:
    """Rewrite a shard through ``edit(tar, key, members)``, which adds the members itself."""
    samples = list(iter_shard(shard))
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            edit(tar, key, members)


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_unsafe_member_is_skipped_not_extracted(tiny_copy, caplog, monkeypatch, tmp_path):
    shard = tiny_copy / "shards/val/paired-000000.tar"

    def edit(tar, key, members):
        if tar.getmembers() == []:
            add(tar, "../evil.json", b'{"pwned": true}')
        for m, data in sorted(members.items()):
            add(tar, f"{key}.{m}", data)

    rewrite_shard(shard, edit)
    monkeypatch.chdir(tmp_path)
    stream = make_dataset(str(tiny_copy), cfg(), splits="val", train=False)
    with caplog.at_level(logging.WARNING, "mvsd.data.loader"):
        keys = [s["key"] for s in stream]
    assert sorted(keys) == sorted(manifest_keys(tiny_copy, "val"))
    assert stream.stats["bad_members"] == 1 and "../evil.json" in caplog.text
    assert not list(tmp_path.rglob("evil.json")) and not (tmp_path.parent / "evil.json").exists()


def test_corrupt_flac_sample_is_skipped(tiny_copy, caplog):
    shard = tiny_copy / "shards/train/paired-000001.tar"
    victim = next(iter_shard(shard))[0]

    def edit(tar, key, members):
        for m, data in sorted(members.items()):
            add(
                tar,
                f"{key}.{m}",
                b"fLaC garbage" * 10 if key == victim and m == "clean.flac" else data,
            )

    rewrite_shard(shard, edit)
    stream = make_dataset(str(tiny_copy), cfg(), kinds="paired", splits="train")
    with caplog.at_level(logging.WARNING, "mvsd.data.loader"):
        keys = Counter(s["key"] for s in stream)
    assert set(keys) == manifest_keys(tiny_copy, "train", "paired") - {victim} and max(keys.values()) == 1
    assert stream.stats["bad_samples"] == 1
    assert str(shard) in caplog.text and victim in caplog.text


def test_truncated_shard_keeps_the_rest(tiny_copy, caplog):
    shard = tiny_copy / "shards/train/clean_only-000000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    stream = make_dataset(str(tiny_copy), cfg(), splits="train", kinds="clean_only", train=False)
    with caplog.at_level(logging.WARNING, "mvsd.data.loader"):
        keys = [s["key"] for s in stream]
    assert 3 <= len(keys) < 6 and stream.stats["bad_shards"] == 1 and "truncated" in caplog.text
