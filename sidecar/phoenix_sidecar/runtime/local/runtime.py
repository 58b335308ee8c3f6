"""The local runtime: `phoenix run` starts the job itself, in its own process group.

The job's stdout and stderr pass through to Phoenix's own, byte for byte and unbuffered, and to
the listeners (the run log) through the shared `OutputSink`; every chunk is a heartbeat. One selector waits on both pipes, a pidfd (readable the
moment the main process exits, so exit is seen without polling) and a wake-up pipe. After the main
process exits, whatever is left of the job (DataLoader workers, escaped grandchildren) is stopped,
so no orphan outlives it.

The job never runs unsupervised: its leader gets SIGTERM from the kernel when Phoenix dies
(`procgroup.die_with_parent`), and it inherits the descriptors in ``keep_fds`` (the workspace lock),
so the workspace stays locked for as long as any process of the job lives.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.redact import command_label
from phoenix_sidecar.runtime.base import RunEnd
from phoenix_sidecar.runtime.local import procgroup
from phoenix_sidecar.runtime.output import OutputListener, OutputSink, OutputTail
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat
from phoenix_watchdog.probes.groupkill import signal_job
from phoenix_watchdog.probes.stackdump import format_dumps, pyspy_dumps, request_faulthandler_dumps

log = logging.getLogger(__name__)
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # a larger pipe lets a fast writer run ahead between our reads
FAULTHANDLER_WAIT = 1.0
_F_SETPIPE_SZ = 1031


class LocalRuntime:
    """Runs a command as a supervised process group.

    Args:
        cmd: the command (argv).
        cwd: the workspace.
        heartbeat: fed on every chunk of output.
        listeners: receive every chunk of output besides the pass-through (the run log).
        env: the job's environment (default: Phoenix's). ``PYTHONUNBUFFERED=1`` is added unless
            set: a Python job writing to a pipe would otherwise hold its output back in a
            buffer, and its heartbeat with it.
        kill_grace: seconds between SIGTERM and SIGKILL.
        stack_dump: ``auto`` (py-spy, else faulthandler via SIGUSR1), ``py-spy``, ``signal``, ``off``.
        dump_timeout: seconds allowed for a stack dump.
        stdout_fd, stderr_fd: where the job's output passes through to (Phoenix's own by default).
        passthrough: pass the output through at all (False: only the listeners get it).
        adopt_orphans: become the subreaper, so orphaned grandchildren are found and reaped. Only
            for a process that owns nothing else (the `phoenix run` command).
        keep_fds: descriptors the job inherits (the workspace lock's: see `WorkspaceLock.fd`).
        on_start: called with the leader's pid after each start (records the job in the lock).
    """

    def __init__(self, cmd: Sequence[str], *, cwd: str, heartbeat: Heartbeat,
                 listeners: Sequence[OutputListener] = (), env: Mapping[str, str] | None = None,
                 kill_grace: float = 10.0, stack_dump: str = "auto", dump_timeout: float = 5.0,
                 stdout_fd: int = 1, stderr_fd: int = 2, passthrough: bool = True,
                 adopt_orphans: bool = False, keep_fds: Sequence[int] = (),
                 on_start: Callable[[int], None] | None = None) -> None:
        self.cmd = list(cmd)
        self.cwd = cwd
        self.heartbeat = heartbeat
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.kill_grace = kill_grace
        self.stack_dump = stack_dump
        self.keep_fds = tuple(keep_fds)
        self.on_start = on_start
        self.dump_timeout = dump_timeout
        # Who asks the job for a faulthandler dump (a seam: srun, which forwards SIGUSR1 to its ranks
        # from a signal thread and so does not show as catching it, is asked by the Slurm step layer).
        self.request_dumps: Callable[[Sequence[int]], list[int]] = request_faulthandler_dumps
        self._tail = OutputTail()
        through = [_PassThrough({"stdout": stdout_fd, "stderr": stderr_fd})] if passthrough else []
        self._sink = OutputSink(heartbeat, self._tail, [*through, *listeners])
        self._orphans_of = os.getpid() if adopt_orphans and procgroup.adopt_orphans() else None
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._streams: dict[int, tuple[str, IO[bytes]]] = {}  # fd -> (stream name, pipe file object)
        self._returncode: int | None = None
        self._started_at = 0.0
        self._ended_at = 0.0
        self._cleanup_deadline: float | None = None
        self._cleanup_stage = 0
        self._leftovers: list[int] = []

    @property
    def target(self) -> str:
        """``pid N`` while a run is on; before the first start, the command's program name and a digest
        (what metrics and alerts name: never the arguments, which may hold secrets)."""
        return f"pid {self._proc.pid}" if self._proc else command_label(self.cmd)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- Runtime protocol ---------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None and self._returncode is None:
            raise RuntimeError("the job is still running")
        self._reset_run()
        try:
            self._proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          start_new_session=True, bufsize=0, pass_fds=self.keep_fds,
                                          preexec_fn=procgroup.die_with_parent())
        except FileNotFoundError as exc:
            raise RuntimeUnavailable(f"cannot start the job: command not found: {self.cmd[0]!r} "
                                     f"(in {self.cwd})") from exc
        except OSError as exc:
            raise RuntimeUnavailable(f"cannot start the job {self.cmd[0]!r}: {exc.strerror}") from exc
        self._started_at = time.time()
        if self.on_start is not None:
            self.on_start(self._proc.pid)
        self.heartbeat.reset()
        self._pidfd = os.pidfd_open(self._proc.pid)
        self._sel.register(self._pidfd, selectors.EVENT_READ, "exit")
        for stream, pipe in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            assert pipe is not None
            fd = pipe.fileno()
            try:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # above the system's pipe-max-size: the default size still works
            os.set_blocking(fd, False)
            self._streams[fd] = (stream, pipe)
            self._sel.register(fd, selectors.EVENT_READ, stream)

    def wait(self, timeout: float | None) -> RunEnd | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._returncode is not None:
                end = self._after_exit()
                if end is not None:
                    return end
            now = time.monotonic()
            limits = [d - now for d in (deadline, self._cleanup_deadline) if d is not None]
            wait_for = max(0.0, min(limits)) if limits else None
            woken = self._dispatch(wait_for)
            if self._returncode is not None:
                continue
            if woken or (deadline is not None and time.monotonic() >= deadline):
                return None

    def dump_stack(self) -> str | None:
        if self.stack_dump == "off" or self._proc is None or self._returncode is not None:
            return None
        pids = self._members()
        if self.stack_dump in ("auto", "py-spy"):
            dumps = pyspy_dumps(pids, self.dump_timeout)
            if dumps:
                return format_dumps(dumps)
        if self.stack_dump in ("auto", "signal") and self.request_dumps(pids):
            # The job prints its own stacks to stderr; collect what arrives meanwhile.
            mark = self._tail.mark()
            self._pump_for(min(FAULTHANDLER_WAIT, self.dump_timeout))
            return self._tail.since(mark).decode("utf-8", errors="replace").strip() or None
        return None

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        assert self._proc is not None
        if self._returncode is None:
            procgroup.terminate(self._members, self._proc.pid, self.kill_grace, leader=self._proc.pid,
                                while_waiting=self._pump_for)
        end = None
        while end is None:
            end = self.wait(1.0)
        return RunEnd(end.exit, end.started_at, end.ended_at, end.tail, hang=hang, stopped_for=reason)

    def wakeup(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wake-up is already pending

    def close(self) -> None:
        self._close_streams()
        if self._pidfd is not None:
            self._sel.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def tail_text(self) -> str:
        return self._tail.text()

    # -- internals ----------------------------------------------------------------------------
    def _members(self) -> list[int]:
        assert self._proc is not None
        return procgroup.members(self._proc.pid, self._proc.pid, orphans_of=self._orphans_of)

    def _dispatch(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` for output, the exit or a wake-up, and handle what came. True if woken."""
        woken = False
        for key, _ in self._sel.select(timeout):
            if key.data == "wake":
                woken = self._drain_wake()
            elif key.data == "exit":
                self._reap()
            else:
                self._pump(key.fd, key.data)
        return woken

    def _pump(self, fd: int, stream: str) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_stream(fd)
            return
        self._sink(stream, data)

    def _pump_for(self, seconds: float) -> None:
        """Pass output through for a while without returning a run end (used while stopping)."""
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._dispatch(remaining)

    def _reap(self) -> None:
        assert self._proc is not None and self._pidfd is not None
        try:
            pid, status = os.waitpid(self._proc.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return  # not exited yet
        self._returncode = os.waitstatus_to_exitcode(status)
        self._proc.returncode = self._returncode
        self._ended_at = time.time()
        self._sel.unregister(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    def _after_exit(self) -> RunEnd | None:
        """The main process is gone: stop what is left of the job, drain the pipes, then report.

        The process table is read once at the exit; only when something was left is it read again
        (each read scans /proc, which costs milliseconds on a busy host, on the crash-to-decision path).
        """
        assert self._proc is not None
        now = time.monotonic()
        if self._cleanup_stage == 0:
            self._cleanup_stage = 1
            self._leftovers = self._members()
            if self._leftovers:
                log.info("job exited; stopping %d leftover process(es): %s", len(self._leftovers), self._leftovers)
                signal_job(self._leftovers, self._proc.pid, signal.SIGTERM)
                self._cleanup_deadline = now + self.kill_grace
            else:
                self._cleanup_deadline = now + 0.5  # output still in the pipes arrives at once
        elif self._leftovers:
            self._leftovers = self._members()
        if not self._streams and not self._leftovers:
            return self._finish()
        if self._cleanup_deadline is not None and now >= self._cleanup_deadline:
            if self._cleanup_stage == 1 and self._leftovers:
                signal_job(self._leftovers, self._proc.pid, signal.SIGKILL)
                self._cleanup_stage = 2
                self._cleanup_deadline = now + 2.0
                return None
            return self._finish()
        return None

    def _finish(self) -> RunEnd:
        assert self._proc is not None and self._returncode is not None
        self._close_streams()
        if self._orphans_of is not None:
            procgroup.reap_adopted_zombies(self._proc.pid)
        self._cleanup_deadline = None
        return RunEnd(ExitStatus.from_returncode(self._returncode), self._started_at, self._ended_at,
                      self.tail_text())

    def _close_stream(self, fd: int) -> None:
        _, pipe = self._streams.pop(fd)
        self._sel.unregister(fd)
        pipe.close()  # through the file object, which owns the descriptor

    def _close_streams(self) -> None:
        for fd in list(self._streams):
            self._close_stream(fd)

    def _drain_wake(self) -> bool:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def _reset_run(self) -> None:
        self._close_streams()
        self._tail.clear()
        self._returncode = None
        self._cleanup_deadline = None
        self._cleanup_stage = 0
        self._leftovers = []


class _PassThrough:
    """The output listener that writes the job's stdout and stderr to Phoenix's own, unbuffered."""

    def __init__(self, fds: dict[str, int]) -> None:
        self._fds = dict(fds)

    def __call__(self, stream: str, data: bytes) -> None:
        out = self._fds.get(stream)
        if out is None:
            return
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(out, view):]
                except BlockingIOError:  # our stdout is a non-blocking pipe: wait until it drains
                    select.select([], [out], [], 5.0)
        except OSError as exc:
            # Our own stdout is gone (closed terminal, dead pipe reader): keep supervising and logging.
            del self._fds[stream]
            log.warning("cannot pass the job's %s through any more (%s); it is still recorded", stream, exc)
