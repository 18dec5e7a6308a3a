"""No silent failures: extraction health, why pagination stopped, drift, and checks that know the kind of run.

Each case the issue names (a records selector that matches nothing, a
misspelt field, a next-page selector that never matches, a field whose
values never convert) ends with a visible problem and exit status 3, from a
real crawl of a local catalogue whose size the tests change between runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec

from ..conftest import ThreadedServer, query

Spec = Callable[..., Path]
PER_PAGE = 4


class Catalogue:
    """A shop whose size, prices and failures a test sets between runs."""

    def __init__(self) -> None:
        self.items = 12
        self.price = "$1,299.00"
        self.price_of: Callable[[int], Any] | None = None  # per item, when set
        self.fail_once: set[str] = set()  # paths answering 500 once
        self.always_fail: set[str] = set()

    def page(self, number: int) -> list[dict[str, Any]]:
        first = (number - 1) * PER_PAGE
        ids = range(first + 1, min(first + PER_PAGE, self.items) + 1)
        price = self.price_of or (lambda _: self.price)
        return [{"id": i, "name": f"item {i}", "price": price(i), "note": None} for i in ids]

    def last_page(self) -> int:
        return max(1, -(-self.items // PER_PAGE))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/items", self.api)
        app.router.add_get("/html/list", self.html)
        return app

    def _failing(self, request: web.Request) -> bool:
        key = request.path_qs
        if key in self.always_fail:
            return True
        if key in self.fail_once:
            self.fail_once.discard(key)
            return True
        return False

    async def api(self, request: web.Request) -> web.Response:
        if self._failing(request):
            return web.Response(status=500)
        number = int(request.query.get("page", "1"))
        following = f"/api/items?page={number + 1}" if number < self.last_page() else None
        return web.json_response({"items": self.page(number), "next": following})

    async def html(self, request: web.Request) -> web.Response:
        number = int(request.query.get("page", "1"))
        rows = "".join(
            f"<li class='product'><h2>{item['name']}</h2><p class='price'>{item['price']}</p></li>"
            for item in self.page(number)
        )
        following = f"<a class='next' href='/html/list?page={number + 1}'>next</a>" if number < self.last_page() else ""
        return web.Response(text=f"<html><body><ul>{rows}</ul>{following}</body></html>", content_type="text/html")


@pytest.fixture
def shop() -> Iterator[tuple[Catalogue, str]]:
    catalogue = Catalogue()
    with ThreadedServer(catalogue.app()) as running:
        yield catalogue, running.url


def _spec(write_spec: Spec, base: str, target: str) -> Path:
    return write_spec(f'name: health\nhttp: {{base_url: "{base}", retry: null}}\ntargets:\n{target}')


API = """  - name: items
    url: /api/items
    paginate: {{type: next_url, next: {next}}}
    extract: {{records: items, fields: {{id: id, name: {name}, price: price}}}}
{extra}"""

HTML = """  - name: products
    url: /html/list
    paginate: {{type: next_url, next: "a.next::attr(href)"}}
    extract:
      format: html
      records: {records}
      fields:
        name: h2
        price: {{css: p.price, type: float}}
{extra}"""


def _run(cli: CliRunner, spec: Path, db: Path, *args: str) -> Any:
    return cli.invoke(main, ["run", str(spec), "-o", str(db), *args])


def test_a_records_selector_that_matches_nothing_exits_3_and_says_which(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, HTML.format(records="li.prodcut", extra=""))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 3, result.output
    assert "products: the records selector `li.prodcut` (css) matched nothing on the page" in result.output
    assert "exit status 3: extraction looks broken" in result.output
    # The page was fetched and counted: one document, no records on it.
    assert query(db_path, "SELECT items, records FROM _crawlrunner_fetch_log") == [(0, 0)]


def test_a_misspelt_field_empty_in_every_record_exits_3(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="next", name="nmae", extra=""))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 3, result.output
    assert "items.name: empty in all 12 records from `nmae` (jmespath)" in result.output
    assert "empty fields: items: name 12/12" in result.output
    run_id = query(db_path, "SELECT max(id) FROM _crawlrunner_runs")[0][0]
    assert query(db_path, "SELECT field, records, empty FROM _crawlrunner_extraction_health WHERE run_id = ? ORDER BY field", run_id) == [
        ("id", 12, 0), ("name", 12, 12), ("price", 12, 0),
    ]  # fmt: skip


def test_allow_empty_and_health_false_silence_the_check(
    shop: tuple[Catalogue, str], write_spec: Spec, tmp_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    allowed = _spec(write_spec, base, API.format(next="next", name="nmae", extra="    expect: {allow_empty: [name]}\n"))
    assert _run(cli, allowed, tmp_path / "a.db").exit_code == 0
    off = _spec(write_spec, base, HTML.format(records="li.prodcut", extra="    expect: {health: false}\n"))
    result = _run(cli, off, tmp_path / "b.db")
    assert result.exit_code == 0, result.output


def test_a_next_page_selector_that_never_matches_is_reported_with_its_stop_reason(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="nxt", name="name", extra=""))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 3, result.output
    assert (
        "items: pagination (next_url with next `nxt` (jmespath)) never found a next page: its only chain stopped"
        " after page 1" in result.output
    )
    assert query(db_path, "SELECT pages, items, reason FROM _crawlrunner_chain_ends") == [(1, 4, "no_next")]


def test_values_that_never_convert_are_a_broken_field(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    # The html-catalogue case: "$1,299.00" is not a float, every price is null.
    _, base = shop
    spec = _spec(write_spec, base, HTML.format(records="li.product", extra=""))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 3, result.output
    assert "products.price: empty in all 12 records from `p.price` (css)" in result.output
    assert "field values could not be converted" in result.output
    assert "values could not be converted to float" not in result.output  # said once, above


def test_a_type_that_refuses_most_values_is_broken_even_with_a_default(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    # examples/html-catalogue.yaml's old in_stock: "In stock" is no boolean, the default hid the rest.
    catalogue, base = shop
    catalogue.price_of = lambda i: None if i % 4 == 0 else "yes"  # 2 missing (the default), 6 refused
    target = """  - name: items
    url: /api/items
    paginate: {type: next_url, next: next}
    extract: {records: items, fields: {id: id, price: {jmespath: price, type: int, default: 0}}}
