"""The two interfaces the engine sees: a frontier and a sink, and the backend that supplies both.

::

    engine ──claim / admit / complete / release──▶ Frontier   what is left, what was seen, ids, limits
       └──────────────write outcomes─────────────▶ Sink       records + request state, one transaction

A backend (``backends/sqlite`` today; PostgreSQL next) opens a run and hands
the engine one of each. The engine never learns which database is behind
them: every fact it needs about earlier runs (what to resume, which ETags are
known) arrives through the ``OpenedRun`` the backend returns.

The lifecycle of one request, as the engine drives it::

    plan = await frontier.claim()                        # None: the crawl is over (or stopping)
    ... fetch, extract ...                               # outcome.derived: next page, links, children
    outcome.derived = frontier.admit(plan, outcome)      # de-duplicated, numbered; records counted
    await sink.write(outcome)                            # committed with the request's done mark
    await frontier.complete(plan, outcome.derived)       # now they may be claimed

The order matters: a derived request becomes claimable only after the
outcome that led to it is with the sink, which commits in order, so a
request is never done while the request it came from is not. A request
claimed but never handed to the sink (a stop cancelled it) is released with
``await frontier.release(plan)``: it stays to do, for this run's resume or
another worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ..expectations import TargetFacts
from ..incremental import Cursors
from ..plan import RequestPlan
from ..results import LedTo, Outcome
from ..settings import Gap, RateLimit
from ..sitemaps import LastRun
from ..spec.model import Spec, Target
from ..stats import HostStats, TargetStats

# (target name, tokenized URL) → (ETag, Last-Modified) seen by an earlier run.
Validators = Mapping[tuple[str, str], tuple[str | None, str | None]]
# What a conditional request's page led to when it was last fetched whole, read when it gets a 304
# (None: nothing is known). Read on demand: a big site's would not fit in memory at once.
LedToReader = Callable[[RequestPlan], Awaitable[LedTo | None]]


class Frontier(ABC):
    """What is left to fetch in one run, and how to know the crawl is over.

    The frontier owns everything about *which* requests a run makes: start
    requests (numbered in plan order within their target, so a resume can skip the done ones),
    derived requests (served first, so chains keep moving and memory stays
    small), de-duplication of followed URLs, request ids, and the early-stop
    limits (``max_requests``, ``max_records``).

    The crawl is over when ``claim`` returns None: nothing is left to start,
    nothing is queued and no claimed request is unfinished (a request in
    flight may still derive more work), or the frontier was closed.
    """

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Requests claimed and not yet completed or released (by this process)."""

    @property
    @abstractmethod
    def limited(self) -> bool:
        """Whether ``max_requests`` or ``max_records`` ended the run early."""

    def queued(self) -> Mapping[str, int]:
        """Requests found and waiting per target (derived ones: next pages, links, children), for progress.

        Start requests still in the plan are not counted (the plan is read lazily). Called on every progress
        tick: a frontier whose count is a query answers with a cached one (PostgreSQL's, at most a second old).
        """
        return {}

    @abstractmethod
    async def claim(self) -> RequestPlan | None:
        """The next request to fetch, with its request id set; None once the crawl is over."""

    @abstractmethod
    def admit(self, plan: RequestPlan, outcome: Outcome) -> list[RequestPlan]:
        """Which of the requests ``plan``'s outcome led to this run will make, each with its id.

        Drops followed links already seen in this run, off the target's hosts
        or beyond its ``max_pages`` (and a sitemap's requests: sitemaps read
        before, pages beyond ``max_urls``; a shared run's sink may decide
        those in its commit), and counts the outcome's records against
        ``max_records``. Called before the outcome goes to the sink, which
        saves the admitted requests together with ``plan``'s done mark.
        """

    @abstractmethod
    async def complete(self, plan: RequestPlan, derived: list[RequestPlan]) -> None:
        """``plan`` is finished and its outcome is with the sink: ``derived`` (as admitted) may be claimed."""

    @abstractmethod
    async def release(self, plan: RequestPlan) -> None:
        """``plan`` was claimed but never finished (a stop): it stays to do."""

    @abstractmethod
    async def close(self) -> None:
        """Hand out no more work (a graceful stop, a limit); requests in flight may finish."""


class Sink(ABC):
    """Where outcomes go: records, the fetch log and the run's request state.

    The contract the engine relies on, and every implementation keeps:

    **A record and its request's done mark commit in one transaction**,
    together with the request's fetch-log row and the requests it led to.
    A run killed at any moment therefore resumes without losing or
    duplicating a record: either everything an outcome wrote is there, or
    none of it is and the request is still to do.

    ``write`` may queue (and must wait when the queue is full: that is the
    engine's backpressure); ``run`` is the task that commits, started by the
    engine next to its workers. Cancelling ``run`` still commits everything
    already handed to ``write``, then lets the cancellation go on.
    """

    @abstractmethod
    async def write(self, outcome: Outcome) -> None:
        """Hand one outcome over; it is committed by ``run``, in order."""

    @abstractmethod
    async def run(self) -> None:
        """Commit outcomes as they arrive, in batches, until ``close``."""

    @abstractmethod
    async def flush(self) -> None:
        """Wait until everything written so far is committed."""

    @abstractmethod
    async def close(self) -> None:
        """Ask ``run`` to commit what is queued and return."""


