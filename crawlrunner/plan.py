"""Targets → the requests to make, produced lazily.

A target's start requests are its URL templates rendered for every
combination of its variables (ranges and lists) and seed-file rows: a
cartesian product walked with nested loops, so a template over a million
values never builds a million objects. Child targets have no start requests:
theirs are rendered from parent records as they arrive (``child_requests``).
A target seeded by sitemaps starts with its sitemap documents (role
``SITEMAP``); the pages they list are rendered as they are read
(``sitemap_page_requests``), like seed-file rows with a ``url`` column.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .errors import TemplateError
from .incremental import VARIABLE, Cursors
from .spec.model import IntRange, Paginate, SeedFile, Spec, Target
from .spec.pagination import json_kind
from .templates import render_tree, value_text

# ``RequestPlan.role`` (``requests.role``) of a sitemap document, or of the
# robots.txt read to find sitemaps: not a page, so it has no records.
SITEMAP = "sitemap"
ROBOTS_PATH = "/robots.txt"


@dataclass(slots=True)
class PageChain:
    """State shared by the pages of one pagination chain (mutable on purpose)."""

    pages: int = 1
    items: int = 0
    seen: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RequestPlan:
    """One request to make for a target, and where it sits in the crawl.

    The one typed request record that crosses plan, frontier and sink.
    Treated as immutable (changes make a copy with ``with_url``), except
    ``seq`` and ``request_id``, which the frontier fills in once, before the
    plan is shared: a copy per request would cost more than the request.
    """

    target: Target = field(repr=False)
    url: str = field(repr=False)
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json_body: Any = field(default=None, repr=False)
    data: Any = field(default=None, repr=False)  # form mapping or raw text
    depth: int = 0
    page: int = 0  # page number or offset, for counter pagination
    chain: PageChain | None = field(default=None, repr=False, compare=False)
    # Where this page stood in its chain when it was derived: (pages, items) so far. Kept for
    # resume: ``chain`` is shared by the chain's pages and moves on before this plan is saved.
    chain_at: tuple[int, int] | None = field(default=None, repr=False, compare=False)
    parent: Mapping[str, Any] | None = field(default=None, repr=False)
    invalid: str | None = None  # why this request cannot be sent, if it cannot
    seq: int | None = None  # a start request's position in the plan (for resume)
    request_id: int | None = None  # its id in the run (the requests table's row, for SQLite)
    role: str | None = None  # None: a page; SITEMAP: a sitemap document (depth: its index level)

    def with_url(self, url: str, **changes: Any) -> RequestPlan:
        return replace(self, url=url, **changes)


def with_query_param(url: str, name: str, value: Any) -> str:
    """``url`` with the query parameter ``name`` set to ``value`` (replacing it)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value_text(value)))
    return urlunsplit(parts._replace(query=urlencode(query)))


