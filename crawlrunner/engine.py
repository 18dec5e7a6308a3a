"""The only coordinator: a bounded pool of workers between a frontier and a sink.

::

    Frontier ──claim──▶ workers ──fetch──▶ process() ──write──▶ Sink
        ▲                                     │ records, derived requests
        └──────────admit / complete───────────┘ next pages, links, child requests

The engine sees the run's state only through the two interfaces of
``backends.base``: it never learns which database is behind them. Workers
claim from the frontier, which serves derived requests first and reads the
plan lazily. Workers are hired as work shows up, up to one per pooled
connection, and each request takes its host's slot (``HostSlots``) before it is sent, so its
timeout starts when it can actually go rather than while it waits. The sink's
bounded queue slows the workers if the database falls behind.

Stopping: when ``stop`` is set (the first Ctrl-C or SIGTERM) the frontier
hands out no more work, requests in flight get ``grace`` seconds to finish,
then the rest are cancelled (and released: they stay to do); the sink commits
everything it received. A cancellation of the whole crawl (a second Ctrl-C)
ends it at once, and the sink still commits what it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp

from .backends.base import OpenedRun, Validators
from .errors import BlockedAddress, CrawlRunnerError, ErrorKind, most_telling
from .extract import process
from .http.auth import credentials
from .http.fetcher import Fetcher, TargetClient
from .http.ratelimit import HostSlots
from .http.robots import DISALLOWED, RobotsPolicy
from .http.session import client_timeout
from .http.tls import ssl_argument
from .http.tokens import TokenSources
from .plan import RequestPlan, count_requests
from .progress import LiveView, Reporter
from .results import FetchResult, Outcome, utc_now
from .secrets import Redactor
from .sitemaps import since_cutoff
from .spec.model import Spec, Target
from .stats import RunStats, TargetStats

log = logging.getLogger(__name__)
# One line per request, at DEBUG: a host process logging at INFO (an Airflow
# task) is not flooded; `crawlrunner -v` turns this logger on by its name.
request_log = logging.getLogger("crawlrunner.requests")

GRACE_SECONDS = 5.0
CLUSTER_TOTALS_EVERY = 2.0  # seconds between reads of a shared run's totals, for the progress view
SKIPPED_BY_ROBOTS = "disallowed by robots.txt"


def _known_total(target: Target) -> int | None:
    """Requests the target will make, when that is known before crawling."""
    if target.paginate or target.follow or target.parent or target.sitemap:
        return None
    return count_requests(target)


def target_client(spec: Spec, target: Target, tokens: TokenSources) -> TargetClient:
    """What the fetcher needs to send ``target``'s requests: its settings, timeouts, TLS and credentials.

    ``tokens``: the run's token sources, for an auth that fetches a token.
    """
    settings = target.fetch
    if not settings.tls.verify and not settings.tls.fingerprint:
        log.warning("%s: TLS certificate verification is OFF (tls.verify: false)", target.name)
    client = TargetClient(
        settings=settings,
        timeout=client_timeout(target.timeout),
        ssl=ssl_argument(settings.tls),
        creds=credentials(settings.auth),
        secrets=spec.redactor.values,
        download_dir=Path(spec.http.download_dir),
    )
    return tokens.attach(client, target.name)


def _conditional(plan: RequestPlan, spec: Spec, validators: Validators) -> RequestPlan:
    """Add If-None-Match / If-Modified-Since from the last run that saw this URL."""
    known = validators.get((plan.target.name, spec.redactor.tokenize(plan.url)))
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
    run: OpenedRun,
    *,
    targets: Sequence[Target] | None = None,
    stop: asyncio.Event | None = None,
    grace: float = GRACE_SECONDS,
    reporter: Reporter | None = None,
) -> RunStats:
    """Fetch every request ``run``'s frontier hands out, extract, and write outcomes to its sink."""
    frontier, sink, validators = run.frontier, run.sink, run.validators
    selected = list(targets) if targets is not None else list(spec.targets)
    names = {t.name for t in selected}
    stats = RunStats({t.name: TargetStats() for t in selected})
    children = {t.name: tuple(c for c in spec.children(t.name) if c.name in names) for t in selected}
    since = {t.name: since_cutoff(t.sitemap, run.last_runs.get(t.name)) for t in selected if t.sitemap is not None}
    redact = spec.redactor
    fetcher = Fetcher(
        session,
        run.hosts or HostSlots(spec.http.limits.per_host),
        block_private=spec.http.block_private_addresses,
        allowed_hosts=spec.http.allowed_hosts,
        redact=redact,
        hosts=stats.hosts,
    )
    tokens = TokenSources(fetcher, redact, spec.http.user_agent)
    clients = {t.name: target_client(spec, t, tokens) for t in selected}
    robots = RobotsPolicy(session, spec.http.user_agent, client_timeout(spec.http.timeout))
    view = LiveView(stats, {t.name: _known_total(t) for t in selected}, earlier=run.earlier, queued=frontier.queued)
    view.tokens_waiting = tokens.waiting

    async def handle(plan: RequestPlan) -> list[RequestPlan]:
        """Fetch, extract, hand the outcome to the sink; the requests it led to, as admitted."""
        # The fetch is awaited here, not in a coroutine of its own: every
        # resumption of a request passes through each coroutine it is awaited in.
        target = plan.target
        view.in_flight = frontier.in_flight
        # A sitemap is read whole every time: a 304 would leave its pages unknown.
        sent = _conditional(plan, spec, validators) if target.conditional and plan.role is None else plan
        client = clients[target.name]
        if target.follow is None or not target.follow.robots:
            # No robots.txt to ask (the usual case): ``checked_fetch``'s checks
            # here, so that each resumption of the fetch passes one coroutine less.
            result = _blocked(fetcher, sent)
            if result is None:
                result = await fetcher.fetch(sent, client)
        else:
            result = await checked_fetch(fetcher, robots, sent, client)
        if result is None:  # not sent: recorded as skipped, so a resume does not try it again
            stats.targets[target.name].robots_denied += 1
            log.info("%s %s skipped: %s", target.name, redact(plan.url), SKIPPED_BY_ROBOTS)
            unsent = FetchResult(plan.target.name, plan.method, plan.url, utc_now())
            await sink.write(Outcome(unsent, plan, skipped=SKIPPED_BY_ROBOTS))
            return []
        # A 304 has no body: what the page led to when it was last fetched whole is derived again.
        unchanged = await run.led_to(plan) if result.status == 304 and run.led_to is not None else None
        outcome = process(
            plan, result, children=children[plan.target.name], unchanged=unchanged, cursors=run.cursors,
            since=since.get(plan.target.name),
        )  # fmt: skip
        outcome.derived = frontier.admit(plan, outcome)
        stats.add(outcome, redact)
        view.in_flight, view.retrying = frontier.in_flight, fetcher.retrying
        if request_log.isEnabledFor(logging.DEBUG):
            _log_outcome(outcome, redact)
        await sink.write(outcome)
        return outcome.derived

    workers: list[asyncio.Task[None]] = []
    busy = 0

    def hire(pool: asyncio.TaskGroup) -> None:
        workers.append(pool.create_task(work(pool), name=f"crawlrunner-worker-{len(workers)}"))

    async def work(pool: asyncio.TaskGroup) -> None:
        nonlocal busy
        while (plan := await frontier.claim()) is not None:
            busy += 1
            # Workers are hired as work shows up, up to one per pooled
            # connection: a crawl of three URLs never pays for thousands of
            # idle tasks (nor wakes them all at its end).
            if busy == len(workers) and len(workers) < spec.http.limits.workers:
                hire(pool)
            derived: list[RequestPlan] | None = None
            view.flying[plan.target.name] += 1
            try:
                derived = await handle(plan)  # once it returns, the sink has the outcome
            finally:
                busy -= 1
                view.flying[plan.target.name] -= 1
                if derived is None:  # cancelled or failed before that: the request stays to do
                    await frontier.release(plan)
                    view.in_flight = frontier.in_flight
            await frontier.complete(plan, derived)
            view.in_flight = frontier.in_flight

    async def stop_when_asked(workers: list[asyncio.Task[None]]) -> None:
        assert stop is not None
        await stop.wait()
        log.warning("stopping: no new requests; %d in flight get %.0f s to finish", frontier.in_flight, grace)
        view.stopping, view.in_flight = True, frontier.in_flight
        await frontier.close()
        # A worker hired from now on finds the frontier closed and ends at once.
        _, pending = await asyncio.wait(workers, timeout=grace)
        for task in pending:
            task.cancel()

    try:
        async with asyncio.TaskGroup() as run_group:
            run_group.create_task(sink.run(), name="crawlrunner-sink")
            async with asyncio.TaskGroup() as pool:
                hire(pool)
                if stop is not None:
                    watcher = run_group.create_task(stop_when_asked(workers), name="crawlrunner-stop")
                if reporter is not None:
                    showing = run_group.create_task(_report(reporter, view, run), name="crawlrunner-progress")
            fetcher.politeness.session_ended()  # a pause running past the last request held nothing back
            if stop is not None:
                watcher.cancel()
            if reporter is not None:
                showing.cancel()
            await sink.close()
    except BaseExceptionGroup as group:
        raise most_telling(group) from None
    return stats


