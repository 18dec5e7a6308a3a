"""Politeness held across workers (``backends/postgres/hosts.py``), against a real PostgreSQL.

Each ``ClusterSlots`` here has a pool of its own, as a worker process would:
they share nothing but the database. Times are taken where the requests
would be sent, in this process's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from crawlrunner.backends.postgres.connect import open_pool
from crawlrunner.backends.postgres.hosts import ClusterSlots, host_key
from crawlrunner.backends.postgres.hosts_sql import release_worker_turns
from crawlrunner.backends.postgres.layout import ensure_layout
from crawlrunner.settings import RateLimit

from .. import pg
from ..conftest import NO_ASYNCPG, postgres_unavailable

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

# Whichever test comes first starts the session's cluster (initdb and a start).
pytestmark = pytest.mark.timeout(120)

WORKERS = 4
UNPACED = RateLimit()  # no pacing: only the turns and the cooldowns hold a request back


@dataclass
class Run:
    url: str
    run_id: int
    workers: list[int]

    async def fetchval(self, sql: str, *args: object) -> Any:
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            return await conn.fetchval(sql, *args, timeout=10)
        finally:
            await conn.close(timeout=10)


@pytest.fixture
async def run(pg_url: str) -> Run:
    """The layout, one run and ``WORKERS`` workers of it."""
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        async with conn.transaction():
            await ensure_layout(conn, "test")
        run_id = await conn.fetchval(
            "INSERT INTO _crawlrunner_runs (spec_name, spec_file, spec_hash, status) VALUES ('s', 's.yaml', 'h', 'running') RETURNING id"
        )
        workers = [
            await conn.fetchval(
                "INSERT INTO _crawlrunner_workers (run_id, hostname, pid) VALUES ($1, 'm', $2) RETURNING id", run_id, n
            )
            for n in range(WORKERS)
        ]
    finally:
        await conn.close(timeout=10)
    return Run(pg_url, run_id, workers)


@asynccontextmanager
async def worker(run: Run, n: int, per_host: int = 8) -> AsyncIterator[ClusterSlots]:
    """Worker ``n``'s host slots, on a pool of its own."""
    async with open_pool(run.url, size=3) as pool:
        slots = ClusterSlots(pool, run.run_id, run.workers[n], per_host)
        await slots.start()
        try:
            yield slots
        finally:
            await slots.close()


@asynccontextmanager
async def workers(run: Run, count: int, per_host: int = 8) -> AsyncIterator[list[ClusterSlots]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(worker(run, n, per_host)) for n in range(count)]


async def turns_held(run: Run) -> int:
    return int(await run.fetchval("SELECT count(*) FROM _crawlrunner_host_turns WHERE run_id = $1", run.run_id))


def test_the_host_is_counted_as_host_slots_count_it() -> None:
    assert host_key("https://Shop.Test:8443/a/b?c") == "shop.test:8443"
    assert host_key("http://shop.test") == "shop.test"
    assert host_key("HTTP://Shop.test/x") == "shop.test"


async def test_sends_to_a_host_keep_its_interval_across_workers(run: Run) -> None:
    rate = RateLimit(per_second=20)
    sent: list[float] = []

    async def send(slots: ClusterSlots, url: str) -> None:
        for _ in range(8):
            async with slots.hold(url, rate):
                sent.append(time.monotonic())

    async with workers(run, WORKERS) as all_slots:
        # The same host, however its URL is spelt; two requests at a time from each worker.
        urls = ("http://paced.test/a", "http://PACED.test/b")
        await asyncio.gather(*(send(slots, url) for slots in all_slots for url in urls))

    sent.sort()
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert len(sent) == 2 * 8 * WORKERS
    assert min(gaps) >= rate.interval - 0.005, gaps
    assert (len(sent) - 1) / (sent[-1] - sent[0]) <= 1.05 * 20
    assert await turns_held(run) == 0  # each worker gave its turns back on closing


