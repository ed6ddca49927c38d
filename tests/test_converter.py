"""The Converter: inference on any input, checkpoints, and bad input (tiny model)."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from mvsd.config import load_params
from mvsd.converter import CheckpointError, Converter
from mvsd.errors import BadInput

SR = 16_000


@pytest.fixture(scope="module")
def model_cfg():
    return load_params(
        None, ["model.size=tiny", "model.steps=2", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model


@pytest.fixture(scope="module")
def conv(model_cfg):
    return Converter.new("reverb", model_cfg, seed=0)


def speechish(seconds, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


IMG = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)


def test_convert_shapes_and_determinism(conv):
    x = speechish(0.64)
    a = conv.convert(x, IMG, seed=3)
    assert a.shape == x.shape and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, conv.convert(x, IMG, seed=3))
    assert not np.array_equal(a, conv.convert(x, IMG, seed=4))


def test_output_has_the_input_level(conv):
    x = speechish(0.64)
    for scale in (0.01, 0.5):
        y = conv.convert(x * scale, IMG)
        assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean((x * scale) ** 2)), rel=1e-3)


def test_long_inputs_and_batches(conv):
    x = np.stack([speechish(2.3, 1), speechish(2.3, 2)])
    y = conv.convert(x, [IMG, IMG[::-1]])
    assert y.shape == x.shape and np.isfinite(y).all()
    # each item of a batch converts as it would alone (same seed, deterministic per segment order)
    alone = conv.convert(x[0], IMG)
    assert y.shape[1] == alone.shape[0]


def test_short_input_is_padded(conv):
    y = conv.convert(speechish(0.05), IMG)
    assert y.shape == (800,)


def test_silence_works(conv):
    y = conv.convert(np.zeros(SR // 2, np.float32), IMG)
    assert np.isfinite(y).all()


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([0.1, np.nan] * 100, np.float32), "NaN or Inf"),
        (np.zeros(0, np.float32), "zero-length"),
        (np.zeros((1, 2, 3), np.float32), "shape"),
    ],
)
def test_bad_audio(conv, bad, message):
    with pytest.raises(BadInput, match=message):
        conv.convert(bad, IMG)


def test_grayscale_rgba_and_file_images(conv, tmp_path):
    x = speechish(0.64)
    gray = IMG.mean(axis=-1).astype(np.uint8)
    rgba = np.concatenate([IMG, np.full(IMG.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    assert np.isfinite(conv.convert(x, gray)).all()
    np.testing.assert_array_equal(conv.convert(x, rgba), conv.convert(x, IMG))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "room.png")
    assert np.isfinite(conv.convert(x, tmp_path / "room.png")).all()
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(BadInput, match="broken.jpg.*unreadable image"):
        conv.convert(x, tmp_path / "broken.jpg")


def test_image_changes_the_output(conv):
    x = speechish(0.64)
    # a freshly initialised net ignores the image (zero-initialised residual paths); perturb it
    with torch.no_grad():
        for p in conv.ema.parameters():
            p.add_(0.05 * torch.randn_like(p))
    a = conv.convert(x, np.zeros_like(IMG))
    b = conv.convert(x, np.full_like(IMG, 255))
    assert np.abs(a - b).max() > 1e-4


def test_save_load_identical_outputs(conv, tmp_path):
    path = tmp_path / "r.safetensors"
    conv.save(path, extra={"round": 0})
    again = Converter.from_checkpoint(path)
    assert again.spec == conv.spec
    x = speechish(1.0)
    np.testing.assert_array_equal(again.convert(x, IMG, seed=1), conv.convert(x, IMG, seed=1))


def test_checkpoint_errors_name_the_file(conv, model_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="missing.safetensors: no such checkpoint"):
        Converter.from_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable"):
        Converter.from_checkpoint(junk)
    # weights of another size under this file's spec
    path = tmp_path / "r.safetensors"
    conv.save(path)
    other = Converter.new("reverb", dataclasses.replace(model_cfg, size="small"))
    other.spec = conv.spec  # a spec that lies about the weights
    other.save(tmp_path / "liar.safetensors")
    with pytest.raises(CheckpointError, match="liar.safetensors: weights do not fit"):
        Converter.from_checkpoint(tmp_path / "liar.safetensors")
    with pytest.raises(CheckpointError, match="a reverb converter, but a dereverb one is needed"):
        Converter.from_checkpoint(path, expect_direction="dereverb")


def test_checkpoint_loading_never_unpickles(conv, tmp_path):
    import pickle

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(print))
    with pytest.raises(CheckpointError):
        Converter.from_checkpoint(evil)


def test_convert_steps_equals_one_convert_per_step_count(model_cfg):
    """A sweep shares the image encoding and the physical estimate, nothing else: each output is
    bit for bit what convert() gives at that step count."""
    conv = Converter.new("reverb", model_cfg, seed=1)
    with torch.no_grad():  # a refinement that does something (a new U-Net's output layer is zero)
        for p in conv.inference_net.unet.head.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(7)))
    x = np.stack([speechish(1.5, 1), speechish(1.5, 2)])
    seconds: dict[int, float] = {}
    many = conv.convert_steps(x, [IMG, IMG[::-1]], [0, 1, 2], seed=5, seconds=seconds)
    assert sorted(many) == sorted(seconds) == [0, 1, 2] and all(s > 0 for s in seconds.values())
    for k, y in many.items():
        np.testing.assert_array_equal(y, conv.convert(x, [IMG, IMG[::-1]], steps=k, seed=5))
    assert not np.array_equal(many[0], many[1]) and not np.array_equal(many[1], many[2])


def test_progress_follows_the_segments_of_a_long_input():
    """A long file reports its progress segment batch by segment batch (the CLI's bar counts
    seconds of audio), ending at 1; the output is the same with or without a callback."""
    model = load_params(
        None,
        ["model.size=tiny", "model.steps=1", "model.segment_seconds=0.64", "model.overlap_seconds=0.16",
         "model.max_batch=2"],
    ).model  # fmt: skip
    conv = Converter.new("dereverb", model, seed=0)
    x = speechish(4.0, 3)  # 8 segments of 0.64 s with 0.16 s overlap -> 4 batches of 2
    seen: list[float] = []
    y = conv.convert(x, IMG, progress=seen.append)
    assert len(seen) >= 4 and seen[-1] == 1.0 and all(a < b for a, b in zip(seen, seen[1:]))
    np.testing.assert_array_equal(y, conv.convert(x, IMG))


def test_a_checkpoint_from_before_tail_levels_loads_as_learned(conv):
    from mvsd.converter import _to_plain, spec_from_plain

    plain = _to_plain(conv.spec)
    assert plain["tail_levels"] == "flat"  # today's default
    del plain["tail_levels"]  # what checkpoints written before the field hold
    assert spec_from_plain(plain).tail_levels == "learned"
    with pytest.raises(CheckpointError, match="tail_levels"):
        spec_from_plain({**plain, "tail_levels": "loud"})


def test_estimate_advance_is_stored_and_older_checkpoints_load_without(model_cfg, tmp_path):
    from mvsd.acoustics import DIRECT_INDEX
    from mvsd.converter import _to_plain, spec_from_plain

    assert Converter.new("dereverb", model_cfg, seed=0).spec.estimate_advance == 0  # the default
    cfg = dataclasses.replace(model_cfg, estimate_advance=DIRECT_INDEX)
    d = Converter.new("dereverb", cfg, seed=0)
    assert d.spec.estimate_advance == DIRECT_INDEX and d.net.estimate_advance == DIRECT_INDEX
    assert Converter.new("reverb", cfg, seed=0).spec.estimate_advance == 0  # D only
    d.save(tmp_path / "d.safetensors")
    assert Converter.from_checkpoint(tmp_path / "d.safetensors").net.estimate_advance == DIRECT_INDEX
    plain = _to_plain(d.spec)
    del plain["estimate_advance"]  # what checkpoints written before the field hold
    assert spec_from_plain(plain).estimate_advance == 0
    with pytest.raises(CheckpointError, match="estimate_advance"):
        spec_from_plain({**plain, "estimate_advance": -3})
    # the estimate itself: without the advance it lags by DIRECT_INDEX samples
    old = Converter.from_checkpoint(tmp_path / "d.safetensors")
    old.net.estimate_advance = 0
    x = torch.from_numpy(speechish(0.5))[None]
    with torch.no_grad():
        room = d.net.room(d.net.encode_image(torch.rand(1, 3, *model_cfg.image_size))[0])
    new_est, old_est = d.net.first_estimate(x, room), old.net.first_estimate(x, room)
    a, b = new_est[:, :-DIRECT_INDEX], old_est[:, DIRECT_INDEX:]
    scale = float((a * b).sum() / (b * b).sum())  # both are levelled to the input's RMS
    assert scale == pytest.approx(1.0, abs=0.02)
    torch.testing.assert_close(a, scale * b, atol=1e-6, rtol=1e-4)
