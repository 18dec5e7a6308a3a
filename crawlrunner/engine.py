"""The only coordinator: a producer, a bounded pool of workers, one writer.

::

    plan_requests() ──▶ queue (2 × workers) ──▶ workers ──▶ BatchWriter ──▶ SQLite
         lazy              backpressure          fetch + extract   batched commits

The producer walks the plan lazily and blocks when the queue is full, so a
target of a million URLs never becomes a million objects or tasks. Each
worker holds at most one request, and there are exactly as many workers as
pooled connections, so a request's timeout starts when it can actually be
sent rather than while it waits for a free connection. The writer's bounded
queue slows the workers if the disk falls behind.

Cancellation (Ctrl-C) cancels producer and workers; the writer still commits
every outcome it has received before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp

from .errors import CrawlRunnerError
from .extract import extract
from .http.fetcher import fetch
from .http.session import client_timeout
from .plan import RequestPlan, plan_requests
from .results import Outcome
from .spec.model import Spec
from .stats import RunStats, TargetStats
from .store.sqlite import BatchWriter

log = logging.getLogger(__name__)


async def crawl(
    spec: Spec,
    session: aiohttp.ClientSession,
    writer: BatchWriter,
    *,
    only: Iterable[str] | None = None,
) -> RunStats:
    """Fetch every planned request, extract, and hand outcomes to ``writer``."""
    wanted = set(only) if only is not None else None
    stats = RunStats({t.name: TargetStats() for t in spec.targets if wanted is None or t.name in wanted})
    workers = spec.http.limits.workers
    queue: asyncio.Queue[RequestPlan | None] = asyncio.Queue(maxsize=2 * workers)
    timeouts = {t.name: client_timeout(t.timeout) for t in spec.targets}
    max_body = spec.http.max_body_bytes
    redact = spec.redactor

    async def produce() -> None:
        for plan in plan_requests(spec, wanted):
            await queue.put(plan)
        for _ in range(workers):
            await queue.put(None)

    async def work() -> None:
        while (plan := await queue.get()) is not None:
            result = await fetch(session, plan, timeout=timeouts[plan.target.name], max_body_bytes=max_body)
            extraction = plan.target.extract
            outcome = extract(extraction, result) if result.ok and extraction else Outcome(result)
            stats.add(outcome)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s → %s (%.0f ms, %d bytes, %d records)%s",
                    plan.target.name, plan.method, redact(plan.url), result.status or "-",
                    result.elapsed * 1000, len(result.body), len(outcome.records),
                    f" {result.error_kind}: {redact(result.error or '')}" if not result.ok else "",
                )  # fmt: skip
            await writer.put(outcome)

    try:
        async with asyncio.TaskGroup() as run_group:
            run_group.create_task(writer.run(), name="crawlrunner-writer")
            async with asyncio.TaskGroup() as fetchers:
                fetchers.create_task(produce(), name="crawlrunner-producer")
                for number in range(workers):
                    fetchers.create_task(work(), name=f"crawlrunner-worker-{number}")
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
