"""The one seam for durable file writes: temporary file, fsync, rename, directory fsync.

A reader sees the old content or the new, never half of either. A full disk or a read-only
volume becomes a ``StateError`` that names the file, and the old content stays in place.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from phoenix_sidecar.errors import StateError
from phoenix_sidecar.paths import STATE_DIR_NAME


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Args:
        path: the destination; its directory must exist.
        data: the new content.
        mode: permission bits for the new file; by default those of the file it replaces, else 0o600
            inside Phoenix's private ``.phoenix_cli/`` and 0o644 elsewhere (a workspace file).

    Raises:
        StateError: the write failed (disk full, permission, read-only); the old file is untouched.
    """
    path = Path(path)
    directory = path.parent
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600 if STATE_DIR_NAME in path.parts else 0o644
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode)
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        fsync_dir(directory)
    except OSError as exc:
        raise StateError(describe_os_error(exc, path)) from exc
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (fsync(2) on the directory itself)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and /proc-like mounts) refuse fsync on directories
    finally:
        os.close(fd)


def describe_os_error(exc: OSError, path: str | os.PathLike[str]) -> str:
    """A message for a failed write that says what to do about it."""
    if exc.errno == errno.ENOSPC:
        free = free_bytes(Path(path).parent)
        left = f" ({free} bytes free)" if free is not None else ""
        return f"cannot write {path}: the disk is full{left}; free some space and run again"
    if exc.errno == errno.EROFS:
        return f"cannot write {path}: the file system is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot write {path}: permission denied"
    return f"cannot write {path}: {exc.strerror or exc}"


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system holding ``path``, or None when it cannot be read."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
