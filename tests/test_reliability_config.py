"""Bad params fail when they load, in one line naming the key, the value and what is valid
(issue 12, cases 9 and 10): out-of-range counts, sizes, rates, levels and fractions; YAML syntax
errors in the file or in --set; unknown names such as shards.compression: banana."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mvsd.cli import app
from mvsd.config import CHOICES, RANGES, _values, load_params
from mvsd.errors import ConfigError

runner = CliRunner()


@pytest.mark.parametrize(
    "override, message",
    [
        ("audio.rms_db=40", r"audio.rms_db = 40.0 is out of range; valid: [-80, 0)"),
        ("simrooms.train_samples=-5", "simrooms.train_samples = -5 is out of range; valid: >= 1"),
        ("ingest.val_fraction=1.5", "ingest.val_fraction = 1.5 is out of range; valid: [0, 1]"),
        ("ingest.test_fraction=-0.1", "ingest.test_fraction = -0.1 is out of range; valid: [0, 1]"),
        ("audio.peak_db=3", "audio.peak_db = 3.0 is out of range"),
        ("simrooms.val_samples=-1", "simrooms.val_samples = -1"),
        ("simrooms.clip_seconds=0", "simrooms.clip_seconds = 0.0"),
        ("simrooms.workers=-2", "simrooms.workers = -2"),
        ("simrooms.rir.max_seconds=-1", "simrooms.rir.max_seconds = -1.0"),
        ("simrooms.rir.n_rays=0", "simrooms.rir.n_rays = 0"),
        ("simrooms.image.width=0", "simrooms.image.width = 0"),
        ("simrooms.room.min_source_distance=0", "simrooms.room.min_source_distance = 0.0"),
        ("shards.row_group_size=0", "shards.row_group_size = 0"),
        ("ingest.workers=-1", "ingest.workers = -1"),
        ("train.batch_size=0", "train.batch_size = 0"),
        ("loader.shuffle_buffer=-1", "loader.shuffle_buffer = -1"),
        ("model.image_size=[0, 128]", "model.image_size.0 = 0"),
        ("model.max_batch=0", "model.max_batch = 0"),
        ("model.flow_sigma=-0.1", "model.flow_sigma = -0.1"),
        ("model.sizes.tiny.unet_channels=[4, -8]", "model.sizes.tiny.unet_channels.1 = -8"),
        ("model.sizes.small.embed_dim=100000", "model.sizes.small.embed_dim = 100000"),
        ("train.lr=0", "train.lr = 0.0 is out of range; valid: > 0"),
        ("train.lr=.nan", "train.lr = nan"),
        ("train.ema_decay=1.5", "train.ema_decay = 1.5"),
        ("train.grad_clip=0", "train.grad_clip = 0.0"),
        ("train.lambdas.cycle=-1", "train.lambdas.cycle = -1.0"),
        ("train.batch_size=0", "train.batch_size = 0"),
        ("train.threads_per_worker=-1", "train.threads_per_worker = -1"),
        ("train.object_store_mb=10", "train.object_store_mb = 10"),
        ("train.room_batch=0", "train.room_batch = 0"),
        ("model.rir_seconds=-1", "model.rir_seconds = -1.0"),
        ("pseudo.chunk=0", "pseudo.chunk = 0"),
        ("pseudo.threads=0", "pseudo.threads = 0"),
        ("pseudo.max_distance=-1", "pseudo.max_distance = -1.0"),
        ("evaluate.limit=-1", "evaluate.limit = -1"),
        ("orchestration.lock_timeout_s=-5", "orchestration.lock_timeout_s = -5.0"),
        ("shards.compression=banana", "shards.compression = 'banana' is not one of: none, snappy"),
        ("evaluate.split=train2", "evaluate.split = 'train2' is not one of"),
    ],
)
def test_out_of_range_values_are_named_with_their_range(override, message):
    with pytest.raises(ConfigError) as e:
        load_params(None, [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cross_field_ranges():
    with pytest.raises(ConfigError, match=r"ingest.val_fraction \+ ingest.test_fraction = 1.2 must be <= 1"):
        load_params(None, ["ingest.val_fraction=0.6", "ingest.test_fraction=0.6"])
    with pytest.raises(ConfigError, match=r"audio.rms_db \(-3.0\) must be <= audio.peak_db \(-6.0\)"):
        load_params(None, ["audio.rms_db=-3", "audio.peak_db=-6"])


def test_every_ranged_key_exists_and_the_defaults_pass():
    p = load_params(None)
    for dotted in [*RANGES, *CHOICES]:
        section, *keys = dotted.split(".")
        assert _values(getattr(p, section), keys, section), dotted  # names at least one value
    load_params(None, ["pseudo.max_distance=0.5", "shards.compression=none", "train.max_failures=-1"])


@pytest.mark.parametrize(
    "text, where",
    [
        ("audio:\n  rms_db: -25\n   peak_db: -1\n", "line 3"),  # bad indent
        ("audio:\n\trms_db: -25\n", "line 2"),  # a tab
        ("simrooms: {seed: 1\n", "line 2"),  # unclosed flow mapping
    ],
)
def test_yaml_syntax_errors_are_one_line(tmp_path, text, where):
    f = tmp_path / "params.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_params(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: not valid YAML: ") and where in msg and "\n" not in msg, msg


def test_cli_reports_bad_params_before_any_work(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("audio:\n\trms_db: -25\n")
    out = tmp_path / "ds"
    for args in (
        ["--params", str(f)],
        ["--set", "simrooms.train_samples=[1"],
        ["--set", "shards.compression=banana"],
        ["--set", "audio.rms_db=40"],
    ):
        r = runner.invoke(app, ["synth", "--out", str(out), *args])
        assert r.exit_code == 2, r.output
        assert r.output.startswith("error: ") and len(r.output.strip().splitlines()) == 1, r.output
        assert not out.exists()  # nothing written