"""
    catalogue.items = 8
    result = _run(cli, _spec(write_spec, base, target), db_path)

    assert result.exit_code == 3, result.output
    assert (
        "items.price: 6 of 8 values could not be converted to int (expected an integer, got 'yes'); stored as null"
        in result.output
    )


def test_a_healthy_crawl_stores_its_chain_ends_and_exits_0(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="next", name="name", extra=""))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 0, result.output
    assert "pagination: items: 1 chain ended: no_next 1" in result.output
    assert query(db_path, "SELECT pages, items, reason FROM _crawlrunner_chain_ends") == [(3, 12, "no_next")]
    assert query(db_path, "SELECT items FROM _crawlrunner_fetch_log ORDER BY id") == [(4,), (4,), (4,)]


def test_truncated_chains_are_listed_and_can_fail_the_run(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    catalogue, base = shop
    catalogue.items = 20  # five pages
    target = """  - name: items
    urls: [/api/items, "/api/items?page=3"]
    paginate: {type: next_url, next: next, max_pages: 2}
    extract: {records: items, fields: {id: id}}
    expect: {truncated_chains: 0}
"""
    result = _run(cli, _spec(write_spec, base, target), db_path)

    assert result.exit_code == 3, result.output
    assert "pagination: items: 2 chains ended: max_pages 2" in result.output
    assert f"  - cut short (max_pages) at {base}/api/items?page=2" in result.output
    assert "items: 2 pagination chains cut short (max_pages 2), expected at most 0" in result.output
    assert query(db_path, "SELECT reason, pages FROM _crawlrunner_chain_ends ORDER BY url") == [
        ("max_pages", 2), ("max_pages", 2),
    ]  # fmt: skip


def test_a_failed_page_ends_its_chain_as_failed(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    catalogue, base = shop
    catalogue.always_fail.add("/api/items?page=2")
    spec = _spec(write_spec, base, API.format(next="next", name="name", extra="    expect: {truncated_chains: 0}\n"))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 3, result.output
    assert query(db_path, "SELECT reason, pages, items FROM _crawlrunner_chain_ends") == [("failed", 2, 4)]
    assert "items: 1 pagination chains cut short (failed 1), expected at most 0" in result.output


def test_drift_against_the_last_completed_run_names_the_numbers(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    catalogue, base = shop
    target = """  - name: items
    url: /api/items
    paginate: {type: next_url, next: next}
    extract: {records: items, fields: {id: id, price: price}}
    expect: {allow_empty: [price], drift: {records: -20%, empty: {price: +10%}}}
