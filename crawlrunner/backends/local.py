"""The in-process frontier: one event loop's queue, seen sets, ids and limits.

Start requests come lazily from the plan, numbered within their target; derived
requests (next pages, followed links, child requests) are queued as pages are
processed and are served first, so chains keep moving and memory stays small
(a target of a million URLs never becomes a million objects). Sitemaps found
in an index come after the derived requests already queued (its pages), and
before more start requests. The crawl is
over when the plan is exhausted, nothing is queued and no request is in
flight (an in-flight page may still derive more work).

It keeps nothing on disk itself: what a resume needs (which start requests
are done, which derived ones are pending, which URLs were followed) is what
the sink committed, read back by the backend that opens the run.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..follow import FollowScope, is_link
from ..plan import SITEMAP, RequestPlan
from ..results import Outcome
from ..sitemaps import SitemapScope
from ..spec.model import Target
from .base import Frontier, RunLimits


@dataclass
class LocalState:
    """Where an in-process frontier starts from: fresh, resumed, or retrying failures.

    A backend fills it from the spec and from what earlier sessions of the run committed.
    """

    next_request_id: int
    start: Iterator[RequestPlan] = field(default_factory=lambda: iter(()))  # numbered (``numbered``)
    pending: list[RequestPlan] = field(default_factory=list)  # saved derived requests, or failures to retry
    followed: list[tuple[str, str]] = field(default_factory=list)  # (target, url) already requested
    start_hosts: dict[str, frozenset[str]] = field(default_factory=dict)  # per link-following target
    sitemap_documents: list[tuple[str, str]] = field(default_factory=list)  # (target, url) of sitemaps requested
    sitemap_urls: dict[str, int] = field(default_factory=dict)  # per sitemap target, page URLs taken so far


class LocalFrontier(Frontier):
    """The frontier of one process: derived requests first, then the plan, lazily.

    Every change of state (a claim, an admission, a completion, a release, a
    stop) happens before the method's first ``await``, so a cancellation can
    interrupt a method only after its bookkeeping is done; the awaits only wake
    workers waiting for work.
    """

    def __init__(self, targets: Iterable[Target], state: LocalState, limits: RunLimits | None = None) -> None:
        self._ids = iter(range(state.next_request_id, 1 << 62))
        self._scopes = {
            t.name: FollowScope(t.follow, state.start_hosts.get(t.name, frozenset()))
            for t in targets
            if t.follow is not None
        }
        for target_name, url in state.followed:
            scope = self._scopes.get(target_name)
            if scope is not None:
                scope.remember(url)
        self._sitemaps = {
            t.name: SitemapScope(t.sitemap, urls=state.sitemap_urls.get(t.name, 0))
            for t in targets
            if t.sitemap is not None
        }
        for target_name, url in state.sitemap_documents:
            if (sitemaps := self._sitemaps.get(target_name)) is not None:
                sitemaps.remember(url)
        for plan in state.pending:
            if plan.request_id is None:  # a failure of another run, retried: this run's request now
                plan.request_id = next(self._ids)
        self._start: Iterator[RequestPlan] | None = state.start
        self._derived: deque[RequestPlan] = deque(p for p in state.pending if p.role != SITEMAP)
        # Sitemaps found in indexes wait until the pages found so far are
        # taken: an index of many sitemaps is read about one at a time, so
        # its pages are never all in memory at once.
        self._sitemaps_queued: deque[RequestPlan] = deque(p for p in state.pending if p.role == SITEMAP)
        self._queued_by_target = Counter(p.target.name for p in state.pending)
        self._limits = limits or RunLimits()
        self._claimed = 0
        self._records = 0
        self._limited = False
        self._in_flight = 0
        self._closed = False
        self._waiting = 0
        self._changed = asyncio.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def limited(self) -> bool:
        return self._limited

    def _next_start(self) -> RequestPlan | None:
        while self._start is not None:
            plan = next(self._start, None)
            if plan is None:
                self._start = None
                continue
            if plan.role == SITEMAP:  # not a page: its own de-duplication, and no part of follow.max_pages
                if self._sitemaps[plan.target.name].admit_document(plan):
                    return plan
                continue  # a sitemap the spec lists twice
            scope = self._scopes.get(plan.target.name)
            if scope is None or scope.admit_start(plan):
                return plan
        return None

    async def claim(self) -> RequestPlan | None:
        # No await between looking and taking: on one event loop that is atomic,
        # so the lock is needed only to wait.
        while True:
            if self._closed:
                return None
            plan = self._next_queued() or self._next_start()
            if plan is not None:
                self._in_flight += 1
                if plan.request_id is None:
                    plan.request_id = next(self._ids)  # set once, before the plan is shared
                self._claimed += 1
                max_requests = self._limits.max_requests
                if max_requests is not None and self._claimed >= max_requests:
                    self._stop_early()
                    await self._wake_all()
                return plan
            if self._in_flight == 0:
                await self._wake_all()
                return None
            async with self._changed:
                self._waiting += 1
                try:
                    # Checked again under the lock: a request may have finished
                    # while this one was getting it, with nobody to notify yet.
                    await self._changed.wait_for(self._may_change)
                finally:
                    self._waiting -= 1

    def _may_change(self) -> bool:
        return self._closed or self._queued() > 0 or self._start is not None or self._in_flight == 0

    def queued(self) -> Mapping[str, int]:
        return self._queued_by_target

    def _next_queued(self) -> RequestPlan | None:
        queue = self._derived or self._sitemaps_queued
        if not queue:
            return None
        plan = queue.popleft()
        self._queued_by_target[plan.target.name] -= 1
        return plan

    def _queued(self) -> int:
        return len(self._derived) + len(self._sitemaps_queued)

    async def _wake_all(self) -> None:
        if self._waiting:
            async with self._changed:
                self._changed.notify_all()

    def admit(self, plan: RequestPlan, outcome: Outcome) -> list[RequestPlan]:
        self._records += len(outcome.records)
        max_records = self._limits.max_records
        if max_records is not None and self._records >= max_records:
            self._stop_early()  # workers learn it when this request completes
        admitted = []
        scope = self._scopes.get(plan.target.name)  # a page's links are of its own target
        refused_before = scope.unfollowed if scope is not None else 0
        for request in self._from_sitemap(plan, outcome) if plan.role == SITEMAP else outcome.derived:
            if is_link(request, plan) and not self._scopes[request.target.name].admit(request, plan):
                continue
            # Ids now, so the sink can save these as pending and later mark them done.
            request.request_id, request.seq = next(self._ids), None
            admitted.append(request)
        if scope is not None:  # stored with the page's fetch-log row, in the sink's transaction
            outcome.unfollowed = scope.unfollowed - refused_before
        return admitted

    def _from_sitemap(self, plan: RequestPlan, outcome: Outcome) -> list[RequestPlan]:
        """A sitemap document's requests this run makes: sitemaps not read yet, pages within max_urls."""
        scope = self._scopes.get(plan.target.name)
        if scope is not None:  # pages links may reach too: each is fetched once
            outcome.derived = [r for r in outcome.derived if r.role == SITEMAP or scope.admit_start(r)]
        return self._sitemaps[plan.target.name].admit(outcome)

    async def complete(self, plan: RequestPlan, derived: list[RequestPlan]) -> None:
        before = self._queued()
        for request in derived:
            (self._sitemaps_queued if request.role == SITEMAP else self._derived).append(request)
            self._queued_by_target[request.target.name] += 1
        self._in_flight -= 1
        if self._waiting:  # checked here, not in a coroutine of its own: this runs for every request
            await self._notify(before)

    async def release(self, plan: RequestPlan) -> None:
        # Nothing to put back: what this process did not finish is found again
        # by the run's resume (a start request not marked done, a derived one
        # still pending).
        self._in_flight -= 1
        if self._waiting:
            await self._notify(self._queued())

    async def _notify(self, before: int) -> None:
        """Wake the workers a finished request may have given work (``before``: the queue's length before it)."""
        async with self._changed:
            if self._in_flight == 0 or self._closed:
                self._changed.notify_all()  # maybe the end: every waiter must see it
            elif self._queued() > before:
                self._changed.notify(self._queued() - before)

    def _stop_early(self) -> None:
        self._limited = self._closed = True

    async def close(self) -> None:
        self._closed = True
        await self._wake_all()


def numbered(
    plans: Iterator[RequestPlan], *, skip_below: int = 0, skip: set[int] | None = None
) -> Iterator[RequestPlan]:
    """Start requests (of one target) numbered in plan order, without those already done."""
    for seq, plan in enumerate(plans):
        if seq < skip_below or (skip and seq in skip):
            continue
        plan.seq = seq  # a fresh plan, not yet shared
        yield plan
