"""Where a dataset lives: a local folder, or an fsspec URL (``s3://bucket/ds``, ``gs://...``,
``memory://...``).

A local folder (a plain path or ``file://``) is written as it always was: temp file, fsync,
rename, and an ``flock`` on ``.build/lock``. On a URL there is no rename and no flock, so:

* **Atomic objects.** Every object (shard, part file, manifest...) is made in memory and sent as
  one upload (``fs.pipe_file``: one PUT, or a multipart upload that S3 and GCS publish only when it
  completes). No temporary name is ever written, and a half-written object is never visible
  under its final name. A part file is uploaded after its shard, so "part exists" means "shard
  whole", exactly as on a local disk.
* **The lock** is the object ``.build/lock``, created with an exclusive create (``If-None-Match:
  *`` on S3; ``FileExistsError`` when it exists) holding who took it (host, pid, start time); the
  build deletes it when it ends, however it ends in Python. Its limits, unlike a local flock:
  a build killed with ``kill -9`` (or whose machine died) leaves the lock behind. A later build
  on the same host takes it over (that host's builds of the URL also hold a local flock, so none
  of them is running: host names must be unique across the machines that build); from another
  host the build refuses, naming the lock and how to delete it once you know no build is running.
  On a filesystem without exclusive create the check-then-create is best effort (racy).
* ``memory://`` lives inside one process: build there with one worker and the local executor.

Credentials and endpoints come from fsspec's usual places (for S3: ``AWS_*`` variables,
``~/.aws/config``, an instance role; ``AWS_ENDPOINT_URL`` for MinIO or another S3 API). With
``shards.executor=ray`` every node needs them too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mvsd.errors import MvsdError, OutputError

BUILD_DIR = ".build"
LOCK_FILE = "lock"  # in BUILD_DIR: empty (so the folder's content hash stays stable), flock'ed
IN_PROCESS = ("memory",)  # fsspec protocols whose files exist only in this process


def is_url(location: str | Path) -> bool:
    """True for an fsspec URL other than ``file://`` (which is a local path)."""
    s = str(location)
    return "://" in s and not s.startswith(("file://", "local://"))


def local_path(location: str | Path) -> Path:
    """The local path of a plain path or a ``file://`` URL."""
    s = str(location)
    for prefix in ("file://", "local://"):
        if s.startswith(prefix):
            return Path(s[len(prefix) :])
    return Path(location)


def join(location: str | Path, rel: str) -> str | Path:
    """``rel`` (``/``-separated) inside a folder (a Path) or a URL (a str)."""
    if is_url(location):
        return f"{str(location).rstrip('/')}/{rel}"
    return local_path(location) / rel


class MissingFilesystem(MvsdError, ImportError):
    """The package for a URL's protocol (s3fs for ``s3://``) is not installed."""


