import pytest

from mvsd.config import ConfigError, Params, load_params, to_dict


def test_repo_params_file_loads_and_matches_defaults_types():
    p = load_params("params.yaml")
    assert isinstance(p, Params)
    assert p.simrooms.clip_seconds == pytest.approx(2.56)
    assert p.model.image_size == (96, 128)  # YAML list -> typed tuple
    assert abs(sum(p.simrooms.pool_ratios.values()) - 1) < 1e-9


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\].*valid keys: seed"):
        load_params(None, ["simrooms.bogus=1"])


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown key.*valid keys: audio"):
        load_params(None, ["nonsense.x=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("simrooms.seed=abc", "simrooms.seed: expected int"),
        ("simrooms.rir.ray_tracing=1", "expected true or false"),
        ("simrooms.room.length=[3]", "expected a list of 2 values"),
        ("simrooms.pool_ratios={paired: 0.5, clean_only: 0.1, reverb_only: 0.1}", "sum to 1"),
        ("simrooms.room.length=[5, 3]", "0 < lo <= hi"),
        ("shards.samples_per_shard=0", r"shards.samples_per_shard = 0 is out of range; valid: >= 1"),
        ("audio.sample_rate=44100", "only 16000"),
        ("train.pseudo_fraction=1.5", "pseudo_fraction must be in"),
        ("train.lambdas={diffusion: 1, stlye: 1}", "unknown loss families"),
        ("pseudo.keep_fraction=0", "keep_fraction must be in"),
        ("model.sampler=ddim", "does not fit model.process"),
        ("model.size=huge", "is not one of the sizes"),
        ("loader.batch_size=8", r"unknown key\(s\) \['batch_size'\].*valid keys: shuffle_buffer, num_workers"),
    ],
)
def test_invalid_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_params(None, [override])


def test_missing_explicit_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")


def test_override_and_round_trip(tmp_path):
    p = load_params(None, ["simrooms.train_samples=7", "shards.compression=snappy"])
    assert p.simrooms.train_samples == 7 and p.shards.compression == "snappy"
    # to_dict -> YAML -> load gives the same config back
    import yaml

    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(to_dict(p)))
    assert load_params(f) == p


def test_configs_are_frozen():
    p = load_params(None)
    with pytest.raises(AttributeError):
        p.simrooms.seed = 3  # type: ignore[misc]
