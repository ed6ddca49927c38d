"""One dataset sample: what adapters and the simulator produce, and how it becomes shard members.

A sample is one key in a WebDataset shard. Its members (``clean.flac``, ``reverb.flac``,
``image.jpg``, ``depth.png``, ``rir.npy``, ``json``) are encoded here, deterministically, so a shard
written twice from the same inputs is byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from mvsd.audio_io import SAMPLE_RATE, decode_flac, encode_flac

SPLITS = ("train", "val", "test_seen", "test_unseen")
KINDS = ("paired", "clean_only", "reverb_only", "pseudo_reverb", "pseudo_clean")
# Member name -> the Sample attribute it encodes; ``json`` always exists.
MEMBERS = ("clean.flac", "reverb.flac", "image.jpg", "depth.png", "rir.npy", "json")
DEPTH_SCALE = 1000.0  # depth.png stores millimetres as uint16 (max 65.535 m)
JPEG_QUALITY = 92
# A key is one path-free token: WebDataset splits a member name at its first dot.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass
class Sample:
    """A decoded sample. Audio is float32 mono at 16 kHz; ``image`` is ``(H, W, 3)`` uint8;
    ``depth`` is ``(H, W)`` float32 metres; ``rir`` is ``(L,)`` float32."""

    key: str
    split: str
    kind: str
    source: str
    room_id: str | None = None
    speaker_id: str | None = None
    clean: np.ndarray | None = None
    reverb: np.ndarray | None = None
    image: np.ndarray | None = None
    depth: np.ndarray | None = None
    rir: np.ndarray | None = None
    rt60: float | None = None
    drr: float | None = None
    round: int = 0
    score: float | None = None
    parent_key: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not KEY_RE.match(self.key):
            raise ValueError(f"sample key {self.key!r} must match {KEY_RE.pattern}")
        if self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {SPLITS}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")

    @property
    def duration(self) -> float:
        """Seconds of audio (the longer of clean and reverb)."""
        n = max((len(x) for x in (self.clean, self.reverb) if x is not None), default=0)
        return n / SAMPLE_RATE

    def metadata(self) -> dict[str, Any]:
        """The ``json`` member: everything but the arrays."""
        return {
            "key": self.key,
            "split": self.split,
            "kind": self.kind,
            "source": self.source,
            "room": self.room_id,
            "speaker": self.speaker_id,
            "rt60_s": clean_float(self.rt60),
            "drr_db": clean_float(self.drr),
            "round": self.round,
            "score": clean_float(self.score),
            "parent_key": self.parent_key,
            "duration_s": round(self.duration, 6),
            "generated": self.meta.get("generated"),
            **{k: v for k, v in self.meta.items() if k != "generated"},
        }


def clean_float(x: float | None, nd: int = 6) -> float | None:
    """Rounded for stable JSON; NaN/Inf (an unmeasurable RT60, say) become None (JSON null)."""
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def encode_image(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(
        buf, format="JPEG", quality=JPEG_QUALITY
    )
    return buf.getvalue()


def encode_depth(depth_m: np.ndarray) -> bytes:
    mm = np.clip(np.round(depth_m * DEPTH_SCALE), 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(mm).save(buf, format="PNG")
    return buf.getvalue()


def encode_npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def encode_sample(s: Sample) -> dict[str, bytes]:
    """Member name -> bytes, for the members this sample has (``json`` always)."""
    out: dict[str, bytes] = {}
    if s.clean is not None:
        out["clean.flac"] = encode_flac(s.clean)
    if s.reverb is not None:
        out["reverb.flac"] = encode_flac(s.reverb)
    if s.image is not None:
        out["image.jpg"] = encode_image(s.image)
    if s.depth is not None:
        out["depth.png"] = encode_depth(s.depth)
    if s.rir is not None:
        out["rir.npy"] = encode_npy(s.rir)
    out["json"] = json.dumps(s.metadata(), sort_keys=True, separators=(",", ":")).encode()
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- decoding (used by the loader and by `data verify`) -------------------------------------------


def decode_image(data: bytes) -> np.ndarray:
    """``(H, W, 3)`` uint8 from any image bytes Pillow reads (grayscale/RGBA converted)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))  # a writable copy (np.asarray's view is read-only)


def decode_depth(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im, dtype=np.float32) / DEPTH_SCALE


def decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


DECODERS = {
    "clean.flac": decode_flac,
    "reverb.flac": decode_flac,
    "image.jpg": decode_image,
    "depth.png": decode_depth,
    "rir.npy": decode_npy,
    "json": lambda b: json.loads(b.decode("utf-8")),
}
