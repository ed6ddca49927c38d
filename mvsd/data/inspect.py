"""``mvsd data stats`` and ``mvsd data verify``: what a dataset holds, and whether it is intact."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from mvsd.data import storage
from mvsd.data.manifest import member_column, read_manifest, read_quarantine
from mvsd.data.sample import DECODERS, MEMBERS, SPLITS, sha256
from mvsd.data.shards import iter_shard
from mvsd.errors import BadInput
from mvsd.progress import progress_bar

RT60_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, np.inf)


def dataset_stats(dataset: str | Path) -> dict[str, Any]:
    """Counts by split x kind, hours of audio, RT60/DRR distributions, rooms, speakers, bytes."""
    rows = read_manifest(dataset).to_pydict()
    n = len(rows["key"])
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for (split, kind), c in sorted(Counter(zip(rows["split"], rows["kind"])).items()):
        counts[split][kind] = c
    rt60 = np.array([x for x in rows["rt60"] if x is not None and np.isfinite(x)], dtype=float)
    drr = np.array([x for x in rows["drr"] if x is not None and np.isfinite(x)], dtype=float)
    hist, _ = np.histogram(rt60, bins=RT60_BINS)
    return {
        "dataset": str(dataset),
        "samples": n,
        "quarantined": read_quarantine(dataset).num_rows,
        "counts": dict(counts),
        "hours": float(np.sum(rows["duration"])) / 3600.0,
        "rooms": len({r for r in rows["room_id"] if r}),
        "speakers": len({s for s in rows["speaker_id"] if s}),
        "shards": len(set(rows["shard"])),
        "gigabytes": float(np.sum(rows["bytes"])) / 1e9,
        "rt60": _summary(rt60),
        "rt60_histogram": {_bin_label(i): int(h) for i, h in enumerate(hist)},
        "drr": _summary(drr),
        "version": rows["dataset_version"][0] if n else None,
    }


def _summary(x: np.ndarray) -> dict[str, float] | None:
    if x.size == 0:
        return None
    q = np.percentile(x, [5, 25, 50, 75, 95])
    return {
        "mean": float(x.mean()),
        "min": float(x.min()),
        "p5": q[0],
        "p25": q[1],
        "median": q[2],
        "p75": q[3],
        "p95": q[4],
        "max": float(x.max()),
    }


def _bin_label(i: int) -> str:
    lo, hi = RT60_BINS[i], RT60_BINS[i + 1]
    return f">= {lo:g} s" if np.isinf(hi) else f"{lo:g}-{hi:g} s"


def print_stats(stats: dict[str, Any]) -> None:
    """Render :func:`dataset_stats` as rich tables with an RT60 histogram."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    kinds = sorted({k for c in stats["counts"].values() for k in c})
    t = Table(title=f"{stats['dataset']} (version {stats['version']})")
    t.add_column("split")
    for k in kinds:
        t.add_column(k, justify="right")
    t.add_column("total", justify="right", style="bold")
    splits = [s for s in SPLITS if s in stats["counts"]] + sorted(set(stats["counts"]) - set(SPLITS))
    for split in splits:
        c = stats["counts"][split]
        t.add_row(split, *[str(c.get(k, "")) for k in kinds], str(sum(c.values())))
    con.print(t)
    con.print(
        f"{stats['samples']} samples, {stats['hours']:.2f} h of audio, {stats['rooms']} rooms, "
        f"{stats['speakers']} speakers, {stats['shards']} shards, {stats['gigabytes']:.3f} GB; "
        f"quarantined: {stats['quarantined']}"
    )
    if stats["rt60"]:
        r = stats["rt60"]
        con.print(
            f"RT60 (s): median {r['median']:.2f}, 5-95% {r['p5']:.2f}-{r['p95']:.2f}, range {r['min']:.2f}-{r['max']:.2f}"
        )
        top = max(stats["rt60_histogram"].values()) or 1
        for label, count in stats["rt60_histogram"].items():
            con.print(f"  {label:>10} {'█' * round(40 * count / top):<40} {count}")
    if stats["drr"]:
        d = stats["drr"]
        con.print(f"DRR (dB): median {d['median']:.1f}, 5-95% {d['p5']:.1f} to {d['p95']:.1f}")


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(dataset: str | Path) -> VerifyReport:
    """Re-read every shard; check each sample against its manifest row (keys, members, SHA-256)
    and that every member decodes. Tars under ``shards/`` that the manifest does not name are
    reported too. ``dataset`` is a folder or an fsspec URL."""
    root = storage.open_dir(dataset)
    rows = read_manifest(dataset).to_pylist()
    by_shard: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        by_shard[r["shard"]][r["key"]] = r
    report = VerifyReport()
    on_disk = set(root.files("shards", ".tar"))
    for extra in sorted(on_disk - set(by_shard)):
        report.problems.append(f"{extra}: shard not in the manifest")
    with progress_bar("verifying shards", len(by_shard)) as advance:
        for shard, expected in sorted(by_shard.items()):
            _verify_shard(root, shard, expected, report)
            advance(1)
    return report


def _verify_shard(
    root: storage.LocalDir | storage.RemoteDir, shard: str, expected: dict[str, dict], report: VerifyReport
) -> None:
    report.shards += 1
    if not root.exists(shard):
        report.problems.append(f"{shard}: missing ({len(expected)} samples)")
        return
    seen = set()
    try:
        path = root.path(shard)
        with (fsspec.open if storage.is_url(path) else open)(path, "rb") as f:
            for key, members in iter_shard(f, name=shard, on_bad=lambda e: report.problems.append(str(e))):
                report.samples += 1
                seen.add(key)
                if key not in expected:
                    report.problems.append(f"{shard}: key {key} not in the manifest")
                    continue
                report.problems += _check_sample(shard, key, members, expected[key])
    except BadInput as e:
        report.problems.append(str(e))
    for key in sorted(set(expected) - seen):
        report.problems.append(f"{shard}: key {key} in the manifest but not in the shard")


def _check_sample(shard: str, key: str, members: dict[str, bytes], row: dict) -> list[str]:
    problems = []
    for m in MEMBERS:
        want, data = row[member_column(m)], members.get(m)
        if want is None and data is None:
            continue
        if data is None:
            problems.append(f"{shard}: {key}.{m} missing")
        elif want is None:
            problems.append(f"{shard}: {key}.{m} present but not in the manifest")
        elif sha256(data) != want:
            problems.append(f"{shard}: {key}.{m} checksum mismatch")
        else:
            try:
                DECODERS[m](data)
            except Exception as e:
                problems.append(f"{shard}: {key}.{m} does not decode ({type(e).__name__}: {e})")
    return problems
