"""Try one page: fetch a single request of a target, extract, and say what came of it.

The data behind ``crawlrunner try`` (the role of ``scrapy parse``)::

    import crawlrunner

    spec = crawlrunner.load_spec("shop.yaml")
    page = crawlrunner.try_page(spec, "catalogue")        # its first planned request
    print(page.problem or [r.values for r in page.records])

One request, sent the way a run sends it: the spec's HTTP settings (headers,
auth, TLS, timeouts, retries, the gateway; a body is read into memory even
with ``download: true``), the address guard and
``allowed_hosts``, and robots.txt for a target with ``follow.robots: true``
(a page robots.txt forbids is not fetched; ``skipped`` says so). Or no
request at all: ``body`` is a saved page, extracted as if fetched from
``url``. The page then goes through the same ``extract.process`` as in a
run; nothing is written anywhere, and the requests it leads to (the next
page, followed links, child-target requests) are reported, not made.

Each field of each record says where its value came from (the field's
source as the spec writes it), whether it came from ``default:`` and why a
value that could not be converted to the field's type is null. Everything
returned is safe to show: values from the environment are masked, as
``preview`` masks them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, urljoin, urlsplit

from .api import redacted_logs
from .document import Page
from .errors import ErrorKind, ExtractError, UsageError
from .extract import field_value, page_format, process, schema_error
from .follow import FollowScope, is_link, start_hosts
from .plan import SITEMAP, PageChain, RequestPlan, page_key, plan_target, sitemap_page_requests
from .preview import body_text
from .results import ChainEnd, FetchResult, Outcome, utc_now
from .runtime import blocking
from .secrets import Redactor
from .spec.model import Extraction, Field, Format, Spec, Target

FIRST = 10  # requests kept per group of derived requests
SKIPPED_BY_ROBOTS = "disallowed by robots.txt (the target has follow.robots: true)"
_UNREADABLE = frozenset({ErrorKind.EXTRACT_ERROR, ErrorKind.CHARSET_ERROR})  # fetched, but extraction failed
_HTML_TEXT = ("css", "xpath", "regex")  # sources whose HTML values are text unless typed
_CONTENT_TYPES = {"json": "application/json", "html": "text/html"}


@dataclass(frozen=True, slots=True)
class TrialRequest:
    """A request, as it would be sent (secrets masked)."""

    method: str
    url: str
    invalid: str | None = None  # why it cannot be sent, if it cannot
    body: str | None = None  # its body, if it has one: what tells the pages of a chain paginated in the body apart


@dataclass(frozen=True, slots=True)
class PageFetch:
    """How the page was got: the response's facts, or why there is none."""

    method: str
    url: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int = 0  # bytes of the body
    elapsed: float = 0.0  # seconds, retries included
    attempts: int = 1
    gateway: str | None = None  # the rendering API's endpoint the request went through
    saved: bool = False  # read from a saved body: nothing was fetched
    error_kind: ErrorKind | None = None
    error: str | None = None
    skipped: str | None = None  # why the request was not sent (robots.txt)

    @property
    def ok(self) -> bool:
        return self.error_kind is None and self.skipped is None


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One field of one record: its value as stored, and where it came from."""

    name: str
    value: Any  # after type conversion; None when empty
    source: str  # the field's rules as the spec writes them: "css: span.price, regex: ..., type: float"
    found: bool  # the source found something on the page (before any default)
    from_default: bool = False  # the value is the field's ``default:``
    error: str | None = None  # why the found value could not be converted (stored as null)


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A record the page yields, field by field; ``dropped`` says why a run would not store it."""

    fields: tuple[FieldValue, ...]
    dropped: str | None = None

    @property
    def values(self) -> dict[str, Any]:
        return {f.name: f.value for f in self.fields}


@dataclass(frozen=True, slots=True)
class RequestGroup:
    """Requests the page leads to: its followed links, or one child target's requests; a sitemap's entries."""

    target: str
    kind: Literal["links", "children", "sitemap"]
    count: int
    first: tuple[TrialRequest, ...]  # the first few
    not_followed: int = 0  # links a run would not follow: seen, off the target's hosts, past max_pages