"""
    spec = _spec(write_spec, base, target)
    first = _run(cli, spec, db_path)
    assert first.exit_code == 0, first.output
    assert "items: drift not checked: no earlier completed run of this spec crawled it" in first.output

    catalogue.items = 11  # -8%: within the drift allowed
    assert _run(cli, spec, db_path).exit_code == 0

    catalogue.items, catalogue.price = 8, None  # -27% records, and price empty everywhere
    third = _run(cli, spec, db_path)

    assert third.exit_code == 3, third.output
    assert "items: 8 records against 11 in run 2 (-27.3%), more than the -20% drift allowed" in third.output
    assert (
        "items.price: empty in 100.0% of records against 0.0% in run 2 (+100.0 points),"
        " more than the +10 points drift allowed" in third.output
    )


def test_a_trial_run_does_not_check_expectations_and_says_so(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="next", name="name", extra="    expect: {min_records: 12}\n"))

    trial = _run(cli, spec, db_path, "--max-requests", "1")

    assert trial.exit_code == 0, trial.output
    assert "expectations not checked: the run was stopped early by --max-requests / --max-records" in trial.output
    # Resumed to its end, the run counts both sessions' records.
    resumed = _run(cli, spec, db_path, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "expectations not met" not in resumed.output


async def test_a_retry_counts_the_run_it_retries(shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path) -> None:
    catalogue, base = shop
    catalogue.fail_once.add("/api/items?page=2")
    spec = load_spec(
        _spec(write_spec, base, API.format(next="next", name="name", extra="    expect: {min_records: 12}\n"))
    )

    first = await run_async(spec, output=db_path)
    assert first.unmet == ["items: 4 records, expected at least 12"]
    assert first.facts["items"].chain_ends == {"failed": 1}

    retry = await run_async(spec, output=db_path, retry_failed=True)

    # Page 2 fetched again, and page 3 after it: 8 new records, 12 with the run retried.
    assert retry.unmet == [] and retry.health == [] and retry.ok
    facts = retry.facts["items"]
    assert (facts.records, facts.failed) == (12, 0)
    assert facts.chain_ends == {"no_next": 1}  # the failed end was continued by the retry


def test_failures_within_max_failed_ratio_are_said(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    catalogue, base = shop
    catalogue.always_fail.add("/api/items?page=9")
    target = """  - name: items
    urls: ["/api/items?page=1", "/api/items?page=2", "/api/items?page=3", "/api/items?page=9"]
    extract: {records: items, fields: {id: id}}
    expect: {max_failed_ratio: 0.5}
"""
    result = _run(cli, _spec(write_spec, base, target), db_path)

    assert result.exit_code == 0, result.output
    assert "exit status 0: completed; failures within max_failed_ratio: items 1 of 4 failed (25.0%)" in result.output


async def test_on_postgresql_the_same_facts_are_kept_and_checked(
    shop: tuple[Catalogue, str], write_spec: Spec, pg_url: str
) -> None:
    import asyncpg

    catalogue, base = shop
    catalogue.fail_once.add("/api/items?page=2")
    target = """  - name: items
    url: /api/items
    paginate: {type: next_url, next: next}
    extract: {records: items, fields: {id: id, name: nmae}}
    expect: {min_records: 12, drift: {records: -20%}}