class HostGate(Protocol):
    """Politeness per host: how many requests at once, how often, and when to leave a host alone.

    The engine's own (``http.ratelimit.HostSlots``) holds it within one
    process; a backend shared by several workers supplies one that holds it
    across all of them (``OpenedRun.hosts``).
    """

    def hold(self, url: str, rate: RateLimit, gap: Gap | None = None) -> AbstractAsyncContextManager[None]:
        """A turn to send one request to ``url``'s host: paced, within its concurrency, outside any cooldown.

        ``gap()``: the least seconds between the last send on ``rate``'s pacer
        and this one, when more than ``rate.interval`` (what the host's answers
        and robots.txt ask); read when the request takes its turn, not before.
        """
        ...

    def cool_down(self, url: str, seconds: float) -> None:
        """Leave ``url``'s host alone for ``seconds`` (it answered 429 or 503)."""
        ...


class Start(Enum):
    """How a run begins."""

    FRESH = "fresh"  # a new run of the whole spec
    RESUME = "resume"  # continue the spec's last unfinished run where it stopped
    RETRY_FAILED = "retry_failed"  # a new run of only the requests the last run failed
    JOIN = "join"  # take part in one given run of a shared database, if it still goes on


@dataclass(frozen=True)
class RunLimits:
    """Early stops, for trying a spec (``--max-requests``, ``--max-records``)."""

    max_requests: int | None = None
    max_records: int | None = None


@dataclass
class OpenedRun:
    """A run a backend opened: its id, its frontier and sink, and what earlier runs left."""

    run_id: int
    frontier: Frontier
    sink: Sink
    validators: Validators = field(default_factory=dict)
    led_to: LedToReader | None = None
    whole_crawl: bool = True  # False: a retry of failures, which may not empty replace tables
    # A resume of a run that had completed, with no target added since: nothing
    # to fetch, and the run is left exactly as it was (not even finished again).
    already_completed: bool = False
    # Politeness shared with other workers of the run; None: the engine's own, per process.
    hosts: HostGate | None = None
    # (requests, records) of the whole run, every worker's, for the progress view of a shared run.
    cluster_totals: Callable[[], Awaitable[tuple[int, int]]] | None = None
    # Where incremental targets start (what the spec's completed runs before this one reached).
    cursors: Cursors = field(default_factory=Cursors)
    # Per sitemap target with ``since: last_run``, the last run before this (logical) one that crawled it
    # without a failure (``backends.sitemap_runs``); a target not in it has none: everything is due.
    last_runs: Mapping[str, LastRun] = field(default_factory=dict)
    # A resumed run's requests, failures and records per target in its earlier sessions: the progress view
    # continues from them (this session's own counters, and the summary's table, start at zero).
    earlier: Mapping[str, TargetStats] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredBody:
    """A body an earlier run kept (``store_bodies: true``), with the request that fetched it."""

    target: str
    url: str
    final_url: str | None
    status: int | None
    content_type: str | None
    charset: str | None
    fetched_at: str
    body: bytes
    plan: RequestPlan | None  # None when the request is gone or its target changed


class Backend(ABC):
    """One output database: opens runs on it and answers what runs ask of it afterwards.

    Used as ``async with open_backend(output) as backend``; every connection
    it holds is closed when the block ends, however it ends.
    """

    name: str  # what the user sees: a file path, or a URL without its password

    @abstractmethod
    async def open_run(
        self,
        spec: Spec,
        targets: list[Target],
        start: Start,
        limits: RunLimits | None = None,
        *,
        run_id: int | None = None,
    ) -> OpenedRun:
        """Begin (or resume) a run of ``spec`` restricted to ``targets``; ``run_id``: the run to ``JOIN``.

        Raises ``ResumeError`` when there is nothing to resume or retry, or
        when the spec changed since the run to resume began (adding targets
        is not a change: their requests join the run). Resuming a run that
        completed, with no target added, returns it ``already_completed``.
        """

    @abstractmethod
    async def begin_reextraction(self, spec: Spec, targets: list[Target]) -> tuple[int, Sink]:
        """A new run that rebuilds ``targets`` from stored bodies: its id and its sink."""

    @abstractmethod
    def stored_bodies(self, spec: Spec, targets: list[Target]) -> AsyncIterator[StoredBody]:
        """The latest stored body of every (target, URL) of ``targets``."""

    @abstractmethod
    async def finish_run(self, run_id: int, status: str, targets: Iterable[Target], *, whole_crawl: bool) -> str:
        """This process is done with the run, which ended for it with ``status``; the status to report.

        A completed whole crawl empties its replace tables of older rows. With
        one process per run the status is ``status``; where several workers
        share the run, it may differ: a worker whose frontier ran dry reports
        the run's outcome, and the run is closed only by the last to leave.
        """

    @abstractmethod
    async def keep_host_stats(self, run_id: int, hosts: Mapping[str, HostStats]) -> None:
        """Add this session's per-origin politeness counts to the run's ``host_stats`` rows (``backends.host_stats``)."""

    @abstractmethod
    async def run_facts(self, run_id: int, spec: Spec, targets: Iterable[Target]) -> dict[str, TargetFacts]:
        """What the logical run did for each of ``targets``, for ``expect`` and extraction health.

        Keeps the run's extraction counts (``extraction_health``) first, from
        the stored rows, so every session of a resumed run counts; a retry's
        facts include the run it retries (see ``backends.health``).
        """

    @abstractmethod
    async def failures_by_target(self, run_id: int) -> dict[str, int]:
        """Failed requests per target in the whole run (before a resume too)."""

    @abstractmethod
    async def run_totals(self, run_id: int) -> tuple[int, int]:
        """(requests, records) of the whole run, every session of it."""