@dataclass(frozen=True, slots=True)
class PageTrial:
    """What one page of a target yields, and where it leads."""

    target: str
    fetch: PageFetch
    extracts: bool  # the target has extraction rules
    parent: str | None = None  # a child target's parent: tried alone, its ``parent:`` fields are empty
    records_selector: str | None = None  # as the spec writes it ("li.product"); None: the page is the record
    found: int = 0  # records the records selector found (kept or dropped)
    records: tuple[TrialRecord, ...] = ()
    empty_fields: tuple[str, ...] = ()  # fields that matched nothing on any record
    field_errors: Mapping[str, str] | None = None  # field → the first conversion message
    paginates: bool = False
    next_page: TrialRequest | None = None
    chain_end: ChainEnd | None = None  # where and why the pagination chain ends, if it ends here
    requests: tuple[RequestGroup, ...] = ()
    warning: str | None = None  # a page fetched and parsed, yet suspect (an empty body)

    @property
    def kept(self) -> int:
        """Records a run would store."""
        return sum(1 for r in self.records if r.dropped is None)

    @property
    def problem(self) -> str | None:
        """Why the page yielded nothing (None when it did, or when the target extracts nothing)."""
        if self.fetch.skipped is not None:
            return f"not fetched: {self.fetch.skipped}"
        if self.fetch.error_kind in _UNREADABLE:
            return f"the page could not be read: {self.fetch.error_kind}: {self.fetch.error}"
        if self.fetch.error_kind is not None:
            return f"the fetch failed: {self.fetch.error_kind}: {self.fetch.error}"
        if not self.extracts:
            return None
        if self.found == 0:
            if self.records_selector is not None:
                return f"records selector `{self.records_selector}` matched nothing on this page"
            return self.warning or "no records on this page"
        if self.records and len(self.empty_fields) == len(self.records[0].fields):
            return "no field matched anything on this page: every field is empty"
        if self.kept == 0:
            return f"every record was dropped ({self.found}): {self.records[0].dropped}"
        return None


async def try_page_async(
    spec: Spec,
    target_name: str,
    url: str | None = None,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    first: int = FIRST,
    insecure: bool = False,
) -> PageTrial:
    """Fetch one page of ``target_name`` (or read ``body``), extract it, and report; nothing is stored.

    ``url`` replaces the target's first planned request's URL (relative to
    its base URL); a child target, which has no planned request of its own,
    needs one. With ``body``, nothing is fetched: ``url`` is then only the
    page's address, for resolving its links, and ``content_type`` defaults
    to the target's extraction format's. ``first`` bounds the requests kept
    per group of derived requests (their count is complete).

    Raises ``UnknownTargetError`` for a name the spec lacks, ``UsageError``
    for a missing or unusable URL, ``InsecureTLSError`` for a target with
    ``tls.verify: false`` unless ``insecure``. A failed fetch is not raised:
    ``fetch.error_kind`` says what happened.
    """
    target = spec.target(target_name)
    if body is None and not insecure:
        spec.check_tls([target.name])
    plan = _request(target, url, saved=body is not None)
    redact = spec.redactor
    with redacted_logs(spec):
        if body is not None:
            fetched: FetchResult | str = FetchResult(
                target.name, plan.method, plan.url, utc_now(), final_url=plan.url, body=body,
                content_type=content_type or _CONTENT_TYPES[page_format(target)],
            )  # fmt: skip
        else:
            fetched = await _fetch(spec, target, plan)
    facts = PageFetch(plan.method, redact(plan.url), saved=body is not None)
    if target.fetch.gateway is not None:
        facts = replace(facts, gateway=redact(target.fetch.gateway.endpoint))
    if isinstance(fetched, str):  # not sent
        return PageTrial(target.name, replace(facts, skipped=fetched), target.extract is not None, target.parent)
    children = spec.children(target.name)
    outcome = process(plan, fetched, children=children)
    return _trial(spec, plan, outcome, facts, children, first)


try_page = blocking(try_page_async, "try_page", """Blocking form of ``try_page_async``; the same arguments.""")


