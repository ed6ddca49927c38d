"""Tests of mvsd.data.safe_pickle: data round-trips, code never runs, corrupt input is BadInput."""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from mvsd.data.safe_pickle import safe_load
from mvsd.errors import BadInput

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def _data() -> dict:
    """A SoundSpaces-like dict with every numpy layout a data pickle carries."""
    return {
        "source_audio": np.linspace(-1, 1, 50, dtype=np.float32),
        "receiver_audio": np.arange(12, dtype=np.int16).reshape(2, 6),
        "rgb": [np.full((3, 4, 3), 7, np.uint8), np.zeros((3, 4, 3), np.uint8)],
        "depth": np.asfortranarray(np.ones((3, 4), np.float64)),
        "strided": np.arange(10.0)[::3],
        "complex": np.array([1 + 2j], np.complex64),
        "record": np.array([(1, 2.5)], dtype=[("a", "i4"), ("b", "f8")]),
        "scalars": [np.float32(1.5), np.int64(3), np.bool_(True), 0.5, 2, "s", b"raw", None],
        "containers": (collections.OrderedDict(a=1), {1, 2}, frozenset([3]), bytearray(b"x")),
        "misc": [complex(1, 2), slice(1, 5), range(3)],
    }


def _assert_equal(a, b) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert type(a) is type(b) and a.keys() == b.keys()
        for k in a:
            _assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_equal(x, y)
    else:
        assert a == b and type(a) is type(b)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_numpy_and_containers_round_trip(protocol: int) -> None:
    data = _data()
    _assert_equal(data, safe_load(pickle.dumps(data, protocol=protocol)))


def test_loads_from_a_path(tmp_path) -> None:
    path = tmp_path / "u.pkl"
    path.write_bytes(pickle.dumps({"x": np.arange(3)}))
    np.testing.assert_array_equal(safe_load(path)["x"], np.arange(3))
    np.testing.assert_array_equal(safe_load(str(path), "shown name")["x"], np.arange(3))


class _Evil:
    """Unpickles as ``fn(*args)``: the classic pickle exploit."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _exploits(marker) -> dict[str, object]:
    cmd = f"touch {marker}"
    return {
        "os.system": _Evil(os.system, cmd),
        "builtins.eval": _Evil(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Evil(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Evil(subprocess.Popen, ["touch", str(marker)]),
        # getattr(obj, name) is how a chained exploit reaches os.system from an allowed object.
        "builtins.getattr": _Evil(getattr, "text", "upper"),
        "builtins.__import__": _Evil(__import__, "os"),
        # Hidden one level down, as a field of an otherwise valid sample.
        "nested": {"rgb": [np.zeros(2)], "source_audio": [_Evil(os.system, cmd)]},
    }


@pytest.mark.parametrize("kind", list(_exploits("m")))
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickles_raise_and_do_not_run(tmp_path, kind: str, protocol: int) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_exploits(marker)[kind], protocol=protocol)
    with pytest.raises(BadInput) as err:
        safe_load(blob, "evil.pkl")
    assert not marker.exists()
    assert err.value.file == "evil.pkl"
    assert "which is not allowed" in err.value.reason
    assert err.value.reason.startswith("pickle tries to load ")


def test_refusal_names_the_global(tmp_path) -> None:
    blob = pickle.dumps(_Evil(subprocess.Popen, ["true"]))
    with pytest.raises(BadInput, match=r"subprocess\.Popen"):
        safe_load(blob)


@pytest.mark.parametrize(
    "blob",
    [
        pickle.dumps({"x": np.arange(100.0)})[:-30],  # truncated
        b"",  # empty
        b"\x00garbage that is not a pickle",
        b"\x80\x05\x95\xff\xff\xff\xff\x00\x00\x00\x00",  # frame longer than the data
    ],
    ids=["truncated", "empty", "garbage", "bad-frame"],
)
def test_corrupt_pickles_raise_bad_input(blob: bytes) -> None:
    with pytest.raises(BadInput, match="corrupt or truncated pickle"):
        safe_load(blob, "bad.pkl")


def test_missing_file_is_bad_input(tmp_path) -> None:
    with pytest.raises(BadInput, match="unreadable pickle") as err:
        safe_load(tmp_path / "nope.pkl")
    assert err.value.file.endswith("nope.pkl")


def test_persistent_ids_are_refused() -> None:
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "tensor-storage" if isinstance(obj, str) else None

    buf = io.BytesIO()
    P(buf).dump(["s"])
    with pytest.raises(BadInput, match="persistent ids"):
        safe_load(buf.getvalue())
