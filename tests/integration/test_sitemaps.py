"""Sitemaps as seeds, against a real site: indexes, gzip, lastmod, robots.txt, limits, resume, PostgreSQL.

The site serves sitemaps a test writes (``Site.documents``) and product
pages ``/p/N`` (HTML: a title, a price, a link to ``/p/N/reviews``), and
counts every request by path, so a test can say that nothing was fetched
twice.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec_text

from ..conftest import ThreadedServer, query

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def urlset(*entries: tuple[str, str | None]) -> str:
    """A <urlset> of (path or URL, lastmod) entries."""
    items = "".join(
        f"<url>\n  <loc> {loc} </loc>{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}\n</url>\n"
        for loc, lastmod in entries
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}">\n{items}</urlset>\n'


def index(*locs: str) -> str:
    items = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="{NS}">{items}</sitemapindex>'


def pages(numbers: range | list[int], lastmod: str | None = None) -> list[tuple[str, str | None]]:
    return [(f"{{base}}/p/{n}", lastmod) for n in numbers]


class Site:
    """Sitemaps and product pages; every request counted by path (and query)."""

    def __init__(self) -> None:
        self.base = ""
        self.documents: dict[str, str | bytes] = {}  # path → body (bytes: served as application/x-gzip)
        self.encoded: set[str] = set()  # paths served with Content-Encoding: gzip
        self.fail_once: set[str] = set()
        self.hits: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/p/{n}", self.page)
        app.router.add_get("/p/{n}/reviews", self.reviews)
        app.router.add_get("/api/render", self.render)
        app.router.add_get("/{path:.*}", self.document)
        return app

    def _failing(self, request: web.Request) -> bool:
        self.hits[request.path_qs] += 1
        if request.path in self.fail_once:
            self.fail_once.discard(request.path)
            return True
        return False

    async def document(self, request: web.Request) -> web.StreamResponse:
        if self._failing(request):
            return web.Response(status=500)
        body = self.documents.get(request.path)
        if body is None:
            return web.Response(status=404)
        if isinstance(body, bytes):
            return web.Response(body=body, content_type="application/x-gzip")
        text = body.replace("{base}", self.base)
        if request.path in self.encoded:
            compressed = gzip.compress(text.encode())
            return web.Response(body=compressed, headers={"Content-Encoding": "gzip", "Content-Type": "text/xml"})
        return web.Response(text=text, content_type="text/plain" if request.path.endswith(".txt") else "text/xml")

    def gzipped(self, path: str, text: str) -> None:
        self.documents[path] = gzip.compress(text.replace("{base}", self.base).encode())

    async def page(self, request: web.Request) -> web.Response:
        if self._failing(request):
            return web.Response(status=500)
        n = request.match_info["n"]
        html = (
            f"<html><body><h1>Product {n}</h1><p class='price'>{n}.50</p>"
            f"<a class='reviews' href='/p/{n}/reviews'>reviews</a><a class='next' href='/p/{int(n) + 1}'>next</a>"
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def reviews(self, request: web.Request) -> web.Response:
        self.hits[request.path_qs] += 1
        n = int(request.match_info["n"])
        return web.json_response({"reviews": [{"stars": n % 5 + 1}]})

    async def render(self, request: web.Request) -> web.Response:
        self.hits[request.path_qs] += 1
        return web.json_response({"url": request.query["u"], "modified": request.query["m"]})


@pytest.fixture
def site() -> Iterator[Site]:
    shop = Site()
    with ThreadedServer(shop.app()) as running:
        shop.base = running.url
        yield shop


PRODUCTS = """
name: sitemaps
http: {{base_url: "{base}", retry: null}}
targets:
  - name: products
    seeds: {seeds}
    extract:
      format: html
      fields:
        title: {{css: h1}}
        price: {{css: p.price, type: float}}
{extra}"""


def _spec(site: Site, seeds: str, extra: str = "") -> Any:
    return load_spec_text(PRODUCTS.format(base=site.base, seeds=seeds, extra=extra))


def _write(site: Site, tmp_path: Path, seeds: str, extra: str = "") -> Path:
    path = tmp_path / "sitemaps.yaml"
    path.write_text(PRODUCTS.format(base=site.base, seeds=seeds, extra=extra), encoding="utf-8")
    return path


def _titles(db: Path) -> list[str]:
    return [str(row[0]) for row in query(db, "SELECT title FROM products ORDER BY price")]


def _product_hits(site: Site) -> Counter[str]:
    return Counter({path: n for path, n in site.hits.items() if path.startswith("/p/")})


async def test_an_index_of_gzipped_sitemaps_seeds_each_page_once(site: Site, db_path: Path) -> None:
    site.documents["/sitemap_index.xml"] = index("{base}/products-1.xml.gz", "/products-2.xml")
    site.gzipped("/products-1.xml.gz", urlset(*pages(range(1, 6))))
    site.documents["/products-2.xml"] = urlset(*pages(range(6, 9)), *pages([2]))  # 2 is in both: fetched twice
    site.encoded.add("/products-2.xml")  # gzip'd as a Content-Encoding this time

    result = await run_async(_spec(site, "{sitemap: /sitemap_index.xml}"), output=db_path)

    assert result.ok and result.health == [] and result.notes == []
    assert _titles(db_path) == [f"Product {n}" for n in (1, 2, 2, 3, 4, 5, 6, 7, 8)]
    documents = query(
        db_path,
        "SELECT r.url, r.depth, f.status, f.records, f.items FROM _crawlrunner_requests AS r JOIN _crawlrunner_fetch_log AS f"
        " ON f.request_id = r.id WHERE r.role = 'sitemap' ORDER BY r.id",
    )
    assert documents == [
        (f"{site.base}/sitemap_index.xml", 0, 200, 0, None),
        (f"{site.base}/products-1.xml.gz", 1, 200, 0, None),
        (f"{site.base}/products-2.xml", 1, 200, 0, None),
    ]
    pages_items = query(db_path, "SELECT DISTINCT items FROM _crawlrunner_fetch_log WHERE url LIKE '%/p/%'")
    assert pages_items == [(1,)]  # a page's records count as ever; documents are left out of health
    # A URL two sitemaps list is fetched twice by a target without follow (within one sitemap, once).
    assert _product_hits(site) == Counter({f"/p/{n}": 2 if n == 2 else 1 for n in range(1, 9)})


async def test_a_nested_index_is_read_down_to_max_depth_and_the_cut_is_said(
    site: Site, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site.documents["/top.xml"] = index("/middle.xml", "/flat.xml")
    site.documents["/middle.xml"] = index("/bottom.xml")
    site.documents["/bottom.xml"] = urlset(*pages([3]))
    site.documents["/flat.xml"] = urlset(*pages([1, 2]))

    with caplog.at_level(logging.WARNING, logger="crawlrunner"):
        result = await run_async(_spec(site, "{sitemap: /top.xml, max_depth: 1}"), output=db_path)

    assert _titles(db_path) == ["Product 1", "Product 2"]
    assert "/bottom.xml" not in site.hits
    message = "sitemap limit: max_depth 1 reached; 1 nested sitemap not read"
    assert query(db_path, "SELECT error_kind, error FROM _crawlrunner_fetch_log WHERE url LIKE '%/middle.xml'") == [
        (None, message)
    ]
    assert result.ok  # the run goes on and succeeds; it says what it left out
    assert result.notes == [
        "sitemaps: products: 1 document cut short by a limit:",
        f"  - {site.base}/middle.xml: max_depth 1 reached; 1 nested sitemap not read",
    ]
    assert any(message in r.getMessage() for r in caplog.records)


async def test_since_a_date_keeps_what_changed_since_and_what_has_no_lastmod(site: Site, db_path: Path) -> None:
    site.documents["/sitemap.xml"] = urlset(
        ("{base}/p/1", "2024-04-30"),  # the day before: dropped
        ("{base}/p/2", "2024-05-01"),  # that day: kept
        ("{base}/p/3", "2024-05-01T01:30:00+02:00"),  # 23:30 UTC the day before: dropped
        ("{base}/p/4", "2024-06-02T10:00:00Z"),
        ("{base}/p/5", None),  # nothing says it is old: kept
        ("{base}/p/6", "2024-05"),  # May: kept
        ("{base}/p/7", "2023"),
        ("{base}/p/8", "not a date"),  # unreadable: kept
    )

    result = await run_async(_spec(site, "{sitemap: /sitemap.xml, since: 2024-05-01}"), output=db_path)

    assert result.ok
    assert _titles(db_path) == [f"Product {n}" for n in (2, 4, 5, 6, 8)]


async def test_since_last_run_takes_everything_first_then_only_what_changed_after_it_started(
    site: Site, db_path: Path
) -> None:
    old = "2020-01-01"
    site.documents["/sitemap.xml"] = urlset(*pages([1, 2, 3], old), *pages([4]))
    spec = _spec(site, "{sitemap: /sitemap.xml, since: last_run}")

    first = await run_async(spec, output=db_path)
    assert first.ok and len(_titles(db_path)) == 4
    (started,) = query(db_path, "SELECT started_at FROM _crawlrunner_runs WHERE id = ?", first.run_id)[0]
    just_after = (datetime.fromisoformat(str(started)) + timedelta(seconds=1)).isoformat()
    site.documents["/sitemap.xml"] = urlset(*pages([1], just_after), *pages([2, 3], old), *pages([4]))
    site.hits.clear()

    second = await run_async(spec, output=db_path)

    assert second.ok
    assert sorted(_product_hits(site)) == ["/p/1", "/p/4"]  # changed since run 1 began; no lastmod


async def test_robots_txt_names_the_sitemaps_and_each_is_read_once(site: Site, db_path: Path) -> None:
    site.documents["/robots.txt"] = "User-agent: *\nDisallow: /private\nSitemap: {base}/s.xml\nSitemap: /index.xml\n"
    site.documents["/index.xml"] = index("{base}/s.xml", "/more.txt")  # s.xml again: read once
    site.documents["/s.xml"] = urlset(*pages([1, 2]))
    site.documents["/more.txt"] = "{base}/p/3\n\n{base}/p/4\n"  # a text sitemap

    result = await run_async(_spec(site, "{sitemap: /s.xml, robots: true}"), output=db_path)

    assert result.ok
    assert _titles(db_path) == [f"Product {n}" for n in (1, 2, 3, 4)]
    assert site.hits["/s.xml"] == 1 and site.hits["/robots.txt"] == 1


async def test_a_missing_robots_txt_lists_nothing_and_fails_nothing(site: Site, db_path: Path) -> None:
    result = await run_async(_spec(site, "{robots: true}"), output=db_path)

    assert result.ok and result.totals.failed == 0
    assert query(db_path, "SELECT status, error_kind, error FROM _crawlrunner_fetch_log") == [
        (404, None, "no robots.txt (HTTP 404): robots.txt lists no sitemap")
    ]


def test_max_urls_counts_across_documents_and_the_cut_is_said(site: Site, tmp_path: Path) -> None:
    site.documents["/index.xml"] = index("/a.xml", "/b.xml")
    site.documents["/a.xml"] = urlset(*pages(range(1, 6)))
    site.documents["/b.xml"] = urlset(*pages(range(6, 12)))
    spec = _write(site, tmp_path, "{sitemap: /index.xml, max_urls: 7}")

    result = CliRunner().invoke(main, ["run", str(spec), "-o", str(tmp_path / "out.db")])

    assert result.exit_code == 0, result.output
    assert len(_product_hits(site)) == 7
    assert f"  - {site.base}/b.xml: max_urls 7 reached; 4 URLs not fetched" in result.output
    assert query(tmp_path / "out.db", "SELECT error FROM _crawlrunner_fetch_log WHERE url LIKE '%/b.xml'") == [
        ("sitemap limit: max_urls 7 reached; 4 URLs not fetched",)
    ]


async def test_max_bytes_cuts_a_document_and_keeps_what_came_before(site: Site, db_path: Path) -> None:
    site.documents["/big.xml"] = urlset(*pages(range(1, 201)))
    cut_at = len(urlset(*pages(range(1, 11))).replace("{base}", site.base)) - len("</urlset>\n")

    result = await run_async(_spec(site, f"{{sitemap: /big.xml, max_bytes: {cut_at}}}"), output=db_path)

    assert result.ok
    assert len(_titles(db_path)) == 10
    assert query(db_path, "SELECT error FROM _crawlrunner_fetch_log WHERE url LIKE '%/big.xml'") == [
        (f"sitemap limit: max_bytes {cut_at:,} reached; the rest of the document was not read",)
    ]


async def test_a_gzip_bomb_is_cut_at_max_bytes(site: Site, db_path: Path) -> None:
    head = f'<urlset xmlns="{NS}"><url><loc>{site.base}/p/1</loc></url>'.encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(head)
    padding = b" " * (1 << 20)
    for _ in range(256):  # 256 MB of spaces inside the urlset, 0.26 MB gzip'd
        bomb += packer.compress(padding)
    site.documents["/bomb.xml.gz"] = bomb + packer.flush()

    result = await run_async(_spec(site, "{sitemap: /bomb.xml.gz, max_bytes: 1048576}"), output=db_path)

    assert result.ok and _titles(db_path) == ["Product 1"]
    assert query(db_path, "SELECT error FROM _crawlrunner_fetch_log WHERE url LIKE '%bomb%'") == [
        ("sitemap limit: max_bytes 1,048,576 reached; the rest of the document was not read",)
    ]


async def test_a_doctype_with_entities_is_refused(site: Site, db_path: Path) -> None:
    laughs = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    )
    site.documents["/laughs.xml"] = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [{laughs}]><urlset><url><loc>&lol9;</loc></url></urlset>'
    )

    result = await run_async(_spec(site, "{sitemap: /laughs.xml}"), output=db_path)

    assert not result.ok
    assert query(db_path, "SELECT error_kind, error FROM _crawlrunner_fetch_log") == [
        (
            "extract_error",
            "sitemap refused: it declares a DOCTYPE (urlset); sitemaps have none, and a DTD's entities can expand"
            " without bound",
        )
    ]


async def test_sitemap_pages_combine_with_extract_follow_and_a_child_target(site: Site, db_path: Path) -> None:
    site.documents["/sitemap.xml"] = urlset(*pages([1, 2]))
    spec = load_spec_text(
        PRODUCTS.format(base=site.base, seeds="{sitemap: /sitemap.xml}", extra="").replace(
            "        title: {css: h1}\n",
            "        title: {css: h1}\n        id: {regex: 'Product (\\d+)', type: int}\n",
        )
        + """    follow: {links: "a.next::attr(href)", max_depth: 1, robots: false}
  - name: reviews
    parent: products
    url: /p/{id}/reviews
    extract: {records: reviews, fields: {stars: stars, product: {parent: title}}}
