"""A converter checkpoint's header is checked before anything is built from it (issue 12,
case 12): a header that is not JSON, not an object, has no spec, a spec of the wrong type, or
absurd sizes fails in one line naming the file and the problem — never a traceback or a huge
allocation."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from mvsd.checkpoint_header import check_spec
from mvsd.cli import app
from mvsd.config import load_params
from mvsd.converter import CheckpointError, Converter

runner = CliRunner()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    Converter.new("reverb", load_params(None, ["model.size=tiny"]).model).save(d / "good.safetensors")
    return d / "good.safetensors"


def header_of(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["mvsd"])


def rewrite(good, path, text):
    save_file(load_file(str(good)), str(path), metadata={"mvsd": text})
    return path


def with_spec(good, **changes):
    h = header_of(good)
    for dotted, v in changes.items():
        node, *keys = [h["spec"], *dotted.split("__")]
        for k in keys[:-1]:
            node = node[k]
        if v is ...:
            del node[keys[-1]]
        else:
            node[keys[-1]] = v
    return json.dumps(h)


def bad_headers(good):
    h = header_of(good)
    return {
        "not valid JSON": "{this is not json",
        "is a JSON array, not an object": "[1, 2, 3]",
        "no converter spec": json.dumps({k: v for k, v in h.items() if k != "spec"}),
        "spec is a JSON string, expected an object": json.dumps({**h, "spec": "tiny"}),
        "spec has no 'widths'": with_spec(good, widths=...),
        "spec.widths.unet_channels.0 = 10000000 is out of range": with_spec(
            good, widths__unet_channels=[10**7]
        ),
        "absurdly large network": with_spec(good, widths__unet_channels=[4096, 4096, 4096]),
        "unet_channels = 'abc' is not a list": with_spec(good, widths__unet_channels="abc"),
        "spec.widths.attn_heads = True is not an integer": with_spec(good, widths__attn_heads=True),
        "spec.steps = -1 is out of range": with_spec(good, steps=-1),
        "spec.image_size.0 = 0 is out of range": with_spec(good, image_size=[0, 0]),
        "spec.flow_sigma = nan is not a finite number": with_spec(good, flow_sigma=float("nan")),
        "spec.direction = 'sideways' is not one of": with_spec(good, direction="sideways"),
        "header.versions is a JSON string": json.dumps({**h, "versions": "1"}),
    }


def test_bad_headers_fail_in_one_line_naming_file_and_problem(good, tmp_path):
    for i, (problem, text) in enumerate(bad_headers(good).items()):
        path = rewrite(good, tmp_path / f"bad{i}.safetensors", text)
        t0 = time.perf_counter()
        with pytest.raises(CheckpointError) as e:
            Converter.from_checkpoint(path)
        msg = str(e.value)
        assert msg.startswith(f"{path}: ") and problem in msg and "\n" not in msg, (problem, msg)
        assert time.perf_counter() - t0 < 5  # refused before building anything


def test_cli_names_the_bad_checkpoint(good, tmp_path):
    path = rewrite(good, tmp_path / "huge.safetensors", with_spec(good, widths__unet_channels=[10**7]))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "room.png")
    import soundfile as sf

    sf.write(tmp_path / "dry.wav", np.zeros(1600), 16000)
    r = runner.invoke(app, ["reverb", "--image", str(tmp_path / "room.png"), "--speech",
                            str(tmp_path / "dry.wav"), "--out", str(tmp_path / "wet.wav"),
                            "--checkpoint", str(path)])  # fmt: skip
    assert r.exit_code == 2 and "huge.safetensors: spec.widths.unet_channels.0" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_good_header_loads_and_newer_plain_keys_are_tolerated(good):
    assert Converter.from_checkpoint(good).spec.direction == "reverb"
    spec = header_of(good)["spec"]
    check_spec({**spec, "a_future_knob": 3, "another": [1.5, "x"]})
    with pytest.raises(ValueError, match="spec.a_future_knob is not a plain JSON value"):
        check_spec({**spec, "a_future_knob": {"nested": {"deep": 1}}})
