"""SimRooms end to end on a tiny config: contents, splits, physics, determinism, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SIMROOMS
from scipy.signal import fftconvolve

from mvsd.data.inspect import dataset_stats, verify_dataset
from mvsd.data.manifest import read_manifest
from mvsd.data.sample import DECODERS
from mvsd.data.shards import iter_shard
from mvsd.sim.synth import plan_views, split_counts, synth


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from mvsd.config import load_params

    params = load_params(None, TINY_SIMROOMS)
    out = tmp_path_factory.mktemp("synth") / "simrooms"
    summary = synth(out, params)
    return out, params, summary


def _samples(out):
    rows = read_manifest(out).to_pylist()
    decoded = {}
    for shard in sorted({r["shard"] for r in rows}):
        for key, members in iter_shard(out / shard):
            decoded[key] = {m: DECODERS[m](b) for m, b in members.items()}
    return rows, decoded


def test_counts_and_members_per_kind(tiny_dataset):
    out, params, summary = tiny_dataset
    rows, decoded = _samples(out)
    assert summary.quarantined == 0
    got = {}
    for r in rows:
        got[(r["split"], r["kind"])] = got.get((r["split"], r["kind"]), 0) + 1
    assert got == split_counts(params)
    expected = {
        "paired": {"clean.flac", "reverb.flac", "rir.npy", "image.jpg", "depth.png", "json"},
        "clean_only": {"clean.flac", "image.jpg", "depth.png", "json"},
        "reverb_only": {"reverb.flac", "image.jpg", "depth.png", "json"},
    }
    n = round(params.simrooms.clip_seconds * 16000)
    for r in rows:
        d = decoded[r["key"]]
        assert set(d) == expected[r["kind"]]
        assert d["json"]["kind"] == r["kind"] and d["json"]["split"] == r["split"]
        for m in ("clean.flac", "reverb.flac"):
            if m in d:
                assert d[m].shape == (n,) and np.abs(d[m]).max() > 0.01
        assert d["image.jpg"].shape == (params.simrooms.image.height, params.simrooms.image.width, 3)
        assert d["depth.png"].min() > 0.1


def test_splits_follow_rooms(tiny_dataset):
    out, params, _ = tiny_dataset
    rows = read_manifest(out).to_pylist()
    rooms_of = lambda split: {r["room_id"] for r in rows if r["split"] == split}  # noqa: E731
    assert rooms_of("test_unseen").isdisjoint(rooms_of("train") | rooms_of("val") | rooms_of("test_seen"))
    assert rooms_of("test_seen") <= {f"room{i:04d}" for i in range(params.simrooms.n_rooms_seen)}


def test_utterances_are_never_shared(tiny_dataset):
    out, _, _ = tiny_dataset
    _, decoded = _samples(out)
    texts = [d["json"]["text"] for d in decoded.values()]
    assert len(set(texts)) == len(texts)


def test_reverb_is_clean_convolved_with_rir(tiny_dataset):
    out, _, _ = tiny_dataset
    rows, decoded = _samples(out)
    for r in rows:
        if r["kind"] != "paired":
            continue
        d = decoded[r["key"]]
        y = fftconvolve(d["clean.flac"], d["rir.npy"])[: len(d["reverb.flac"])]
        corr = np.dot(y, d["reverb.flac"]) / np.linalg.norm(y) / np.linalg.norm(d["reverb.flac"])
        assert corr > 0.99
        other = fftconvolve(d["clean.flac"][::-1], d["rir.npy"])[: len(y)]  # a wrong pairing
        assert abs(np.dot(other, d["reverb.flac"])) / np.linalg.norm(other) / np.linalg.norm(y) < 0.5


def test_metadata_matches_rooms_table(tiny_dataset):
    out, params, _ = tiny_dataset
    views = {v["view_id"]: v for v in json.loads((out / "rooms.json").read_text())}
    assert (
        len(views)
        == (params.simrooms.n_rooms_seen + params.simrooms.n_rooms_unseen) * params.simrooms.views_per_room
    )
    _, decoded = _samples(out)
    for d in decoded.values():
        v = views[d["json"]["view"]]
        assert d["json"]["rt60_s"] == pytest.approx(v["rt60_s"], abs=1e-3)
        assert d["json"]["room"] == v["room_id"]
        assert d["json"]["room_type"] == v["room_type"]


def test_stats_and_verify(tiny_dataset):
    out, params, summary = tiny_dataset
    stats = dataset_stats(out)
    assert stats["samples"] == summary.samples
    assert stats["counts"]["train"]["paired"] == split_counts(params)[("train", "paired")]
    assert stats["hours"] == pytest.approx(summary.samples * params.simrooms.clip_seconds / 3600)
    assert sum(stats["rt60_histogram"].values()) == summary.samples
    assert verify_dataset(out).ok


def test_verify_catches_tampering(tiny_dataset, tmp_path):
    import shutil

    out, _, _ = tiny_dataset
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = sorted((copy / "shards" / "train").glob("paired-*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF  # flip a byte inside the first member
    shard.write_bytes(bytes(data))
    (copy / "shards" / "val" / "paired-000000.tar").unlink()
    report = verify_dataset(copy)
    assert not report.ok
    assert any("checksum mismatch" in p or "does not decode" in p for p in report.problems)
    assert any("val/paired-000000.tar: missing" in p for p in report.problems)


def test_rerun_is_byte_identical_across_worker_counts(tiny_dataset, tmp_path):
    from mvsd.config import load_params

    out, _, summary = tiny_dataset
    params = load_params(None, [*TINY_SIMROOMS, "simrooms.workers=2"])
    again = synth(tmp_path / "again", params)
    assert again.version == summary.version
    for p in (out / "shards").rglob("*.tar"):
        assert (tmp_path / "again" / p.relative_to(out)).read_bytes() == p.read_bytes()
    assert (tmp_path / "again" / "manifest.parquet").read_bytes() == (out / "manifest.parquet").read_bytes()


def test_killed_synth_resumes_to_the_same_dataset(tiny_dataset, tmp_path):
    """Kill a real `mvsd synth` process part-way, run it again: same samples, same bytes."""
    out, _, summary = tiny_dataset
    target = tmp_path / "killed"
    args = [sys.executable, "-m", "mvsd.cli", "synth", "--out", str(target)]
    for o in TINY_SIMROOMS:
        args += ["--set", o]
    env = {**os.environ, "MVSD_QUIET": "1"}
    proc = subprocess.Popen(args, env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((target / ".build").glob("shards__*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "manifest.parquet").exists(), "killed too late to test a resume"
    subprocess.run(args, env=env, check=True, capture_output=True)
    resumed = read_manifest(target).to_pydict()
    assert resumed["key"] == read_manifest(out).to_pydict()["key"]
    assert (target / "manifest.parquet").read_bytes() == (out / "manifest.parquet").read_bytes()
    assert verify_dataset(target).ok


def test_speech_dir_replaces_espeak(tmp_path):
    from mvsd.config import load_params

    rng = np.random.default_rng(0)
    for spk, sr, ch in (("alice", 44_100, 2), ("bob", 16_000, 1), ("carol", 8_000, 1)):
        (tmp_path / "speech" / spk).mkdir(parents=True)
        x = 0.1 * rng.standard_normal((int(1.5 * sr), ch))
        sf.write(tmp_path / "speech" / spk / f"{spk}.flac", x, sr)
    (tmp_path / "speech" / "broken.wav").write_bytes(b"not audio at all")
    params = load_params(None, TINY_SIMROOMS)
    s = synth(tmp_path / "ds", params, speech_dir=str(tmp_path / "speech"))
    rows = read_manifest(tmp_path / "ds").to_pylist()
    assert s.samples == len(rows) == sum(split_counts(params).values())
    assert {r["speaker_id"] for r in rows} <= {"alice", "bob", "carol"}


def test_reverb_is_time_aligned_with_clean(tiny_dataset):
    """simrooms.rir.align_direct: the direct sound arrives 2.5 ms after the dry signal."""
    out, _, _ = tiny_dataset
    rows, decoded = _samples(out)
    for r in rows:
        if r["kind"] == "paired":
            d = decoded[r["key"]]
            rir = d["rir.npy"]
            # nothing before the direct sound but the fractional-delay filter's ramp, and the
            # reverb is the dry signal through this RIR (test above), so the two are aligned
            assert np.max(np.abs(rir[:30])) < 0.2 * np.abs(rir[40])


def test_default_plan_mixes_free_form_and_typed_rooms_deterministically():
    """The demo's rooms (no simulation): the configured free-form share in both room pools, and
    room i depends only on (seed, i), so more rooms never change the first ones."""
    from mvsd.config import load_params

    params = load_params(None)
    s = params.simrooms
    views = plan_views(params)
    assert views == plan_views(params)
    assert len(views) == (s.n_rooms_seen + s.n_rooms_unseen) * s.views_per_room
    types = {v.room.room_id: v.room.room_type for v in views}
    seen = [types[f"room{i:04d}"] for i in range(s.n_rooms_seen)]
    unseen = [t for r, t in types.items() if int(r[4:]) >= s.n_rooms_seen]
    assert seen.count("freeform") / len(seen) == pytest.approx(s.room.freeform_share, abs=0.1)
    assert "freeform" in unseen and len(set(unseen) - {"freeform"}) >= 4
    assert len(set(seen)) == 10  # all nine types and free-form rooms teach
    fewer = plan_views(load_params(None, ["simrooms.n_rooms_seen=5", "simrooms.n_rooms_unseen=1"]))
    assert fewer == views[: len(fewer)]


def test_material_looks_change_the_pictures_only(tiny_dataset, tmp_path):
    """``simrooms.image.material_looks``: each surface drawn as its own material of its class —
    other pictures, the same sounds and RIRs, another dataset version. Off (the default), the
    fingerprint is the one of before the knob existed, so earlier datasets keep their version."""
    import hashlib

    from mvsd.config import load_params, to_dict
    from mvsd.sim.synth import fingerprint

    out, params, summary = tiny_dataset
    looks = synth(tmp_path / "looks", load_params(None, [*TINY_SIMROOMS, "simrooms.image.material_looks=true"]))
    assert looks.version != summary.version
    _, plain = _samples(out)
    _, drawn = _samples(tmp_path / "looks")
    assert plain.keys() == drawn.keys()
    changed = 0
    for key, members in plain.items():
        for m in ("rir.npy", "clean.flac", "reverb.flac"):
            if m in members:
                assert np.array_equal(members[m], drawn[key][m]), (key, m)
        if "image.jpg" in members:
            changed += not np.array_equal(members["image.jpg"], drawn[key]["image.jpg"])
    assert changed > 0
    before = {"simrooms": to_dict(params.simrooms), "audio": to_dict(params.audio), "speech_dir": None}
    before["simrooms"].pop("workers")
    del before["simrooms"]["image"]["material_looks"]
    assert fingerprint(params, None) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
