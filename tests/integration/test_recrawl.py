"""Re-crawls that cost nothing: a 304 continues the crawl from what the page led to last time.

A local shop of about 200 pages (a home page, category pages, product pages)
that serves ETags and answers 304, and counts every request it gets: whether
it was conditional, and what it answered. A paginated API and a parent →
child pair, likewise.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.console.summary import format_summary
from crawlrunner.spec import load_spec_text

from ..conftest import ThreadedServer

CATEGORIES, PRODUCTS = 10, 19  # 1 home + 10 categories + 190 products: 201 pages


@dataclass(frozen=True)
class Hit:
    path: str
    conditional: bool
    status: int


@dataclass
class Site:
    """Pages by path (HTML or JSON), each with an ETag of its body; every request is logged."""

    pages: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    stop_after: tuple[int, asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.serve)
        return app

    async def serve(self, request: web.Request) -> web.Response:
        body = self.pages.get(request.path_qs)
        if body is None:
            self.hits.append(Hit(request.path_qs, "If-None-Match" in request.headers, 404))
            return web.Response(status=404)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        status = 304 if request.headers.get("If-None-Match") == etag else 200
        self.hits.append(Hit(request.path_qs, "If-None-Match" in request.headers, status))
        self.headers_seen.append(dict(request.headers))
        if self.stop_after is not None and len(self.hits) == self.stop_after[0]:
            _, loop, stop = self.stop_after
            loop.call_soon_threadsafe(stop.set)
        if status == 304:
            return web.Response(status=304, headers={"ETag": etag})
        kind = "application/json" if body.startswith("{") else "text/html"
        return web.Response(text=body, content_type=kind, headers={"ETag": etag})

    def take_hits(self) -> list[Hit]:
        hits, self.hits = self.hits, []
        return hits


def _html(title: str, links: list[str]) -> str:
    anchors = "".join(f"<a href='{link}'>{link}</a>" for link in links)
    return f"<html><body><h1>{title}</h1>{anchors}</body></html>"


def _shop() -> Site:
    site = Site()
    site.pages["/"] = _html("home", [f"/c/{c}" for c in range(CATEGORIES)])
    for c in range(CATEGORIES):
        products = [f"/p/{c}-{p}" for p in range(PRODUCTS)]
        site.pages[f"/c/{c}"] = _html(f"category {c}", ["/", *products])
        for p, path in enumerate(products):
            related = products[(p + 1) % PRODUCTS]  # a link seen before: the frontier drops it
            site.pages[path] = _html(f"product {c}-{p}", [f"/c/{c}", related])
    return site


@pytest.fixture
def shop() -> Iterator[tuple[Site, str]]:
    site = _shop()
    with ThreadedServer(site.app()) as running:
        yield site, running.url


SHOP = """
name: shop
http: {{base_url: "{base}", retry: null}}
targets:
  - name: pages
    url: /
    conditional: true
    follow: {{max_depth: 2, robots: false{deny}}}
    mode: upsert
    key: [url]
    extract:
      format: html
      fields:
        url: {{meta: url}}
        title: h1
