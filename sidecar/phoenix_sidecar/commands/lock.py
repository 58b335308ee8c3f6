"""`phoenix lock [--wait] -- CMD`: run a command (a repository update, say) under the workspace lock.

While the command runs, no supervisor can start on the workspace, and it cannot start while a
supervisor runs (or while a job that outlived its supervisor still runs), so updates and training
never overlap. The command's exit code is passed back. Like a job, the command inherits the lock and
gets SIGTERM if this process dies, so the lock is held until the command is gone.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from phoenix_sidecar.commands.common import add_config_options, load_config
from phoenix_sidecar.errors import RuntimeUnavailable, UsageError
from phoenix_sidecar.runtime.local import die_with_parent
from phoenix_sidecar.supervise.lock import WorkspaceLock
from phoenix_sidecar.paths import StatePaths
from phoenix_sidecar.redact import command_label


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lock", help="run a command under the workspace lock (e.g. a repository update)",
                              description=__doc__.split("\n\n")[0])
    add_config_options(p)
    p.add_argument("--wait", action="store_true", help="wait for the lock instead of failing at once")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="with --wait: give up after this long")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command to run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        raise UsageError("phoenix lock needs a command: phoenix lock [--wait] -- CMD ...")
    loaded = load_config(args)
    paths = StatePaths(loaded.workspace).ensure()
    lock = WorkspaceLock(paths.lock, stale_seconds=loaded.settings.lock_stale,
                         command=f"phoenix lock -- {command_label(cmd)}")
    lock.acquire(wait=args.wait, timeout=args.timeout)
    try:
        return _run_forwarding_signals(cmd, cwd=str(loaded.workspace), keep_fds=(lock.fd,) if lock.fd else ())
    finally:
        lock.release()


def _run_forwarding_signals(cmd: list[str], cwd: str, keep_fds: tuple[int, ...]) -> int:
    try:
        child = subprocess.Popen(cmd, cwd=cwd, pass_fds=keep_fds, preexec_fn=die_with_parent())
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot start {cmd[0]!r}: {exc.strerror}") from exc

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    sys.stdout.flush()
    return 128 - code if code < 0 else code