def url_to_fs(url: str) -> tuple[Any, str]:
    """``(filesystem, path)`` of a URL, with listings never cached: workers in other processes
    write into the same prefix, and a cached listing would hide their objects."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except ImportError as e:  # e.g. s3fs missing: fsspec's message names the package
        raise MissingFilesystem(f"{url}: {e} (for s3://: pip install 'mvsd[s3]')") from None


def put_bytes(url: str, data: bytes) -> None:
    """Upload ``data`` as the object ``url`` in one piece (see the module docstring)."""
    fs, path = url_to_fs(url)
    fs.pipe_file(path, data)


def read_bytes(location: str | Path) -> bytes:
    if is_url(location):
        fs, path = url_to_fs(str(location))
        return fs.cat_file(path)
    return local_path(location).read_bytes()


def exists(location: str | Path) -> bool:
    if is_url(location):
        fs, path = url_to_fs(str(location))
        return fs.exists(path)
    return local_path(location).exists()


def open_dir(location: str | Path) -> LocalDir | RemoteDir:
    """The dataset folder at ``location`` (a path, ``file://``, or another fsspec URL)."""
    return RemoteDir(str(location)) if is_url(location) else LocalDir(local_path(location))


# -- a local folder -------------------------------------------------------------------------------


class LocalDir:
    """A dataset folder on a local (or mounted) filesystem."""

    in_process = False

    def __init__(self, root: Path):
        self.root = self.location = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def state(self) -> str:
        """``missing``, ``file`` or ``folder``."""
        return "missing" if not self.root.exists() else "folder" if self.root.is_dir() else "file"

    def is_empty(self) -> bool:
        return not any(self.root.iterdir())

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read_text(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def files(self, rel: str, suffix: str = "") -> list[str]:
        """Files under ``rel`` (recursively), as ``/``-paths relative to the root."""
        sub = self.root / rel
        if not sub.is_dir():
            return []
        return [p.relative_to(self.root).as_posix() for p in sub.rglob(f"*{suffix}") if p.is_file()]

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def remove_tree(self, rel: str) -> None:
        shutil.rmtree(self.root / rel, ignore_errors=True)

    def clear_build_dir(self) -> None:
        """Everything in ``.build/`` but the lock."""
        for stale in (self.root / BUILD_DIR).iterdir():
            if stale.name == LOCK_FILE:
                continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()

    def lock(self) -> None:
        lock_folder(self.root)

    def unlock(self) -> None:
        unlock_folder(self.root)

    def remove_temp_files(self) -> None:
        remove_temp_files(self.root)


# Locks this process holds: lock file (real path) -> (file descriptor, inode).
_LOCKS: dict[str, tuple[int, int]] = {}


def lock_folder(out: Path) -> None:
    """Take the exclusive lock on the dataset folder ``out`` (re-entrant within this process);
    fail at once, with OutputError, when another process holds it. Released by
    :func:`unlock_folder` or when the process ends, however it ends."""
    try:
        import fcntl  # noqa: F401 (POSIX only: without it, no locking)
    except ImportError:  # not POSIX: no locking
        return
    path = out / BUILD_DIR / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    held = _LOCKS.get(key)
    if held is not None:
        try:
            if os.stat(path).st_ino == held[1]:
                return
        except OSError:
            pass
        unlock_folder(out)  # the file was replaced (folder deleted and rebuilt): lock the new one
    fd = _flock(path, f"{out}: another run is building this dataset folder now (it holds {path}); "
                "wait for it to finish, or write to another folder")
    _LOCKS[key] = (fd, os.fstat(fd).st_ino)


def unlock_folder(out: Path) -> None:
    held = _LOCKS.pop(os.path.realpath(out / BUILD_DIR / LOCK_FILE), None)
    if held is not None:
        os.close(held[0])  # closing the descriptor releases the flock


def remove_temp_files(out: Path) -> None:
    """Temporary files of killed writers (``.<name>.tmp-<pid>``); call with the folder locked."""
    for sub in (out / "shards", out / BUILD_DIR):
        if sub.is_dir():
            for tmp in sub.rglob(".*.tmp-*"):
                tmp.unlink(missing_ok=True)
    for tmp in out.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


# -- a URL ----------------------------------------------------------------------------------------

# Lock objects this process holds: URL -> (our lock record, host-lock descriptor).
_REMOTE_LOCKS: dict[str, tuple[dict, int | None]] = {}


class RemoteDir:
    """A dataset folder under an fsspec URL (see the module docstring)."""

    def __init__(self, url: str):
        self.url = self.location = url.rstrip("/")
        self.fs, self.base = url_to_fs(self.url)
        self.base = self.base.rstrip("/")
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.in_process = protocol in IN_PROCESS

    def path(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def _p(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def state(self) -> str:
        if self.fs.isfile(self.base):
            return "file"
        return "folder" if self.fs.exists(self.base) else "missing"

    def is_empty(self) -> bool:
        try:
            return not self.fs.ls(self.base, detail=False)
        except FileNotFoundError:
            return True

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._p(rel))

    def read_text(self, rel: str) -> str:
        return self.fs.cat_file(self._p(rel)).decode()

    def files(self, rel: str, suffix: str = "") -> list[str]:
        try:
            found = self.fs.find(self._p(rel))
        except FileNotFoundError:
            return []
        n = len(self.base) + 1
        return [f[n:] for f in found if f.endswith(suffix)]

    def remove(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.rm_file(self._p(rel))

    def remove_tree(self, rel: str) -> None:
        files = self.files(rel)
        if files:
            self.fs.rm([self._p(f) for f in files])

    def clear_build_dir(self) -> None:
        keep = f"{BUILD_DIR}/{LOCK_FILE}"
        stale = [f for f in self.files(BUILD_DIR) if f != keep]
        if stale:
            self.fs.rm([self._p(f) for f in stale])

    def remove_temp_files(self) -> None:
        """Nothing to do: no temporary object is ever written to a URL."""

    def lock(self) -> None:
        """Create the lock object ``.build/lock`` exclusively (re-entrant within this process);
        OutputError when another build holds it."""
        if self.url in _REMOTE_LOCKS:
            return
        host_fd = _host_lock(self.url)  # no other build of this URL runs on this host
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "id": uuid.uuid4().hex,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            if not self._create_lock(me):
                holder = self._lock_holder()
                if holder.get("host") != me["host"]:
                    raise OutputError(
                        f"{self.url}: another run is building this dataset now (lock object "
                        f"{self.path(BUILD_DIR + '/' + LOCK_FILE)}: host {holder.get('host')}, pid "
                        f"{holder.get('pid')}, since {holder.get('started')}); wait for it to finish, or "
                        "write elsewhere. If no build is running (it was killed), delete that object "
                        "and run again."
                    )
                # A lock of this host's, and this host's lock is ours: its build is gone.
                self.fs.rm_file(self._p(f"{BUILD_DIR}/{LOCK_FILE}"))
                if not self._create_lock(me):
                    raise OutputError(f"{self.url}: lost the race for the lock object; run again")
        except BaseException:
            _host_unlock(host_fd)
            raise
        _REMOTE_LOCKS[self.url] = (me, host_fd)

    def _create_lock(self, me: dict) -> bool:
        path, data = self._p(f"{BUILD_DIR}/{LOCK_FILE}"), json.dumps(me).encode()
        try:
            with self.fs.open(path, "xb") as f:
                f.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError):  # no exclusive create here: best effort
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
            return True

    def _lock_holder(self) -> dict:
        try:
            holder = json.loads(self.read_text(f"{BUILD_DIR}/{LOCK_FILE}"))
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def unlock(self) -> None:
        """Delete the lock object if it is still ours, and let go of the host lock."""
        held = _REMOTE_LOCKS.pop(self.url, None)
        if held is None:
            return
        me, host_fd = held
        try:
            if self._lock_holder().get("id") == me["id"]:
                self.fs.rm_file(self._p(f"{BUILD_DIR}/{LOCK_FILE}"))
        finally:
            _host_unlock(host_fd)


def _host_lock(url: str) -> int | None:
    """An flock'ed file in the temp folder, one per URL: builds of one URL on one host exclude
    each other at once, and a lock object left by this host can be told stale."""
    try:
        import fcntl  # noqa: F401 (POSIX only: without it, no locking)
    except ImportError:
        return None
    folder = Path(tempfile.gettempdir()) / "mvsd-locks"
    folder.mkdir(exist_ok=True)
    path = folder / hashlib.sha256(url.encode()).hexdigest()[:24]
    return _flock(path, f"{url}: another run on this machine is building this dataset now; wait for it "
                  "to finish, or write elsewhere")


def _flock(path: Path, busy: str) -> int:
    """A descriptor of ``path`` (created if absent) holding its exclusive flock; OutputError
    ``busy`` at once when another process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OutputError(busy) from None
    return fd


def _host_unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
