"""A tiny converter overfits two SimRooms samples (slow: about a minute on 2 idle cores)."""

import numpy as np
import pytest
import torch
from conftest import TINY_SIMROOMS

from mvsd.audio import Spectrogram
from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.data.manifest import read_manifest
from mvsd.data.sample import DECODERS
from mvsd.data.shards import iter_shard
from mvsd.images import prepare_images
from mvsd.losses import diffusion_loss, magnitude, style_loss
from mvsd.sim.synth import synth

STEPS = 600
SEGMENT = 10_240  # 0.64 s


def two_paired_samples(out):
    rows = [r for r in read_manifest(out).to_pylist() if r["kind"] == "paired"][:2]
    samples = []
    for r in rows:
        for key, members in iter_shard(out / r["shard"]):
            if key == r["key"]:
                samples.append({m: DECODERS[m](b) for m, b in members.items()})
    return samples


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["reverb", "dereverb"])
def test_tiny_converter_overfits(tmp_path, direction):
    torch.manual_seed(0)
    params = load_params(None, TINY_SIMROOMS)
    synth(tmp_path / "ds", params)
    samples = two_paired_samples(tmp_path / "ds")
    cut = lambda m: torch.tensor(np.stack([s[m][4000 : 4000 + SEGMENT] for s in samples]))  # noqa: E731
    dry, wet = cut("clean.flac"), cut("reverb.flac")
    source, target = (dry, wet) if direction == "reverb" else (wet, dry)
    model = load_params(
        None,
        [
            "model.size=tiny",
            "model.sizes.tiny.unet_channels=[8,16,32]",
            "model.sizes.tiny.visual_widths=[8,8,16,16]",
            "model.segment_seconds=0.64",
            "model.overlap_seconds=0.0",
        ],
    ).model
    conv = Converter.new(direction, model, seed=0)
    images = prepare_images([s["image.jpg"] for s in samples], 2, model.image_size, model.use_depth)
    stft = Spectrogram()
    opt = torch.optim.Adam(conv.net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=STEPS)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(STEPS):
        out = conv.net(conv.process, source, target, images, (0, SEGMENT), gen)
        loss = diffusion_loss(out)
        opt.zero_grad()
        (loss + style_loss(out["refined"], out["target"])).backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    # The flow starts from the physical first estimate, not from noise, so its first losses are
    # already those of a fair guess: a four-fold fall is what memorising the two samples gives.
    assert np.mean(losses[-20:]) < 0.25 * np.mean(losses[:10]), (losses[:10], losses[-20:])

    conv.ema.load_state_dict(conv.net.state_dict())
    out = conv.convert_steps(source.numpy(), images, [0, 2], seed=0)
    dist = lambda a, b: (magnitude(stft(torch.as_tensor(a))) - magnitude(stft(b))).pow(2).mean().item()  # noqa: E731
    assert dist(out[2], target) < dist(source, target)
    # ...and what the network learned is the refinement: two steps beat the first estimate alone.
    assert dist(out[2], target) < dist(out[0], target)