"""


def _paths(hits: list[Hit]) -> list[str]:
    return sorted(hit.path for hit in hits)


def _rows(output: str, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in crawlrunner.query(output, sql).rows]


async def test_an_unchanged_site_is_crawled_again_with_304s_only_along_the_same_graph(
    shop: tuple[Site, str], tmp_path: Path
) -> None:
    site, base = shop
    output = str(tmp_path / "shop.db")
    spec = load_spec_text(SHOP.format(base=base, deny=""))

    first = await run_async(spec, output=output)
    fetched = site.take_hits()
    second = await run_async(spec, output=output)
    again = site.take_hits()

    assert first.status == second.status == "completed"
    assert len(fetched) == 1 + CATEGORIES + CATEGORIES * PRODUCTS == 201
    assert {(h.conditional, h.status) for h in fetched} == {(False, 200)}
    # 201 conditional requests, 201 x 304, for the very same URLs.
    assert len(again) == 201 and {(h.conditional, h.status) for h in again} == {(True, 304)}
    assert _paths(again) == _paths(fetched)
    # Every row kept, now the second run's; none marked removed, no history but the first run's 'added'.
    assert _rows(output, "SELECT count(*), min(_run_id), max(_run_id), count(_removed_run) FROM pages") == [
        (201, second.run_id, second.run_id, 0)
    ]
    assert _rows(output, "SELECT change, count(*) FROM _crawlrunner_history_pages GROUP BY change") == [("added", 201)]
    assert _rows(
        output, f"SELECT status, count(*) FROM _crawlrunner_fetch_log WHERE run_id = {second.run_id} GROUP BY status"
    ) == [(304, 201)]
    assert second.health == [] and second.unmet == []
    # The 304s left what each page led to as it was, for the next run.
    assert _rows(
        output, f"SELECT count(*) FROM _crawlrunner_validators WHERE led_to IS NOT NULL AND run_id = {second.run_id}"
    ) == [(201,)]


async def test_a_page_that_changed_is_fetched_whole_and_its_new_link_followed(
    shop: tuple[Site, str], tmp_path: Path
) -> None:
    site, base = shop
    output = str(tmp_path / "shop.db")
    spec = load_spec_text(SHOP.format(base=base, deny=""))
    await run_async(spec, output=output)
    site.take_hits()

    site.pages["/c/3"] = site.pages["/c/3"].replace("</body>", "<a href='/p/new'>new</a></body>")
    site.pages["/p/new"] = _html("product new", ["/c/3"])
    third = await run_async(spec, output=output)
    hits = site.take_hits()

    whole = sorted((h.path, h.conditional) for h in hits if h.status == 200)
    assert whole == [("/c/3", True), ("/p/new", False)]  # the changed page, and the page it links to now
    assert len([h for h in hits if h.status == 304]) == 201 - 1
    assert _rows(output, "SELECT count(*), count(_removed_run) FROM pages") == [(202, 0)]
    assert _rows(output, f"SELECT title FROM pages WHERE url LIKE '%/p/new' AND _run_id = {third.run_id}") == [
        ("product new",)
    ]


async def test_a_spec_that_changes_what_pages_lead_to_fetches_them_whole_once(
    shop: tuple[Site, str], tmp_path: Path
) -> None:
    site, base = shop
    output = str(tmp_path / "shop.db")
    # The first run leaves the products out: what its category pages led to has no product.
    await run_async(load_spec_text(SHOP.format(base=base, deny=', deny: ["/p/"]')), output=output)
    assert len(site.take_hits()) == 1 + CATEGORIES

    spec = load_spec_text(SHOP.format(base=base, deny=""))
    await run_async(spec, output=output)
    changed = site.take_hits()
    await run_async(spec, output=output)
    after = site.take_hits()

    # Asked without validators: a 304 would have replayed links the new spec would not have found.
    assert len(changed) == 201 and {(h.conditional, h.status) for h in changed} == {(False, 200)}
    assert len(after) == 201 and {(h.conditional, h.status) for h in after} == {(True, 304)}


def _api(site: Site, pages: int, style: str) -> None:
    """``/api/items``: ``pages`` pages of three items; next_url says where the next one is, page_number ends empty."""
    for number in range(1, pages + 2):
        items = [{"id": (number - 1) * 3 + i} for i in range(1, 4)] if number <= pages else []
        following = f"/api/items?page={number + 1}" if number < pages else None
        path = "/api/items" if number == 1 and style == "next_url" else f"/api/items?page={number}"
        site.pages[path] = json.dumps({"items": items, "next": following})


API = """
name: api
http: {{base_url: "{base}", retry: null}}
targets:
  - name: items
    url: /api/items
    conditional: true
    paginate: {paginate}
    mode: replace
    extract: {{records: items, fields: {{id: {{jmespath: id, type: int}}}}}}
"""


@pytest.mark.parametrize(
    ("style", "paginate", "reason", "pages"),
    [
        ("next_url", "{type: next_url, next: next}", "no_next", 5),
        ("page_number", "{type: page_number}", "empty_page", 6),  # the empty page after the last ends it
    ],
)
async def test_a_chain_of_304s_goes_on_to_its_end_and_says_why_it_ended(
    style: str, paginate: str, reason: str, pages: int, tmp_path: Path
) -> None:
    site = Site()
    _api(site, 5, style)
    output = str(tmp_path / "api.db")
    with ThreadedServer(site.app()) as running:
        spec = load_spec_text(API.format(base=running.url, paginate=paginate))
        first = await run_async(spec, output=output)
        fetched = site.take_hits()
        second = await run_async(spec, output=output)
        again = site.take_hits()

    assert len(fetched) == pages and {h.status for h in fetched} == {200}
    assert [h.path for h in again] == [h.path for h in fetched]  # in chain order
    assert {(h.conditional, h.status) for h in again} == {(True, 304)}
    ends = "SELECT run_id, pages, items, reason FROM _crawlrunner_chain_ends ORDER BY run_id"
    assert _rows(output, ends) == [(first.run_id, pages, 15, reason), (second.run_id, pages, 15, reason)]
    assert _rows(output, "SELECT count(*), min(_run_id) FROM items") == [(15, second.run_id)]
    # Six 304s are not six pages whose records selector matched nothing.
    assert second.status == "completed" and second.health == [] and second.unmet == []


PARENT = """
name: family
http: {{base_url: "{base}", retry: null, headers: {{X-Key: "${{env.SHOP_KEY}}"}}}}
targets:
  - name: lists
    url: /lists
    conditional: true
    mode: replace
    extract: {{records: lists, fields: {{id: id, name: name}}}}
  - name: members
    parent: lists
    url: /lists/{{id}}
    {child}
    extract: {{records: members, fields: {{list: {{parent: name}}, member: name}}}}