"""
    )

    result = await run_async(spec, output=db_path)

    assert result.ok, result
    # Pages 1 and 2 from the sitemap; page 3 by a link from page 2 (page 2, linked from 1, is not fetched again).
    assert _titles(db_path) == ["Product 1", "Product 2", "Product 3"]
    assert set(_product_hits(site).values()) == {1}
    assert query(db_path, "SELECT product, stars FROM reviews ORDER BY product") == [
        ("Product 1", 2), ("Product 2", 3), ("Product 3", 4)
    ]  # fmt: skip


async def test_a_url_template_renders_each_entry_with_url_and_lastmod(site: Site, db_path: Path) -> None:
    site.documents["/sitemap.xml"] = urlset(
        ("https://shop.example/a?x=1", "2024-05-01"), ("https://shop.example/b", None)
    )
    spec = load_spec_text(
        f"""name: api
http: {{base_url: "{site.base}", retry: null}}
targets:
  - name: rendered
    seeds: {{sitemap: /sitemap.xml}}
    url: /api/render?u={{url}}&m={{lastmod}}
    extract: {{fields: {{url: url, modified: modified}}}}
"""
    )

    result = await run_async(spec, output=db_path)

    assert result.ok
    assert query(db_path, "SELECT url, modified FROM rendered ORDER BY url") == [
        ("https://shop.example/a?x=1", "2024-05-01"), ("https://shop.example/b", None)
    ]  # fmt: skip


def test_a_resumed_run_fetches_nothing_twice_and_keeps_counting_max_urls(site: Site, tmp_path: Path) -> None:
    site.documents["/index.xml"] = index("/a.xml", "/b.xml")
    site.documents["/a.xml"] = urlset(*pages(range(1, 6)))
    site.documents["/b.xml"] = urlset(*pages(range(6, 12)))
    spec = _write(site, tmp_path, "{sitemap: /index.xml, max_urls: 7}")
    db = tmp_path / "out.db"
    cli = CliRunner()

    # The index and a.xml: five pages found and saved as pending, b.xml not read yet.
    first = cli.invoke(main, ["run", str(spec), "-o", str(db), "--max-requests", "2"])
    assert first.exit_code == 0, first.output
    assert query(db, "SELECT count(*) FROM _crawlrunner_requests WHERE state = 'pending' AND role IS NULL") == [(5,)]

    resumed = cli.invoke(main, ["run", str(spec), "-o", str(db), "--resume"])

    assert resumed.exit_code == 0, resumed.output
    assert set(site.hits.values()) == {1}  # every document and page once, over both sessions
    assert len(_product_hits(site)) == 7  # the five of a.xml counted when b.xml was read after the resume
    assert "max_urls 7 reached; 4 URLs not fetched" in resumed.output


async def test_a_failed_sitemap_is_retried_with_retry_failed(site: Site, db_path: Path) -> None:
    site.documents["/index.xml"] = index("/a.xml")
    site.documents["/a.xml"] = urlset(*pages([1, 2]))
    site.fail_once.add("/a.xml")
    spec = _spec(site, "{sitemap: /index.xml}")

    first = await run_async(spec, output=db_path)
    assert not first.ok and _titles(db_path) == []

    retry = await run_async(spec, output=db_path, retry_failed=True)

    assert retry.ok
    assert _titles(db_path) == ["Product 1", "Product 2"]
    assert query(
        db_path, "SELECT role, depth FROM _crawlrunner_requests WHERE run_id = ? ORDER BY id LIMIT 1", retry.run_id
    ) == [("sitemap", 1)]


async def test_on_postgresql_sitemaps_and_their_budget_are_shared_run_state(site: Site, pg_url: str) -> None:
    import asyncpg

    site.documents["/robots.txt"] = "Sitemap: /index.xml\n"
    site.documents["/index.xml"] = index("/a.xml.gz", "/b.xml")
    site.gzipped("/a.xml.gz", urlset(*pages(range(1, 6), "2024-06-01"), *pages([20], "2019-01-01")))
    site.documents["/b.xml"] = urlset(*pages(range(6, 12)))

    result = await run_async(
        _spec(site, "{sitemap: /index.xml, robots: true, since: 2024-01-01, max_urls: 7}"), output=pg_url
    )

    assert result.ok
    assert len(_product_hits(site)) == 7 and set(site.hits.values()) == {1}  # index.xml listed twice: read once
    conn = await asyncpg.connect(pg_url)
    try:
        roles = await conn.fetch(
            "SELECT role, depth, state, count(*) FROM _crawlrunner_requests GROUP BY 1, 2, 3 ORDER BY 1, 2"
        )
        budget = await conn.fetchval(
            "SELECT sitemap_urls FROM _crawlrunner_run_targets WHERE run_id = $1", result.run_id
        )
        cut = await conn.fetchval("SELECT error FROM _crawlrunner_fetch_log WHERE url LIKE '%/b.xml'")
        items = await conn.fetchval(
            "SELECT count(*) FROM _crawlrunner_fetch_log WHERE url LIKE '%.xml%' AND items IS NULL"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in roles] == [("sitemap", 0, "done", 2), ("sitemap", 1, "done", 2), (None, 0, "done", 7)]
    assert budget == 7
    assert cut == "sitemap limit: max_urls 7 reached; 4 URLs not fetched"
    assert items == 3
    assert result.notes == [
        "sitemaps: products: 1 document cut short by a limit:",
        f"  - {site.base}/b.xml: max_urls 7 reached; 4 URLs not fetched",
    ]


def test_plan_and_try_show_a_sitemap_target_for_what_it_is(site: Site, tmp_path: Path) -> None:
    site.documents["/sitemap.xml"] = urlset(*pages([1, 2]))
    spec = str(_write(site, tmp_path, "{sitemap: /sitemap.xml}"))
    cli = CliRunner()

    planned = cli.invoke(main, ["plan", spec])
    document = cli.invoke(main, ["try", spec, "products"])
    page = cli.invoke(main, ["try", spec, "products", "/p/7"])

    assert planned.exit_code == 0, planned.output
    assert "products: 1 start request; more from the pages the sitemaps list" in planned.output
    assert document.exit_code == 0, document.output
    assert "a sitemap: its entries are requests, not records" in document.output
    assert (
        f"requests it lists (sitemaps, then pages): 2\n  GET {site.base}/p/1\n  GET {site.base}/p/2" in document.output
    )
    assert page.exit_code == 0, page.output
    assert 'title  "Product 7"' in page.output and site.hits["/p/7"] == 1
