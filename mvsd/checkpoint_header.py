"""Checking a converter checkpoint's JSON header before anything is built from it.

A checkpoint's header says how large a network to build; a crafted or damaged one could ask for
terabytes (``unet_channels: [10000000]``) or hold a spec of the wrong shape. Every value is
checked here for its type and a sane range first, so a bad file fails in one line that names the
problem instead of a traceback or an allocation. Types come from :class:`ConverterSpec` itself
(a field added there is checked too); ranges for the known fields are listed in :data:`RANGES`.
Keys this version does not know are tolerated when they hold plain JSON values.

The functions raise ValueError with the problem; the caller adds the file's name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

from mvsd.config import TAIL_LEVELS

MAX_WIDTH = 4096  # channels of any layer
MAX_LEVELS = 8  # U-Net levels
# Sum of squared U-Net widths: about the parameter count per 3x3 conv pair, a few GB at most.
MAX_WIDTH_SQUARES = 2 * MAX_WIDTH**2

# Valid ranges of the spec's numbers: dotted key -> (low, high), both inclusive.
RANGES: dict[str, tuple[float, float]] = {
    "flow_sigma": (0, 100),
    "steps": (0, 1000),
    "segment_seconds": (1e-3, 60),
    "overlap_seconds": (0, 30),
    "max_batch": (1, 4096),
    "image_size.*": (8, 4096),
    "rir_seconds": (1e-3, 30),
    "estimate_advance": (0, 16384),
    "sample_rate": (1000, 384_000),
    "rms_db": (-80, 0),
    "widths.unet_channels.*": (1, MAX_WIDTH),
    "widths.visual_widths.*": (1, MAX_WIDTH),
    "widths.embed_dim": (1, MAX_WIDTH),
    "widths.cond_dim": (1, MAX_WIDTH),
    "widths.attn_heads": (1, 64),
    "stft.n_fft": (16, 16384),
    "stft.hop": (1, 16384),
    "stft.alpha": (1e-3, 10),
    "stft.beta": (1e-3, 100),
}
CHOICES = {"direction": ("reverb", "dereverb"), "tail_levels": TAIL_LEVELS}


def check_header(text: str, expected_format: str) -> dict:
    """Parse and check the ``mvsd`` header of a checkpoint; returns it as a dict."""
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"the mvsd header is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"the mvsd header is a JSON {_kind(header)}, not an object")
    if header.get("format") != expected_format:
        raise ValueError(f"checkpoint format {header.get('format')!r}, expected {expected_format!r}")
    if "spec" not in header:
        raise ValueError("the mvsd header has no converter spec")
    for key in ("versions", "extra"):
        if key in header and not isinstance(header[key], dict):
            raise ValueError(f"header.{key} is a JSON {_kind(header[key])}, expected an object")
    check_spec(header["spec"])
    return header


def check_spec(spec: Any) -> dict:
    """Check a plain converter spec (as stored in a header) against :class:`ConverterSpec`."""
    from mvsd.models.net import ConverterSpec

    _check_dataclass(ConverterSpec, spec, "spec")
    for dotted, (lo, hi) in RANGES.items():
        for key, v in _values(spec, dotted.split("."), "spec"):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not lo <= v <= hi:
                raise ValueError(f"{key} = {v!r} is out of range; valid: [{lo}, {hi}]")
    for key, names in CHOICES.items():
        if key in spec and spec[key] not in names:
            raise ValueError(f"spec.{key} = {spec[key]!r} is not one of: {', '.join(names)}")
    unet = spec["widths"]["unet_channels"]
    if len(unet) > MAX_LEVELS:
        raise ValueError(f"spec.widths.unet_channels has {len(unet)} levels; at most {MAX_LEVELS}")
    if sum(c * c for c in unet) > MAX_WIDTH_SQUARES:
        raise ValueError(f"spec.widths.unet_channels {unet} would make an absurdly large network")
    if "stft" in spec and spec["stft"]["hop"] > spec["stft"]["n_fft"]:
        raise ValueError("spec.stft.hop is larger than spec.stft.n_fft")
    if spec["overlap_seconds"] * 2 >= spec["segment_seconds"]:
        raise ValueError("spec.overlap_seconds must be less than half of spec.segment_seconds")
    return spec


def _kind(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )


def _values(node: Any, keys: list[str], where: str) -> list[tuple[str, Any]]:
    """(dotted key, value) pairs named by ``keys`` (``*``: every list item) under ``node``."""
    if not keys:
        return [(where, node)]
    k, rest = keys[0], keys[1:]
    if k == "*":
        return [pair for i, v in enumerate(node) for pair in _values(v, rest, f"{where}.{i}")]
    return _values(node[k], rest, f"{where}.{k}") if isinstance(node, dict) and k in node else []


def _check_dataclass(cls: type, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is a JSON {_kind(value)}, expected an object")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in value:
            if required:
                raise ValueError(f"{where} has no {f.name!r}")
            continue
        _check_type(hints[f.name], value[f.name], f"{where}.{f.name}")
    known = {f.name for f in dataclasses.fields(cls)}
    for k, v in value.items():
        if k not in known and not _plain(v):  # from a newer mvsd: fine if it is plain data
            raise ValueError(f"{where}.{k} is not a plain JSON value")


def _plain(v: Any, depth: int = 0) -> bool:
    if isinstance(v, (str, bool, int, type(None))):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list) and depth < 2:
        return all(_plain(x, depth + 1) for x in v)
    return False


def _check_type(tp: Any, v: Any, where: str) -> None:
    """``v`` (plain JSON) fits the annotation ``tp``; ValueError naming ``where`` if not."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        _check_dataclass(tp, v, where)
    elif origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return
        _check_type(next(a for a in args if a is not type(None)), v, where)
    elif origin is tuple:
        args = typing.get_args(tp)
        variable = len(args) == 2 and args[1] is Ellipsis
        if not isinstance(v, list) or not v or (not variable and len(v) != len(args)):
            n = "one or more" if variable else str(len(args))
            raise ValueError(f"{where} = {_short(v)} is not a list of {n} values")
        for i, x in enumerate(v):
            _check_type(args[0] if variable else args[i], x, f"{where}.{i}")
    elif tp is bool:
        if not isinstance(v, bool):
            raise ValueError(f"{where} = {_short(v)} is not true or false")
    elif tp is int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{where} = {_short(v)} is not an integer")
    elif tp is float:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"{where} = {_short(v)} is not a finite number")
    elif tp is str:
        if not isinstance(v, str) or len(v) > 256:
            raise ValueError(f"{where} = {_short(v)} is not a short string")
    elif not _plain(v):  # a type this checker does not know: accept plain data only
        raise ValueError(f"{where} = {_short(v)} is not a plain JSON value")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
