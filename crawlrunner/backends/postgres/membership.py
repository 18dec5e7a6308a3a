"""A worker's membership of a run: its heartbeat, the reaping of dead workers, and ``crawlrunner stop``.

Every worker beats every ``timeout / 6`` seconds (2 at most, so that a stop
is seen quickly). On each beat it also looks
for workers whose heartbeat is older than ``timeout`` (killed, their machine
gone, or paused), declares them lost and puts their leased requests back to
pending, so that the others take them over; a lost worker that wakes up beats
again and carries on, but the requests it held have new leases: its late
outcomes fail the fence and are dropped. The beat also brings the run's
``stop_requested`` flag, set by ``crawlrunner stop``: then the worker's
frontier closes and it finishes like a Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ...errors import UsageError
from . import statements as sql
from .connect import connection_lost

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
BEAT_AT_MOST_EVERY = 2.0
TIMEOUT_VARIABLE = "CRAWLRUNNER_WORKER_TIMEOUT"


def worker_timeout() -> float:
    """Seconds without a heartbeat after which a worker is presumed dead (``CRAWLRUNNER_WORKER_TIMEOUT``)."""
    text = os.environ.get(TIMEOUT_VARIABLE)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.5 <= value <= 86_400:
        raise UsageError(f"{TIMEOUT_VARIABLE}={text!r}: give the seconds, between 0.5 and 86400")
    return value


class Membership:
    """The heartbeat task of one worker; ``async with`` runs it for the block."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        run_id: int,
        worker_id: int,
        *,
        timeout: float,
        on_stop: Callable[[], Awaitable[None]],
        on_lost: Callable[[asyncpg.Connection, int], Awaitable[None]] | None = None,
    ) -> None:
        self._pool, self._run_id, self._worker_id = pool, run_id, worker_id
        self._timeout = timeout
        self._on_stop = on_stop
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None
        self.stop_requested = False

    async def __aenter__(self) -> Membership:
        self._task = asyncio.create_task(self._beat(), name="crawlrunner-heartbeat")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _beat(self) -> None:
        interval = min(self._timeout / 6, BEAT_AT_MOST_EVERY)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except Exception as exc:
                # A database restarting: the beat resumes when it is back; the
                # frontier's and the sink's own retries say when it is gone for good.
                if not connection_lost(exc):
                    log.warning("heartbeat failed: %s", exc)

    async def beat(self) -> None:
        """One heartbeat: say this worker lives, reap the dead, and see whether the run is to stop."""
        async with self._pool.acquire() as conn:
            stop = await conn.fetchval(sql.HEARTBEAT, self._worker_id, self._run_id)
            async with conn.transaction():
                lost = [r[0] for r in await conn.fetch(sql.LOST_WORKERS, self._run_id, self._timeout)]
                for worker in lost:
                    log.warning(
                        "worker %d stopped beating for %.0f s: its requests go back to the run", worker, self._timeout
                    )
                    if self._on_lost is not None:
                        await self._on_lost(conn, worker)
                await conn.execute(sql.REAP, self._run_id)
        if stop and not self.stop_requested:
            self.stop_requested = True
            log.warning("crawlrunner stop: finishing the requests in flight, then leaving the run")
            await self._on_stop()
