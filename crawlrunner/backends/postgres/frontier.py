"""The shared frontier: one run's requests in PostgreSQL, claimed under leases by every worker.

Each worker process claims small batches (``FOR UPDATE SKIP LOCKED``: workers
never wait for each other), each request with a fresh lease token. Start
requests are loaded from the plan in batches, by one worker per target at a
time, when nothing is pending. Derived requests (next pages, links, children)
are not queued here: the sink saves them in the transaction that marks their
source done, de-duplicating followed links in the run-wide ``seen`` table,
and from then on any worker may claim them.

The crawl is over for everyone when the plan is loaded to its end and no
request is pending or leased anywhere (a leased one may still lead to more).
Until then a worker with nothing to claim polls, with backoff, and is woken
at once when its own sink commits (which may have saved new requests).

``max_requests`` and ``max_records`` count what this process does.

``queued()`` (for progress) is a count read from the database at most every
``QUEUED_EVERY`` seconds, in the background, never on the reporter's clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING

from ...errors import CrawlRunnerError
from ...follow import FollowScope, is_link, normalize_url, start_hosts
from ...incremental import Cursors
from ...plan import RequestPlan, plan_target
from ...results import Outcome
from ...spec.model import Spec, Target
from ..base import Frontier, RunLimits
from ..local import numbered
from ..rows import request_row, restore_plan
from . import statements as sql
from .connect import retrying

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

CLAIM_BATCH = 16  # requests leased at once, at most: a worker claims about what it can send now
LOAD_BATCH = 1000  # start requests loaded from the plan at once
POLL_MIN, POLL_MAX = 0.01, 0.25  # seconds between looks when nothing is ready
QUEUED_EVERY = 1.0  # seconds between counts of the waiting requests, at least (for progress)
# Per target, the requests waiting in the whole run: pending, not yet leased by any worker.
COUNT_PENDING = (
    "SELECT target, count(*) FROM _crawlrunner_requests WHERE run_id = $1 AND state = 'pending' GROUP BY target"
)


class Leases:
    """The lease token of every request this worker holds, by the plan it handed out.

    Keyed by the plan object, not by request id: a request taken back from
    this worker (presumed dead while only paused) and claimed by it again is
    two plans with two tokens, and only the newer may commit (see the sink's
    fence). Shared by the frontier, which adds, and the sink, which drops.
    """

    def __init__(self) -> None:
        self._held: dict[int, tuple[RequestPlan, int]] = {}

    def hold(self, plan: RequestPlan, token: int) -> None:
        self._held[id(plan)] = (plan, token)  # the plan is kept, so its id() is not reused meanwhile

    def token(self, plan: RequestPlan) -> int:
        """``plan``'s lease token; -1 (matching no row) if this worker holds none for it."""
        held = self._held.get(id(plan))
        return held[1] if held is not None and held[0] is plan else -1

    def drop(self, plan: RequestPlan) -> None:
        held = self._held.get(id(plan))
        if held is not None and held[0] is plan:
            del self._held[id(plan)]

    def request_ids(self) -> list[int]:
        return [plan.request_id for plan, _ in self._held.values() if plan.request_id is not None]


