"""The only coordinator: a bounded pool of workers around a frontier, one writer.

::

    plan (lazy) ─▶ Frontier ─▶ workers ─▶ process() ─▶ BatchWriter ─▶ SQLite
                      ▲      fetch          │ records
                      └──────── derived ◀───┘ next pages, links, child requests

Workers pull from the frontier, which serves derived requests first and
reads the plan lazily, so a target of a million URLs never becomes a million
objects or tasks. There are exactly as many workers as pooled connections,
and each request takes its host's slot (``HostSlots``) before it is sent, so
its timeout starts when it can actually go rather than while it waits. The
writer's bounded queue slows the workers if the disk falls behind.

Stopping: when ``stop`` is set (the first Ctrl-C or SIGTERM) the frontier
hands out no more work, requests in flight get ``grace`` seconds to finish,
then the rest are cancelled; the writer commits everything it received.
A cancellation of the whole crawl (a second Ctrl-C) ends it at once, and the
writer still commits what it had.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from .backends.sqlite.writer import BatchWriter
from .errors import BlockedAddress, CrawlRunnerError
from .extract import process
from .extract.page import Page
from .follow import LinkFollower
from .frontier import Frontier, numbered
from .http.auth import credentials
from .http.fetcher import Fetcher, TargetClient
from .http.guard import check_url
from .http.ratelimit import HostSlots
from .http.robots import RobotsPolicy
from .http.session import client_timeout
from .http.tls import ssl_argument
from .paginate import next_page
from .plan import RequestPlan, count_requests, plan_requests
from .progress import LiveView, Reporter
from .results import FetchResult, Outcome, utc_now
from .spec.model import Spec, Target
from .stats import RunStats, TargetStats

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0


def _paginate(plan: RequestPlan, page: Page, outcome: Outcome) -> list[RequestPlan]:
    # Items found, not records kept: a page whose records were all dropped
    # is not the end of the chain.
    follow_up = next_page(plan, page, outcome.items)
    return [follow_up] if follow_up is not None else []


def _known_total(target: Target) -> int | None:
    """Requests the target will make, when that is known before crawling."""
    if target.paginate or target.follow or target.parent:
        return None
    return count_requests(target)


def _client(spec: Spec, target: Target) -> TargetClient:
    settings = target.fetch
    if not settings.tls.verify and not settings.tls.fingerprint:
        log.warning("%s: TLS certificate verification is OFF (tls.verify: false)", target.name)
    return TargetClient(
        settings=settings,
        timeout=client_timeout(target.timeout),
        ssl=ssl_argument(settings.tls),
        creds=credentials(settings.auth),
        secrets=spec.redactor.values,
        download_dir=Path(spec.http.download_dir),
    )


@dataclass
class CrawlState:
    """Where a run starts from: fresh, resumed, or retrying another run's failures."""

    request_ids: Iterator[int]
    skip_below: int = 0  # start requests already done (resume)
    skip: set[int] = field(default_factory=set)
    pending: list[RequestPlan] = field(default_factory=list)  # saved derived requests, or failures to retry
    seen: list[tuple[str, str]] = field(default_factory=list)  # (target, url) already requested
    plan_start: bool = True  # False: only ``pending`` (retrying failures)
    validators: Mapping[tuple[str, str], tuple[str | None, str | None]] = field(default_factory=dict)
    max_requests: int | None = None  # for trying a spec: stop after this many
    max_records: int | None = None
    limited: bool = False  # set when one of those limits stopped the run


def _conditional(plan: RequestPlan, spec: Spec, state: CrawlState) -> RequestPlan:
    """Add If-None-Match / If-Modified-Since from the last run that saw this URL."""
    known = state.validators.get((plan.target.name, spec.redactor.tokenize(plan.url)))
    if not known:
        return plan
    etag, modified = known
    headers = dict(plan.headers)
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    return replace(plan, headers=headers)


