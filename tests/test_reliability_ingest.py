"""Odd inputs in a folder of good ones are ingested or quarantined by name, never abort the
ingest (issue 12, cases 4 and 8): file and folder names that are not valid UTF-8, and a wav cut
mid-data (whose header promises more audio than the file holds)."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from mvsd.audio_io import load_audio
from mvsd.cli import app
from mvsd.data.adapters import make_key
from mvsd.data.inspect import verify_dataset
from mvsd.data.manifest import read_manifest, read_quarantine

runner = CliRunner()


def raw(folder, name: bytes) -> str:
    """A path whose last part is the raw bytes ``name`` (Python's surrogate-escaped form)."""
    return os.path.join(os.fsdecode(os.fsencode(folder)), os.fsdecode(name))


def speech(seed, n=8000):
    return 0.1 * np.random.default_rng(seed).standard_normal(n)


def ingest(source, src, out):
    return runner.invoke(app, ["ingest", source, str(src), "--out", str(out), "--set", "ingest.workers=1"])


def test_names_that_are_not_utf8_are_ingested_or_quarantined_by_name(tmp_path):
    clean = tmp_path / "clean"
    (clean / "alice").mkdir(parents=True)
    sf.write(clean / "alice" / "good.wav", speech(0), 16000)
    os.mkdir(raw(clean, b"Jos\xe9"))  # a Latin-1 speaker folder
    with open(raw(raw(clean, b"Jos\xe9"), b"caf\xe9.wav"), "wb") as f:
        sf.write(f, speech(1), 16000, format="WAV")
    with open(raw(clean, b"broken\xff.wav"), "wb") as f:
        f.write(b"not audio")
    r = ingest("clean-folder", clean, tmp_path / "ds")
    assert r.exit_code == 0, r.output
    assert "2 samples" in r.output and "quarantined 1" in r.output
    m = read_manifest(tmp_path / "ds").to_pylist()
    assert sorted(row["speaker_id"] for row in m) == ["Jos\\xe9", "alice"]
    q = read_quarantine(tmp_path / "ds").to_pylist()
    assert len(q) == 1 and q[0]["file"].endswith("broken\\xff.wav") and "unreadable audio" in q[0]["reason"]
    assert verify_dataset(tmp_path / "ds").ok
    assert make_key("alice/good.wav") == "alice_good-78f5737934"  # keys of UTF-8 names unchanged

    rooms = tmp_path / "rooms"
    rooms.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(raw(rooms, b"sal\xf3n.png"), format="PNG")
    with open(raw(rooms, b"sal\xf3n.wav"), "wb") as f:
        sf.write(f, speech(2), 16000, format="WAV")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(rooms / "hall.png")
    sf.write(rooms / "hall.wav", speech(3), 16000)
    r = ingest("reverb-folder", rooms, tmp_path / "rv")
    assert r.exit_code == 0 and "2 samples" in r.output and "quarantined 0" in r.output, r.output


def test_a_wav_cut_mid_data_is_quarantined_as_truncated(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    sf.write(d / "whole.wav", speech(0, 16000), 16000, subtype="PCM_16")
    data = (d / "whole.wav").read_bytes()
    (d / "cut.wav").write_bytes(data[: 44 + 7040])  # header says 1 s, 0.22 s stored
    r = ingest("clean-folder", d, tmp_path / "ds")
    assert r.exit_code == 0 and "1 samples" in r.output and "quarantined 1" in r.output, r.output
    (q,) = read_quarantine(tmp_path / "ds").to_pylist()
    assert q["file"].endswith("cut.wav")
    assert q["reason"] == "truncated wav: its header declares 1.00 s of audio, 0.22 s are stored"
    assert len(load_audio(d / "whole.wav", data)) == 16000  # bytes in memory are checked the same way


def test_a_streamed_wav_with_a_placeholder_size_is_not_truncated(tmp_path):
    """espeak-ng and other writers to a pipe cannot know the size: their header says 2 GiB."""
    sf.write(tmp_path / "s.wav", speech(0, 1600), 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "s.wav").read_bytes())
    for placeholder in (0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF):
        data[4:8] = (placeholder + 36 & 0xFFFFFFFF).to_bytes(4, "little")
        data[40:44] = placeholder.to_bytes(4, "little")  # the data chunk's size
        assert len(load_audio("streamed.wav", bytes(data))) == 1600
