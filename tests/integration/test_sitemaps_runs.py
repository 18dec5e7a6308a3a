"""Sitemaps across runs and within run-wide budgets, on both backends: what a new-user trial found.

``since: last_run`` stands for the last run that crawled the target without
a failure (not any completed run); sitemap documents are not pages of
``follow.max_pages``; a cut document is logged once, with every URL it left
out; ``plan`` says what ``since: last_run`` stands for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawlrunner import read
from crawlrunner.api import RunResult, run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec_text

from ..conftest import ThreadedServer
from .test_sitemaps import PRODUCTS, Site, _product_hits, index, pages, urlset

OLD = "2020-01-01"
OTHER = """  - name: other
    url: /p/900
"""


@pytest.fixture
def shop() -> Iterator[Site]:
    running_site = Site()
    with ThreadedServer(running_site.app()) as running:
        running_site.base = running.url
        yield running_site


def _spec(shop: Site, seeds: str, extra: str = "") -> Any:
    return load_spec_text(PRODUCTS.format(base=shop.base, seeds=seeds, extra=extra))


def _started(output: str | Path, result: RunResult) -> datetime:
    """When ``result``'s run started, as the database keeps it."""
    ((started,),) = read.query(output, f"SELECT started_at FROM _crawlrunner_runs WHERE id = {int(result.run_id)}").rows
    return started if isinstance(started, datetime) else datetime.fromisoformat(str(started))


def _after_start(output: str | Path, result: RunResult) -> str:
    """A lastmod a second after ``result``'s run started: newer than it, older than any later run's start."""
    return (_started(output, result) + timedelta(seconds=1)).isoformat()


async def _wait_past(lastmod: str) -> None:
    """Until ``lastmod`` is past: a run that starts now starts after it (its start would drop the page)."""
    left = (datetime.fromisoformat(lastmod) - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(left, 0) + 0.01)


async def test_since_last_run_ignores_runs_that_did_not_crawl_the_target(shop: Site, output: str | Path) -> None:
    shop.documents["/sitemap.xml"] = urlset(*pages([1, 2], OLD))
    spec = _spec(shop, "{sitemap: /sitemap.xml, since: last_run}", OTHER)
    first = await run_async(spec, output=output)
    assert first.ok
    changed = _after_start(output, first)
    shop.documents["/sitemap.xml"] = urlset(*pages([1], changed), *pages([2], OLD))
    await _wait_past(changed)
    assert (await run_async(spec, output=output, only=["other"])).ok  # completed, without the sitemap target
    shop.hits.clear()

    third = await run_async(spec, output=output)

    assert third.ok
    assert sorted(_product_hits(shop)) == ["/p/1", "/p/900"]  # p/1 changed after the first run began


async def test_since_last_run_ignores_runs_where_the_target_failed_a_request(shop: Site, output: str | Path) -> None:
    shop.documents["/sitemap.xml"] = urlset(*pages([1, 2], OLD))
    shop.fail_once.add("/p/2")
    spec = _spec(shop, "{sitemap: /sitemap.xml, since: last_run}")
    first = await run_async(spec, output=output)
    assert not first.ok and first.status == "completed"  # p/2 answered 500
    shop.hits.clear()

    second = await run_async(spec, output=output)  # the first run does not count: everything again
    assert second.ok
    assert sorted(_product_hits(shop)) == ["/p/1", "/p/2"]
    shop.hits.clear()

    third = await run_async(spec, output=output)  # the second one does: nothing changed since it started

    assert third.ok and _product_hits(shop) == {}


async def test_since_last_run_ignores_runs_a_sitemap_limit_cut(shop: Site, output: str | Path) -> None:
    shop.documents["/sitemap.xml"] = urlset(*pages([1, 2, 3], OLD))
    cut = await run_async(_spec(shop, "{sitemap: /sitemap.xml, since: last_run, max_urls: 2}"), output=output)
    assert cut.status == "completed"
    shop.hits.clear()

    # The first run left p/3 out: it does not count, so p/3 (lastmod before it) is still due.
    second = await run_async(_spec(shop, "{sitemap: /sitemap.xml, since: last_run}"), output=output)

    assert second.ok and sorted(_product_hits(shop)) == ["/p/1", "/p/2", "/p/3"]


