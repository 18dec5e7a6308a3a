"""What a spec would fetch, without fetching: the data behind ``crawlrunner plan`` and ``run --dry-run``.

::

    import crawlrunner

    for target in crawlrunner.preview_plan(crawlrunner.load_spec("shop.yaml"), first=3):
        print(target.target, target.count, [r.url for r in target.requests])

Everything returned is safe to show: values that came from the environment
are masked in URLs, headers and bodies by the spec's redactor, and the headers that
auth adds (``Authorization``, an API-key header) are always ``***``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .errors import CrawlRunnerError
from .incremental import VARIABLE, Cursors
from .plan import RequestPlan, count_requests, plan_target
from .secrets import MASK
from .spec.model import Spec, Target


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One start request, as it would be sent, secrets masked."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    gateway: str | None = None  # the rendering API's endpoint the request goes through
    invalid: str | None = None  # why the request cannot be sent, if it cannot
    body: str | None = None  # the body as sent (JSON, a form's urlencoded fields or raw text), if any


@dataclass(frozen=True, slots=True)
class CursorPlan:
    """Where an incremental target would start: what ``{incremental}`` is on the next run.

    For a child target, each parent record has a cursor of its own:
    ``scopes`` of them are known, and ``value`` is what a parent without one
    starts at (``initial``); ``run_id`` is then the latest run one came from.
    """

    where: str  # what the request fills with it: a parameter or header name, "url" or "body"
    value: Any  # as a start request would send it
    lag: float
    lag_unit: str  # "s" for dates and date-times; "" for numbers
    run_id: int | None = None  # the completed run the value comes from; None: initial
    scopes: int | None = None  # a child target: parent records with a cursor of their own
    unknown: str | None = None  # why the database could not be read (the value is then initial)


@dataclass(frozen=True, slots=True)
class SincePlan:
    """What a sitemap target's ``since: last_run`` stands for on the next run: pages older are not fetched.

    ``started`` is the start of run ``run_id``, the last that crawled the
    target without a failure (``sitemaps.LastRun``); both None: no run
    counts yet, and every page is due.
    """

    run_id: int | None = None
    started: datetime | None = None
    unknown: str | None = None  # why the database could not be read


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """A target's requests: how many start requests, the first few, and where more come from.

    A child target (``parent`` set) has no start requests (``count`` is
    None): it makes one request per record of its parent, to the URL in the
    record's ``url_field`` or to ``url_template`` filled from the record.
    """

    target: str
    count: int | None
    requests: tuple[PlannedRequest, ...] = ()
    pagination: str | None = None  # the pagination type, when pages add requests
    follow_depth: int | None = None  # the link-following depth, when links add requests
    sitemaps: bool = False  # its start requests are sitemaps: the pages they list add requests
    parent: str | None = None
    url_field: str | None = None
    url_template: str | None = None
    incremental: CursorPlan | None = None
    since: SincePlan | None = None  # a sitemap target with since: last_run


def preview_plan(
    spec: Spec, *, only: Iterable[str] | None = None, first: int = 5, output: str | Path | None = None
) -> list[TargetPlan]:
    """The plan of each of ``spec``'s targets (or the ``only`` ones), with its ``first`` requests.

    Nothing is fetched. An unknown name in ``only`` raises ``UnknownTargetError``.
    Incremental targets start where the spec's completed runs in ``output``
    (default: the spec's) got to, read without writing; without a database,
    at their ``initial``. What sitemap targets' ``since: last_run`` stands
    for is read the same way (without a database: no run yet, every page).
    """
    wanted = None if only is None else list(only)
    if wanted is not None:
        spec.check_targets(wanted)
    targets = [t for t in spec.targets if wanted is None or t.name in wanted]
    cursors, unknown = _cursors(spec, output, targets)
    since = _since_plans(spec, output, targets)
    return [replace(_target_plan(spec, t, first, cursors, unknown), since=since.get(t.name)) for t in targets]


def _cursors(spec: Spec, output: str | Path | None, targets: list[Target]) -> tuple[Cursors, str | None]:
    """What the spec's completed runs reached, and why it is unknown (a database that cannot be read)."""
    if not any(t.incremental is not None for t in targets):
        return Cursors(), None
    from .backends import read_cursors

    try:
        return read_cursors(output if output is not None else spec.default_output, spec), None
    except CrawlRunnerError as exc:
        return Cursors(), spec.redactor(str(exc))


def _since_plans(spec: Spec, output: str | Path | None, targets: list[Target]) -> dict[str, SincePlan]:
    """Per sitemap target with ``since: last_run``, what it stands for in the spec's next run."""
    wanted = [t.name for t in targets if t.sitemap is not None and t.sitemap.since == "last_run"]
    if not wanted:
        return {}
    from .backends import read_last_runs

    try:
        known = read_last_runs(output if output is not None else spec.default_output, spec)
    except CrawlRunnerError as exc:
        return dict.fromkeys(wanted, SincePlan(unknown=spec.redactor(str(exc))))
    return {
        name: SincePlan(known[name].run_id, known[name].started) if name in known else SincePlan() for name in wanted
    }


def _cursor_plan(target: Target, cursors: Cursors, unknown: str | None) -> CursorPlan:
    incremental = target.incremental
    assert incremental is not None
    known = cursors.of(target)
    unit = "s" if incremental.type in ("date", "datetime") else ""
    plan = CursorPlan(_where(target), incremental.initial, incremental.lag, unit, unknown=unknown)
    if target.parent is not None:
        return replace(plan, scopes=len(known), run_id=max((k.run_id for k in known), default=None))
    if known:
        return replace(plan, value=cursors.value(target), run_id=known[0].run_id)
    return plan


def _where(target: Target) -> str:
    """What the target's request fills with ``{incremental}``: the first parameter or header that uses it, else url or body."""
    request = target.request
    for templates in (request.params, request.headers):
        for name, template in templates.items():
            if VARIABLE in template.names:
                return name
    return "url" if any(VARIABLE in url.names for url in request.urls) else "body"


def count_start_requests(spec: Spec) -> tuple[int, bool]:
    """How many start requests ``spec`` has, and whether pages, links or parent records add more."""
    counts = [count_requests(t) for t in spec.targets]
    start = sum(c for c in counts if c is not None)
    dynamic = any(c is None or t.paginate or t.follow or t.sitemap for c, t in zip(counts, spec.targets, strict=True))
    return start, dynamic


def _target_plan(spec: Spec, target: Target, first: int, cursors: Cursors, unknown: str | None) -> TargetPlan:
    count = count_requests(target)
    plan = TargetPlan(
        target.name,
        count,
        pagination=target.paginate.type if target.paginate else None,
        follow_depth=target.follow.max_depth if target.follow else None,
        sitemaps=target.sitemap is not None,
        parent=target.parent,
        incremental=_cursor_plan(target, cursors, unknown) if target.incremental is not None else None,
    )
    if count is not None:
        return replace(plan, requests=_first_requests(spec, target, first, cursors))
    if target.url_field:
        return replace(plan, url_field=target.url_field)
    return replace(plan, url_template=spec.redactor(target.request.urls[0].source))


def _first_requests(spec: Spec, target: Target, first: int, cursors: Cursors) -> tuple[PlannedRequest, ...]:
    # Imported here: auth pulls in aiohttp, which `crawlrunner validate` (a user of
    # count_start_requests) should not pay for.
    from .http.auth import credentials

    redact = spec.redactor
    creds = credentials(target.fetch.auth)
    auth = dict.fromkeys(creds.headers, MASK)
    if creds.token_header is not None and target.fetch.auth is not None:
        # Nothing is fetched to plan: the token comes when the run starts.
        auth[creds.token_header] = f"{MASK} (auth {target.fetch.auth.type}: a token fetched when the run starts)"
    gateway = redact(target.fetch.gateway.endpoint) if target.fetch.gateway is not None else None
    return tuple(
        PlannedRequest(
            request.method,
            redact(request.url),
            # Auth's own headers are masked whole: a Basic token is a secret even though
            # it is not spelled like any value from the environment.
            {
                name: auth[name] if name in auth else redact(value)
                for name, value in {**request.headers, **auth}.items()
            },
            gateway,
            redact(request.invalid) if request.invalid else None,
            body_text(request, redact),
        )
        for request in itertools.islice(plan_target(target, cursors), first)
    )


# A body longer than this is cut in the preview (a long GraphQL query, say).
BODY_PREVIEW = 2000


def body_text(request: RequestPlan, redact: Callable[[str], str]) -> str | None:
    """The request's body as it goes on the wire, secrets masked (before it is cut, so none is cut in half)."""
    if request.json_body is not None:
        text = json.dumps(request.json_body, ensure_ascii=False)
    elif isinstance(request.data, Mapping):
        text = urlencode(request.data)
    elif request.data is not None:
        text = str(request.data)
    else:
        return None
    text = redact(text)
    return text if len(text) <= BODY_PREVIEW else text[:BODY_PREVIEW] + "…"