async def test_a_gap_a_worker_asks_for_spaces_its_sends_in_the_shared_pacer(run: Run) -> None:
    # The gap (robots.txt, rate-limit headers, adaptive pacing) keeps a send that far from the last one
    # reserved on the rate's pacer, whichever worker reserved it: an unpaced rate too.
    sent: list[tuple[float, int]] = []

    async def send(slots: ClusterSlots, n: int, gap: float) -> None:
        for _ in range(3):
            async with slots.hold("http://gapped.test/x", UNPACED, lambda: gap):
                sent.append((time.monotonic(), n))

    async with workers(run, 2) as (slow, other):
        await asyncio.gather(send(slow, 0, 0.2), send(other, 1, 0.05))

    sent.sort()
    before_slow = [b - a for (a, _), (b, n) in zip(sent, sent[1:], strict=False) if n == 0]
    before_other = [b - a for (a, _), (b, n) in zip(sent, sent[1:], strict=False) if n == 1]
    assert len(sent) == 6
    assert min(before_slow) >= 0.2 - 0.005, sent
    assert min(before_other) >= 0.05 - 0.005, sent
    keys = await run.fetchval(
        "SELECT count(*) FROM _crawlrunner_hosts WHERE run_id = $1 AND rate_key <> ''", run.run_id
    )
    assert keys == 1  # one pacer, whatever the gaps


async def test_a_gap_is_read_when_the_send_takes_its_turn_and_holds_the_very_next_send(run: Run) -> None:
    url, current = "http://budget.test/x", [0.0]
    sent: list[float] = []

    async def send(slots: ClusterSlots) -> None:
        async with slots.hold(url, UNPACED, lambda: current[0]):
            sent.append(time.monotonic())

    async with worker(run, 0, per_host=1) as slots:
        await send(slots)
        current[0] = 0.4  # an answer asked for a gap: the next send keeps it from the last
        await send(slots)
        current[0] = 30.0  # a budget nearly used up while a send waits for the host's one turn ...
        async with slots.hold(url, UNPACED):
            queued = asyncio.create_task(send(slots))
            await asyncio.sleep(0.2)
            current[0] = 0.0  # ... and fresh again before it has its turn: it goes at once, not 30 s on
        async with asyncio.timeout(5):
            await queued

    assert sent[1] - sent[0] >= 0.4 - 0.005
    assert sent[2] - sent[1] < 5


async def test_a_cooldown_pauses_the_host_in_every_worker(run: Run) -> None:
    url, other = "http://cool.test/page", "http://warm.test/page"
    async with workers(run, 3) as (first, second, paced):
        began = time.monotonic()
        first.cool_down(url, 1.0)

        async def send(slots: ClusterSlots, target: str, rate: RateLimit = UNPACED) -> float:
            async with slots.hold(target, rate):
                return time.monotonic() - began

        # The worker that saw the 429 stops at once; another host is not paused.
        own = asyncio.create_task(send(first, url))
        assert await send(first, other) < 0.1
        # A paced host's reservation starts after the cooldown as soon as it is written.
        while not await run.fetchval(
            "SELECT count(*) FROM _crawlrunner_hosts WHERE run_id = $1 AND rate_key = ''", run.run_id
        ):
            await asyncio.sleep(0.005)
        reserved = asyncio.create_task(send(paced, url, RateLimit(per_second=10)))
        # The others hear of it within a refresh (200 ms).
        await asyncio.sleep(0.3)
        heard = asyncio.create_task(send(second, url))
        # A worker that joins now knows of it before its first request.
        async with worker(run, 3) as joining:
            assert 0.95 <= await send(joining, url) <= 1.25
        assert 0.95 <= await heard <= 1.25
        assert 0.95 <= await own <= 1.1
        assert 0.95 <= await reserved <= 1.25


async def test_no_more_than_per_host_requests_at_once_across_workers(run: Run) -> None:
    inside = peak = 0
    done = [0, 0, 0]

    async def send(slots: ClusterSlots, n: int) -> None:
        nonlocal inside, peak
        for _ in range(6):
            async with slots.hold("http://busy.test/x", UNPACED):
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.01)
                inside -= 1
            done[n] += 1

    async with workers(run, 3, per_host=2) as all_slots:
        await asyncio.gather(*(send(slots, n) for n, slots in enumerate(all_slots) for _ in range(3)))
        assert await turns_held(run) <= 2  # idle ones, kept a moment
    assert peak == 2
    assert done == [18, 18, 18]
    assert await turns_held(run) == 0


