"""Ctrl-C and SIGTERM during a run: the first stops it gracefully, the second at once.

A graceful stop sets the run's ``stop`` event (requests in flight finish,
everything is committed); a second signal cancels the run's task, which
still commits what was received before it propagates.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable


class Signals:
    """First Ctrl-C/SIGTERM: stop gracefully. Second: cancel at once."""

    def __init__(self, warn: Callable[[str], None], forward: Callable[[int], None] | None = None) -> None:
        self.received: int | None = None
        self.stop = asyncio.Event()
        self._warn = warn
        self._forward = forward  # passes each signal on (to the other workers of ``run --workers``)

    def install(self, task: asyncio.Task[object]) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._handle, signum, task)

    def _handle(self, signum: int, task: asyncio.Task[object]) -> None:
        if self._forward is not None:
            self._forward(signum)
        if self.stop.is_set():
            task.cancel()
            return
        self.received = signum
        self._warn("stopping; finishing requests in flight (Ctrl-C again to stop at once)")
        self.stop.set()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as shells report a process a signal stopped."""
        return 128 + (self.received or signal.SIGINT)
