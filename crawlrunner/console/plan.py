"""A spec's plan preview as the lines ``crawlrunner plan`` prints (the data: ``crawlrunner.preview``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from pathlib import Path

from ..backends.postgres.connect import is_postgres_url
from ..errors import CrawlRunnerError
from ..host_plan import HOST_SCAN_LIMIT, HostPlan, Pushback, host_plans
from ..plan import count_requests
from ..preview import CursorPlan, PlannedRequest, SincePlan, TargetPlan, preview_plan
from ..progress import duration
from ..read import PlanFacts, plan_facts
from ..spec.model import Spec, Target


def plan_report(
    spec: Spec, only: Sequence[str], first: int, *, database: str | None = None, max_requests: int | None = None
) -> Iterator[str]:
    """Everything ``crawlrunner plan`` prints: the targets' requests, the hosts' pace, and what stops a complete crawl.

    ``database`` (default: the spec's output) is read, if it exists, for
    what earlier runs of the spec learnt; nothing is written or fetched.
    """
    yield from plan_lines(preview_plan(spec, only=only or None, first=first, output=database), first)
    facts, unread = earlier_runs(database or spec.default_output, spec.name)
    targets = [t for t in spec.targets if not only or t.name in only]
    yield from map(spec.redactor, host_lines(host_plans(spec, only=only or None, known=facts.hosts)))
    if unread:
        yield f"(earlier runs not read: {unread})"
    for warning in completeness_warnings(targets, facts, max_requests):
        yield f"warning: {warning}"


def earlier_runs(database: str, spec_name: str) -> tuple[PlanFacts, str | None]:
    """What earlier runs in ``database`` learnt, and why it could not be read (None: read, or no database yet)."""
    if not is_postgres_url(database) and not Path(database).is_file():
        return PlanFacts(), None
    try:
        return plan_facts(database, spec_name), None
    except CrawlRunnerError as exc:
        return PlanFacts(), str(exc)


def plan_lines(plans: Iterable[TargetPlan], first: int) -> Iterator[str]:
    """Per target: how many start requests and where more come from, then its ``first`` requests."""
    for plan in plans:
        if plan.count is None:
            source = f"its field {plan.url_field!r}" if plan.url_field else repr(plan.url_template)
            yield f"{plan.target}: one request per record of {plan.parent!r}, to {source}"
        else:
            yield f"{plan.target}: {plan.count} start request{'s' if plan.count != 1 else ''}{_more(plan)}"
            for request in plan.requests:
                yield from _request_lines(request)
            if plan.count > first:
                yield f"  ... {plan.count - first} more"
        if plan.incremental is not None:
            yield f"{plan.target}: incremental {_cursor_text(plan.incremental)}"
        if plan.since is not None:
            yield f"{plan.target}: {_since_text(plan.since)}"


def _cursor_text(cursor: CursorPlan) -> str:
    """``updated_since = 2024-05-01T10:00:00Z (from run 7, lag 3600 s)``: what the next run sends, and why."""
    lag = f"lag {cursor.lag:g}{' ' + cursor.lag_unit if cursor.lag_unit else ''}"
    if cursor.unknown is not None:
        return f"{cursor.where} = unknown: {cursor.unknown} (initial: {cursor.value})"
    if cursor.scopes is not None:  # a child target: a cursor per parent record
        if not cursor.scopes:
            return f"{cursor.where} = {cursor.value} for each parent record (initial: no completed run yet)"
        return (
            f"{cursor.where}: per parent record, {cursor.scopes} from completed runs (the latest run {cursor.run_id},"
            f" {lag}); others {cursor.value} (initial)"
        )
    if cursor.run_id is None:
        return f"{cursor.where} = {cursor.value} (initial: no completed run yet)"
    return f"{cursor.where} = {cursor.value} (from run {cursor.run_id}, {lag})"


def _since_text(since: SincePlan) -> str:
    """``since: 2026-11-30T01:11:08Z (the start of run 4)``: the pages a sitemap's lastmod says are older are left."""
    if since.unknown is not None:
        return f"since: last_run = unknown: {since.unknown}"
    if since.started is None:
        return "since: last_run (no completed run yet that crawled it without a failure: everything)"
    return f"since: {since.started.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} (the start of run {since.run_id})"


def _more(plan: TargetPlan) -> str:
    sources = []
    if plan.sitemaps:
        sources.append("the pages the sitemaps list")
    if plan.pagination:
        sources.append(f"{plan.pagination} pagination")
    if plan.follow_depth is not None:
        sources.append(f"links to depth {plan.follow_depth}")
    return f"; more from {' and '.join(sources)}" if sources else ""


def _request_lines(request: PlannedRequest) -> Iterator[str]:
    shown = request.url if request.gateway is None else f"{request.url} (through {request.gateway})"
    yield f"  {request.method} {shown}" + (f"  [invalid: {request.invalid}]" if request.invalid else "")
    for name, value in request.headers.items():
        yield f"      {name}: {value}"
    if request.body is not None:
        yield f"      body: {request.body}"


def host_lines(hosts: Iterable[HostPlan]) -> Iterator[str]:
    """Per host: its known requests, the pace politeness sets, and the least time they take."""
    hosts = list(hosts)
    if not hosts:
        return
    yield "hosts:"
    for host in hosts:
        known = f"{host.requests:,} known request{'s' if host.requests != 1 else ''}"
        if not host.scanned_all:
            known = f"about {known} (hosts read from the first {HOST_SCAN_LIMIT:,})"
        if host.more_from:
            known += f", more from {', '.join(sorted(host.more_from))}"
        pace = [_pace(host), f"{host.connections} at a time" if host.connections else "no limit at a time"]
        if host.latency is not None:
            pace.append(f"{host.latency * 1000:.0f} ms a request in the last complete run")
        if host.pushback is not None:
            pace.append(_pushback_text(host.pushback))
        least = host.min_seconds
        bound = f": at least {duration(least)}" if least is not None and least >= 1 else ""
        yield f"  {host.origin}: {known}; {', '.join(pace)}{bound}"


def _pushback_text(pushback: Pushback) -> str:
    """``last run: 16 × 429, 2 × 503, paused 12.0 s``: the host pushed back, and the pace may need to be slower."""
    said = [f"{n} × {status}" for n, status in ((pushback.throttled, 429), (pushback.unavailable, 503)) if n]
    if pushback.cooldown_seconds:
        said.append(f"paused {pushback.cooldown_seconds:.1f} s")
    return "last run: " + ", ".join(said)


def _pace(host: HostPlan) -> str:
    """How the host's requests are spaced: one clock per rate limit, so each pace is shown with its requests."""
    paces = [(_interval_text(host, interval), count) for interval, count in sorted(host.paced.items(), reverse=True)]
    if len(paces) == 1:
        return paces[0][0]
    return "each target at its own pace: " + ", ".join(
        f"{pace} for {count:,} request{'s' if count != 1 else ''}" for pace, count in paces
    )


def _interval_text(host: HostPlan, interval: float) -> str:
    if not interval:
        return "no rate limit"
    why = f" (robots.txt Crawl-delay {host.crawl_delay:g} s)" if host.crawl_delay == interval else ""
    return f"1 request every {interval:g} s{why}"


def completeness_warnings(
    targets: Sequence[Target], facts: PlanFacts, max_requests: int | None = None
) -> Iterator[str]:
    """Why a complete crawl of ``targets`` cannot happen: a ``max_pages`` too small, a request budget."""
    known = 0
    for target in targets:
        count = count_requests(target)
        known += count or 0
        follow = target.follow
        if follow is not None and count is not None and count > follow.max_pages:
            yield (
                f"{target.name}: follow.max_pages {follow.max_pages:,} is below its {count:,} start URLs: "
                "a complete crawl is impossible"
            )
        ran = f"the last complete run ({facts.run_id})"
        if target.paginate is not None and facts.cut_chains.get(target.name):
            cut = facts.cut_chains[target.name]
            yield (
                f"{target.name}: {ran} cut {cut:,} pagination chain{'s' if cut != 1 else ''} at max_pages "
                f"{target.paginate.max_pages:,}: a complete crawl needs a larger paginate.max_pages"
            )
        if follow is not None and facts.requests.get(target.name, 0) >= follow.max_pages:
            yield (
                f"{target.name}: {ran} reached follow.max_pages ({follow.max_pages:,}): "
                "links beyond it were not fetched; raise it for a complete crawl"
            )
    if max_requests is not None and max_requests < known:
        yield f"--max-requests {max_requests:,} stops the run before its {known:,} known requests"