async def test_a_busy_worker_does_not_keep_a_host_from_the_others(run: Run) -> None:
    sent = [0, 0, 0]

    async def send(slots: ClusterSlots, n: int, until: float) -> None:
        while time.monotonic() < until:
            async with slots.hold("http://shared.test/x", UNPACED):
                await asyncio.sleep(0.02)
            sent[n] += 1

    async with workers(run, 3, per_host=2) as all_slots:
        until = time.monotonic() + 3
        await asyncio.gather(*(send(slots, n, until) for n, slots in enumerate(all_slots) for _ in range(4)))
    # About 300 sends in all (2 at a time, 20 ms each): every worker had its share.
    assert sum(sent) >= 200, sent
    assert min(sent) >= sum(sent) / 10, sent


async def test_the_turns_of_a_dead_worker_come_back_when_it_is_reaped(run: Run) -> None:
    url = "http://dying.test/"
    async with open_pool(run.url, size=2) as pool:
        dead = ClusterSlots(pool, run.run_id, run.workers[0], 2)
        await dead.start()
        for _ in range(2):  # two requests in flight when the process dies
            await dead.hold(url, UNPACED).__aenter__()
        pool.terminate()  # as kill -9 would: no close()
        try:
            assert await turns_held(run) == 2
            async with worker(run, 1, per_host=2) as alive:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5), alive.hold(url, UNPACED):
                        pass
                conn = await asyncpg.connect(run.url, timeout=10)
                try:
                    assert await release_worker_turns(conn, run.workers[0]) == 2
                finally:
                    await conn.close(timeout=10)
                async with asyncio.timeout(1), alive.hold(url, UNPACED), alive.hold(url, UNPACED):
                    assert await turns_held(run) == 2
        finally:
            await dead.close()  # its tasks; the pool is gone, so it gives nothing back
    assert await turns_held(run) == 0


async def test_a_request_cancelled_while_waiting_for_a_turn_leaves_none_behind(run: Run) -> None:
    url = "http://one.test/"
    async with workers(run, 3, per_host=1) as (holder, waiter, third):
        turn = holder.hold(url, UNPACED)
        await turn.__aenter__()
        waiting = asyncio.create_task(waiter.hold(url, UNPACED).__aenter__())
        await asyncio.sleep(0.05)
        await turn.__aexit__(None, None, None)
        waiting.cancel()  # maybe just as it got the turn
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(2), third.hold(url, UNPACED):
            assert await turns_held(run) == 1


async def test_closing_under_cancellation_leaves_no_task_running(run: Run) -> None:
    async with open_pool(run.url, size=2) as pool:
        slots = ClusterSlots(pool, run.run_id, run.workers[0], 2)
        await slots.start()
        await slots.hold("http://x.test/", UNPACED).__aenter__()
        closing = asyncio.create_task(slots.close())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("crawlrunner-hosts-")]
        with pytest.raises(RuntimeError):
            await slots.hold("http://x.test/", UNPACED).__aenter__()


async def test_a_server_restart_does_not_stop_the_host_slots(run: Run, pg_cluster: pg.Server) -> None:
    if not isinstance(pg_cluster, pg.Cluster):
        pytest.skip("needs a server of our own, to restart")
    rate = RateLimit(per_second=50)
    async with workers(run, 2, per_host=2) as (first, second):
        async with first.hold("http://before.test/", rate):
            pass
        await run.fetchval("CHECKPOINT")  # the layout survives an immediate stop
        await asyncio.to_thread(pg_cluster.restart)
        async with asyncio.timeout(10):
            async with first.hold("http://after.test/", rate), second.hold("http://after.test/", rate):
                pass
            # The cooldowns are read again: the refresher came back too.
            first.cool_down("http://after.test/", 2.0)
            await asyncio.sleep(1.5)  # a refresher that failed waits a second before it reads again
            began = time.monotonic()
            async with second.hold("http://after.test/", UNPACED):
                assert time.monotonic() - began >= 0.3
