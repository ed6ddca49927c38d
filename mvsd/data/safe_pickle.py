"""Reading pickles from outside (SoundSpaces-Speech ``.pkl`` files) without running their code.

Why: unpickling is not parsing. A pickle is a small program for a stack machine; its ``GLOBAL`` /
``STACK_GLOBAL`` opcodes import any ``module.name`` and its ``REDUCE`` opcode calls it with any
arguments, so ``pickle.load`` of a crafted file runs ``os.system("...")`` (or ``eval``,
``subprocess.Popen``...) with the rights of whoever loads it. A downloaded dataset is exactly such
an untrusted input.

:func:`safe_load` uses an :class:`pickle.Unpickler` whose ``find_class`` admits only the few
callables that numpy arrays, numpy scalars and plain containers need (listed in ``ALLOWED``), all of
which only build data. Anything else, and any corrupt or truncated pickle, raises
:class:`~mvsd.errors.BadInput` before a single foreign call is made.
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


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` globals; ``name`` labels errors."""

    def __init__(self, file: io.BufferedIOBase, name: str):
        # latin1: how numpy reads Python 2 pickles of arrays (their data are 8-bit str).
        super().__init__(file, encoding="latin1")
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise BadInput(self.name, f"pickle tries to load {module}.{name}, which is not allowed")
        return super().find_class(module, name)

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
        return RestrictedUnpickler(io.BytesIO(data), name).load()
    except BadInput:
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError, TypeError... all mean corrupt
        raise BadInput(name, f"corrupt or truncated pickle ({type(e).__name__}: {e})") from None
