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


_terminated = False  # set by on_sigterm; a raise that Python drops is raised again from here


def on_sigterm(signum=None, frame=None):
    """The CLI's SIGTERM handler: remember it, then raise :class:`Terminated`.

    Python prints and drops an exception raised inside a C callback (soundfile reads a FLAC held
    in memory through cffi callbacks), so a SIGTERM landing there would be lost and the command
    would run to its end; the places that make such calls check :func:`raise_if_terminated` after
    them, and so does every training step.
    """
    global _terminated
    _terminated = True
    raise Terminated()


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` if SIGTERM arrived (see :func:`on_sigterm`)."""
    if _terminated:
        raise Terminated()


def reset_terminated() -> None:
    """Forget an earlier SIGTERM (a new command in the same process, e.g. under a test runner)."""
    global _terminated
    _terminated = False
