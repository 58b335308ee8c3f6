"""A background daemon thread that can be asked to stop, and whose stop never waits forever.

Every long-lived thread of Phoenix runs in a `Worker`: the GPU sampler, the Xid watcher, the
Docker event monitor, the Docker log stream and the shared log file's follower. A wedged driver
or a daemon that stopped answering can keep a blocking call from returning, so stopping waits a
bounded time and reports a thread it had to leave behind instead of hanging Phoenix's shutdown.
A thread blocked on a stream is woken by ``on_stop`` (which closes the stream) before the wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    """Runs ``target`` in a daemon thread; ``stopping`` is the event ``target`` watches.

    Args:
        target: the thread's loop; it should return soon after ``stopping`` is set.
        name: the thread's name.
        on_stop: called by `stop` after ``stopping`` is set and before waiting, to unblock a
            ``target`` stuck in a blocking read (close its stream); its exceptions are ignored.
    """

    def __init__(self, target: Callable[[], None], name: str, *, on_stop: Callable[[], None] | None = None) -> None:
        self._target = target
        self._name = name
        self._on_stop = on_stop
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the thread was started and has not ended yet."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once; later calls do nothing while it runs)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._target, name=self._name, daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the thread to end by itself (without asking it to). True if it
        ended (or never started)."""
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end and wait up to ``timeout``. False if it is still running (stuck).

        Called from the thread itself (a callback that ends its own worker), it only asks: a
        thread cannot wait for itself to end.
        """
        self.stopping.set()
        if self._on_stop is not None:
            try:
                self._on_stop()
            except Exception:  # the stream was already gone: nothing left to unblock
                pass
        thread = self._thread
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True