"""
SECRET = "s3cret-key-value"


@pytest.mark.parametrize(
    ("child", "child_status"),
    [
        ("mode: append", 200),  # fetched whole: new rows, with the parent fields of the stored parent records
        ("conditional: true\n    mode: replace", 304),  # asked for conditionally too: its rows kept
    ],
)
async def test_a_304_of_a_parent_page_makes_its_child_requests_from_the_stored_rows(
    child: str, child_status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_KEY", SECRET)
    site = Site()
    lists = [{"id": i, "name": f"list {i}"} for i in range(1, 4)]
    site.pages["/lists"] = json.dumps({"lists": lists})
    for item in lists:
        site.pages[f"/lists/{item['id']}"] = json.dumps({"members": [{"name": f"m{item['id']}"}]})
    output = str(tmp_path / "family.db")
    with ThreadedServer(site.app()) as running:
        spec = load_spec_text(PARENT.format(base=running.url, child=child))
        await run_async(spec, output=output)
        site.take_hits()
        site.headers_seen.clear()
        second = await run_async(spec, output=output)
        hits = site.take_hits()

    assert sorted((h.path, h.status) for h in hits) == [
        ("/lists", 304), ("/lists/1", child_status), ("/lists/2", child_status), ("/lists/3", child_status),
    ]  # fmt: skip
    # The children's requests carried the secret header, read back from a reference.
    assert all(h.get("X-Key") == SECRET for h in site.headers_seen)
    # Their rows have the parent's fields, from the parent records stored with the requests.
    assert _rows(output, f"SELECT list, member FROM members WHERE _run_id = {second.run_id} ORDER BY member") == [
        ("list 1", "m1"), ("list 2", "m2"), ("list 3", "m3"),
    ]  # fmt: skip
    assert _rows(output, "SELECT count(*), min(_run_id) FROM lists") == [(3, second.run_id)]
    (stored,) = _rows(output, "SELECT led_to FROM _crawlrunner_validators WHERE target = 'lists'")
    assert isinstance(stored[0], str) and "/lists/3" in stored[0] and SECRET not in stored[0]


async def test_an_interrupted_run_of_304s_resumes_and_completes_the_same_graph(
    shop: tuple[Site, str], tmp_path: Path
) -> None:
    site, base = shop
    output = str(tmp_path / "shop.db")
    spec = load_spec_text(SHOP.format(base=base, deny=""))
    await run_async(spec, output=output)
    fetched = site.take_hits()

    stop = asyncio.Event()
    site.stop_after = (60, asyncio.get_running_loop(), stop)
    interrupted = await run_async(spec, output=output, stop=stop)
    before = site.take_hits()
    site.stop_after = None
    resumed = await run_async(spec, output=output, resume=True)
    after = site.take_hits()

    assert interrupted.status == "interrupted" and resumed.status == "completed"
    assert resumed.run_id == interrupted.run_id
    assert 60 <= len(before) < 201
    # Between them, every page once, each a 304.
    assert _paths(before + after) == _paths(fetched)
    assert {(h.conditional, h.status) for h in before + after} == {(True, 304)}
    assert _rows(output, "SELECT count(*), min(_run_id), count(_removed_run) FROM pages") == [(201, resumed.run_id, 0)]


def test_an_unchanged_site_is_crawled_again_with_304s_on_postgresql(shop: tuple[Site, str], pg_url: str) -> None:
    site, base = shop
    spec = load_spec_text(SHOP.format(base=base, deny=""))

    crawlrunner.run(spec, output=pg_url)
    fetched = site.take_hits()
    second = crawlrunner.run(spec, output=pg_url)
    again = site.take_hits()

    assert second.status == "completed"
    assert len(again) == 201 and {(h.conditional, h.status) for h in again} == {(True, 304)}
    assert _paths(again) == _paths(fetched)
    assert _rows(pg_url, "SELECT count(*), min(_run_id), count(_removed_run) FROM pages") == [(201, second.run_id, 0)]
    assert _rows(pg_url, "SELECT count(*) FROM _crawlrunner_validators WHERE led_to IS NOT NULL") == [(201,)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_summary_counts_304s_and_a_spec_change_that_drops_validators_is_said_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    site = Site()
    _api(site, 3, "next_url")
    output = str(tmp_path / "api.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    with ThreadedServer(site.app()) as running:
        spec = API.format(base=running.url, paginate="{type: next_url, next: next}")
        crawlrunner.run(load_spec_text(spec), output=output)
        unchanged = crawlrunner.run(load_spec_text(spec), output=output)
        site.take_hits()
        caplog.set_level(logging.INFO, logger="crawlrunner")
        changed = load_spec_text(spec.replace("next: next}", "next: next, max_pages: 50}"))
        refetched = crawlrunner.run(changed, output=output)
        hits = site.take_hits()

    assert unchanged.stats.targets["items"].unchanged == 3
    summary = format_summary(unchanged)
    assert "items: 3 unchanged (304): rows kept" in summary
    assert summary.endswith("exit status 0: everything succeeded")
    # The spec changed what the pages lead to: their validators are not sent, and the log says why, once.
    assert {(h.conditional, h.status) for h in hits} == {(False, 200)} and len(hits) == 3
    said = [r.getMessage() for r in caplog.records if "the spec changed" in r.getMessage()]
    assert said == ["items: the spec changed since its validators were stored: its pages are fetched whole once"]
    assert refetched.stats.targets["items"].unchanged == 0
    assert "unchanged (304)" not in format_summary(refetched)
