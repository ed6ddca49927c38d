"""Which pseudo-pairs are kept: pseudo.accept score (the best of each kind) or rooms (the best
within bands of the reverberation R read from the picture), on real shards and manifests."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from mvsd.config import load_params
from mvsd.data.manifest import MANIFEST, MANIFEST_SCHEMA, manifest_row, read_manifest, to_table, write_table
from mvsd.data.sample import Sample, encode_sample, sha256
from mvsd.data.shards import write_shard
from mvsd.errors import BadInput
from mvsd.train.pseudo import select


def candidates(out, heard=True):
    """8 pseudo_clean candidates: 4 dry rooms that cycle well (scores 0.1-0.13), 4 reverberant
    ones that cycle worse (0.2-0.5)."""
    rows, members = [], []
    t60s = [0.3, 0.35, 0.4, 0.45, 1.5, 2.0, 2.5, 3.0]
    scores = [0.10, 0.11, 0.12, 0.13, 0.50, 0.20, 0.40, 0.30]
    for i, (t60, score) in enumerate(zip(t60s, scores)):
        s = Sample(
            key=f"c{i}",
            split="train",
            kind="pseudo_clean",
            source="t",
            clean=np.zeros(160, np.float32),
            reverb=np.zeros(160, np.float32),
            round=0,
            score=score,
            parent_key=f"p{i}",
            meta={"generated": "clean.flac", **({"heard_t60_s": t60} if heard else {})},
        )
        m = encode_sample(s)
        members.append((s.key, m))
        rows.append(
            manifest_row(s, "shards/train/pseudo_clean-000000.tar", m, {k: sha256(v) for k, v in m.items()})
        )
    write_shard(out / "shards" / "train" / "pseudo_clean-000000.tar", members)
    p = load_params(None, [])
    write_table(
        to_table(rows, MANIFEST_SCHEMA), out / MANIFEST, p.shards.row_group_size, p.shards.compression
    )


def kept(out, *sets):
    """select() as mvsd pseudo runs it: on the manifest of all candidates (consolidate's)."""
    out.mkdir()
    candidates(out)
    summary = select(out, load_params(None, ["pseudo.keep_fraction=0.5", *sets]))
    return summary, sorted(read_manifest(out).column("key").to_pylist())


def test_score_keeps_the_best_of_the_kind_and_rooms_the_best_of_each_band(tmp_path):
    summary, keys = kept(tmp_path / "a")  # default: pseudo.accept=score
    assert keys == ["c0", "c1", "c2", "c3"]  # all dry: the easy cycles
    assert summary == {"candidates": 8, "accepted": 4, "by_kind": {"pseudo_reverb": 0, "pseudo_clean": 4}}
    assert pq.read_table(tmp_path / "a" / "candidates.parquet").num_rows == 8  # every candidate stays listed
    _, keys = kept(tmp_path / "b", "pseudo.accept=rooms", "pseudo.accept_bins=2")
    assert keys == ["c0", "c1", "c5", "c7"]  # the best half of the dry band and of the reverberant band
    _, keys = kept(tmp_path / "c", "pseudo.accept=rooms", "pseudo.accept_bins=1")
    assert keys == ["c0", "c1", "c2", "c3"]  # one band: the same as score


def test_rooms_on_candidates_made_before_it_existed_is_a_clear_error(tmp_path):
    candidates(tmp_path, heard=False)
    with pytest.raises(BadInput, match="heard_t60_s"):
        select(tmp_path, load_params(None, ["pseudo.accept=rooms"]))


@pytest.mark.parametrize("bad", ["pseudo.accept=best", "pseudo.accept_bins=0"])
def test_bad_accept_settings_are_refused(bad):
    from mvsd.errors import ConfigError

    with pytest.raises(ConfigError, match="pseudo.accept"):
        load_params(None, [bad])
