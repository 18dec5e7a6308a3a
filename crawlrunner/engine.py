"""The only coordinator: a bounded pool of workers around a frontier, one writer.

::

    plan (lazy) ─▶ Frontier ─▶ workers ─▶ process() ─▶ BatchWriter ─▶ SQLite
                      ▲      fetch          │ records
                      └──────── derived ◀───┘ next pages, links, child requests

Workers pull from the frontier, which serves derived requests first and
reads the plan lazily, so a target of a million URLs never becomes a million
objects or tasks. There are exactly as many workers as pooled connections,
so a request's timeout starts when it can actually be sent rather than while
it waits for a free connection. The writer's bounded queue slows the workers
if the disk falls behind.

Cancellation (Ctrl-C) cancels the workers; the writer still commits every
outcome it has received before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from .errors import CrawlRunnerError
from .extract import process
from .extract.page import Page
from .follow import LinkFollower
from .frontier import Frontier
from .http.fetcher import fetch
from .http.robots import RobotsPolicy
from .http.session import client_timeout
from .paginate import next_page
from .plan import RequestPlan, plan_requests
from .spec.model import Spec
from .stats import RunStats, TargetStats
from .store.sqlite import BatchWriter

log = logging.getLogger(__name__)


def _paginate(plan: RequestPlan, page: Page, records: list[dict[str, Any]]) -> list[RequestPlan]:
    follow_up = next_page(plan, page, len(records))
    return [follow_up] if follow_up is not None else []


async def crawl(
    spec: Spec,
    session: aiohttp.ClientSession,
    writer: BatchWriter,
    *,
    only: Iterable[str] | None = None,
) -> RunStats:
    """Fetch every planned and derived request, extract, and hand outcomes to ``writer``."""
    wanted = set(only) if only is not None else None
    selected = [t for t in spec.targets if wanted is None or t.name in wanted]
    stats = RunStats({t.name: TargetStats() for t in selected})
    names = {t.name for t in selected}
    children = {t.name: tuple(c for c in spec.children(t.name) if c.name in names) for t in selected}
    timeouts = {t.name: client_timeout(t.timeout) for t in selected}
    max_body = spec.http.max_body_bytes
    redact = spec.redactor
    follower = LinkFollower()
    robots = RobotsPolicy(session, spec.http.user_agent, client_timeout(spec.http.timeout))
    frontier = Frontier(plan_requests(spec, wanted), admit=follower.admit_start)

    async def handle(plan: RequestPlan) -> list[RequestPlan]:
        target = plan.target
        if target.follow is not None and target.follow.robots and not await robots.allowed(plan.url):
            stats.targets[target.name].robots_denied += 1
            log.info("%s %s skipped: disallowed by robots.txt", target.name, redact(plan.url))
            return []
        result = await fetch(session, plan, timeout=timeouts[target.name], max_body_bytes=max_body)
        derivers = []
        if target.paginate is not None:
            derivers.append(_paginate)
        if target.follow is not None:
            derivers.append(follower)
        outcome = process(plan, result, children=children[target.name], derivers=tuple(derivers))
        stats.add(outcome)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s → %s (%.0f ms, %d bytes, %d records)%s",
                target.name, plan.method, redact(plan.url), result.status or "-",
                result.elapsed * 1000, len(result.body), len(outcome.records),
                f" {result.error_kind}: {redact(result.error or '')}" if not result.ok else "",
            )  # fmt: skip
        await writer.put(outcome)
        return outcome.derived

    async def work() -> None:
        while (plan := await frontier.get()) is not None:
            derived: list[RequestPlan] = []
            try:
                derived = await handle(plan)
            finally:
                await frontier.done(derived)

    try:
        async with asyncio.TaskGroup() as run_group:
            run_group.create_task(writer.run(), name="crawlrunner-writer")
            async with asyncio.TaskGroup() as workers:
                for number in range(spec.http.limits.workers):
                    workers.create_task(work(), name=f"crawlrunner-worker-{number}")
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