class PostgresFrontier(Frontier):
    """One worker process's view of a run's shared frontier."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        name: str,
        run_id: int,
        worker_id: int,
        spec: Spec,
        targets: list[Target],
        limits: RunLimits,
        leases: Leases,
        cursors: Cursors | None = None,
    ) -> None:
        self._pool, self._name, self._run_id, self._worker_id = pool, name, run_id, worker_id
        self._spec = spec
        self._cursors = cursors  # where incremental targets start: the same for every worker of the run
        self._targets = {t.name: t for t in targets}
        self._names = list(self._targets)
        # Hosts only: the seen set is the database's (see ``FollowScope.in_scope``).
        self._scopes = {
            t.name: FollowScope(t.follow, start_hosts(t) if not t.follow.domains else frozenset())
            for t in targets
            if t.follow is not None
        }
        self._limits = limits
        self.leases = leases  # for the sink's fence
        self._buffer: deque[RequestPlan] = deque()
        self._plans: dict[str, tuple[int, Iterator[RequestPlan] | None]] = {}  # target → (next seq, its iterator)
        self._last_loaded = ""
        self._in_flight = 0
        self._claimed = 0
        self._records = 0
        self._limited = False
        self._closed = False
        self._over = False
        self._refill = asyncio.Lock()
        self._wake = asyncio.Event()
        self._poll = POLL_MIN
        self._pending: dict[str, int] = {}  # the last count of pending requests per target
        # Leased by this worker since that count (and since the count under way) began: taken off it,
        # so a stale count does not show requests done since as still to do.
        self._leased_since: Counter[str] = Counter()
        self._leased_during: Counter[str] = Counter()
        self._counted_at = -QUEUED_EVERY  # monotonic time the count was asked for (never: long ago)
        self._count_every = QUEUED_EVERY
        self._counting: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def limited(self) -> bool:
        return self._limited

    async def claim(self) -> RequestPlan | None:
        while True:
            if self._closed or self._over:
                await self._release_buffer()
                return None
            if self._buffer:
                return self._hand_out(self._buffer.popleft())
            async with self._refill:
                if self._buffer or self._closed or self._over:
                    continue
                if await self._fill() or await self._load_plan():
                    self._poll = POLL_MIN
                    continue
                if self._in_flight == 0 and await self._run_over():
                    self._over = True
                    continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                self._poll = min(self._poll * 2, POLL_MAX)

    def _hand_out(self, plan: RequestPlan) -> RequestPlan:
        self._in_flight += 1
        self._claimed += 1
        if self._limits.max_requests is not None and self._claimed >= self._limits.max_requests:
            self._stop_early()
        return plan

    def queued(self) -> Mapping[str, int]:
        """Requests waiting per target: the whole run's pending ones, and this worker's leased but not yet sent.

        With one worker that is everything found and not yet fetched. In a shared
        run the progress view adds it to *this worker's* done and in-flight
        requests, so a target's "found so far" is what this worker did plus what
        is left for every worker (requests in flight at the others, and what
        they did, are not in it); the whole run's counts are the header's.
        The database's count is at most ``QUEUED_EVERY`` seconds old (longer
        when counting is slow: a big queue is not counted all the time).
        """
        self._count_pending_soon()
        waiting = Counter(self._pending)
        waiting.subtract(self._leased_since)
        waiting.update(plan.target.name for plan in self._buffer)
        return +waiting  # positive counts only

    def _count_pending_soon(self) -> None:
        """Start counting pending requests in the background, unless counted lately (or counting now)."""
        if self._counting is not None or self._closed:
            return
        now = time.monotonic()
        if now - self._counted_at < self._count_every:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # asked outside the run's loop: the last count is all there is
            return
        self._counted_at = now
        self._counting = loop.create_task(self._count_pending(), name="crawlrunner-queued")

    async def _count_pending(self) -> None:
        started = time.monotonic()
        self._leased_during = Counter()

        async def count() -> list[asyncpg.Record]:
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(COUNT_PENDING, self._run_id))

        try:
            rows = await retrying(self._name, "count the waiting requests", count)
        except CrawlRunnerError as exc:  # progress only: the frontier and the sink say it if the database is gone
            log.debug("waiting requests not counted: %s", exc)
        else:
            self._pending = {str(target): int(n) for target, n in rows if target in self._targets}
            self._leased_since, self._leased_during = self._leased_during, Counter()
            # Counting ten times as long as it takes at most: a queue of millions is not counted every second.
            self._count_every = max(QUEUED_EVERY, 10 * (time.monotonic() - started))
        finally:
            self._counting = None

    def committed(self) -> None:
        """The sink committed: requests it saved may be claimable now."""
        self._wake.set()

    async def _fill(self) -> bool:
        """Lease a batch of pending requests into the buffer; False if none was pending."""
        # A batch for the whole pool, not just the claimers waiting now: one
        # round trip per request would keep every worker waiting on the
        # database (the leases held meanwhile are kept alive by the heartbeat).
        wanted = min(CLAIM_BATCH, self._spec.http.limits.workers)

        tries = 0

        async def claim_once() -> list[asyncpg.Record]:
            nonlocal tries
            tries += 1
            async with self._pool.acquire() as conn:
                if tries > 1:  # the last try may have committed, its reply lost with the connection
                    await conn.execute(sql.RELEASE_UNKNOWN, self._run_id, self._worker_id, self.leases.request_ids())
                return list(await conn.fetch(sql.CLAIM, self._run_id, self._worker_id, self._names, wanted))

        rows = await retrying(self._name, "claim requests", claim_once)
        for row in rows:
            token, reason, plan_row = row[0], row[1], tuple(row[2:])
            plan = restore_plan(self._spec, plan_row)
            if plan is None:  # cannot happen: workers of a run share its targets
                continue
            if reason is not None and plan.invalid is None:
                plan = replace(plan, invalid=reason)  # saved unsendable (a bad template): fails as such
            assert plan.request_id is not None
            self.leases.hold(plan, token)
            self._buffer.append(plan)
            self._leased_since[plan.target.name] += 1
            self._leased_during[plan.target.name] += 1
        return bool(rows)

    async def _load_plan(self) -> bool:
        """Load the next batch of one target's start requests; False if no target had any to load."""

        async def load_once() -> bool:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(sql.TAKE_PLAN_CURSOR, self._run_id, self._names, self._last_loaded)
                if row is None:
                    return False
                target, start = self._targets[row[0]], int(row[1])
                plans = self._next_plans(target, start)
                await self._save_starts(conn, target, plans)
                await conn.execute(
                    sql.MOVE_PLAN_CURSOR, self._run_id, target.name, start + len(plans), len(plans) < LOAD_BATCH
                )
                self._last_loaded = target.name
                return True

        return await retrying(self._name, "load start requests", load_once)

    def _next_plans(self, target: Target, start: int) -> list[RequestPlan]:
        """Start requests ``start`` to ``start + LOAD_BATCH`` of ``target``, numbered.

        The iterator is kept between batches: when other workers loaded the
        batches in between, it is walked on to ``start`` (made again only if
        ``start`` is behind it, after a load that did not commit), so each
        worker renders a target's plan about once, however many share it.
        """
        position, plans = self._plans.get(target.name, (0, None))
        if plans is None or start < position:
            plans, position = numbered(plan_target(target, self._cursors)), 0
        if start > position:
            next(islice(plans, start - position - 1, None), None)  # skip what the others loaded
        batch = list(islice(plans, LOAD_BATCH))
        self._plans[target.name] = (start + len(batch), plans)
        return batch

    async def _save_starts(self, conn: asyncpg.Connection, target: Target, plans: list[RequestPlan]) -> None:
        if target.follow is not None or target.sitemap is not None:
            # Seen, for link following; for sitemaps, so that a sitemap robots.txt
            # or an index lists again is not read twice.
            plans = await self._first_seen_starts(conn, target, plans)
        redactor = self._spec.redactor
        rows = [request_row(plan, self._run_id, redactor, "pending") for plan in plans]
        await sql.insert_requests(conn, rows, (plan.invalid for plan in plans), sql.START)

    async def _first_seen_starts(
        self, conn: asyncpg.Connection, target: Target, plans: list[RequestPlan]
    ) -> list[RequestPlan]:
        """A link-following (or sitemap) target's start URLs not requested before in the run (by link or as a start)."""
        normal = {id(plan): normalize_url(plan.url) for plan in plans}
        urls = sorted({u for u in normal.values() if u is not None})
        await conn.execute(sql.LOCK_FOLLOWED, self._run_id, target.name)
        fresh = {r[0] for r in await conn.fetch(sql.FIRST_SEEN, self._run_id, target.name, urls)} if urls else set()
        pages = {normal[id(plan)] for plan in plans if plan.role is None} & fresh  # a sitemap is no page
        if target.follow is not None and pages:  # follow.max_pages counts start URLs
            await conn.execute(sql.ADD_FOLLOWED, self._run_id, target.name, len(pages))
        kept = []
        for plan in plans:
            url = normal[id(plan)]
            if url is None or url in fresh:
                fresh.discard(url)  # a start URL twice in the plan: the first one only
                kept.append(plan)
        return kept

    async def _run_over(self) -> bool:
        async def look() -> bool:
            async with self._pool.acquire() as conn:
                return bool(await conn.fetchval(sql.RUN_OVER, self._run_id))

        return await retrying(self._name, "see whether the run is over", look)

    def admit(self, plan: RequestPlan, outcome: Outcome) -> list[RequestPlan]:
        self._records += len(outcome.records)
        if self._limits.max_records is not None and self._records >= self._limits.max_records:
            self._stop_early()
        admitted = []
        for request in outcome.derived:
            # Whether a link was seen before is the database's to say, in the
            # commit that saves it (``PostgresSink``); its hosts are checked here.
            if is_link(request, plan) and not self._scopes[request.target.name].in_scope(request, plan):
                continue
            request.request_id, request.seq = None, None
            admitted.append(request)
        return admitted

    async def complete(self, plan: RequestPlan, derived: list[RequestPlan]) -> None:
        # The sink saves ``derived`` with ``plan``'s done mark; its commit wakes the claimers.
        self._in_flight -= 1

    async def release(self, plan: RequestPlan) -> None:
        self._in_flight -= 1
        await self._release([plan])

    async def _release_buffer(self) -> None:
        plans = list(self._buffer)
        self._buffer.clear()
        await self._release(plans)

    async def _release(self, plans: list[RequestPlan]) -> None:
        """Give leases back at once, so another worker need not wait for them to be reaped."""
        ids = [plan.request_id for plan in plans if plan.request_id is not None]
        if not ids:
            return
        for plan in plans:
            self.leases.drop(plan)

        async def give_back() -> None:
            async with self._pool.acquire() as conn:
                await conn.execute(sql.RELEASE, ids, self._worker_id)

        await retrying(self._name, "give requests back", give_back)

    def _stop_early(self) -> None:
        self._limited = self._closed = True

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        await self._release_buffer()
        await self.stop_counting()

    async def stop_counting(self) -> None:
        """Cancel a count of waiting requests under way: before the pool closes, at the latest."""
        self._closed = True  # and start none after it
        if self._counting is not None:
            self._counting.cancel()
            await asyncio.gather(self._counting, return_exceptions=True)
