"""A background daemon thread that can be asked to stop, and whose stop never waits forever.

The GPU sampler and the Xid watcher both run blocking NVML calls in a thread. A wedged driver can
keep such a call from returning, so stopping waits a bounded time and reports a thread it had to
leave behind instead of hanging Phoenix's shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    """Runs ``target`` in a daemon thread; ``stopping`` is the event ``target`` watches.

    Args:
        target: the thread's loop; it should return soon after ``stopping`` is set.
        name: the thread's name.
    """

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self._name = name
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; later calls do nothing while it runs)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._target, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end and wait up to ``timeout``. False if it is still running (stuck)."""
        self.stopping.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True
