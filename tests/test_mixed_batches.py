"""How each training batch mixes paired samples and pseudo-pairs (train.pseudo_fraction)."""

import pytest
import torch

import mvsd.train.loop as loop
from mvsd.config import load_params


@pytest.fixture
def fake_streams(monkeypatch):
    """Every dataset an endless stream of batches of its own name (no shards needed)."""

    def batches(dataset, params, kinds, batch, seed, steps):
        assert batch > 0, f"a loader of {batch} samples per batch for {dataset}"  # the real one refuses it
        while True:
            yield {"x": torch.zeros(batch), "meta": [{"from": dataset}] * batch}

    monkeypatch.setattr(loop, "_batches", batches)


@pytest.mark.parametrize(("fraction", "pseudo_per_batch"), [(0.17, 1), (0.5, 2), (0.0, 0)])
def test_pseudo_share_of_each_batch(fake_streams, fraction, pseudo_per_batch):
    p = load_params(None, ["train.batch_size=4", f"train.pseudo_fraction={fraction}"])
    stream = loop.mixed_batches(p, {"paired": "paired", "pseudo": ["p0", "p1"]}, seed=0)
    for _ in range(4):
        b = next(stream)
        sources = [m["from"] for m in b["meta"]]
        assert len(sources) == 4 and b["x"].shape == (4,)
        assert sum(s != "paired" for s in sources) == pseudo_per_batch  # 0: paired only, as asked
    without = loop.mixed_batches(p, {"paired": "paired", "pseudo": []}, seed=0)
    assert [m["from"] for m in next(without)["meta"]] == ["paired"] * 4