@lru_cache(maxsize=64)
def _origin_of_root(base: str) -> str | None:
    """``base`` without its trailing "/" if it is just an origin; else None."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}" if parts.path in ("", "/") and not parts.query else None


def _join(base: str, url: str) -> str:
    # The common case, "/path" on an origin, without urljoin's full parse.
    if url.startswith("/") and not url.startswith("//"):
        origin = _origin_of_root(base)
        if origin is not None:
            return origin + url
    return urljoin(base, url)


def render(target: Target, values: Mapping[str, Any], url_index: int, *, base: str | None = None) -> RequestPlan:
    """The request for one combination of variable values."""
    request = target.request
    try:
        url = request.urls[url_index].render(values, url=True)
        joined_base = base or request.base_url
        if joined_base and not url.startswith(("http://", "https://")):
            url = _join(joined_base, url)
        if request.params:
            query = urlencode({k: t.render(values) for k, t in request.params.items()})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        headers = request.static_headers
        if headers is None:
            headers = {k: t.render(values) for k, t in request.headers.items()}
        data: Any = None
        if request.form is not None:
            data = {k: t.render(values) for k, t in request.form.items()}
        elif request.body is not None:
            data = request.body.render(values)
        json_body = render_tree(request.json_body, values) if request.has_json_body else None
    except TemplateError as exc:
        return RequestPlan(target, request.urls[url_index].source, request.method, invalid=str(exc))
    if not url.startswith(("http://", "https://")) and urlsplit(url).scheme.lower() not in ("http", "https"):
        return RequestPlan(target, url, request.method, invalid=f"not an http(s) URL: {url[:200]}")
    plan = RequestPlan(target, url, request.method, headers, json_body, data)
    return _first_page(plan)


def _first_page(plan: RequestPlan) -> RequestPlan:
    """Counter pagination numbers the first page too, in the query or the body."""
    paginate = plan.target.paginate
    if paginate is None:
        return plan
    try:
        if paginate.type in ("page_number", "offset"):
            plan = with_page_value(plan, paginate, paginate.param, paginate.start, page=paginate.start)
            if paginate.limit is not None and paginate.limit_param:
                plan = with_page_value(plan, paginate, paginate.limit_param, paginate.limit)
        elif paginate.location == "body":
            # A cursor goes in from the second page on (the first sends what the
            # template has); a body with no room for it fails here, not then.
            with_page_value(plan, paginate, paginate.param, None)
    except TemplateError as exc:
        return replace(plan, invalid=str(exc))
    return replace(plan, chain=PageChain(seen={page_key(plan, paginate)}))


def with_page_value(plan: RequestPlan, paginate: Paginate, name: str, value: Any, **changes: Any) -> RequestPlan:
    """``plan`` with ``value`` sent as ``name`` where ``paginate`` puts it (``in``), and ``changes`` made.

    ``in: query`` sets a query parameter, ``header`` a header; ``body`` a
    form field, or in a JSON body a dotted path whose missing objects are
    created. The body is copied, never changed in place: the previous
    page's request may still be waiting to be stored. Raises TemplateError
    when the JSON body has something else than an object on the way (only
    a template variable can put it there: the spec's own structure is
    checked when it loads).
    """
    if paginate.location == "header":
        changes["headers"] = {**plan.headers, name: value_text(value)}
    elif paginate.location == "body" and isinstance(plan.data, Mapping):
        changes["data"] = {**plan.data, name: value_text(value)}
    elif paginate.location == "body":
        changes["json_body"] = _with_json_value(plan.json_body, name.split("."), value, "")
    else:
        changes["url"] = with_query_param(plan.url, name, value)
    return replace(plan, **changes)


def _with_json_value(node: Any, names: list[str], value: Any, where: str) -> dict[str, Any]:
    """A copy of ``node`` with ``value`` at the path ``names`` (``where``: the path to ``node``)."""
    if node is None:
        node = {}
    if not isinstance(node, dict):
        found = f"{where!r} is" if where else "the body is"
        raise TemplateError(f"cannot put the page into the JSON body: {found} {json_kind(node)}, not an object")
    first, rest = names[0], names[1:]
    inner = f"{where}.{first}" if where else first
    return {**node, first: _with_json_value(node.get(first), rest, value, inner) if rest else value}


def page_key(plan: RequestPlan, paginate: Paginate) -> str:
    """What tells a chain's pages apart, for its loop guard: the URL, and the header or body carrying the page."""
    if paginate.location == "header":
        return f"{plan.url}\x00{plan.headers.get(paginate.param, '')}"
    if paginate.location == "body":
        # Every page has the same URL: the body is what differs (a digest keeps the seen set small).
        body = json.dumps([plan.json_body, plan.data], sort_keys=True, default=str).encode("utf-8")
        return f"{plan.url}\x00{hashlib.blake2b(body, digest_size=16).hexdigest()}"
    return plan.url


def _seed_rows(seeds: SeedFile) -> Iterator[dict[str, Any]]:
    with seeds.path.open(encoding="utf-8", newline="") as fh:
        if seeds.format == "csv":
            yield from csv.DictReader(fh)
        elif seeds.format == "jsonl":
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    yield row if isinstance(row, dict) else {}
        else:
            for line in fh:
                text = line.strip()
                if text and not text.startswith("#"):
                    yield {"url": text}


