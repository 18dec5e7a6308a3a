"""``type: number`` end to end: prices as a shop prints them, fetched from a real
server on 127.0.0.1, stored as REAL in SQLite (double precision in PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.spec import load_spec, load_spec_text

from ..conftest import ThreadedServer, query

# What a shop prints, and what the crawl should store for it.
PRICES = [
    ("$1,299.00", 1299.0),
    ("1.299,00 €", 1299.0),
    ("1\u202f299 €", 1299.0),
    ("12%", 12.0),
    ("\u22123.50", -3.5),
    ("call us", None),
    ("2 for $10", None),
]
SPEC = """
name: numbers
http: {{base_url: "{base}"}}
targets:
  - name: shelf
    url: /shelf
    extract:
      format: html
      records: li
      fields:
        label: {{css: "::attr(data-label)"}}
        price: {{css: span.price, type: number}}
  - name: api
    url: /api
    extract:
      records: items
      fields:
        total: {{jmespath: total, type: number, decimal: ","}}
"""


async def shelf(request: web.Request) -> web.Response:
    items = "".join(
        f"<li data-label='{i}'><span class='price'>{text}</span></li>" for i, (text, _) in enumerate(PRICES)
    )
    return web.Response(text=f"<html><body><ul>{items}</ul></body></html>", content_type="text/html")


async def api(request: web.Request) -> web.Response:
    return web.json_response({"items": [{"total": "1.299"}, {"total": "1,5 €"}, {"total": 7}, {"total": None}]})


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    app = web.Application()
    app.router.add_get("/shelf", shelf)
    app.router.add_get("/api", api)
    with ThreadedServer(app) as running:
        yield running.url


async def test_number_fields_are_stored_as_real(shop: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    result = await run_async(load_spec(write_spec(SPEC, base=shop)), output=db_path)

    assert result.ok
    assert query(db_path, "SELECT type FROM pragma_table_info('shelf') WHERE name = 'price'") == [("REAL",)]
    assert query(db_path, "SELECT label, price, typeof(price) FROM shelf ORDER BY CAST(label AS INTEGER)") == [
        (str(i), value, "null" if value is None else "real") for i, (_, value) in enumerate(PRICES)
    ]
    assert query(db_path, "SELECT total, typeof(total) FROM api ORDER BY rowid") == [
        (1299.0, "real"), (1.5, "real"), (7.0, "real"), (None, "null"),
    ]  # fmt: skip
    # Text with no number, or with two, is counted as unconvertible, not stored as 0.
    assert result.stats.targets["shelf"].field_errors == 2


def test_number_fields_are_double_precision_on_postgresql(shop: str, pg_url: str) -> None:
    result = crawlrunner.run(load_spec_text(SPEC.format(base=shop)), output=pg_url)

    assert result.status == "completed"
    types = crawlrunner.query(
        pg_url,
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE column_name IN ('price', 'total') ORDER BY table_name",
    )
    assert list(types) == [("api", "total", "double precision"), ("shelf", "price", "double precision")]
    assert list(crawlrunner.query(pg_url, "SELECT label, price FROM shelf ORDER BY label::int")) == [
        (str(i), value) for i, (_, value) in enumerate(PRICES)
    ]