def _request(target: Target, url: str | None, *, saved: bool) -> RequestPlan:
    """The request to try: the target's first planned one, at ``url`` if given."""
    planned = next(plan_target(target), None)
    if url is None:
        if planned is not None:
            return planned
        if saved and target.request.base_url:  # only links are resolved against it
            return RequestPlan(target, target.request.base_url, target.method)
        raise UsageError(
            f"target {target.name!r} has no requests of its own (they come from the records of {target.parent!r}): "
            f"give the URL of a page to try, as in: crawlrunner try SPEC {target.name} URL"
        )
    if target.request.base_url:
        url = urljoin(target.request.base_url, url)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise UsageError(f"not an http(s) URL: {url[:200]}")
    if planned is not None and planned.role == SITEMAP:  # a page, requested as a sitemap listing it would have it
        return next(sitemap_page_requests(target, {"url": url, "lastmod": ""}))
    if planned is None or planned.invalid is not None:
        headers = target.request.static_headers or {}
        return RequestPlan(target, url, target.method, headers)
    paginate, page = target.paginate, planned.page
    if paginate is not None and paginate.type in ("page_number", "offset") and paginate.location == "query":
        # The counter carries on from the page the URL names (in the body, it is the planned first page's).
        value = dict(parse_qsl(urlsplit(url).query)).get(paginate.param)
        page = int(value) if value is not None and value.lstrip("-").isdigit() else paginate.start
    tried = planned.with_url(url, page=page)
    return replace(tried, chain=PageChain(seen={page_key(tried, paginate)}) if paginate is not None else None)


async def _fetch(spec: Spec, target: Target, plan: RequestPlan) -> FetchResult | str:
    """The response to ``plan``, through the run's fetcher; a str: why it was not sent."""
    # As the engine does for each request of a run.
    from .engine import checked_fetch, target_client
    from .http.fetcher import Fetcher
    from .http.ratelimit import HostSlots
    from .http.robots import RobotsPolicy
    from .http.session import client_timeout, open_session
    from .http.tokens import TokenSources

    async with open_session(spec.http) as session:
        fetcher = Fetcher(
            session,
            HostSlots(spec.http.limits.per_host),
            block_private=spec.http.block_private_addresses,
            allowed_hosts=spec.http.allowed_hosts,
        )
        robots = RobotsPolicy(session, spec.http.user_agent, client_timeout(spec.http.timeout))
        # A body is read into memory even for a target that downloads to files: a trial writes nothing.
        tokens = TokenSources(fetcher, spec.redactor, spec.http.user_agent)
        client = target_client(spec, replace(target, fetch=replace(target.fetch, download=False)), tokens)
        result = await checked_fetch(fetcher, robots, plan, client)
        return SKIPPED_BY_ROBOTS if result is None else result


def _trial(
    spec: Spec, plan: RequestPlan, outcome: Outcome, facts: PageFetch, children: tuple[Target, ...], first: int
) -> PageTrial:
    redact, target, fetch = spec.redactor, plan.target, outcome.fetch
    facts = replace(
        facts,
        final_url=redact(fetch.final_url) if fetch.final_url else None,
        status=fetch.status,
        content_type=fetch.content_type,
        size=fetch.size,
        elapsed=fetch.elapsed,
        attempts=fetch.attempts,
        error_kind=fetch.error_kind,
        error=redact(fetch.error) if fetch.error and not fetch.ok else None,
    )
    # A HEAD request has no body: nothing to extract, as in a run.
    extracts = target.extract is not None and plan.method != "HEAD" and plan.role is None  # a sitemap has no records
    paginates = target.paginate is not None and plan.role is None
    trial = PageTrial(target.name, facts, extracts, target.parent, paginates=paginates)
    if not fetch.ok:
        return replace(trial, chain_end=outcome.chain_end)
    extraction = target.extract
    if extraction is not None and extracts:
        records = _traced(extraction, Page(fetch, page_format(target)), plan, redact)
        names = [f.name for f in extraction.fields]
        empty = [n for i, n in enumerate(names) if records and not any(r.fields[i].found for r in records)]
        trial = replace(
            trial,
            records_selector=_selector_text(extraction, redact),
            found=outcome.items,
            records=tuple(records),
            empty_fields=tuple(empty),
            field_errors={name: redact(message) for name, message in outcome.field_error_examples.items()},
        )
    derived = list(outcome.derived)
    next_page = None
    if paginates and outcome.chain_end is None and derived:
        next_page = _shown(derived.pop(0), redact)
    return replace(
        trial,
        next_page=next_page,
        chain_end=outcome.chain_end,
        requests=_groups(plan, derived, children, first, redact),
        warning=fetch.error if fetch.error else None,  # a page's warning, on a fetch that succeeded
    )


