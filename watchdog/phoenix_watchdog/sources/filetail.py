"""Follow a log file the job writes on a shared volume, across rotation and truncation.

The job (or its logging library, or logrotate) may at any time
  - rename the file away and start a new one under the same name (rename + create),
  - replace it with another file (``mv -f new log``),
  - truncate it in place (logrotate ``copytruncate``, a job that reopens it with mode ``w``).

`FileTailer` reads what was appended since the last read and hands the bytes on in order, never
twice and without gaps of its own: a renamed file keeps being read for ``rotate_wait`` seconds
(a writer may still append to it before it reopens the name, as Fluent Bit's ``rotate_wait``);
a file that got shorter than the read offset, or whose first bytes changed, is read again from 0
(a truncation that grew back past the offset is caught by the changed head, where path-and-size
tailers such as Promtail skip it). Lines logrotate writes between its copy and its truncate are
lost by logrotate itself; the tailer adds nothing to that window.

When the name moved on by more than one rotation between two polls (a flood of output, a starved
poller), the files in between are not lost either: the rotated siblings (``train.log.1``,
``train.log-20260101``) that did not exist when the last file was opened are read in the order
they were written, before the new file. The same holds before the first open: a tailer asked to
read from the start remembers, when it is made, which file holds the name and which siblings
exist; if the name moved on before its first look (the job started and rotated while the poller
was starved), the remembered file (found by inode under its new name) and every generation born
since are read first, in order.

It polls: one ``fstat`` and one ``stat`` per pass, no inotify, so it works on any file system a
container can share (bind mounts, named volumes, NFS). Polling a quiet file four times a second
costs a few microseconds of CPU.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MARK_BYTES = 64  # enough of a file's start, and of what precedes the offset, to tell a rewrite from appends
READ_CHUNK = 1 << 20
MAX_READ_PER_POLL = 16 << 20  # a flood is read in slices, so a drain never blocks for long
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass
class _Open:
    """One open file: its identity, where we are in it, and how it began."""

    fd: int
    ident: tuple[int, int]  # (st_dev, st_ino)
    offset: int
    head: bytes  # the file's first bytes, as last seen
    mark: bytes  # the bytes just before ``offset``, as read
    seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) at the last read: unchanged means nothing new
    retire_at: float | None = None  # set once the name points elsewhere: read until then, then close


class FileTailer:
    """Delivers everything appended to ``path`` to ``on_data``, following rotation and truncation.

    Args:
        path: the log file (it need not exist yet; it is picked up when it appears).
        on_data: called with each new block of bytes, in file order, from whichever thread polls.
        from_end: start at the current end of an existing file (only the first file opened);
            files that appear later are always read from their start. Without it, the file under
            the name when the tailer is made, and every generation rotated since, are read whole,
            even when the name moved on before the first poll.
        rotate_wait: seconds a renamed-away file keeps being read for late appends.
        clock: monotonic seconds (a test seam).
    """

    def __init__(self, path: str | os.PathLike[str], on_data: Callable[[bytes], None], *,
                 from_end: bool = True, rotate_wait: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = os.fspath(path)
        self._on_data = on_data
        self._from_end = from_end
        self._rotate_wait = rotate_wait
        self._clock = clock
        self._current: _Open | None = None
        self._retired: list[_Open] = []
        # Siblings that existed when the current file was opened; before the first open, those that
        # existed when the tailer was made (anything born later is a generation to read).
        self._older: set[tuple[int, int]] = {ident for ident, _ in self._siblings()}
        # The file under the name when the tailer was made: read first if it is renamed away before
        # the first open. Only when reading from the start (from the end, its past is not wanted).
        self._first: tuple[int, int] | None = None if from_end else _ident(self.path)
        self._lock = threading.Lock()
        self._closed = False

    # -- reading -------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read everything new once; returns the number of bytes delivered. Thread-safe."""
        with self._lock:
            if self._closed:
                return 0
            delivered = 0
            for old in list(self._retired):
                delivered += self._read(old)
                if old.retire_at is not None and self._clock() >= old.retire_at:
                    delivered += self._read(old)  # last look before letting go
                    self._close(old)
                    self._retired.remove(old)
            if self._current is not None:
                delivered += self._read(self._current)
            delivered += self._check_name()
            return delivered

    def follow(self, stop: threading.Event, interval: float = 0.25) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set (run it in a thread)."""
        while not stop.is_set():
            try:
                busy = self.poll() > 0
            except OSError as exc:  # an unreadable volume must not kill the watcher; say so, retry
                log.warning("cannot read %s: %s", self.path, exc)
                busy = False
            # After output, look again soon: the rest of a burst usually follows at once.
            stop.wait(interval / 5 if busy else interval)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for f in [*self._retired, *([self._current] if self._current else [])]:
                self._close(f)
            self._retired.clear()
            self._current = None

    @property
    def offset(self) -> int | None:
        """The read position in the current file (None while no file is open)."""
        return self._current.offset if self._current else None

    # -- internals -----------------------------------------------------------------------------
    def _check_name(self) -> int:
        """Notice a new file under the name (rotation, replacement) or the first appearance."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # Not there yet (it will be read from its start when it appears), or renamed away and
            # not recreated yet (the old file is still being read).
            self._from_end = False
            return 0
        ident = (st.st_dev, st.st_ino)
        current = self._current
        if current is not None and current.ident == ident:
            return 0
        at_end = self._from_end
        self._from_end = False  # only a file there at the very first look starts at its end
        if at_end:
            # Whatever lies beside it now is its past, like the bytes before its end. Looked at
            # before the open: a generation rotated right after the open is then still news.
            self._older = {ident for ident, _ in self._siblings()}
        fresh = self._open(at_end=at_end)
        if fresh is None:
            return 0
        if current is not None:
            log.info("%s was rotated or replaced; following the new file", self.path)
            current.retire_at = self._clock() + self._rotate_wait
            self._retired.append(current)
        self._current = fresh
        if at_end:
            return self._read(fresh)
        # The name may have moved on more than once since the last look (or, before the first
        # open, since the tailer was made): read the generations in between and the new file in
        # the order they were written. The new file sorts in too, because the writer may have
        # rotated it away already, after the open, behind a newer generation.
        seen, missed = self._missed_rotations(self._older | {fresh.ident} | {f.ident for f in self._retired})
        self._older = seen - {fresh.ident}  # each of these is read below, or was already, or is old
        # The remembered first file goes first only once renamed away; still under the name, it is
        # the live file, and a sibling born since is a copy of its past (copytruncate).
        first, self._first = (self._first if self._first != fresh.ident else None), None
        delivered = 0
        for f in sorted([*missed, fresh], key=lambda f: _write_order(f, first)):
            if f is not fresh:
                log.info("%s rotated between two looks; reading the file in between", self.path)
                f.retire_at = self._clock() + self._rotate_wait
                self._retired.append(f)
            delivered += self._read(f)
        return delivered

    def _siblings(self) -> list[tuple[tuple[int, int], os.DirEntry[str]]]:
        """Rotated copies of the file beside it (``name.1``, ``name-20260101``), uncompressed."""
        directory, base = os.path.split(self.path)
        out = []
        try:
            with os.scandir(directory or ".") as entries:
                for entry in entries:
                    name = entry.name
                    if (name.startswith(base) and len(name) > len(base) and name[len(base)] in ".-_"
                            and not name.endswith(_COMPRESSED) and entry.is_file(follow_symlinks=False)):
                        st = entry.stat(follow_symlinks=False)
                        out.append(((st.st_dev, st.st_ino), entry))
        except OSError:
            return []
        return out

    def _missed_rotations(self, skip: set[tuple[int, int]]) -> tuple[set[tuple[int, int]], list[_Open]]:
        """The siblings seen now, and those of them not in ``skip`` opened for reading from 0."""
        seen, found = set(), []
        for ident, entry in self._siblings():
            seen.add(ident)
            if ident in skip:
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != ident:  # renamed again meanwhile; it will be seen under its new name
                os.close(fd)
                continue
            found.append(_Open(fd, ident, 0, os.pread(fd, MARK_BYTES, 0), b""))
        return seen, found

    def _open(self, *, at_end: bool) -> _Open | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        st = os.fstat(fd)
        offset = st.st_size if at_end else 0
        return _Open(fd, (st.st_dev, st.st_ino), offset, os.pread(fd, MARK_BYTES, 0), _mark(fd, offset))

    def _read(self, f: _Open) -> int:
        st = os.fstat(f.fd)
        if (st.st_size, st.st_mtime_ns) == f.seen:
            return 0
        if st.st_size < f.offset or not _unchanged(f):
            log.info("%s was truncated or rewritten; reading it again from the start", self.path)
            f.offset = 0
            f.mark = b""
        delivered = 0
        while delivered < MAX_READ_PER_POLL:
            data = os.pread(f.fd, READ_CHUNK, f.offset)
            if not data:
                break
            f.offset += len(data)
            delivered += len(data)
            self._on_data(data)
        if delivered:
            f.mark = _mark(f.fd, f.offset)
        if len(f.head) < MARK_BYTES:
            f.head = os.pread(f.fd, MARK_BYTES, 0)
        f.seen = (st.st_size, st.st_mtime_ns) if delivered < MAX_READ_PER_POLL else (-1, -1)
        return delivered

    @staticmethod
    def _close(f: _Open) -> None:
        try:
            os.close(f.fd)
        except OSError:
            pass


def _write_order(f: _Open, first: tuple[int, int] | None) -> tuple[bool, int, int, int]:
    """Sort key for generations of one log: ``first`` (the file under the name when the tailer was
    made) is the oldest by definition; among the others the last write orders them, then the
    rename (ctime), then the inode number, so that files written within one tick of a coarse
    file-system clock keep their order too."""
    st = os.fstat(f.fd)
    return (f.ident != first, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _mark(fd: int, offset: int) -> bytes:
    start = max(0, offset - MARK_BYTES)
    return os.pread(fd, offset - start, start)


def _unchanged(f: _Open) -> bool:
    """Whether the file still holds what was read: a rewrite that grew past the offset does not."""
    if f.head and os.pread(f.fd, len(f.head), 0) != f.head:
        return False
    return not f.mark or _mark(f.fd, f.offset) == f.mark


def read_last(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a file, starting at a line boundary where one is in reach; b"" if missing."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read(max_bytes)
    except FileNotFoundError:
        return b""
    if start > 0:
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1:]
    return data