async def checked_fetch(
    fetcher: Fetcher, robots: RobotsPolicy, plan: RequestPlan, client: TargetClient
) -> FetchResult | None:
    """``plan``'s response, after the checks every request passes first; None when robots.txt forbids it.

    The destination is checked before robots.txt is asked, so that a blocked
    host is not contacted even for that; robots.txt applies to targets that
    follow links with ``robots: true``, its delay (``Crawl-delay``) too.
    """
    target = plan.target
    if (blocked := _blocked(fetcher, plan)) is not None:
        return blocked
    obeys = target.follow is not None and target.follow.robots
    verdict = await robots.verdict(plan.url) if obeys else None
    if verdict == DISALLOWED:
        return None
    if verdict is not None:
        return FetchResult(
            target.name, plan.method, plan.url, utc_now(), error_kind=ErrorKind.ROBOTS_UNREACHABLE, error=verdict
        )
    return await fetcher.fetch(plan, client, robots.delay(plan.url) if obeys else None)


def _blocked(fetcher: Fetcher, plan: RequestPlan) -> FetchResult | None:
    """The outcome of a request whose destination may not be contacted; None when it may."""
    try:
        fetcher.destinations.check(plan.url)
    except BlockedAddress as exc:
        return FetchResult(plan.target.name, plan.method, plan.url, utc_now(), error_kind=exc.kind, error=str(exc))
    return None


