"""Errors that carry the offending file, so a user can find and fix it."""

from __future__ import annotations


class MvsdError(Exception):
    """Base class for errors this package raises on purpose."""


class ConfigError(MvsdError):
    """A params.yaml section or value is unknown or invalid."""


class BadInput(MvsdError):
    """One input file (or sample) cannot be used.

    Data builders catch this, quarantine the input with ``reason`` and go on with the rest.
    """

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = str(file)
        self.reason = reason


class OutputError(MvsdError):
    """An output folder that must not be written: it holds the user's own files or an input, or
    another run is writing it now."""
