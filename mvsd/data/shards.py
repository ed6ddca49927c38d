"""WebDataset shards: deterministic atomic writing and safe reading.

A shard is a plain POSIX tar whose members are ``<key>.<member>`` (``abc.clean.flac``,
``abc.json``...), grouped by key in order. We write tars ourselves rather than through
``webdataset.TarWriter`` so that every header field is fixed (mtime 0, uid/gid 0, no user names):
the same samples give a byte-identical shard, which keeps DVC hashes stable across reruns.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from mvsd.data.storage import is_url, put_bytes
from mvsd.errors import BadInput

MAX_MEMBER_BYTES = 512 * 1024**2  # larger members are refused: a crafted header must not exhaust memory


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def atomic_path(path: Path) -> Path:
    """The temporary sibling a file is written to before it is renamed into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_shard(path: str | Path, samples: Iterable[tuple[str, dict[str, bytes]]]) -> int:
    """Write ``(key, {member: bytes})`` pairs to the tar ``path`` atomically; return bytes written.

    Members of a sample are written in sorted name order. The file appears under its final name
    only once complete (write to a temp file, fsync, rename), so a killed writer leaves no
    half-shard that a reader could mistake for a whole one. ``path`` may be an fsspec URL: the
    tar is then made in memory and uploaded as one object (:mod:`mvsd.data.storage`).
    """
    if is_url(path):
        buf = io.BytesIO()
        _write_tar(buf, samples)
        put_bytes(str(path), buf.getvalue())
        return buf.tell()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        with open(tmp, "wb") as f:
            _write_tar(f, samples)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, path) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def _write_tar(f: IO[bytes], samples: Iterable[tuple[str, dict[str, bytes]]]) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for member in sorted(members):
                data = members[member]
                tar.addfile(_tarinfo(f"{key}.{member}", len(data)), io.BytesIO(data))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write a small file atomically (temp file + rename; on an fsspec URL, one upload)."""
    if is_url(path):
        put_bytes(str(path), data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, path) from None
    finally:
        tmp.unlink(missing_ok=True)


def _naming(e: OSError, path: Path) -> OSError:
    """``e`` with ``path`` as its file name when it has none (a write or fsync error names no
    file; "no space left" must say where)."""
    return e if e.filename is not None else OSError(e.errno, e.strerror, str(path))


def check_member_name(name: str, shard: str) -> tuple[str, str]:
    """Split a member name into (key, member), refusing names that could leave their folder.

    Keys never contain a path separator in our shards; a name with ``/``, ``\\``, ``..`` or an
    absolute path is how a crafted tar escapes the folder it is extracted to.
    """
    if not name or name.startswith(("/", "\\")) or "/" in name or "\\" in name or ".." in name:
        raise BadInput(shard, f"unsafe tar member name {name!r}")
    key, dot, member = name.partition(".")
    if not dot or not key or not member:
        raise BadInput(shard, f"tar member {name!r} is not <key>.<member>")
    return key, member


def _check_member(
    info: tarfile.TarInfo, shard: str, key: str | None, members: dict[str, bytes], done: set[str]
) -> tuple[str, str]:
    """(key, member) of a member that is safe to read, or BadInput saying why not."""
    if not info.isreg():
        raise BadInput(shard, f"tar member {info.name!r} is not a regular file")
    k, member = check_member_name(info.name, shard)
    if info.size > MAX_MEMBER_BYTES:
        raise BadInput(shard, f"tar member {info.name!r} is {info.size} bytes (limit {MAX_MEMBER_BYTES})")
    if k in done or (k == key and member in members):
        raise BadInput(shard, f"tar member {info.name!r} repeats a sample already read")
    return k, member


def iter_shard(
    source: str | Path | IO[bytes], name: str | None = None, on_bad=None
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {member: bytes})`` from a shard, members of one key grouped.

    Args:
        source: a path or an open binary stream (fsspec file, HTTP body...), read sequentially.
        name: what to call the shard in errors (default: the path).
        on_bad: called with a :class:`BadInput` for each unsafe or non-file member, which is
            skipped; None raises instead.
    """
    name = name or str(source)
    opened = open(source, "rb") if isinstance(source, (str, Path)) else source
    key: str | None = None
    members: dict[str, bytes] = {}
    done: set[str] = set()  # keys already yielded: a key must not come back later in the shard
    try:
        with tarfile.open(fileobj=opened, mode="r|*") as tar:
            for info in tar:
                try:
                    k, member = _check_member(info, name, key, members, done)
                except BadInput as e:
                    if on_bad is None:
                        raise
                    on_bad(e)
                    continue
                if k != key and key is not None:
                    yield key, members
                    done.add(key)
                    members = {}
                key = k
                members[member] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BadInput(name, f"corrupt or truncated shard ({type(e).__name__}: {e})") from None
    finally:
        if opened is not source:
            opened.close()
    if key is not None:
        yield key, members
