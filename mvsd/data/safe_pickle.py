"""Reading pickles from outside (SoundSpaces-Speech ``.pkl`` files) without running their code.

Why: unpickling is not parsing. A pickle is a small program for a stack machine; its ``GLOBAL`` /
``STACK_GLOBAL`` opcodes import any ``module.name`` and its ``REDUCE`` opcode calls it with any
arguments, so ``pickle.load`` of a crafted file runs ``os.system("...")`` (or ``eval``,
``subprocess.Popen``...) with the rights of whoever loads it. A downloaded dataset is exactly such
an untrusted input.

:func:`safe_load` uses an :class:`pickle.Unpickler` whose ``find_class`` admits only the few
callables that numpy arrays, numpy scalars and plain containers need (listed in ``ALLOWED``), all of
which only build data. Anything else, and any corrupt or truncated pickle, raises
:class:`~mvsd.errors.BadInput` before a single foreign call is made. Those callables that allocate
what their arguments say are bounded by the file's own size, so a 33-byte file cannot make a
1.5 GB ``bytearray``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from mvsd.errors import BadInput

# (module, name) pairs a data pickle may reference. numpy 1.x writes ``numpy.core.*``, numpy 2.x
# ``numpy._core.*``; pickles of protocol < 3 name builtins ``__builtin__.*`` (and ``xrange``).
_NUMPY = [
    ("multiarray", "_reconstruct"),  # ndarray, protocols 0-4
    ("multiarray", "scalar"),  # numpy scalars (np.float32(1.0))
    ("numeric", "_frombuffer"),  # ndarray, protocol 5
]
_BUILTINS = ["complex", "set", "frozenset", "slice", "range", "bytearray", "bytes", "list",
             "dict", "tuple", "int", "float", "str", "bool"]  # fmt: skip
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [(f"numpy.{core}.{mod}", name) for core in ("core", "_core") for mod, name in _NUMPY]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [(b, n) for b in ("builtins", "__builtin__") for n in _BUILTINS]
    + [("__builtin__", "xrange"), ("collections", "OrderedDict"), ("collections", "defaultdict")]
    # Python 3 writes bytes as _codecs.encode(str, "latin1") in protocols 0-2 (numpy data too).
    + [("_codecs", "encode")]
)


# Allowed callables that allocate as much as their arguments say (``bytearray(1500000000)``,
# ``list(range(10**9))``, an array of a given shape) are wrapped so that a file cannot choose a
# size out of proportion to itself: a data pickle's objects are made of the bytes it holds.
_SIZED = {"bytearray", "bytes", "list", "tuple", "set", "frozenset", "dict", "OrderedDict"}
MIN_BYTES_LIMIT = 1 << 20  # allocations any file may make (a file of n bytes: 2 n or this)
MIN_ITEMS_LIMIT = 1 << 16  # container items any file may make (a file of n bytes: n or this)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` globals; ``name`` labels errors;
    ``size`` (the pickle's length in bytes) bounds what its callables may allocate."""

    def __init__(self, file: io.BufferedIOBase, name: str, size: int | None = None):
        # latin1: how numpy reads Python 2 pickles of arrays (their data are 8-bit str).
        super().__init__(file, encoding="latin1")
        self.name = name
        size = size if size is not None else 1 << 30
        self.max_bytes = max(2 * size, MIN_BYTES_LIMIT)
        self.max_items = max(size, MIN_ITEMS_LIMIT)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise BadInput(self.name, f"pickle tries to load {module}.{name}, which is not allowed")
        fn = super().find_class(module, name)
        if name in _SIZED:
            return self._sized(fn, f"{module}.{name}")
        if name == "_reconstruct":
            return self._sized_array(fn, f"{module}.{name}")
        if name in ("dtype", "scalar"):
            return self._sized_dtype(fn, f"{module}.{name}")
        return fn

    def _refuse(self, what: str, size: int, limit: int, unit: str) -> BadInput:
        return BadInput(
            self.name,
            f"pickle asks {what} for {size} {unit}, more than a file of this size can hold ({limit})",
        )

    def _sized(self, fn: Any, what: str) -> Any:
        """``fn`` (bytes, list, dict...) refusing an int size or an argument longer than allowed."""

        def call(*args: Any) -> Any:
            if args:
                a = args[0]
                if isinstance(a, int) and not isinstance(a, bool):
                    if a > self.max_bytes:
                        raise self._refuse(what, a, self.max_bytes, "bytes")
                elif not isinstance(a, (str, bytes, bytearray, dict, list, tuple, set, frozenset)):
                    try:
                        n = len(a)  # a range, or anything else lazy: its length is what is made
                    except (TypeError, OverflowError):
                        raise BadInput(self.name, f"pickle calls {what} on an unsized iterable") from None
                    if n > self.max_items:
                        raise self._refuse(what, n, self.max_items, "items")
            return fn(*args)

        return call

    def _sized_array(self, fn: Any, what: str) -> Any:
        """numpy's ``_reconstruct(subtype, shape, dtype)``, refusing shapes beyond the limit."""
        import numpy as np

        def call(subtype: Any, shape: Any, dtype: Any, *rest: Any) -> Any:
            try:
                n = int(np.prod(np.asarray(shape, dtype=np.float64))) * np.dtype(dtype).itemsize
            except (TypeError, ValueError, OverflowError):
                raise BadInput(self.name, f"pickle calls {what} with a bad shape or dtype") from None
            if n > self.max_bytes:
                raise self._refuse(what, n, self.max_bytes, "bytes")
            return fn(subtype, shape, dtype, *rest)

        return call

    def _sized_dtype(self, fn: Any, what: str) -> Any:
        """``numpy.dtype`` / ``scalar`` refusing item sizes beyond the limit (``V1500000000``)."""

        def call(*args: Any) -> Any:
            out = fn(*args)
            itemsize = getattr(out, "itemsize", 0)
            if itemsize > self.max_bytes:
                raise self._refuse(what, itemsize, self.max_bytes, "bytes per item")
            return out

        return call

    def persistent_load(self, pid: Any) -> Any:
        raise BadInput(self.name, "pickle uses persistent ids, which are not allowed")


def safe_load(path_or_bytes: str | Path | bytes | bytearray | memoryview, name: str | None = None) -> Any:
    """Unpickle a file (or bytes) that may only contain numpy arrays and plain containers.

    Args:
        path_or_bytes: a path to a pickle file, or its bytes.
        name: what to call the input in errors (default: the path, or ``<bytes>``).
    Returns:
        The unpickled object (dicts, lists, numpy arrays...).
    Raises:
        BadInput: the file is unreadable, corrupt or truncated, or references anything outside
            :data:`ALLOWED` (nothing it references is called in that case).
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        name = name or "<bytes>"
        data = bytes(path_or_bytes)
    else:
        name = name or str(path_or_bytes)
        try:
            data = Path(path_or_bytes).read_bytes()
        except OSError as e:
            raise BadInput(name, f"unreadable pickle ({type(e).__name__}: {e})") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), name, len(data)).load()
    except BadInput:
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError, TypeError... all mean corrupt
        raise BadInput(name, f"corrupt or truncated pickle ({type(e).__name__}: {e})") from None
