"""Pagination, link following, parent → child targets, templates and expectations,
each against the real test server, counted row by row in the SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crawlrunner.api import run_async
from crawlrunner.spec import load_spec

from .. import server_app
from ..conftest import query

PAGINATION = {
    "next_url": ("/items/next", "items", "{type: next_url, next: next}"),
    "link_header": ("/items/link", "@", "{type: link_header}"),
    "page_number": ("/items/page", "data", "{type: page_number, limit: 40, limit_param: per_page}"),
    "page_number_total": ("/items/page", "data", "{type: page_number, total: total, stop_on_empty: false}"),
    "offset": ("/items/offset", "results", "{type: offset, limit: 40}"),
    "cursor_param": ("/items/cursor", "entries", "{type: cursor, cursor: next_cursor}"),
    "cursor_header": (
        "/items/cursor",
        "entries",
        "{type: cursor, cursor: {header: X-Next-Cursor}, param: X-Cursor, send_cursor_as: header}",
    ),
}


@pytest.mark.parametrize("style", sorted(PAGINATION))
async def test_each_pagination_style_yields_exactly_1000_rows(
    style: str, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    url, records, paginate = PAGINATION[style]
    spec = load_spec(
        write_spec(
            f"""
name: paging
http: {{base_url: "{server}"}}
targets:
  - name: items
    url: {url}
    paginate: {paginate}
    extract:
      records: "{records}"
      fields: {{id: {{jmespath: id, type: int}}, name: name}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok, result.stats
    assert query(db_path, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM items") == [(1000, 1000, 0, 999)]
    pages = query(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log")[0][0]
    assert 25 <= pages <= 26  # page_number without a total needs one empty page to stop


async def test_a_self_referencing_next_link_stops(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: loop
http: {{base_url: "{server}"}}
targets:
  - name: looping
    url: /items/loop
    paginate: {{type: next_url, next: next}}
    extract: {{records: items, fields: {{id: id}}}}
"""
        )
    )
    before = server_app.hits["loop"]
    result = await run_async(spec, output=db_path)

    assert result.ok
    assert server_app.hits["loop"] - before == 1
    assert query(db_path, "SELECT count(*) FROM looping") == [(5,)]


async def test_max_pages_caps_a_chain(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: capped
http: {{base_url: "{server}"}}
targets:
  - name: items
    url: /items/next
    paginate: {{type: next_url, next: next, max_pages: 3}}
    extract: {{records: items, fields: {{id: id}}}}
"""
        )
    )
    await run_async(spec, output=db_path)

    assert query(db_path, "SELECT count(*) FROM items") == [(120,)]


def _tree_nodes(depth: int) -> set[int]:
    """Nodes of the test site's binary tree within ``depth`` links of the root."""
    return set(range(min(2 ** (depth + 1) - 1, server_app.SITE_NODES)))


@pytest.mark.parametrize("depth", [1, 2, 3])
async def test_link_following_fetches_exactly_the_pages_within_depth_once(
    depth: int, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    key = f"depth{depth}"
    spec = load_spec(
        write_spec(
            f"""
name: site
http: {{base_url: "{server}"}}
targets:
  - name: pages
    url: /site/{key}/0.html
    follow: {{max_depth: {depth}}}
    extract:
      format: html
      fields:
        node: {{css: h1, type: int}}
        depth: {{meta: depth}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    expected = _tree_nodes(depth)
    rows = query(db_path, "SELECT node, depth FROM pages")
    assert {node for node, _ in rows} == expected
    assert len(rows) == len(expected)
    assert max(d for _, d in rows) == depth
    assert all(server_app.hits[f"site:{key}:{n}"] == 1 for n in expected)
    assert server_app.hits[f"site:{key}:private"] == 0  # robots.txt disallows it
    assert result.totals.robots_denied == 1  # every page links the same private URL; asked once
    assert result.ok
    # Recorded as skipped, with why: not pending for ever, so a resume would not try it.
    assert query(db_path, "SELECT url, reason FROM _crawlrunner_requests WHERE state = 'skipped'") == [
        (f"{server}/site/{key}/private/secret.html", "disallowed by robots.txt")
    ]
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_requests WHERE state = 'pending'") == [(0,)]


async def test_link_following_over_the_whole_site_with_rules(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: site
http: {{base_url: "{server}", limits: {{connections: 8}}}}
targets:
  - name: pages
    url: /site/whole/0.html
    follow:
      max_depth: 20
      deny: ['/1[0-9]\\.html$']
      robots: false
    extract:
      format: html
      fields: {{node: {{css: h1, type: int}}}}
"""
        )
    )
    await run_async(spec, output=db_path)

    nodes = [n for (n,) in query(db_path, "SELECT node FROM pages WHERE node IS NOT NULL")]
    assert len(nodes) == len(set(nodes))
    denied = set(range(10, 20))
    # Everything reachable without passing through a denied page.
    reachable, frontier = {0}, [0]
    while frontier:
        n = frontier.pop()
        for c in (2 * n + 1, 2 * n + 2):
            if c < server_app.SITE_NODES and c not in denied and c not in reachable:
                reachable.add(c)
                frontier.append(c)
    assert set(nodes) == reachable
    assert server_app.hits["site:whole:private"] == 1  # robots: false fetches it


async def test_parents_and_children_run_together_and_carry_parent_fields(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: family
http: {{base_url: "{server}"}}
targets:
  - name: parents
    url: /parents
    paginate: {{type: page_number}}
    extract:
      records: parents
      fields: {{id: {{jmespath: id, type: int}}, label: label}}
  - name: children
    parent: parents
    url: /parents/{{id}}/children
    extract:
      records: children
      fields:
        parent_id: {{parent: id}}
        parent_label: {{parent: label}}
        n: {{jmespath: n, type: int}}
        value: {{jmespath: value, type: int}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    assert query(db_path, "SELECT count(*) FROM parents") == [(100,)]
    assert query(db_path, "SELECT count(*), count(DISTINCT parent_id) FROM children") == [(1000, 100)]
    assert query(db_path, "SELECT count(*) FROM children WHERE value != parent_id * 100 + n") == [(0,)]
    assert query(db_path, "SELECT parent_label FROM children WHERE parent_id = 42 LIMIT 1") == [("parent 42",)]
    # Children start while the parent's pages are still coming, not after them.
    first_child, last_parent = query(
        db_path,
        "SELECT (SELECT min(id) FROM _crawlrunner_fetch_log WHERE target = 'children'),"
        " (SELECT max(id) FROM _crawlrunner_fetch_log WHERE target = 'parents')",
    )[0]
    assert first_child < last_parent


async def test_templates_expand_ranges_lists_and_seed_files(
    server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "ids.csv").write_text("item,colour\n3,red\n4,blue\n")
    (tmp_path / "urls.txt").write_text(f"# seed URLs\n{server}/json/item/8\n\n/json/item/9\n")
    spec = load_spec(
        write_spec(
            f"""
name: templates
http: {{base_url: "{server}"}}
targets:
  - name: product
    url: /echo?id={{id}}&lang={{lang}}
    vars:
      id: {{from: 1, to: 5, step: 2}}
      lang: [en, de]
    extract: {{fields: {{query: {{jmespath: query, type: json}}}}}}
  - name: seeded
    url: /echo
    method: POST
    seeds: ids.csv
    json: {{item: "{{item}}", colour: "{{colour}}"}}
    extract: {{fields: {{body: body}}}}
  - name: listed
    seeds: urls.txt
    extract: {{fields: {{id: id}}}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    queries = sorted(q for (q,) in query(db_path, "SELECT query FROM product"))
    assert queries == sorted(f'{{"id": "{i}", "lang": "{lang}"}}' for i in (1, 3, 5) for lang in ("en", "de"))
    assert sorted(b for (b,) in query(db_path, "SELECT body FROM seeded")) == [
        '{"item": "3", "colour": "red"}',
        '{"item": "4", "colour": "blue"}',
    ]
    assert sorted(i for (i,) in query(db_path, "SELECT id FROM listed")) == [8, 9]


async def test_defaults_are_inherited_and_can_be_switched_off(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: inherit
http:
  base_url: "{server}"
  headers: {{X-Run: run}}
defaults:
  headers: {{X-Default: default}}
  params: {{lang: en}}
targets:
  - name: inherits
    url: /echo
    extract: &fields
      fields: {{run: '"headers"."X-Run"', default: '"headers"."X-Default"', query: {{jmespath: query, type: json}}}}
  - name: opts_out
    url: /echo
    headers: {{X-Run: null, X-Default: mine}}
    params: {{lang: null}}
    extract: *fields
"""
        )
    )
    await run_async(spec, output=db_path)

    assert query(db_path, 'SELECT run, "default", query FROM inherits') == [("run", "default", '{"lang": "en"}')]
    assert query(db_path, 'SELECT run, "default", query FROM opts_out') == [(None, "mine", "{}")]


async def test_extraction_sources_and_types(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: sources
http: {{base_url: "{server}"}}
targets:
  - name: page
    url: /html/3
    extract:
      format: html
      fields:
        price: {{css: p.price, regex: '([0-9.]+)', type: float}}
        euro: {{regex: '€([0-9]+)', type: int}}
        labels: {{css: li a::text, many: true}}
        joined: {{css: li a::text, join: " | "}}
        kind: {{const: product}}
        status: {{meta: status}}
        content_type: {{header: Content-Type}}
        missing: {{css: .nothing, default: n/a}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    assert query(db_path, "SELECT price, euro, labels, joined, kind, status, content_type, missing FROM page") == [
        (3.25, 3, '["Row 0", "Row 1", "Row 2"]', "Row 0 | Row 1 | Row 2", "product", 200,
         "text/html; charset=utf-8", "n/a")
    ]  # fmt: skip


async def test_required_fields_and_record_schema_drop_bad_records(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: strict
http: {{base_url: "{server}"}}
targets:
  - name: items
    url: /json/list/1?size=10
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        absent: {{jmespath: nope, required: true}}
  - name: checked
    url: /json/list/1?size=10
    extract:
      records: items
      schema: {{type: object, properties: {{id: {{type: integer, maximum: 4}}}}}}
      fields: {{id: {{jmespath: id, type: int}}}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert query(db_path, "SELECT count(*) FROM items") == [(0,)]
    assert result.stats.targets["items"].dropped == 10
    assert query(db_path, "SELECT id FROM checked ORDER BY id") == [(1,), (2,), (3,), (4,)]
    assert result.stats.targets["checked"].dropped == 6


async def test_unmet_expectations_are_reported(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(
        write_spec(
            f"""
name: expectations
http: {{base_url: "{server}"}}
targets:
  - name: few
    urls: [/json/item/1, /status/404]
    extract: {{fields: {{id: id, nothing: missing_key}}}}
    expect: {{min_records: 5, not_null: [id, nothing], max_failed_ratio: 0.25}}
  - name: tolerant
    urls: [/json/item/1, /json/item/2, /json/item/3, /status/500]
    extract: {{fields: {{id: id}}}}
    expect: {{min_records: 3, max_failed_ratio: 0.3}}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.unmet == [
        "few: 1 records, expected at least 5",
        "few: 1 of 1 records have no nothing",
        "few: 1 of 2 requests failed (50.0%), expected at most 25.0%",
    ]
    assert not result.ok
