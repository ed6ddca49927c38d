"""Teaching the room head (mvsd.train.room): what it reads, that it learns, what it hands on, and
that the main loop keeps it frozen when it was pre-trained on known RIRs."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import TINY_SIMROOMS

from mvsd.config import load_params
from mvsd.data.manifest import read_manifest
from mvsd.sim.synth import synth
from mvsd.train.room import collect_rooms, freeze_rooms, pretrain_rooms, rirs_known
from mvsd.train.state import TrainState
from mvsd.train.step import train_step


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("rooms") / "simrooms"
    synth(out, load_params(None, TINY_SIMROOMS))
    return out


def params(*extra):
    return load_params(None, ["model.size=tiny", "train.room_batch=8", *extra])


def test_collect_rooms_reads_every_paired_train_sample_with_its_targets(dataset):
    images, targets = collect_rooms(str(dataset), params())
    m = read_manifest(dataset).to_pylist()
    n = sum(r["split"] == "train" and r["kind"] == "paired" for r in m)
    assert n > 0 and images.shape == (n, 3, 96, 128) and images.dtype == torch.uint8
    assert targets.t60.shape == (n, 6) and targets.drr_db.shape == (n,)
    # the simulator's own broadband RT60 of each sample is within the band T60s' span
    assert torch.isfinite(targets.t60).any(dim=1).all()
    assert torch.isfinite(targets.drr_db).all()
    val, _ = collect_rooms(str(dataset), params(), ("val",))
    assert len(val) == sum(r["split"] == "val" and r["kind"] == "paired" for r in m)


def test_pretraining_lowers_the_loss_and_hands_the_head_to_both_converters(dataset, tmp_path):
    p = params("train.room_steps=40", "train.lr=0.003")
    state = TrainState.new(p.model, p.train)
    summary = pretrain_rooms(state, p, str(dataset), str(tmp_path / "room.csv"))
    assert summary["steps"] == 40 and summary["loss_last"] < summary["loss_first"]
    assert len((tmp_path / "room.csv").read_text().splitlines()) == 41
    r, d = state.converters["reverb"], state.converters["dereverb"]
    for part in ("visual", "room"):
        want = getattr(r.net, part).state_dict()
        for other in (d.net, r.ema, d.ema):
            got = getattr(other, part).state_dict()
            assert all(torch.equal(want[k], got[k]) for k in want)


def test_rirs_known_reads_the_manifest(dataset, tmp_path):
    assert rirs_known(str(dataset))
    # the same dataset, its RIRs unknown (as for recordings of real rooms)
    other = tmp_path / "no-rir"
    shutil.copytree(dataset, other)
    table = read_manifest(other)
    i = table.column_names.index("sha256_rir_npy")
    table = table.set_column(i, "sha256_rir_npy", pa.nulls(table.num_rows, pa.string()))
    pq.write_table(table, other / "manifest.parquet")
    assert not rirs_known(str(other))
    assert not rirs_known(str(tmp_path / "missing"))


def test_a_frozen_head_stays_as_it_is_while_the_unet_learns(dataset):
    from test_train_step import batch

    p = load_params(None, ["model.size=tiny", "model.segment_seconds=0.16", "model.overlap_seconds=0.0"])
    state = TrainState.new(p.model, p.train)
    freeze_rooms(state)
    nets = {n: c.net for n, c in state.converters.items()}
    before = {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in nets.items()}
    terms = train_step(state, batch(["paired", "paired"]), p.train, torch.Generator().manual_seed(0))
    assert not any(k.endswith(("/room", "/envelope")) for k in terms)  # nothing left for them to teach
    for n, net in nets.items():
        now = net.state_dict()
        head = [k for k in now if k.startswith(("visual.", "room."))]
        assert head and all(torch.equal(before[n][k], now[k]) for k in head)  # batch-norm statistics too
        assert any(not torch.equal(before[n][k], now[k]) for k in now if k.startswith("unet."))
