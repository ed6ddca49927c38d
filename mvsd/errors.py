"""Errors that carry the offending file, so a user can find and fix it."""

from __future__ import annotations

import os


def printable(name: str) -> str:
    """``name`` as valid UTF-8 text. A file name whose bytes are not UTF-8 reaches Python with
    surrogate escapes, which no UTF-8 writer (Parquet, the terminal) accepts; those bytes are
    shown as ``\\xNN`` instead (``caf\\xe9.wav``)."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


class MvsdError(Exception):
    """Base class for errors this package raises on purpose."""


class ConfigError(MvsdError):
    """A params.yaml section or value is unknown or invalid."""


class BadInput(MvsdError):
    """One input file (or sample) cannot be used.

    Data builders catch this, quarantine the input with ``reason`` and go on with the rest.
    """

    def __init__(self, file: str, reason: str):
        file, reason = printable(str(file)), printable(reason)
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class OutputError(MvsdError):
    """An output folder that must not be written: it holds the user's own files or an input, or
    another run is writing it now."""


class ClusterError(MvsdError):
    """The Ray cluster at ``RAY_ADDRESS`` cannot be joined."""


class Terminated(BaseException):
    """The process got SIGTERM. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` (a builder quarantining one bad input) takes it for an input's failure."""
