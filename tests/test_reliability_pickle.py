"""A crafted pickle cannot make the allowed constructors allocate what it likes (issue 12, case
6): ``bytearray(1500000000)`` from a 30-byte file, ``list(range(...))``, an array or dtype of a
huge size — each is refused as BadInput before the allocation, and the ingest quarantines it."""

from __future__ import annotations

import pickle
import resource
import struct

import numpy as np
import pytest

from mvsd.data.safe_pickle import safe_load
from mvsd.errors import BadInput


def call(module: str, name: str, *int_args: int) -> bytes:
    """A protocol-2 pickle that calls ``module.name(*int_args)``."""
    args = b"".join(b"J" + struct.pack("<i", a) for a in int_args)
    tuple_op = {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(int_args)]
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + args + tuple_op + b"R."


def test_a_tiny_pickle_cannot_allocate_gigabytes():
    payload = call("builtins", "bytearray", 1_500_000_000)
    assert len(payload) == 30
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BadInput, match=r"pickle asks builtins.bytearray for 1500000000 bytes, more than"):
        safe_load(payload, "crafted.pkl")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: no 1.5 GB
    with pytest.raises(BadInput, match="builtins.bytes for 1500000000 bytes"):
        safe_load(call("builtins", "bytes", 1_500_000_000))


def test_lazy_sizes_and_arrays_are_bounded_too():
    # list(range(10**8)): REDUCE(list, (REDUCE(range, (10**8,)),))
    payload = b"\x80\x02cbuiltins\nlist\ncbuiltins\nrange\nJ" + struct.pack("<i", 10**8) + b"\x85R\x85R."
    with pytest.raises(BadInput, match="builtins.list for 100000000 items"):
        safe_load(payload)
    # numpy's _reconstruct(ndarray, (1500000000,), 'u1'), as an array pickle starts.
    shape = b"J" + struct.pack("<i", 1_500_000_000) + b"\x85"
    payload = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + shape + b"U\x01b\x87R."
    with pytest.raises(BadInput, match="_reconstruct for 1500000000 bytes"):
        safe_load(payload)
    payload = b"\x80\x02cnumpy\ndtype\nX\x0b\x00\x00\x00V1500000000\x85R."
    with pytest.raises(BadInput, match="numpy.dtype for 1500000000 bytes per item"):
        safe_load(payload)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_large_real_data_still_loads(protocol):
    data = {"rgb": np.zeros((3, 256, 256, 3), np.uint8), "b": bytearray(300_000), "l": list(range(70_000))}
    out = safe_load(pickle.dumps(data, protocol=protocol))
    assert out["rgb"].shape == (3, 256, 256, 3) and len(out["b"]) == 300_000 and len(out["l"]) == 70_000