async def test_a_retry_that_mends_a_run_counts_from_the_start_of_the_run_it_retried(
    shop: Site, output: str | Path
) -> None:
    shop.documents["/sitemap.xml"] = urlset(*pages([1, 2], OLD))
    shop.fail_once.add("/p/2")
    spec = _spec(shop, "{sitemap: /sitemap.xml, since: last_run}")
    first = await run_async(spec, output=output)
    assert not first.ok
    changed = _after_start(output, first)
    shop.documents["/sitemap.xml"] = urlset(*pages([1], changed), *pages([2], OLD))
    await _wait_past(changed)
    assert (await run_async(spec, output=output, retry_failed=True)).ok  # p/2 again; p/1 not re-read
    shop.hits.clear()

    third = await run_async(spec, output=output)

    assert third.ok
    assert sorted(_product_hits(shop)) == ["/p/1"]  # changed after the first run began, before the retry


async def test_sitemap_documents_do_not_count_against_follow_max_pages(shop: Site, output: str | Path) -> None:
    shop.documents["/robots.txt"] = "Sitemap: /index.xml\n"
    shop.documents["/index.xml"] = index("/a.xml", "/b.xml")
    shop.documents["/a.xml"] = urlset(*pages(range(1, 16)))
    shop.documents["/b.xml"] = urlset(*pages(range(16, 31)))
    follow = '    follow: {links: "a.next::attr(href)", max_depth: 1, max_pages: 31, robots: false}\n'
    spec = _spec(shop, "{sitemap: /index.xml, robots: true}", follow)

    result = await run_async(spec, output=output)

    assert result.ok
    # 30 pages from the sitemaps and p/31, linked from p/30: 31 pages; four sitemap documents besides.
    assert sorted(_product_hits(shop)) == sorted(f"/p/{n}" for n in range(1, 32))


async def test_a_document_cut_by_max_urls_is_logged_once_with_every_url_left_out(
    shop: Site, output: str | Path, caplog: pytest.LogCaptureFixture
) -> None:
    shop.documents["/index.xml"] = index("/sm1.xml", "/sm2.xml.gz")
    shop.documents["/sm1.xml"] = urlset(*pages(range(1, 11)))
    shop.gzipped("/sm2.xml.gz", urlset(*pages(range(11, 26))))
    spec = _spec(shop, "{sitemap: /index.xml, max_urls: 10}")

    with caplog.at_level(logging.WARNING, logger="crawlrunner"):
        result = await run_async(spec, output=output)

    assert result.ok
    cuts = [r.getMessage() for r in caplog.records if "max_urls" in r.getMessage()]
    assert cuts == [f"products: sitemap limit: max_urls 10 reached; 15 URLs not fetched ({shop.base}/sm2.xml.gz)"]


def _plan(spec: Path, output: str | Path) -> str:
    result = CliRunner().invoke(main, ["plan", str(spec), "-o", str(output)])
    assert result.exit_code == 0, result.output
    return result.output


async def test_plan_shows_what_since_last_run_stands_for(shop: Site, output: str | Path, tmp_path: Path) -> None:
    shop.documents["/sitemap.xml"] = urlset(*pages([1], OLD))
    spec_path = tmp_path / "sitemaps.yaml"
    spec_path.write_text(
        PRODUCTS.format(base=shop.base, seeds="{sitemap: /sitemap.xml, since: last_run}", extra=OTHER), "utf-8"
    )
    spec = load_spec_text(spec_path.read_text("utf-8"))
    none_yet = "products: since: last_run (no completed run yet that crawled it without a failure: everything)"
    assert none_yet in _plan(spec_path, tmp_path / "none.db")  # no database: plan still works

    first = await run_async(spec, output=output)
    assert first.ok
    await run_async(spec, output=output, only=["other"])  # a later run, not of the sitemap target

    started = _started(output, first).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"products: since: {started} (the start of run {first.run_id})\n" in _plan(spec_path, output)
