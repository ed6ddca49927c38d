"""The `mvsd` command line on files a user would have."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
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


def test_an_inference_only_checkpoint_converts_exactly_as_its_round(files, tmp_path):
    """What scripts/ship_converters.py writes: the EMA weights alone, half the file, same output."""
    full = Converter.from_checkpoint(files / "reverb.safetensors")
    with torch.no_grad():  # an EMA that differs from the raw weights, as after training
        for p in full.ema.parameters():
            p.add_(0.01)
    full.save(tmp_path / "full.safetensors")
    full.save(tmp_path / "ship.safetensors", inference_only=True)
    shipped = Converter.from_checkpoint(tmp_path / "ship.safetensors")
    assert shipped.ema is None
    assert (tmp_path / "ship.safetensors").stat().st_size < 0.6 * (tmp_path / "full.safetensors").stat().st_size
    x = np.random.default_rng(1).standard_normal(16_000).astype(np.float32) * 0.05
    image = np.full((48, 64, 3), 90, np.uint8)
    np.testing.assert_array_equal(shipped.convert(x, image, seed=3), full.convert(x, image, seed=3))


def test_without_a_model_of_your_own_the_shipped_converters_answer(files, tmp_path, monkeypatch):
    """No checkpoints/latest here: mvsd reverb uses the converters shipped with mvsd, and says so;
    with none shipped either, the error says how to get a model."""
    import mvsd.cli

    monkeypatch.chdir(tmp_path)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    Converter.from_checkpoint(files / "reverb.safetensors").save(shipped / "reverb.safetensors", inference_only=True)
    monkeypatch.setattr(mvsd.cli, "SHIPPED_CHECKPOINTS", shipped)
    args = ["reverb", "--image", str(files / "room.png"), "--speech", str(files / "dry.wav"), "--out", "wet.wav"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "using the converters shipped with mvsd" in r.output and (tmp_path / "wet.wav").exists()
    r = runner.invoke(app, ["dereverb", *args[1:5], "--out", "dry.wav"])  # no dereverb shipped here
    assert r.exit_code == 2 and "none shipped with this mvsd" in r.output and "make demo" in r.output


def test_the_shipped_converters_load_and_convert():
    from mvsd.cli import SHIPPED_CHECKPOINTS

    record = json.loads((SHIPPED_CHECKPOINTS / "round.json").read_text())
    assert "recipe" in record and "headline_metrics" in record
    x = np.random.default_rng(2).standard_normal(24_000).astype(np.float32) * 0.05
    image = np.asarray(Image.new("RGB", (128, 96), (120, 100, 80)))
    for direction in ("reverb", "dereverb"):
        conv = Converter.from_checkpoint(SHIPPED_CHECKPOINTS / f"{direction}.safetensors", expect_direction=direction)
        assert conv.ema is None  # inference weights only
        y = conv.convert(x, image, seed=0)
        assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0
