"""The part of a sink every backend shares: a bounded queue in, batches committed in order.

A backend's sink says only how one batch is committed (``commit``); the
queue, the backpressure and what a cancellation commits are the same for all.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Any

from ..results import Outcome
from ..spec.model import Spec
from .base import Sink

BATCH_SIZE = 500
# A local file's commits come at most this often (seconds): at thousands of
# outcomes a second a commit of one or two costs as much as one of twenty
# (every page a transaction touches is written again), so the writer lets the
# queue gather for the rest of the interval, or until a whole batch is there.
# A slow crawl commits each outcome at once.
COMMIT_INTERVAL = 0.005
# Outcomes handed over but not yet committed are what a kill -9 makes a resume
# fetch again: the queue holds about one per worker, never thousands.
MIN_QUEUE_SIZE = 64


def queue_size(spec: Spec) -> int:
    """Outcomes the sink holds while a commit runs, and a batch at most: about one per worker, within [64, BATCH_SIZE]."""
    return min(max(spec.http.limits.workers, MIN_QUEUE_SIZE), BATCH_SIZE)


class BatchingSink(Sink):
    """A sink that commits whatever arrived while its previous commit ran (see ``Sink``).

    ``write`` waits when the queue is full, which is the engine's backpressure:
    fetching can never run ahead of the database by more than ``queue_size``
    documents (about one per worker). ``run`` never waits to fill a batch
    (only, at high rates, for the rest of ``commit_interval``), so an outcome
    is committed within two commits of being written, and a ``kill -9`` makes
    a resume fetch again at most the requests in flight, the queue and one
    batch. Cancelling ``run`` still commits what was queued.
    """

    _STOP: Any = object()
    # Seconds from the end of one commit to the start of the next, at least (0: commit whatever is there at once).
    commit_interval: float = 0.0

    def __init__(self, spec: Spec) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size(spec))
        # Set while ``run`` gathers a batch: resolved early once the batch is whole.
        self._gathering: asyncio.Future[None] | None = None

    @abstractmethod
    async def commit(self, batch: list[Outcome]) -> None:
        """Commit ``batch`` in one transaction (nothing of it, if that fails)."""

    async def write(self, outcome: Outcome) -> None:
        await self.queue.put(outcome)
        if self._gathering is not None and self._batch_whole():
            _resolve(self._gathering)

    async def flush(self) -> None:
        await self.queue.join()

    async def close(self) -> None:
        """Ask ``run`` to finish once everything queued so far is written."""
        await self.queue.put(self._STOP)

    async def run(self) -> None:
        current: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        last = -self.commit_interval
        batch: list[Any] = []  # taken from the queue, not yet handed to a commit
        try:
            while True:
                batch = [await self.queue.get()]
                if (wait := last + self.commit_interval - loop.time()) > 0 and batch[0] is not self._STOP:
                    await self._gather(wait)
                # No more than the queue holds: one taken before the wait is not one more for a kill to lose.
                while len(batch) < self.queue.maxsize and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                stop = batch[-1] is self._STOP
                # Shielded, so a cancel cannot roll back a batch half-way.
                current = asyncio.ensure_future(self.commit([o for o in batch if o is not self._STOP]))
                taken, batch = batch, []
                try:
                    await asyncio.shield(current)
                finally:
                    self._taken(len(taken))
                    last = loop.time()
                if stop:
                    return
        except asyncio.CancelledError:
            # Interrupted: finish the batch in hand, commit what already
            # arrived (and what was taken while the queue gathered), then
            # let the cancellation go on.
            if current is not None:
                await current
            pending = batch
            while not self.queue.empty():
                pending.append(self.queue.get_nowait())
            try:
                await self.commit([o for o in pending if o is not self._STOP])
            finally:
                self._taken(len(pending))
            raise

    def _batch_whole(self) -> bool:
        """The queue holds all a batch may take besides the one outcome ``run`` took first."""
        return self.queue.qsize() >= self.queue.maxsize - 1

    async def _gather(self, seconds: float) -> None:
        """Let the queue gather for ``seconds``, or until a whole batch is there.

        Never longer: with the queue full, every ``write`` waits, the engine
        with it, and the event loop would sit idle for the rest of the interval.
        """
        if self._batch_whole():
            return
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(seconds, _resolve, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None

    def _taken(self, count: int) -> None:
        """``count`` items are out of the queue for good (committed, or failed): ``flush`` stops waiting for them."""
        for _ in range(count):
            self.queue.task_done()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
