"""Shared test fixtures: tiny params and tiny datasets, each test making its own data."""

from __future__ import annotations

import os

import pytest

from mvsd.config import load_params

os.environ.setdefault("MVSD_QUIET", "1")


TINY_SIMROOMS = [
    "simrooms.n_rooms_seen=3",
    "simrooms.n_rooms_unseen=1",
    "simrooms.views_per_room=2",
    "simrooms.n_speakers=4",
    "simrooms.train_samples=12",
    "simrooms.val_samples=2",
    "simrooms.test_seen_samples=2",
    "simrooms.test_unseen_samples=2",
    "simrooms.clip_seconds=1.0",
    "simrooms.rir.max_seconds=0.5",
    "simrooms.rir.n_rays=500",
    "simrooms.image.width=32",
    "simrooms.image.height=24",
    "simrooms.workers=1",
    "shards.samples_per_shard=4",
]


@pytest.fixture
def tiny_params():
    """A SimRooms config that builds in a few seconds: 4 rooms, 18 samples, 1 s clips."""
    return load_params(None, TINY_SIMROOMS)
