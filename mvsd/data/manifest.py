"""The Parquet manifest (one row per sample) and the quarantine table (one row per rejected input).

The manifest lets any subset be chosen without opening a shard: filter rows by split, kind, room,
RT60... and read only the shards those rows name. Low-cardinality string columns are
dictionary-encoded and rows are grouped in row groups of ``shards.row_group_size``, as pyarrow's
documentation advises for columns that are filtered on.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mvsd.data.sample import MEMBERS, Sample, clean_float
from mvsd.data.shards import write_bytes_atomic

MANIFEST = "manifest.parquet"
QUARANTINE = "quarantine.parquet"


def member_column(member: str) -> str:
    """Manifest column holding a member's SHA-256, e.g. ``sha256_clean_flac``."""
    return "sha256_" + member.replace(".", "_")


_DICT = pa.dictionary(pa.int32(), pa.string())
MANIFEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", _DICT),
        ("split", _DICT),
        ("kind", _DICT),
        ("source", _DICT),
        ("room_id", _DICT),
        ("speaker_id", _DICT),
        ("duration", pa.float32()),
        ("rt60", pa.float32()),
        ("drr", pa.float32()),
        ("round", pa.int16()),
        ("score", pa.float32()),
        ("parent_key", pa.string()),
        ("bytes", pa.int64()),
        *[(member_column(m), pa.string()) for m in MEMBERS],
        ("dataset_version", _DICT),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [("file", pa.string()), ("reason", pa.string()), ("shard", pa.string()), ("source", _DICT)]
)


def manifest_row(
    s: Sample, shard: str, members: dict[str, bytes], checksums: dict[str, str]
) -> dict[str, Any]:
    """The manifest row of a written sample (``dataset_version`` is filled in at the end)."""
    return {
        "key": s.key,
        "shard": shard,
        "split": s.split,
        "kind": s.kind,
        "source": s.source,
        "room_id": s.room_id,
        "speaker_id": s.speaker_id,
        "duration": s.duration,
        "rt60": clean_float(s.rt60),
        "drr": clean_float(s.drr),
        "round": s.round,
        "score": clean_float(s.score),
        "parent_key": s.parent_key,
        "bytes": sum(len(b) for b in members.values()),
        **{member_column(m): checksums.get(m) for m in MEMBERS},
        "dataset_version": None,
    }


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    arrays = []
    for f in schema:
        if pa.types.is_dictionary(f.type):
            arrays.append(pa.array(cols[f.name], pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table(
    table: pa.Table, path: str | Path, row_group_size: int = 4096, compression: str = "zstd"
) -> None:
    """Write a table atomically (to a path or an fsspec URL); the same table gives the same bytes."""
    buf = io.BytesIO()
    pq.write_table(
        table,
        buf,
        row_group_size=row_group_size,
        compression=compression,
        use_dictionary=True,
        write_statistics=True,
    )
    write_bytes_atomic(path, buf.getvalue())


def read_manifest(dataset: str | Path, filters: Any = None) -> pa.Table:
    """The manifest of a dataset folder or URL (``s3://...`` through fsspec), or of a manifest
    file, optionally with pyarrow ``filters``."""
    import fsspec

    url = str(dataset)
    if not url.endswith(".parquet"):
        url = url.rstrip("/") + "/" + MANIFEST
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"{url}: no manifest (is {dataset} a dataset built by mvsd?)")
    return pq.read_table(path, filesystem=fs, filters=filters)


def read_quarantine(dataset: str | Path) -> pa.Table:
    """The quarantine table of a dataset folder or URL (empty when there is none)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(str(dataset).rstrip("/") + "/" + QUARANTINE)
    if not fs.exists(path):
        return QUARANTINE_SCHEMA.empty_table()
    return pq.read_table(path, filesystem=fs)