def _traced(extraction: Extraction, page: Page, plan: RequestPlan, redact: Redactor) -> list[TrialRecord]:
    """Every record the page holds, each field with its provenance.

    The same steps as ``extract.extract_records`` (a test holds the two
    together): raw value, default, type conversion, then ``required`` and
    the record schema decide whether the record is kept.
    """
    try:
        nodes = page.records(extraction.records)
    except ExtractError:  # process() already recorded it as the fetch's failure
        return []
    sources = [_source_text(field, extraction.format, redact) for field in extraction.fields]
    records = []
    for node in nodes:
        fields = []
        record: dict[str, Any] = {}  # the values as extraction has them, for the record schema
        missing = []
        for field, source in zip(extraction.fields, sources, strict=True):
            value, found, failed = field_value(field, page, node, plan)
            error = redact(str(failed)) if failed is not None else None
            if value is None and field.required:
                missing.append(field.name)
            record[field.name] = value
            from_default = not found and field.default is not None
            fields.append(FieldValue(field.name, _masked(value, redact), source, found, from_default, error))
        dropped = f"required field(s) empty: {', '.join(missing)}" if missing else None
        if dropped is None and extraction.record_validator is not None:
            why = schema_error(extraction.record_validator, record)
            dropped = f"record schema, {why}" if why is not None else None
        records.append(TrialRecord(tuple(fields), dropped))
    return records


def _groups(
    plan: RequestPlan, derived: Sequence[RequestPlan], children: tuple[Target, ...], first: int, redact: Redactor
) -> tuple[RequestGroup, ...]:
    """The followed links a run would make of the page's, and each child target's requests; a sitemap's entries."""
    if plan.role == SITEMAP:
        shown = tuple(_shown(request, redact) for request in derived[:first])
        return (RequestGroup(plan.target.name, "sitemap", len(derived), shown),)
    groups = []
    follow = plan.target.follow
    if follow is not None:
        links = [d for d in derived if is_link(d, plan)]
        # What the frontier would admit if this page were the crawl's first.
        scope = FollowScope(follow, start_hosts(plan.target))
        scope.admit_start(plan)
        followed = [link for link in links if scope.admit(link, plan)]
        shown = tuple(_shown(link, redact) for link in followed[:first])
        groups.append(RequestGroup(plan.target.name, "links", len(followed), shown, len(links) - len(followed)))
    for child in children:
        requests = [d for d in derived if d.target is child]
        shown = tuple(_shown(request, redact) for request in requests[:first])
        groups.append(RequestGroup(child.name, "children", len(requests), shown))
    return tuple(groups)


def _shown(plan: RequestPlan, redact: Redactor) -> TrialRequest:
    return TrialRequest(
        plan.method, redact(plan.url), redact(plan.invalid) if plan.invalid else None, body_text(plan, redact)
    )


def _masked(value: Any, redact: Redactor) -> Any:
    """A record value with the spec's secrets masked in its text (a page may echo a key back)."""
    if not redact:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_masked(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, redact) for k, v in value.items()}
    return value


def _selector_text(extraction: Extraction, redact: Redactor) -> str | None:
    selector = extraction.records
    return None if selector is None else redact(selector.source)


def _source_text(field: Field, fmt: Format, redact: Redactor) -> str:
    """The field's rules, in the spec's words: ``css: span.price, regex: ([0-9.]+), type: float``.

    Settings the spec did not need to write (a regex's group 1, ``str`` for
    HTML text) are left out.
    """
    parts = []
    if field.selector is not None:
        parts.append(f"{field.selector.language}: {field.selector.source}")
    if field.regex is not None:
        parts.append(f"regex: {field.regex.pattern}")
        if field.group != (1 if field.regex.groups else 0):
            parts.append(f"group: {field.group}")
    if field.has_const:
        parts.append(f"const: {json.dumps(field.const, default=str)}")
    if field.meta is not None:
        parts.append(f"meta: {field.meta}")
    if field.parent is not None:
        parts.append(f"parent: {field.parent}")
    if field.many:
        parts.append("many: true")
    if field.join is not None:
        parts.append(f"join: {json.dumps(field.join)}")
    if field.type is not None and not (field.type == "str" and fmt == "html" and field.source in _HTML_TEXT):
        parts.append(f"type: {field.type}")
    if field.date_format is not None:
        parts.append(f"date_format: {field.date_format}")
    if field.decimal is not None:
        parts.append(f"decimal: {json.dumps(field.decimal)}")
    if field.default is not None:
        parts.append(f"default: {json.dumps(field.default, default=str)}")
    if field.required:
        parts.append("required: true")
    return redact(", ".join(parts))
