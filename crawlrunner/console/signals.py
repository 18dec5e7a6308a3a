"""Ctrl-C and SIGTERM during a run: the first stops it gracefully, the second at once.

A graceful stop sets the run's ``stop`` event (requests in flight finish,
everything is committed); a second signal cancels the run's task, which
still commits what was received before it propagates.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api import RunResult
    from ..spec.model import Spec

# How a person would name what they did: the messages after a stop say which it was.
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


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
        self._warn(
            f"stopping; finishing requests in flight ({SIGNAL_NAMES[signal.Signals(signum)]} again to stop at once)"
        )
        self.stop.set()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as shells report a process a signal stopped."""
        return 128 + (self.received or signal.SIGINT)


def run_with_signals(
    spec: Spec,
    output: str | Path | None,
    only: tuple[str, ...] | None,
    *,
    warn: Callable[[str], None],
    settle: bool,
    forward: Callable[[int], None] | None = None,
    **options: Any,
) -> tuple[RunResult | None, Signals]:
    """Run ``spec`` with Ctrl-C and SIGTERM handled; the result is None when a second signal stopped it at once.

    ``settle``: the command is the whole process, so it may tune the process for a long run.
    """
    from .. import runtime
    from ..api import run_async
    from ..engine import crawl  # noqa: F401 - loaded before the process settles

    if settle:
        runtime.settle_process()
    signals = Signals(warn=warn, forward=forward)

    async def main() -> RunResult:
        task = asyncio.current_task()
        assert task is not None
        signals.install(task)
        return await run_async(spec, output=output, only=only, stop=signals.stop, **options)

    try:
        return runtime.run(main()), signals
    except asyncio.CancelledError:
        # A second signal stopped the run at once; everything received was committed.
        return None, signals
