"""Cutting long audio into overlapping segments and joining the converted segments back.

The converters work on fixed-length segments (2.56 s by default). A clip shorter than a segment
is zero-padded; a longer one is cut with hop ``seg - overlap``, the last segment aligned to the
clip's end, and the outputs are joined with linear cross-fades over the overlaps (weights that sum
to one everywhere, so a constant signal passes unchanged).
"""

from __future__ import annotations

import torch


def segment_starts(length: int, seg: int, hop: int) -> list[int]:
    """Start samples of the segments covering ``length`` samples."""
    if length <= seg:
        return [0]
    starts = list(range(0, length - seg, hop))
    return starts + [length - seg]


def split_segments(x: torch.Tensor, seg: int, hop: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``x (B, T)`` -> (segments ``(S, seg)``, owner item of each ``(S,)``, start of each)."""
    b, t = x.shape
    if t < seg:
        x = torch.nn.functional.pad(x, (0, seg - t))
    starts = segment_starts(t, seg, hop)
    segs = torch.stack([x[:, s : s + seg] for s in starts], dim=1).reshape(b * len(starts), seg)
    owners = torch.arange(b).repeat_interleave(len(starts))
    return segs, owners, starts * b


def _fade_window(seg: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    w = torch.ones(seg)
    if overlap > 0:
        ramp = (torch.arange(overlap) + 0.5) / overlap  # strictly inside (0, 1): never a zero weight
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp.flip(0)
    return w


def crossfade_join(
    segs: torch.Tensor, owners: torch.Tensor, starts: list[int], shape: torch.Size, overlap: int
) -> torch.Tensor:
    """Inverse of :func:`split_segments`: ``(S, seg)`` -> ``shape`` ``(B, T)``."""
    b, t = shape
    seg = segs.shape[1]
    n_per = len(starts) // b
    total = max(t, seg)
    out = torch.zeros(b, total, device=segs.device, dtype=segs.dtype)  # where the segments are (a GPU)
    weight = torch.zeros_like(out)
    for i in range(segs.shape[0]):
        k = i % n_per
        s = starts[i]
        # The real overlap with a neighbour can exceed `overlap` for the end-aligned last segment;
        # normalising by the summed weights below keeps the join exact either way.
        w = _fade_window(seg, overlap, k == 0, k == n_per - 1).to(out)
        out[owners[i], s : s + seg] += w * segs[i]
        weight[owners[i], s : s + seg] += w
    return (out / weight)[:, :t]
