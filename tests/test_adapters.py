"""Tests of mvsd.data.adapters: the four ingest sources end to end, bad inputs, resume.

Every test writes a tiny fake source tree (numpy + soundfile + Pillow) into ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from scipy.signal import fftconvolve

from mvsd.config import load_params
from mvsd.data.adapters import ADAPTERS, ingest
from mvsd.data.builder import BUILD_DIR, ShardTask
from mvsd.data.manifest import MANIFEST, read_manifest, read_quarantine
from mvsd.data.sample import DECODERS, KEY_RE
from mvsd.data.shards import iter_shard
from mvsd.errors import BadInput

SR = 16_000
MEMBER_COLUMNS = {
    "clean": "sha256_clean_flac",
    "reverb": "sha256_reverb_flac",
    "image": "sha256_image_jpg",
    "depth": "sha256_depth_png",
    "rir": "sha256_rir_npy",
}


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    """Defaults, not the repository's params.yaml; no progress bars."""
    monkeypatch.setenv("MVSD_PARAMS", str(tmp_path / "no-params.yaml"))
    monkeypatch.setenv("MVSD_QUIET", "1")


def _params(per_shard: int = 2, workers: int = 1, *extra: str):
    return load_params(
        None,
        overrides=[f"shards.samples_per_shard={per_shard}", f"ingest.workers={workers}", *extra],
    )


# -- fake inputs ----------------------------------------------------------------------------------


def _speech(n: int, sr: int = SR, channels: int = 1, seed: int = 0) -> np.ndarray:
    """``(n,)`` or ``(n, channels)`` float32: a 220 Hz voiced tone with a syllable envelope."""
    t = np.arange(n) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    )
    x += 0.01 * np.random.default_rng(seed).standard_normal(n)
    x = x.astype(np.float32)
    return x if channels == 1 else np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1)


def _wav(path: Path, n: int = 4000, sr: int = SR, channels: int = 1, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _speech(n, sr, channels), sr, **kw)
    return path


