"""The `mvsd` command line on files a user would have."""

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import load_params
from mvsd.converter import Converter

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("user")
    model = load_params(
        None, ["model.size=tiny", "model.steps=1", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model
    Converter.new("reverb", model).save(d / "reverb.safetensors")
    Converter.new("dereverb", model).save(d / "dereverb.safetensors")
    rng = np.random.default_rng(0)
    sf.write(d / "dry.wav", 0.1 * rng.standard_normal((44_100, 2)), 44_100)  # 1 s stereo at 44.1 kHz
    Image.fromarray(rng.integers(0, 255, (300, 400, 4), dtype=np.uint8), "RGBA").save(d / "room.png")
    (d / "batch").mkdir()
    sf.write(d / "batch" / "a.flac", 0.1 * rng.standard_normal(8000), 8000)
    sf.write(d / "batch" / "b.wav", 0.1 * rng.standard_normal(16000), 16000)
    (d / "batch" / "broken.wav").write_bytes(b"not audio")
    return d


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("synth", "ingest", "data", "reverb", "dereverb"):
        assert cmd in result.output
    assert "zero-padded" in runner.invoke(app, ["reverb", "--help"]).output
    eval_help = runner.invoke(app, ["eval", "--help"]).output
    assert "--no-baselines" in eval_help and "--no-no-baselines" not in eval_help
    # placeholders survive the help's markdown rendering (<run> would be eaten as an HTML tag)
    assert "checkpoints/RUN/round-K/" in runner.invoke(app, ["train", "--help"]).output
    assert "checkpoints/latest/reverb" in runner.invoke(app, ["reverb", "--help"]).output


def test_version():
    from mvsd import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mvsd {__version__}"


def test_reverb_one_file(files):
    out = files / "wet.wav"
    args = [
        "reverb",
        "--image",
        str(files / "room.png"),
        "--speech",
        str(files / "dry.wav"),
        "--out",
        str(out),
        "--checkpoint",
        str(files / "reverb.safetensors"),
        "--steps",
        "1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    y, sr = sf.read(out)
    assert sr == 16_000 and y.ndim == 1 and len(y) == 16_000
    # --keep-rate: the same output at the input's rate and length (1 s of 44.1 kHz), mono
    kept = files / "wet-44k.wav"
    assert runner.invoke(app, [*args[:-5], str(kept), *args[-4:], "--keep-rate"]).exit_code == 0
    z, sr = sf.read(kept)
    assert sr == 44_100 and z.ndim == 1 and len(z) == 44_100
    from mvsd.audio_io import resample

    want = resample(y.astype(np.float32), 16_000, 44_100)[:44_100]
    assert np.abs(z - want).max() < 3e-4  # the 16 kHz output resampled (two 16-bit roundings apart)


def test_dereverb_a_folder_skips_the_bad_file(files):
    out = files / "dry_out"
    args = [
        "dereverb",
        "--image",
        str(files / "room.png"),
        "--speech",
        str(files / "batch"),
        "--out",
        str(out),
        "--checkpoint",
        str(files / "dereverb.safetensors"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # converted what it could, but an input failed
    assert "2 converted, 1 skipped" in result.output
    assert "broken.wav" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav"]
    assert len(sf.read(out / "a.wav")[0]) == 16_000  # 1 s at 8 kHz -> 1 s at 16 kHz


def test_clear_errors(files):
    base = [
        "--image",
        str(files / "room.png"),
        "--speech",
        str(files / "dry.wav"),
        "--out",
        str(files / "x.wav"),
    ]
    r = runner.invoke(app, ["reverb", *base, "--checkpoint", str(files / "nope.safetensors")])
    assert r.exit_code == 2 and "nope.safetensors: no such checkpoint" in r.output
    r = runner.invoke(app, ["reverb", *base, "--checkpoint", str(files / "dereverb.safetensors")])
    assert r.exit_code == 2 and "a dereverb converter, but a reverb one is needed" in r.output
    r = runner.invoke(
        app,
        [
            "reverb",
            *base[:1],
            str(files / "missing.png"),
            *base[2:],
            "--checkpoint",
            str(files / "reverb.safetensors"),
        ],
    )
    assert r.exit_code == 2 and "missing.png: no such image" in r.output
    r = runner.invoke(app, ["synth", "--set", "simrooms.bogus=1"])
    assert r.exit_code == 2 and "unknown key" in r.output


def test_round_labels_keep_every_round(tmp_path):
    """Two runs' round-0 folders compared in one `mvsd eval` both get a row (one was dropped)."""
    from mvsd.cli import round_labels

    a, b = tmp_path / "runA" / "round-0", tmp_path / "runB" / "round-0"
    assert list(round_labels([a, tmp_path / "runA" / "round-1"])) == ["round-0", "round-1"]
    assert round_labels([a, b]) == {"runA/round-0": a, "runB/round-0": b}
    assert list(round_labels([tmp_path / "x" / "ck"])) == [str(tmp_path / "x" / "ck")]


def test_error_text_is_printed_as_written_not_as_markup(tmp_path):
    """Rich would swallow "[client]" (e.g. Ray's "pip install ray[client]") as a markup tag."""
    missing = tmp_path / "speech[client]"
    r = runner.invoke(app, ["ingest", "clean-folder", str(missing), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert "speech[client]: no such folder" in r.output
