"""What an evaluation computed: the types ``mvsd eval`` fills and the report renders.

Kept apart from :mod:`mvsd.eval.run` (which computes) and :mod:`mvsd.eval.report` (which
renders) so that the report depends on the result, never on the code that made it: the page shows
exactly the outputs and scores the evaluation computed, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mvsd import acoustics as ac
from mvsd.data.sample import Sample

BAND_NAMES = tuple(f"{b:g}" for b in ac.BANDS)  # "125", ..., "4000"
ROOM_METRICS = (*(f"room_t60_error_{b}" for b in BAND_NAMES), "room_t60_error", "room_drr_error")

Outputs = dict[tuple[str, str], list[np.ndarray | None]]  # (family, system) -> one per sample (None: skipped)

# The metrics a reader compares first (the headline file, the paired table, the report's plots).
HEADLINE_METRICS = {"vam": ("stft_distance", "rt60_error", "drr_error"), "dereverb": ("pesq", "estoi", "si_sdr")}
# Rows whose output is the target itself (scores at the metric's limit, e.g. SI-SDR 150 dB): no
# comparison, and a bar that would flatten every other one.
EXACT_ORACLES = {"vam": ("oracle_rir",), "dereverb": ("oracle_dry",)}
BLANK = "-blank-image"  # what names a system's grey-image (ablation) rows


@dataclass(frozen=True)
class RoomComparison:
    """A reverberator's room description against the truth, one row per sample.

    ``pred_*``: what the converter read from the image it was given (the room's, or grey with
    ``blank_image``); ``blank_*``: from a uniform grey image (the ablation; the same for every
    sample); ``true_*``: the true RIR's per-band T60 (NaN where unmeasurable or without a RIR) and
    the sample's DRR."""

    keys: list[str]
    true_t60: np.ndarray  # (N, 6) seconds
    pred_t60: np.ndarray  # (N, 6)
    blank_t60: np.ndarray  # (N, 6)
    true_drr: np.ndarray  # (N,) dB
    pred_drr: np.ndarray  # (N,)
    blank_drr: np.ndarray  # (N,)

    def errors(self) -> list[dict[str, float]]:
        """Per sample: ``room_t60_error_<band>``, their mean ``room_t60_error`` (over measurable
        bands) and ``room_drr_error``, absolute, NaN where the truth is unknown."""
        out = []
        for i in range(len(self.keys)):
            e = np.abs(self.pred_t60[i] - self.true_t60[i])
            row = {f"room_t60_error_{b}": float(v) for b, v in zip(BAND_NAMES, e, strict=True)}
            row["room_t60_error"] = float(np.nanmean(e)) if np.isfinite(e).any() else float("nan")
            row["room_drr_error"] = float(abs(self.pred_drr[i] - self.true_drr[i]))
            out.append(row)
        return out


@dataclass(frozen=True)
class EvalResult:
    name: str
    rows: list[dict]  # per sample
    summary: dict[str, dict[str, tuple[float, float, int]]]  # "family/system" -> metric -> (mean, ci95, n)
    timing: dict[str, float]  # "family/system/rtf" -> processing seconds per second of audio
    rooms: dict[str, RoomComparison] = field(default_factory=dict)  # VAM system -> room description
    # The first few samples and every system's outputs for them, kept for the listening page.
    examples: list[Sample] = field(default_factory=list)
    example_outputs: Outputs = field(default_factory=dict)

    def rows_of(self, family: str, system: str) -> list[dict]:
        """The per-sample rows of one system."""
        return [r for r in self.rows if r["family"] == family and r["system"] == system]


def blank_twin(system: str) -> str:
    """The name of ``system``'s image-ablation rows: ``round-1@1steps`` -> ``round-1-blank-image@1steps``."""
    base, at, steps = system.partition("@")
    return f"{base}{BLANK}{at}{steps}"


def paired_difference(rows_a: list[dict], rows_b: list[dict], metric: str) -> tuple[float, float, int]:
    """Mean per-sample difference ``b - a`` of ``metric`` over the (family, key) pairs both systems
    scored (finite values), its 95 % half-width (1.96 s/sqrt(n)) and n: the test for "b is
    measurably worse than a" on the same samples (``benchmarks/paired.py``)."""
    a = {(r["family"], r["key"]): r.get(metric) for r in rows_a}
    diffs = []
    for r in rows_b:
        other = a.get((r["family"], r["key"]))
        if other is not None and r.get(metric) is not None and math.isfinite(r[metric] - other):
            diffs.append(r[metric] - other)
    d = np.asarray(diffs, dtype=float)
    ci = 1.96 * d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return (float(d.mean()) if len(d) else float("nan")), float(ci), len(d)