def _combinations(
    sources: tuple[tuple[str, tuple[Any, ...] | IntRange], ...], base: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The cartesian product of ``sources``, lazily, the last varying fastest."""
    if not sources:
        yield base
        return
    (name, values), rest = sources[0], sources[1:]
    if not rest:  # the last variable, the one varying fastest: no generator per value
        for value in values:
            yield {**base, name: value}
        return
    for value in values:
        yield from _combinations(rest, {**base, name: value})


def target_values(target: Target) -> Iterator[dict[str, Any]]:
    """Every combination of the target's seed rows and variables."""
    rows: Iterable[dict[str, Any]] = _seed_rows(target.seeds) if target.seeds else ({},)
    for row in rows:
        yield from _combinations(target.vars, dict(row))


def plan_target(target: Target, cursors: Cursors | None = None) -> Iterator[RequestPlan]:
    """The target's start requests (none for a child target; its sitemap documents for a sitemap target).

    ``cursors``: where an incremental target starts (None: at its ``initial``).
    """
    if target.parent is not None:
        return
    if target.sitemap is not None:
        yield from sitemap_documents(target)
        return
    cursor = _cursor(target, cursors, None)
    for values in target_values(target):
        if cursor:
            values = {**values, **cursor}
        for index in range(len(target.request.urls)):
            yield render(target, values, index)


def _cursor(target: Target, cursors: Cursors | None, parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{incremental}``'s value, for a request of ``target`` (made from ``parent``); {} if it has none."""
    if target.incremental is None:
        return {}
    return {VARIABLE: (cursors or Cursors()).value(target, parent)}


def plan_requests(spec: Spec, only: Iterable[str] | None = None) -> Iterator[RequestPlan]:
    """Every start request of the spec's targets (or the ``only`` ones), in spec order."""
    wanted = set(only) if only is not None else None
    for target in spec.targets:
        if wanted is None or target.name in wanted:
            yield from plan_target(target)


def sitemap_documents(target: Target) -> Iterator[RequestPlan]:
    """A sitemap target's start requests: its sitemaps, then the robots.txt files that list more."""
    sitemap = target.sitemap
    assert sitemap is not None
    for url in sitemap.urls:
        yield sitemap_document(target, url)
    if sitemap.robots:
        for origin in sitemap.robots_origins:
            yield sitemap_document(target, origin + ROBOTS_PATH)


def sitemap_document(target: Target, url: str, *, depth: int = 0) -> RequestPlan:
    """A GET of one sitemap document (or robots.txt) with the target's headers; ``depth``: its index level.

    The headers are rendered with the document's URL as ``{url}``, as a
    page's would be; the target's method, params and body are for its pages.
    """
    request = target.request
    headers = request.static_headers
    if headers is None:
        try:
            headers = {k: t.render({"url": url, "lastmod": ""}) for k, t in request.headers.items()}
        except TemplateError as exc:
            return RequestPlan(target, url, "GET", invalid=str(exc), depth=depth, role=SITEMAP)
    return RequestPlan(target, url, "GET", headers, depth=depth, role=SITEMAP)


def sitemap_page_requests(target: Target, entry: Mapping[str, Any]) -> Iterator[RequestPlan]:
    """The requests for one page a sitemap lists (``entry``: its absolute ``url`` and ``lastmod``), as for a seed row."""
    for values in _combinations(target.vars, dict(entry)):
        for index in range(len(target.request.urls)):
            yield render(target, values, index)


def count_requests(target: Target) -> int | None:
    """How many start requests the target has (pagination, links and sitemaps may add more).

    None for a child target, whose requests depend on its parent's records.
    """
    if target.parent is not None:
        return None
    if target.sitemap is not None:
        return len(target.sitemap.urls) + (len(target.sitemap.robots_origins) if target.sitemap.robots else 0)
    total = len(target.request.urls)
    for _, values in target.vars:
        total *= len(values)
    if target.seeds is not None:
        total *= sum(1 for _ in _seed_rows(target.seeds))
    return total


def child_requests(
    child: Target, record: Mapping[str, Any], page_url: str, cursors: Cursors | None = None
) -> Iterator[RequestPlan]:
    """Requests of ``child`` for one parent record.

    A URL taken from a parent field is relative to the parent's page, like a
    link; a URL template is relative to ``http.base_url`` when there is one.
    An incremental child's cursor is the one of this parent record (``cursors``).
    """
    values: Mapping[str, Any] = record
    if child.incremental is not None:
        values = {**record, **_cursor(child, cursors, record)}
    base = child.request.base_url or page_url
    if child.url_field is not None:
        base = page_url
        link = record.get(child.url_field)
        if link is None or link == "":
            return
        values = {**values, "url": value_text(link)}
    for index in range(len(child.request.urls)):
        plan = render(child, values, index, base=base)
        yield replace(plan, parent=record)
