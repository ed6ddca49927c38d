"""`mvsd reverb` / `mvsd dereverb` never destroy a user's files and check their arguments before
any work (issue 12, cases 1 and 11): an output that is an input is refused, an existing output is
replaced only with --overwrite, bad --steps/--device/--out/images fail with one line and exit 2,
and a run where any input failed exits 1."""

from __future__ import annotations

import hashlib

import numpy as np
import PIL.Image
import pytest
import soundfile as sf
import torch
from PIL import Image
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import load_params
from mvsd.converter import Converter

runner = CliRunner()


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    model = load_params(
        None, ["model.size=tiny", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model
    for direction in ("reverb", "dereverb"):
        Converter.new(direction, model).save(d / f"{direction}.safetensors")
    return d


@pytest.fixture
def user(tmp_path):
    """A user's folder: recordings (one of them broken), a room photo."""
    rng = np.random.default_rng(0)
    (tmp_path / "rec").mkdir()
    sf.write(tmp_path / "rec" / "a.wav", 0.1 * rng.standard_normal(8000), 16000)
    sf.write(tmp_path / "rec" / "b.flac", 0.1 * rng.standard_normal(8000), 16000)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "room.png")
    return tmp_path


def convert(ckpt, user, *args, direction="reverb"):
    base = [
        direction,
        "--image",
        str(user / "room.png"),
        "--checkpoint",
        str(ckpt / f"{direction}.safetensors"),
    ]
    return runner.invoke(app, [*base, *map(str, args)])


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_out_that_is_an_input_is_refused_even_with_overwrite(ckpt, user, overwrite):
    before = digest(user)
    a = user / "rec" / "a.wav"
    cases = [
        ["--speech", a, "--out", a],  # the same file
        ["--speech", user / "rec", "--out", user / "rec"],  # the same folder
        ["--speech", user / "rec", "--out", user / "rec" / "converted"],  # inside it
    ]
    (user / "link.wav").symlink_to(a)  # a link to an input is that input
    cases.append(["--speech", a, "--out", user / "link.wav"])
    for args in cases:
        r = convert(ckpt, user, *args, *overwrite)
        assert r.exit_code == 2, (args, r.output)
        assert "input" in r.output and "error" in r.output, r.output
    after = digest(user)
    after.pop("link.wav", None)
    assert after == before  # nothing of the user's changed, nothing written


def test_existing_output_is_replaced_only_with_overwrite(ckpt, user):
    out = user / "wet.wav"
    out.write_bytes(b"the user's own file")
    r = convert(ckpt, user, "--speech", user / "rec" / "a.wav", "--out", out)
    assert r.exit_code == 2 and "exist already" in r.output and "--overwrite" in r.output, r.output
    assert out.read_bytes() == b"the user's own file"
    r = convert(ckpt, user, "--speech", user / "rec" / "a.wav", "--out", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert sf.info(out).samplerate == 16000


def test_two_inputs_with_one_output_name_are_refused(ckpt, user):
    sf.write(user / "rec" / "b.wav", np.zeros(800), 16000)  # b.wav and b.flac -> out/b.wav
    r = convert(ckpt, user, "--speech", user / "rec", "--out", user / "out")
    assert r.exit_code == 2 and "both be written to" in r.output, r.output
    assert not (user / "out").exists()


def test_bad_arguments_fail_before_any_work(ckpt, user, monkeypatch):
    a = user / "rec" / "a.wav"
    bad = {
        "--steps -3: must be between": ["--speech", a, "--out", user / "x.wav", "--steps", "-3"],
        "'banana' is not a device": ["--speech", a, "--out", user / "x.wav", "--device", "banana"],
        "is a folder": ["--speech", a, "--out", user / "rec"],
        "must end in .wav": ["--speech", a, "--out", user / "x.mp4"],
        "must be a folder": ["--speech", user / "rec", "--out", user / "room.png"],
    }
    if not torch.cuda.is_available():
        bad["no CUDA GPU"] = ["--speech", a, "--out", user / "x.wav", "--device", "cuda"]
    before = digest(user)
    for message, args in bad.items():
        r = convert(ckpt, user, *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output  # one line, no traceback
    # An image over Pillow's decompression-bomb limit (lowered here so the file stays small).
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
    r = convert(ckpt, user, "--speech", a, "--out", user / "x.wav")
    assert r.exit_code == 2 and "room.png: unreadable image (DecompressionBombError" in r.output, r.output
    assert digest(user) == before


def test_exit_status_is_1_when_any_input_failed(ckpt, user):
    (user / "bad").mkdir()
    (user / "bad" / "broken.wav").write_bytes(b"not audio")
    r = convert(ckpt, user, "--speech", user / "bad", "--out", user / "out", direction="dereverb")
    assert r.exit_code == 1, r.output
    assert "broken.wav" in r.output and "0 converted, 1 skipped" in r.output
    assert not (user / "out").exists()
