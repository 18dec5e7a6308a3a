"""Sitemaps as seeds without sockets: start requests, a document's derived requests, the run-wide budget, rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crawlrunner.backends.base import RunLimits
from crawlrunner.backends.local import LocalFrontier, LocalState, numbered
from crawlrunner.backends.rows import COLUMNS, request_row, restore_plan
from crawlrunner.errors import ErrorKind
from crawlrunner.extract import process
from crawlrunner.follow import FollowScope, is_link, start_hosts
from crawlrunner.plan import SITEMAP, RequestPlan, count_requests, plan_target, sitemap_document
from crawlrunner.results import FetchResult
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec, Target

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _spec(seeds: str, extra: str = "") -> Spec:
    return load_spec_text(
        "name: s\nhttp: {base_url: 'https://shop.example', headers: {X-Token: abc}}\ntargets:\n"
        f"  - name: t\n    seeds: {seeds}\n{extra}"
    )


def _fetch(plan: RequestPlan, body: str | bytes, status: int = 200, **changes: Any) -> FetchResult:
    data = body.encode() if isinstance(body, str) else body
    return FetchResult(plan.target.name, "GET", plan.url, "", status=status, body=data, **changes)


def _urlset(*locs: str, lastmod: str | None = None) -> str:
    modified = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
    return f'<urlset xmlns="{NS}">' + "".join(f"<url><loc>{u}</loc>{modified}</url>" for u in locs) + "</urlset>"


def _index(*locs: str) -> str:
    return (
        f'<sitemapindex xmlns="{NS}">' + "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in locs) + "</sitemapindex>"
    )


def _document(target: Target, url: str = "https://shop.example/sitemap.xml", depth: int = 0) -> RequestPlan:
    return sitemap_document(target, url, depth=depth)


def test_a_sitemap_target_starts_with_its_sitemaps_then_the_robots_txt_that_list_more() -> None:
    target = _spec(
        "{sitemap: [/a.xml, 'https://other.example/b.xml.gz', /a.xml], robots: true}",
        "    url: /api?u={url}\n    method: POST\n    params: {key: k}\n",
    ).targets[0]

    starts = list(plan_target(target))

    assert [(p.url, p.method, p.role, p.depth) for p in starts] == [
        ("https://shop.example/a.xml", "GET", SITEMAP, 0),
        ("https://other.example/b.xml.gz", "GET", SITEMAP, 0),
        ("https://shop.example/robots.txt", "GET", SITEMAP, 0),
        ("https://other.example/robots.txt", "GET", SITEMAP, 0),
    ]
    assert starts[0].headers["X-Token"] == "abc" and starts[0].json_body is None and starts[0].data is None
    assert count_requests(target) == 4


def test_a_document_leads_to_nested_sitemaps_and_a_request_per_page() -> None:
    target = _spec(
        "{sitemap: /i.xml}", "    url: /{lang}/page?u={url}&m={lastmod}\n    vars: {lang: [en, de]}\n"
    ).targets[0]
    body = _index("/s1.xml", "https://shop.example/s1.xml", "mailto:x@y") + "\n"
    index_plan = _document(target)

    index_outcome = process(index_plan, _fetch(index_plan, body))
    assert [(r.url, r.role, r.depth) for r in index_outcome.derived] == [("https://shop.example/s1.xml", SITEMAP, 1)]

    document = index_outcome.derived[0]
    body = _urlset("https://shop.example/p/1", "/p/2", "https://shop.example/p/1", lastmod="2024-05-01")
    outcome = process(document, _fetch(document, body))

    assert not outcome.records and not outcome.extracted and outcome.fetch.ok
    assert [(r.url, r.role, r.depth, r.headers["X-Token"]) for r in outcome.derived] == [
        ("https://shop.example/en/page?u=https%3A//shop.example/p/1&m=2024-05-01", None, 0, "abc"),
        ("https://shop.example/de/page?u=https%3A//shop.example/p/1&m=2024-05-01", None, 0, "abc"),
        ("https://shop.example/en/page?u=https%3A//shop.example/p/2&m=2024-05-01", None, 0, "abc"),
        ("https://shop.example/de/page?u=https%3A//shop.example/p/2&m=2024-05-01", None, 0, "abc"),
    ]  # each page once (p/1 is listed twice), for each of the target's vars


def test_since_max_depth_and_max_urls_apply_within_a_document() -> None:
    target = _spec("{sitemap: /i.xml, max_depth: 1, max_urls: 2}").targets[0]
    deep = _document(target, depth=1)
    body = _urlset("/p/1", "/p/2", "/p/3", "/p/4")
    old_and_new = f'<urlset xmlns="{NS}"><url><loc>/old</loc><lastmod>2020-01-01</lastmod></url></urlset>'

    outcome = process(deep, _fetch(deep, body))
    assert [r.url for r in outcome.derived] == ["https://shop.example/p/1", "https://shop.example/p/2"]
    assert outcome.fetch.error == "sitemap limit: max_urls 2 reached; 2 URLs not fetched"
    assert outcome.fetch.error_kind is None  # the document was read: a cut, not a failure

    nested = process(deep, _fetch(deep, _index("/a.xml", "/b.xml")))
    assert nested.derived == []
    assert nested.fetch.error == "sitemap limit: max_depth 1 reached; 2 nested sitemaps not read"

    since = datetime(2024, 1, 1, tzinfo=UTC)
    assert process(deep, _fetch(deep, old_and_new), since=since).derived == []


def test_a_document_that_is_not_a_sitemap_fails_and_leads_nowhere() -> None:
    target = _spec("{sitemap: /s.xml}").targets[0]
    plan = _document(target)

    outcome = process(plan, _fetch(plan, "<html><a href='/x'>x</a></html>"))

    assert outcome.derived == [] and outcome.chain_end is None
    assert outcome.fetch.error_kind == ErrorKind.EXTRACT_ERROR
    assert outcome.fetch.error == "not a sitemap: the document is <html>, not <urlset> or <sitemapindex>"


def test_robots_txt_gives_its_sitemaps_and_a_missing_one_is_no_failure() -> None:
    target = _spec("{robots: true}").targets[0]
    (robots,) = plan_target(target)

    listed = process(
        robots, _fetch(robots, "User-agent: *\nDisallow: /x\nSitemap: /b.xml\nsitemap: https://shop.example/a.xml\n")
    )
    assert [(r.url, r.role, r.depth) for r in listed.derived] == [
        ("https://shop.example/a.xml", SITEMAP, 0), ("https://shop.example/b.xml", SITEMAP, 0),
    ]  # fmt: skip

    none = process(robots, _fetch(robots, "User-agent: *\nDisallow:\n"))
    assert none.derived == [] and none.fetch.ok and none.fetch.error == "robots.txt lists no sitemap"

    missing = _fetch(robots, "", status=404, error_kind=ErrorKind.HTTP_STATUS, error="HTTP 404 Not Found")
    outcome = process(robots, missing)
    assert outcome.fetch.ok and outcome.fetch.error == "no robots.txt (HTTP 404): robots.txt lists no sitemap"


async def test_the_frontier_counts_max_urls_across_documents() -> None:
    target = _spec("{sitemap: [/a.xml, /b.xml], max_urls: 3}").targets[0]
    frontier = LocalFrontier([target], LocalState(1, start=numbered(plan_target(target))), RunLimits())

    a = await frontier.claim()
    assert a is not None
    first = process(a, _fetch(a, _urlset("/p/1", "/p/2")))
    assert [r.url for r in frontier.admit(a, first)] == ["https://shop.example/p/1", "https://shop.example/p/2"]
    await frontier.complete(a, [])

    b = await frontier.claim()
    assert b is not None and b.url == "https://shop.example/b.xml"
    second = process(b, _fetch(b, _urlset("/p/3", "/p/4", "/p/5")))

    assert [r.url for r in frontier.admit(b, second)] == ["https://shop.example/p/3"]
    assert second.fetch.error == "sitemap limit: max_urls 3 reached; 2 URLs not fetched"


async def test_the_frontier_reads_each_sitemap_once_however_many_list_it() -> None:
    target = _spec("{sitemap: [/i.xml, /b.xml, /i.xml], robots: true}").targets[0]
    bodies = {
        "/i.xml": _index("/b.xml", "/c.xml", "/i.xml"),
        "/b.xml": _urlset("/p/1"),
        "/c.xml": _index("/b.xml"),
        "/robots.txt": "Sitemap: /c.xml\nSitemap: /d.xml\n",
        "/d.xml": _urlset("/p/2"),
    }
    frontier = LocalFrontier([target], LocalState(1, start=numbered(plan_target(target))), RunLimits())
    fetched = []
    while (plan := await frontier.claim()) is not None:
        path = plan.url.removeprefix("https://shop.example")
        fetched.append(path)
        outcome = process(plan, _fetch(plan, bodies.get(path, "<html/>")))
        await frontier.complete(plan, frontier.admit(plan, outcome))

    assert sorted(fetched) == ["/b.xml", "/c.xml", "/d.xml", "/i.xml", "/p/1", "/p/2", "/robots.txt"]


async def test_an_indexs_sitemaps_wait_until_the_pages_found_so_far_are_taken() -> None:
    target = _spec("{sitemap: /i.xml}").targets[0]
    bodies = {
        "/i.xml": _index("/a.xml", "/b.xml"),
        "/a.xml": _urlset("/p/1", "/p/2"),
        "/b.xml": _urlset("/p/3", "/p/4"),
    }
    frontier = LocalFrontier([target], LocalState(1, start=numbered(plan_target(target))), RunLimits())
    order = []
    while (plan := await frontier.claim()) is not None:
        path = plan.url.removeprefix("https://shop.example")
        order.append(path)
        outcome = process(plan, _fetch(plan, bodies.get(path, "<html/>")))
        await frontier.complete(plan, frontier.admit(plan, outcome))

    # One sitemap's pages at a time: never an index's every page in memory at once.
    assert order == ["/i.xml", "/a.xml", "/p/1", "/p/2", "/b.xml", "/p/3", "/p/4"]


def test_a_sitemap_documents_requests_are_not_links() -> None:
    target = _spec("{sitemap: /s.xml}", "    follow: {max_depth: 2}\n").targets[0]
    document = _document(target)
    nested = _document(target, "https://shop.example/n.xml", depth=1)
    page = RequestPlan(target, "https://shop.example/p/1")

    assert not is_link(nested, document) and not is_link(page, document)
    assert is_link(RequestPlan(target, "https://shop.example/p/2", depth=1), page)
    # Its start URLs are sitemaps (maybe on a CDN): links stay on the host of the page they are on.
    assert target.follow is not None
    scope = FollowScope(target.follow, start_hosts(target))
    cdn_page = RequestPlan(target, "https://www.shop.example/p/1")
    assert start_hosts(target) == frozenset()
    assert scope.in_scope(RequestPlan(target, "https://www.shop.example/p/2", depth=1), cdn_page)
    assert not scope.in_scope(RequestPlan(target, "https://elsewhere.example/", depth=1), cdn_page)


def test_the_role_is_saved_with_the_request_and_restored() -> None:
    spec = _spec("{sitemap: /s.xml}", "    paginate: {type: next_url, next: next}\n")
    document = _document(spec.targets[0], depth=2)
    document.request_id, document.seq = 7, None

    row = request_row(document, 1, spec.redactor, "pending")
    restored = restore_plan(spec, tuple(v for c, v in zip(COLUMNS, row, strict=True) if c not in ("run_id", "state")))

    assert restored is not None
    assert (restored.role, restored.depth, restored.url, restored.chain) == (SITEMAP, 2, document.url, None)


def test_an_outcome_of_a_sitemap_document_is_not_counted_as_a_warning() -> None:
    from crawlrunner.stats import TargetStats

    target = _spec("{sitemap: /s.xml, max_urls: 1}").targets[0]
    plan = _document(target)
    stats = TargetStats()

    stats.add(process(plan, _fetch(plan, _urlset("/p/1", "/p/2"))))

    assert stats.ok == 1 and not stats.warnings  # the summary says it in a note of its own