async def crawl(
    spec: Spec,
    session: aiohttp.ClientSession,
    writer: BatchWriter,
    *,
    only: Iterable[str] | None = None,
    stop: asyncio.Event | None = None,
    grace: float = GRACE_SECONDS,
    state: CrawlState | None = None,
    reporter: Reporter | None = None,
) -> RunStats:
    """Fetch every planned and derived request, extract, and hand outcomes to ``writer``."""
    state = state or CrawlState(itertools.count(1))
    wanted = set(only) if only is not None else None
    selected = [t for t in spec.targets if wanted is None or t.name in wanted]
    names = {t.name for t in selected}
    stats = RunStats({t.name: TargetStats() for t in selected})
    children = {t.name: tuple(c for c in spec.children(t.name) if c.name in names) for t in selected}
    clients = {t.name: _client(spec, t) for t in selected}
    redact = spec.redactor
    fetcher = Fetcher(session, HostSlots(spec.http.limits.per_host), block_private=spec.http.block_private_addresses)
    follower = LinkFollower()
    for target_name, url in state.seen:
        follower.remember(spec, target_name, spec.redactor.detokenize(url))
    robots = RobotsPolicy(session, spec.http.user_agent, client_timeout(spec.http.timeout))
    start = (
        numbered(plan_requests(spec), skip_below=state.skip_below, skip=state.skip) if state.plan_start else iter(())
    )
    frontier = Frontier((p for p in start if wanted is None or p.target.name in wanted), admit=follower.admit_start)
    await frontier.done(state.pending, taken=False)
    view = LiveView(stats, {t.name: _known_total(t) for t in selected})
    handed_out = 0
    records = 0

    async def handle(plan: RequestPlan) -> list[RequestPlan]:
        target = plan.target
        if plan.request_id is None:
            plan.request_id = next(state.request_ids)  # set once, before the plan is shared
        if spec.http.block_private_addresses:
            try:
                check_url(plan.url)  # before robots.txt is fetched from that host, too
            except BlockedAddress as exc:
                result = FetchResult(target.name, plan.method, plan.url, utc_now(), error_kind=exc.kind, error=str(exc))
                outcome = Outcome(result, plan)
                stats.add(outcome)
                await writer.put(outcome)
                return []
        view.in_flight = frontier.in_flight
        verdict = await robots.verdict(plan.url) if target.follow is not None and target.follow.robots else None
        if verdict == "disallowed":
            stats.targets[target.name].robots_denied += 1
            log.info("%s %s skipped: disallowed by robots.txt", target.name, redact(plan.url))
            return []
        if verdict is not None:
            result = FetchResult(
                target.name, plan.method, plan.url, utc_now(), error_kind="robots_unreachable", error=verdict
            )
        else:
            sent = _conditional(plan, spec, state) if target.conditional else plan
            result = await fetcher.fetch(sent, clients[target.name])
        derivers = []
        if target.paginate is not None:
            derivers.append(_paginate)
        if target.follow is not None:
            derivers.append(follower)
        outcome = process(plan, result, children=children[target.name], derivers=tuple(derivers))
        # Derived requests get their ids now, so the writer can save them as
        # pending and later mark them done.
        for derived in outcome.derived:
            derived.request_id, derived.seq = next(state.request_ids), None
        stats.add(outcome)
        nonlocal records
        records += len(outcome.records)
        if state.max_records is not None and records >= state.max_records:
            state.limited = True
            await frontier.close()
        view.in_flight, view.retrying = frontier.in_flight, fetcher.retrying
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s → %s (%.0f ms, %d bytes, %d records%s)%s",
                target.name, plan.method, redact(plan.url), result.status or "-",
                result.elapsed * 1000, result.size, len(outcome.records),
                f", {result.attempts} attempts" if result.attempts > 1 else "",
                f" {result.error_kind}: {redact(result.error or '')}" if not result.ok else "",
            )  # fmt: skip
        await writer.put(outcome)
        return outcome.derived

    async def work() -> None:
        nonlocal handed_out
        while (plan := await frontier.get()) is not None:
            handed_out += 1
            if state.max_requests is not None and handed_out >= state.max_requests:
                state.limited = True
                await frontier.close()
            derived: list[RequestPlan] = []
            try:
                derived = await handle(plan)
            finally:
                await frontier.done(derived)

    async def stop_when_asked(workers: list[asyncio.Task[None]]) -> None:
        assert stop is not None
        await stop.wait()
        log.warning("stopping: no new requests; %d in flight get %.0f s to finish", frontier.in_flight, grace)
        await frontier.close()
        _, pending = await asyncio.wait(workers, timeout=grace)
        for task in pending:
            task.cancel()

    try:
        async with asyncio.TaskGroup() as run_group:
            run_group.create_task(writer.run(), name="crawlrunner-writer")
            async with asyncio.TaskGroup() as pool:
                workers = [
                    pool.create_task(work(), name=f"crawlrunner-worker-{n}") for n in range(spec.http.limits.workers)
                ]
                if stop is not None:
                    watcher = run_group.create_task(stop_when_asked(workers), name="crawlrunner-stop")
                if reporter is not None:
                    showing = run_group.create_task(reporter.run(view), name="crawlrunner-progress")
            if stop is not None:
                watcher.cancel()
            if reporter is not None:
                showing.cancel()
            await writer.close()
    except BaseExceptionGroup as group:
        raise _most_telling(group) from None
    return stats


def _most_telling(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """A task group's failure as one exception: ours if there is one."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, CrawlRunnerError):
            return exc
    return leaves[0] if len(leaves) == 1 else group
