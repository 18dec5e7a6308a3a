"""Where ``follow.max_pages`` stops a crawl, it says so: on SQLite and PostgreSQL.

A home page linking to ten product pages, each linking back home (a link
seen before, which is not counted). With ``max_pages: 5`` the crawl takes
the home page and four products and leaves six links out: the summary
says how many, and since the run did not see the whole site, it records
no key as removed. A URL robots.txt disallows takes its place in
``max_pages`` as a fetched page does (docs/spec.md, ``follow``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec_text

from ..conftest import ThreadedServer

pytestmark = pytest.mark.timeout(120)

PRODUCTS = 10


async def _home(request: web.Request) -> web.Response:
    links = "".join(f"<a href='/p/{n}'>{n}</a>" for n in range(1, PRODUCTS + 1))
    return web.Response(text=f"<html><body><h1>home</h1>{links}</body></html>", content_type="text/html")


async def _product(request: web.Request) -> web.Response:
    n = request.match_info["n"]
    # Home again (seen: not counted), and three pages linked from this product alone.
    links = "<a href='/'>home</a>" + "".join(f"<a href='/x/{n}-{k}'>{k}</a>" for k in range(3))
    return web.Response(text=f"<html><body><h1>p{n}</h1>{links}</body></html>", content_type="text/html")


async def _robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /p/2\n")


@pytest.fixture
def site() -> Iterator[str]:
    app = web.Application()
    app.router.add_get("/", _home)
    app.router.add_get("/p/{n}", _product)
    app.router.add_get("/robots.txt", _robots)
    with ThreadedServer(app) as running:
        yield running.url


SPEC = """
name: site
http: {{base_url: "{base}", retry: null}}
targets:
  - name: pages
    url: /
    follow: {{links: "a::attr(href)", max_pages: {max_pages}, max_depth: {max_depth}, robots: {robots}}}
    mode: upsert
    key: [url]
    extract: {{format: html, fields: {{url: {{meta: url}}, title: h1}}}}
"""


def _run(cli: CliRunner, tmp_path: Path, base: str, output: str, max_pages: int, robots: bool = False) -> str:
    spec = tmp_path / f"site-{max_pages}-{robots}.yaml"
    text = SPEC.format(base=base, max_pages=max_pages, max_depth=1, robots=str(robots).lower())
    spec.write_text(text, encoding="utf-8")
    result = cli.invoke(main, ["run", str(spec), "-o", output])
    assert result.exit_code == 0, result.output
    return result.output


def _rows(output: str, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in crawlrunner.query(output, sql).rows]


def test_links_max_pages_left_out_are_counted_said_and_keep_removals_from_being_recorded(
    site: str, output: str, cli: CliRunner, tmp_path: Path
) -> None:
    whole = _run(cli, tmp_path, site, output, max_pages=20)
    cut = _run(cli, tmp_path, site, output, max_pages=5)

    assert "not followed" not in whole
    assert "pages: follow.max_pages 5 reached: 6 links not followed" in cut
    assert cut.rstrip().endswith("exit status 0: everything succeeded")
    # Counted on the page that had them, in the transaction that stored it.
    assert _rows(
        output, "SELECT run_id, sum(unfollowed), count(*) FROM _crawlrunner_fetch_log GROUP BY run_id ORDER BY run_id"
    ) == [
        (1, 0, 1 + PRODUCTS),
        (2, 6, 5),
    ]
    # Six products not seen in run 2 are not gone: the run left their links out.
    assert _rows(output, "SELECT count(*), count(_removed_run) FROM pages") == [(1 + PRODUCTS, 0)]
    assert _rows(output, "SELECT count(*) FROM _crawlrunner_history_pages WHERE change = 'removed'") == [(0,)]


def test_a_url_robots_txt_disallows_takes_its_place_in_max_pages(
    site: str, output: str, cli: CliRunner, tmp_path: Path
) -> None:
    summary = _run(cli, tmp_path, site, output, max_pages=5, robots=True)

    # The home page, /p/1, /p/3 and /p/4 fetched; /p/2 admitted, then skipped for robots.txt.
    assert _rows(output, "SELECT url FROM pages ORDER BY url") == [
        (f"{site}/",), (f"{site}/p/1",), (f"{site}/p/3",), (f"{site}/p/4",),
    ]  # fmt: skip
    assert "1 URL skipped: disallowed by robots.txt" in summary
    assert "pages: follow.max_pages 5 reached: 6 links not followed" in summary


async def test_the_count_is_exact_when_workers_share_the_run(site: str, pg_url: str) -> None:
    spec = load_spec_text(SPEC.format(base=site, max_pages=5, max_depth=2, robots="false"))

    first, second = await asyncio.gather(run_async(spec, output=pg_url), run_async(spec, output=pg_url))

    assert first.run_id == second.run_id and first.status == second.status == "completed"
    # Home and four products fetched: six product links left out on home, and
    # on each product fetched, its three links of its own (the home link was seen).
    assert _rows(pg_url, "SELECT count(*), sum(unfollowed) FROM _crawlrunner_fetch_log") == [(5, 6 + 4 * 3)]
    assert first.facts["pages"].unfollowed == second.facts["pages"].unfollowed == 18
    note = "pages: follow.max_pages 5 reached: 18 links not followed"
    assert note in first.notes and note in second.notes