async def _report(reporter: Reporter, view: LiveView, run: OpenedRun) -> None:
    """Show progress; for a shared run, with the whole run's totals, read every few seconds."""
    if run.cluster_totals is None:
        await reporter.run(view)
        return
    async with asyncio.TaskGroup() as group:
        group.create_task(reporter.run(view))
        while True:
            try:
                view.cluster = await run.cluster_totals()
            except CrawlRunnerError as exc:  # the frontier and the sink say so if the database is gone
                log.debug("whole-run totals unavailable: %s", exc)
            await asyncio.sleep(CLUSTER_TOTALS_EVERY)


def _log_outcome(outcome: Outcome, redact: Redactor) -> None:
    result, plan = outcome.fetch, outcome.plan
    assert plan is not None
    url, error = redact(plan.url), redact(result.error or "")
    # The same facts as fields, for a log collector (`--log-format json`): no parsing of the message.
    fields = {
        "target": plan.target.name, "method": plan.method, "url": url, "status": result.status,
        "ms": round(result.elapsed * 1000), "bytes": result.size, "records": len(outcome.records),
        "attempts": result.attempts, "error_kind": None if result.ok else str(result.error_kind),
    }  # fmt: skip
    request_log.debug(
        "%s %s %s → %s (%.0f ms, %d bytes, %d records%s)%s",
        plan.target.name, plan.method, url, result.status or "-",
        result.elapsed * 1000, result.size, len(outcome.records),
        f", {result.attempts} attempts" if result.attempts > 1 else "",
        f" {result.error_kind}: {error}" if not result.ok else "",
        extra={"fields": fields},
    )  # fmt: skip