"""
    spec = load_spec(_spec(write_spec, base, target))

    first = await run_async(spec, output=pg_url)
    assert first.unmet == ["items: 4 records, expected at least 12"]
    assert first.notes == ["items: drift not checked: no earlier completed run of this spec crawled it"]
    retry = await run_async(spec, output=pg_url, retry_failed=True)
    assert retry.unmet == [] and retry.facts["items"].chain_ends == {"no_next": 1}
    assert retry.health == ["items.name: empty in all 12 records from `nmae` (jmespath)"]

    catalogue.items = 8
    third = await run_async(spec, output=pg_url)
    assert third.unmet == [
        "items: 8 records, expected at least 12",
        f"items: 8 records against 12 in run {retry.run_id} (-33.3%), more than the -20% drift allowed",
    ]
    conn = await asyncpg.connect(pg_url)
    try:
        ends = await conn.fetch("SELECT run_id, reason, pages, items FROM _crawlrunner_chain_ends ORDER BY fetch_id")
        health = await conn.fetch(
            "SELECT run_id, field, records, empty FROM _crawlrunner_extraction_health ORDER BY run_id, field"
        )
        items = await conn.fetchval(
            "SELECT array_agg(items ORDER BY id) FROM _crawlrunner_fetch_log WHERE run_id = $1", third.run_id
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in ends] == [
        (first.run_id, "failed", 2, 4), (retry.run_id, "no_next", 3, 12), (third.run_id, "no_next", 2, 8),
    ]  # fmt: skip
    assert [tuple(r) for r in health] == [
        (first.run_id, "id", 4, 0), (first.run_id, "name", 4, 4),
        (retry.run_id, "id", 12, 0), (retry.run_id, "name", 12, 12),
        (third.run_id, "id", 8, 0), (third.run_id, "name", 8, 8),
    ]  # fmt: skip
    assert items == [4, 4]


def test_a_layout_3_file_is_upgraded_and_its_old_runs_are_no_baseline(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    import sqlite3
    from contextlib import closing

    from crawlrunner.backends.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

    with closing(sqlite3.connect(db_path)) as conn:
        for migration in MIGRATIONS[:3]:
            conn.executescript(migration)
        conn.execute(  # layout 3's names: the upgrade renames them
            "INSERT INTO runs (spec_name, spec_file, spec_hash, started_at, finished_at, status)"
            " VALUES ('health', 'spec.yaml', 'x', '2026-01-01', '2026-01-01', 'completed')"
        )
        conn.execute("PRAGMA user_version = 3")
        conn.commit()
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="next", name="name", extra="    expect: {drift: {records: 10%}}\n"))

    result = _run(cli, spec, db_path)

    assert result.exit_code == 0, result.output
    assert "items: drift not checked: no earlier completed run of this spec crawled it" in result.output
    assert query(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(8,)]
    assert query(db_path, "SELECT run_id, reason FROM _crawlrunner_chain_ends") == [(2, "no_next")]


async def test_a_postgresql_database_of_layout_1_is_upgraded(
    shop: tuple[Catalogue, str], write_spec: Spec, pg_url: str
) -> None:
    import asyncpg

    from crawlrunner.backends.postgres.schema import CREATE, LAYOUT_TABLE, LAYOUT_VERSION, OLD_LAYOUT_TABLE

    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(CREATE)  # layout 1, as the release before made it
        await conn.execute(f"INSERT INTO {OLD_LAYOUT_TABLE} (version) VALUES (1)")
        _, base = shop
        result = await run_async(
            load_spec(_spec(write_spec, base, API.format(next="next", name="name", extra=""))), output=pg_url
        )
        assert result.ok and result.facts["items"].chain_ends == {"no_next": 1}
        assert await conn.fetchval(f"SELECT max(version) FROM {LAYOUT_TABLE}") == LAYOUT_VERSION == 5
        assert await conn.fetchval("SELECT count(*) FROM _crawlrunner_extraction_health") == 3
    finally:
        await conn.close()


def test_quiet_runs_still_say_what_looks_broken(
    shop: tuple[Catalogue, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    _, base = shop
    spec = _spec(write_spec, base, API.format(next="next", name="nmae", extra=""))

    result = _run(cli, spec, db_path, "-q")

    assert result.exit_code == 3
    assert result.stderr == (
        "extraction or expectations:\n  - items.name: empty in all 12 records from `nmae` (jmespath)\n"
    )