def _image(path: Path, color=(200, 40, 10), mode: str = "RGB", size=(16, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).convert(mode).save(path)
    return path


def _rir(rt60: float = 0.4, seconds: float = 0.5, channels: int = 2) -> np.ndarray:
    """``(channels, L)`` exponentially decaying noise (amplitude -60 dB at ``rt60`` s) after a
    unit direct path."""
    n = int(seconds * SR)
    env = np.exp(-6.908 * np.arange(n) / SR / rt60)
    rir = 0.3 * env * np.random.default_rng(1).standard_normal((channels, n))
    rir[:, 0] = 1.0
    return rir.astype(np.float32)


def _ss_pickle(path: Path, n: int = 8000, semantic_view: int | None = None, **fields) -> Path:
    """A SoundSpaces-Speech pickle as AViTAR reads it: binaural (2, T) receiver audio, binaural
    RIR, two rgb views (red, then green), two (H, W, 1) depth views (1 m, then 2 m)."""
    rir = _rir()
    clean = _speech(n)
    data = {
        "source_audio": clean,
        "receiver_audio": np.stack([fftconvolve(clean, r)[:n] for r in rir]).astype(np.float32),
        "rir": rir,
        "rgb": [np.full((12, 16, 3), c, np.uint8) for c in ((220, 0, 0), (0, 220, 0))],
        "depth": [np.full((12, 16, 1), d, np.float32) for d in (1.0, 2.0)],
    }
    if semantic_view is not None:
        data["semantic"] = [np.zeros((12, 16), np.int64) for _ in range(2)]
        data["semantic"][semantic_view][2:8, 3:9] = 41
    data.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return path


# -- reading a dataset back -----------------------------------------------------------------------


def _rows(out: Path) -> dict[str, dict]:
    """Manifest rows by the input file named in each sample's json (``input``/``audio_file``)."""
    rows = read_manifest(out).to_pylist()
    members = _members(out)
    by_input = {}
    for r in rows:
        meta = DECODERS["json"](members[r["key"]]["json"])
        by_input[meta.get("input") or meta["audio_file"]] = {
            **r,
            "meta": meta,
            "members": members[r["key"]],
        }
    assert len(by_input) == len(rows)
    return by_input


def _members(out: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of every shard (checked to be a real tar), keys checked unique."""
    found: dict[str, dict[str, bytes]] = {}
    for shard in sorted((out / "shards").rglob("*.tar")):
        assert tarfile.is_tarfile(shard)
        for key, members in iter_shard(shard):
            assert key not in found, f"duplicate key {key}"
            assert KEY_RE.match(key)
            found[key] = members
    return found


def _reasons(out: Path) -> dict[str, str]:
    """Quarantine reasons by file name."""
    q = read_quarantine(out).to_pylist()
    return {Path(r["file"]).name: r["reason"] for r in q}


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))))


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "shards").rglob("*.tar"))}


# -- the four sources end to end ------------------------------------------------------------------


def test_soundspaces_end_to_end(tmp_path):
    src = tmp_path / "ss"
    files = {
        "train/sceneA/u1.pkl": dict(speaker_id="spk7"),
        "train/sceneA/u2.pkl": dict(semantic_view=1),  # the speaker is in the second view
        "train/sceneB/u3.pkl": dict(rir=_rir(channels=1)[0]),  # mono RIR
        "val/sceneC/u4.pkl": {},
        "test-seen/sceneA/u5.pkl": {},
        "test_unseen/sceneD/u6.pkl": dict(receiver_audio=_speech(8000, channels=2)),  # (T, C)
    }
    for rel, fields in files.items():
        _ss_pickle(src / rel, **fields)
    out = tmp_path / "ds"
    summary = ingest("soundspaces", src, out, _params(per_shard=2))
    assert (summary.samples, summary.quarantined, summary.shards) == (6, 0, 5)
    rows = _rows(out)
    split = {r: rows[r]["split"] for r in files}
    assert split == {
        "train/sceneA/u1.pkl": "train", "train/sceneA/u2.pkl": "train",
        "train/sceneB/u3.pkl": "train",
        "val/sceneC/u4.pkl": "val", "test-seen/sceneA/u5.pkl": "test_seen",
        "test_unseen/sceneD/u6.pkl": "test_unseen",
    }  # fmt: skip
    assert {r["room_id"] for r in rows.values()} == {"sceneA", "sceneB", "sceneC", "sceneD"}
    assert rows["train/sceneA/u1.pkl"]["speaker_id"] == "spk7"
    assert rows["val/sceneC/u4.pkl"]["speaker_id"] is None
    assert (out / "shards/train/paired-000001.tar").exists()
    for rel, r in rows.items():
        assert (r["kind"], r["source"]) == ("paired", "soundspaces")
        assert all(r[c] is not None for c in MEMBER_COLUMNS.values()), rel
        assert r["rt60"] == pytest.approx(0.4, abs=0.1) and np.isfinite(r["drr"])
        m = r["members"]
        clean, reverb = (
            DECODERS["clean.flac"](m["clean.flac"]),
            DECODERS["reverb.flac"](m["reverb.flac"]),
        )
        assert clean.shape == reverb.shape == (8000,)  # 16 kHz mono, binaural downmixed
        assert _rms_db(clean) == pytest.approx(-25, abs=0.5)
        assert DECODERS["rir.npy"](m["rir.npy"]).ndim == 1
        view = 1 if rel.endswith("u2.pkl") else 0
        image, depth = DECODERS["image.jpg"](m["image.jpg"]), DECODERS["depth.png"](m["depth.png"])
        assert image.shape == (12, 16, 3) and int(np.argmax(image.mean(axis=(0, 1)))) == view
        assert depth.shape == (12, 16) and depth.mean() == pytest.approx(view + 1.0)
        assert r["meta"]["view"] == view


def _avspeech_tree(root: Path, videos: list[str]) -> None:
    for v in videos:
        for k in range(2):
            _image(root / "clips" / "img" / f"{v}_{k}.png")
            _wav(root / "clips" / "audio" / f"{v}_{k}.wav", n=3200)


def _expected_split(video: str, val: float, test: float) -> str:
    u = int(hashlib.sha1(video.encode()).hexdigest()[:16], 16) / 2**64
    return "val" if u < val else "test_unseen" if u < val + test else "train"


def test_avspeech_end_to_end(tmp_path):
    src = tmp_path / "avs"
    videos = ["vidA", "vid_B", "vidC", "vidD", "vidE", "vidF"]
    _avspeech_tree(src, videos)
    _wav(src / "clips" / "audio" / "vidA_0.wav", n=44100, sr=44100, channels=2)  # 1 s, stereo
    _image(src / "clips" / "img" / "vidA_0.png", mode="L")  # grayscale -> RGB
    _image(src / "poster.png")  # not under img/: not an input
    _image(src / "clips" / "img" / "lonely_0.png")  # no audio
    _wav(src / "clips" / "audio" / "mute_0.wav")  # no image
    params = _params(3, 1, "ingest.val_fraction=0.3", "ingest.test_fraction=0.3")
    summary = ingest("avspeech", src, tmp_path / "ds", params)
    assert (summary.samples, summary.quarantined) == (12, 2)
    reasons = _reasons(tmp_path / "ds")
    assert reasons.keys() == {"lonely_0.png", "mute_0.wav"}
    assert all(r.startswith("missing partner file") for r in reasons.values())
    rows = _rows(tmp_path / "ds")
    splits = set()
    for rel, r in rows.items():
        video = Path(rel).stem.rsplit("_", 1)[0]
        assert r["room_id"] == video
        assert r["split"] == _expected_split(video, 0.3, 0.3)
        splits.add(r["split"])
        assert (r["kind"], r["source"]) == ("reverb_only", "avspeech")
        assert r["sha256_reverb_flac"] and r["sha256_image_jpg"]
        assert r["sha256_clean_flac"] is r["sha256_rir_npy"] is r["sha256_depth_png"] is None
        assert r["rt60"] is None
    assert len(splits) >= 2  # the fractions above spread six videos over several splits
    m = rows["clips/audio/vidA_0.wav"]["members"]
    assert DECODERS["reverb.flac"](m["reverb.flac"]).shape == (16000,)  # 44.1 kHz stereo -> 16 kHz mono
    assert DECODERS["image.jpg"](m["image.jpg"]).shape == (12, 16, 3)


def test_clean_folder_end_to_end(tmp_path):
    src = tmp_path / "speech"
    _wav(src / "spk1" / "a.wav", n=4000)
    _wav(src / "spk1" / "b.flac", n=4800, format="FLAC")
    _wav(src / "spk2" / "c.WAV", n=44100, sr=44100, channels=2)
    _wav(src / "top.wav", n=1600)
    _wav(src / ".hidden" / "d.wav")  # hidden folders are skipped
    summary = ingest("clean-folder", src, tmp_path / "ds", _params(per_shard=3))
    assert (summary.samples, summary.quarantined, summary.shards) == (4, 0, 2)
    rows = _rows(tmp_path / "ds")
    assert {k: r["speaker_id"] for k, r in rows.items()} == {
        "spk1/a.wav": "spk1", "spk1/b.flac": "spk1", "spk2/c.WAV": "spk2", "top.wav": None,
    }  # fmt: skip
    lengths = {k: len(DECODERS["clean.flac"](r["members"]["clean.flac"])) for k, r in rows.items()}
    assert lengths == {
        "spk1/a.wav": 4000,
        "spk1/b.flac": 4800,
        "spk2/c.WAV": 16000,
        "top.wav": 1600,
    }
    for r in rows.values():
        assert (r["split"], r["kind"], r["source"]) == ("train", "clean_only", "clean-folder")
        assert r["sha256_clean_flac"] and r["duration"] > 0
        assert r["sha256_reverb_flac"] is r["sha256_image_jpg"] is r["sha256_rir_npy"] is None
    ingest("clean-folder", src, tmp_path / "val", _params(), split="val")
    assert set(read_manifest(tmp_path / "val")["split"].to_pylist()) == {"val"}


def test_reverb_folder_end_to_end(tmp_path):
    src = tmp_path / "rooms"
    _image(src / "room1" / "x.jpg"), _wav(src / "room1" / "x.wav")
    _image(src / "pics" / "y.png", mode="L"), _wav(src / "sound" / "y.flac", format="FLAC")
    _image(src / "z.png", mode="RGBA"), _wav(src / "z.wav", n=44100, sr=44100, channels=2)
    # The same stem in two folders: matched within each folder.
    _image(src / "r1" / "take.jpeg", color=(0, 0, 250)), _wav(src / "r1" / "take.wav")
    _image(src / "r2" / "take.png", color=(0, 250, 0)), _wav(src / "r2" / "take.wav")
    summary = ingest("reverb-folder", src, tmp_path / "ds", _params(), split="test_seen")
    assert (summary.samples, summary.quarantined) == (5, 0)
    rows = _rows(tmp_path / "ds")
    assert {k: r["meta"]["image_file"] for k, r in rows.items()} == {
        "room1/x.wav": "room1/x.jpg", "sound/y.flac": "pics/y.png", "z.wav": "z.png",
        "r1/take.wav": "r1/take.jpeg", "r2/take.wav": "r2/take.png",
    }  # fmt: skip
    for r in rows.values():
        assert (r["split"], r["kind"], r["source"]) == ("test_seen", "reverb_only", "reverb-folder")
        assert r["sha256_clean_flac"] is None and r["sha256_image_jpg"]
        assert DECODERS["image.jpg"](r["members"]["image.jpg"]).shape == (12, 16, 3)
    gray = DECODERS["image.jpg"](rows["sound/y.flac"]["members"]["image.jpg"]).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 2  # grayscale became gray RGB
    green = DECODERS["image.jpg"](rows["r2/take.wav"]["members"]["image.jpg"])
    assert int(np.argmax(green.mean(axis=(0, 1)))) == 1
    z = DECODERS["reverb.flac"](rows["z.wav"]["members"]["reverb.flac"])
    assert z.shape == (16000,) and _rms_db(z) == pytest.approx(-25, abs=0.5)


def test_keys_are_unique_for_names_that_sanitize_alike(tmp_path):
    src = tmp_path / "speech"
    for name in ("a b.wav", "a_b.wav", "a-b.wav", "a.b.wav", "ünï cødé.wav"):
        _wav(src / name, n=800)
    ingest("clean-folder", src, tmp_path / "ds", _params(per_shard=10))
    keys = read_manifest(tmp_path / "ds")["key"].to_pylist()
    assert len(set(keys)) == 5 and all(KEY_RE.match(k) for k in keys)


# -- bad inputs -----------------------------------------------------------------------------------


def _patched_rate(path: Path, sr: int) -> Path:
    """A valid 16-bit WAV whose header claims ``sr`` Hz."""
    _wav(path, n=1600, subtype="PCM_16")
    b = bytearray(path.read_bytes())
    b[24:28], b[28:32] = sr.to_bytes(4, "little"), (2 * sr).to_bytes(4, "little")
    path.write_bytes(bytes(b))
    return path


def test_bad_audio_and_images_are_quarantined(tmp_path):
    src = tmp_path / "rooms"
    for stem in ("good1", "good2", "corrupt", "truncated", "empty", "nan", "inf",
                 "rate1", "rate500", "silent", "badimage", "noaudio"):  # fmt: skip
        _image(src / f"{stem}.png")
    for stem in ("good1", "good2", "badimage", "noimage"):
        _wav(src / f"{stem}.wav")
    (src / "corrupt.wav").write_bytes(os.urandom(2000))
    _wav(tmp_path / "full.wav")
    (src / "truncated.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    sf.write(src / "empty.wav", np.zeros(0, np.float32), SR)
    for stem, bad in (("nan", np.nan), ("inf", np.inf)):
        x = _speech(1600)
        x[100] = bad
        sf.write(src / f"{stem}.wav", x, SR, subtype="FLOAT")
    _patched_rate(src / "rate1.wav", 1)
    _patched_rate(src / "rate500.wav", 500)
    sf.write(src / "silent.wav", np.zeros(1600, np.float32), SR)
    (src / "badimage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))

    summary = ingest("reverb-folder", src, tmp_path / "ds", _params(per_shard=3))
    reasons = _reasons(tmp_path / "ds")
    expected = {
        "corrupt.wav": "unreadable audio", "truncated.wav": "unreadable audio",
        "empty.wav": "zero-length audio", "nan.wav": "NaN or Inf", "inf.wav": "NaN or Inf",
        "rate1.wav": "unsupported sample rate 1 Hz",
        "rate500.wav": "unsupported sample rate 500 Hz",
        "silent.wav": "all zeros", "badimage.png": "unreadable image",
        "noaudio.png": "missing partner file", "noimage.wav": "missing partner file",
    }  # fmt: skip
    assert set(reasons) == set(expected)
    for name, why in expected.items():
        assert why in reasons[name], (name, reasons[name])
    assert (summary.samples, summary.quarantined) == (2, len(expected))
    assert sorted(_rows(tmp_path / "ds")) == ["good1.wav", "good2.wav"]
    q = read_quarantine(tmp_path / "ds").to_pylist()
    assert all(Path(r["file"]).is_absolute() and r["source"] == "reverb-folder" for r in q)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_bad_soundspaces_pickles_are_quarantined(tmp_path):
    src, marker = tmp_path / "ss", tmp_path / "pwned"
    _ss_pickle(src / "train" / "s1" / "good.pkl")
    _ss_pickle(src / "val" / "s2" / "good.pkl")
    (src / "train" / "s1" / "evil.pkl").write_bytes(pickle.dumps({"source_audio": _Exploit(marker)}))
    _ss_pickle(src / "dev" / "s1" / "wrongsplit.pkl")
    _ss_pickle(src / "stray.pkl")
    (src / "train" / "s1" / "truncated.pkl").write_bytes((src / "val" / "s2" / "good.pkl").read_bytes()[:500])
    (src / "train" / "s1" / "nofield.pkl").write_bytes(pickle.dumps({"rgb": []}))
    _ss_pickle(src / "train" / "s1" / "nan.pkl", source_audio=np.full(800, np.nan, np.float32))
    _ss_pickle(src / "train" / "s1" / "rate.pkl", sample_rate=8)
    (src / "train" / "s1" / "list.pkl").write_bytes(pickle.dumps([1, 2]))

    summary = ingest("soundspaces", src, tmp_path / "ds", _params())
    assert not marker.exists()
    reasons = _reasons(tmp_path / "ds")
    expected = {
        "evil.pkl": "pickle tries to load posix.system, which is not allowed",
        "wrongsplit.pkl": "folder 'dev', which is not a split folder",
        "stray.pkl": "not a split folder", "truncated.pkl": "corrupt or truncated pickle",
        "nofield.pkl": "missing field(s) ['source_audio', 'receiver_audio']",
        "nan.pkl": "source_audio: audio contains NaN or Inf",
        "rate.pkl": "unsupported sample rate 8 Hz",
        "list.pkl": "expected a pickled dict",
    }  # fmt: skip
    assert set(reasons) == set(expected)
    for name, why in expected.items():
        assert why in reasons[name], (name, reasons[name])
    assert (summary.samples, summary.quarantined) == (2, len(expected))
    assert sorted(read_manifest(tmp_path / "ds")["split"].to_pylist()) == ["train", "val"]


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="soundspaces, avspeech, clean-folder, reverb-folder"):
        ingest("librispeech", tmp_path, tmp_path / "ds", _params())
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest("clean-folder", tmp_path / "nowhere", tmp_path / "ds", _params())
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(BadInput, match="no audio files found") as err:
        ingest("clean-folder", tmp_path / "empty", tmp_path / "ds", _params())
    assert err.value.file == str(tmp_path / "empty")
    with pytest.raises(BadInput, match="no SoundSpaces-Speech .pkl files found"):
        ingest("soundspaces", tmp_path / "empty", tmp_path / "ds", _params())
    with pytest.raises(ValueError, match="decides splits itself"):
        ingest("avspeech", tmp_path / "empty", tmp_path / "ds", _params(), split="val")
    with pytest.raises(ValueError, match="valid splits: train, val, test_seen, test_unseen"):
        ingest("clean-folder", tmp_path / "empty", tmp_path / "ds", _params(), split="dev")
    assert set(ADAPTERS) == {"soundspaces", "avspeech", "clean-folder", "reverb-folder"}


# -- resume and determinism -----------------------------------------------------------------------


def test_resume_after_losing_a_shard_and_rerun_of_a_finished_ingest(tmp_path):
    src, out = tmp_path / "speech", tmp_path / "ds"
    for i in range(5):
        _wav(src / f"spk{i % 2}" / f"u{i}.wav", n=1600 + 160 * i)
    params = _params(per_shard=2)
    first = ingest("clean-folder", src, out, params)
    assert (first.samples, first.shards, first.resumed_shards) == (5, 3, 0)
    shards, manifest = _shard_bytes(out), (out / MANIFEST).read_bytes()

    again = ingest("clean-folder", src, out, params, split="train")  # nothing to do
    assert again.resumed_shards == 3 and (out / MANIFEST).read_bytes() == manifest

    # A run killed mid-way: the manifest was never written, one shard and its part file are gone.
    lost = "shards/train/clean_only-000001.tar"
    (out / MANIFEST).unlink()
    (out / lost).unlink()
    (out / BUILD_DIR / ShardTask(lost, ()).part_name).unlink()
    resumed = ingest("clean-folder", src, out, params)
    assert (resumed.samples, resumed.resumed_shards) == (5, 2)
    assert _shard_bytes(out) == shards
    assert (out / MANIFEST).read_bytes() == manifest
    assert len(_members(out)) == 5

    _wav(src / "spk9" / "new.wav")  # a new input re-plans the whole dataset
    grown = ingest("clean-folder", src, out, params)
    assert (grown.samples, grown.resumed_shards) == (6, 0)


def test_two_workers_write_the_same_dataset_as_one(tmp_path):
    src = tmp_path / "avs"
    _avspeech_tree(src, ["v1", "v2", "v3"])
    one = ingest("avspeech", src, tmp_path / "one", _params(per_shard=2, workers=1))
    two = ingest("avspeech", src, tmp_path / "two", _params(per_shard=2, workers=2))
    assert one.version == two.version and two.samples == 6
    assert _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two")
    assert (tmp_path / "one" / MANIFEST).read_bytes() == (tmp_path / "two" / MANIFEST).read_bytes()


def test_output_inside_the_input_tree_is_not_ingested(tmp_path):
    src = tmp_path / "rooms"
    _image(src / "a.png"), _wav(src / "a.wav")
    out = src / "dataset"
    ingest("reverb-folder", src, out, _params())
    shutil.copy(src / "a.png", out / "stray.png")  # would be "missing partner" if scanned
    again = ingest("reverb-folder", src, out, _params())
    assert (again.samples, again.quarantined, again.resumed_shards) == (1, 0, 1)


def test_decoded_image_members_are_jpeg(tmp_path):
    src = tmp_path / "rooms"
    _image(src / "a.png", mode="RGBA"), _wav(src / "a.wav")
    ingest("reverb-folder", src, tmp_path / "ds", _params())
    (member,) = [m["image.jpg"] for m in _members(tmp_path / "ds").values()]
    assert Image.open(io.BytesIO(member)).format == "JPEG"
