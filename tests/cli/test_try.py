"""``crawlrunner try``: one page of a target, fetched from the demo shop (or read from a file), nothing stored."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crawlrunner.cli import main
from crawlrunner.extract import process
from crawlrunner.plan import RequestPlan
from crawlrunner.results import FetchResult, utc_now
from crawlrunner.spec import load_spec
from crawlrunner.trial import try_page

from ..conftest import REPO

pytestmark = pytest.mark.timeout(30)

DEMO = REPO / "examples" / "demo.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, where a run would write the demo spec's demo.db."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def demo_variant(path: Path, *changes: tuple[str, str]) -> Path:
    """The demo spec with each (old, new) text replaced, written to ``path``."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def try_(cli: CliRunner, spec: Path, *args: str, base: str | None = None) -> Result:
    return cli.invoke(main, ["try", str(spec), *args, *(["--base-url", base] if base else [])])


def test_a_json_api_page_shows_its_records_next_page_and_child_requests(
    cli: CliRunner, demo_server: str, workdir: Path
) -> None:
    result = try_(cli, DEMO, "products", "-n", "2", base=demo_server)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"products: GET {demo_server}/api/products"
    assert lines[1].startswith("  HTTP 200, application/json, 825 bytes in ")
    assert "records: 10 found by `items`, 10 kept; the first 2 shown (-n N for more, -f json for all)" in lines
    assert "    id        1                    jmespath: id, type: int, required: true" in lines
    assert '    name      "Compact Lamp 1"     jmespath: name' in lines
    assert "    price     41.75                jmespath: price, type: float" in lines
    assert "  record 3" not in lines
    assert f"next page: GET {demo_server}/api/products?page=2" in lines
    child = lines.index("requests of child target product_details: 10")
    assert lines[child + 1 : child + 4] == [
        f"  GET {demo_server}/api/products/1",
        f"  GET {demo_server}/api/products/2",
        "  ... 8 more",
    ]
    assert result.stderr == ""


def test_an_html_page_shows_each_field_with_the_css_rule_that_produced_it(
    cli: CliRunner, demo_server: str, workdir: Path
) -> None:
    result = try_(cli, DEMO, "catalogue", "-n", "1", base=demo_server)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  HTTP 200, text/html, ")
    assert "records: 30 found by `li.product`, 30 kept; the first 1 shown (-n N for more, -f json for all)" in lines
    record = lines[lines.index("  record 1") + 1 :][:4]
    assert record[:3] == [
        "    id     1                        css: ::attr(data-id), type: int, required: true",
        '    name   "Compact Lamp 1"         css: a::text',
        '    link   "/shop/products/1.html"  css: a::attr(href)',
    ]
    assert record[3].startswith("    price  41.75                    css: span.price, ")
    assert "requests of child target product_pages: 30" in lines
    assert f"  GET {demo_server}/shop/products/1.html" in lines
    assert "next page" not in result.stdout  # the catalogue does not paginate


def test_a_child_target_with_a_url_is_tried_alone(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "product_details", "/api/products/3", base=demo_server)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"product_details: GET {demo_server}/api/products/3"
    assert "records: 1 (the page is the record), 1 kept" in lines
    assert any(line.split() == ["sku", '"SKU-00003"', "jmespath:", "sku"] for line in lines)
    assert any(line.split()[:2] == ["tags", '["office",'] for line in lines)
    # Its parent: field has nothing to read without a parent record, and says why.
    empty = lines.index("fields that matched nothing on any record:")
    assert lines[empty + 1] == "  listed_as  parent: name  (a child target tried alone has no parent record)"


def test_a_child_target_without_a_url_is_a_usage_error(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "product_pages", base=demo_server)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "crawlrunner: target 'product_pages' has no requests of its own (they come from the records of "
        "'catalogue'): give the URL of a page to try, as in: crawlrunner try SPEC product_pages URL\n"
    )


def test_an_unknown_target_lists_the_targets(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "prodcuts", base=demo_server)

    assert result.exit_code == 2
    assert result.stderr == (
        "crawlrunner: no target named 'prodcuts' in the spec "
        "(targets: products, product_details, catalogue, product_pages, site_map)\n"
    )
    assert "Traceback" not in result.output


def test_a_records_selector_that_matches_nothing_says_so_and_exits_3(
    cli: CliRunner, demo_server: str, workdir: Path
) -> None:
    spec = demo_variant(workdir / "typo.yaml", ("records: li.product", "records: li.prodcut"))
    result = try_(cli, spec, "catalogue", base=demo_server)

    assert result.exit_code == 3
    message = "records selector `li.prodcut` matched nothing on this page"
    assert f"records: none: {message}" in result.stdout.splitlines()
    assert "requests of child target product_pages: none" in result.stdout.splitlines()
    assert result.stderr == f"crawlrunner: {message}\n"


def test_a_misspelt_field_is_listed_as_matching_nothing(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    spec = demo_variant(workdir / "nmae.yaml", ("        name: name\n", "        name: nmae\n"))
    result = try_(cli, spec, "products", "-n", "1", base=demo_server)

    assert result.exit_code == 0, result.output  # the other fields found their values
    lines = result.stdout.splitlines()
    assert "    name      null    jmespath: nmae" in lines
    empty = lines.index("fields that matched nothing on any record:")
    assert lines[empty + 1 :][:2] == ["  name  jmespath: nmae", ""]


def test_every_field_empty_exits_3(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    spec = demo_variant(
        workdir / "empty.yaml",
        ("title: {css: h1.title, required: true}", "title: {css: h1.titel}"),
        ('price: {css: "p.price::attr(data-price)", type: float}', "price: {css: p.prise}"),
        ("sku: {xpath: \"//dd[@class='sku']/text()\"}", "sku: {xpath: \"//dd[@class='skew']\"}"),
        ("stock: p.stock::text", "stock: p.stok::text"),
    )
    result = try_(cli, spec, "product_pages", "/shop/products/2.html", base=demo_server)

    assert result.exit_code == 3, result.output
    assert result.stderr == "crawlrunner: no field matched anything on this page: every field is empty\n"


def test_a_misspelt_next_selector_ends_the_chain_after_page_1(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    spec = demo_variant(workdir / "nxt.yaml", ("next: next}", "next: nxt}"))
    result = try_(cli, spec, "products", base=demo_server)

    assert result.exit_code == 0, result.output
    assert (
        "next page: none, the chain ends here after 1 page (10 items): no_next (no next link, URL or cursor on the page)"
        in result.stdout.splitlines()
    )
    data = json.loads(try_(cli, spec, "products", "--json", base=demo_server).stdout)
    assert data["next_page"] is None
    assert data["chain_end"] == {"reason": "no_next", "pages": 1, "items": 10}


def test_defaults_and_failed_conversions_are_marked(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    spec = demo_variant(
        workdir / "marks.yaml",
        ("price: {jmespath: price, type: float}", "price: {jmespath: category, type: float}"),
        (
            "        category: category\n",
            "        category: category\n        colour: {jmespath: colour, default: grey}\n",
        ),
    )
    result = try_(cli, spec, "products", "-n", "1", base=demo_server)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        "    price     null              jmespath: category, type: float  (not converted: expected a number, got 'home')"
        in lines
    )
    assert '    colour    "grey"            jmespath: colour, default: "grey"  (default)' in lines
    errors = lines.index("values that could not be converted (stored as null):")
    assert lines[errors + 1] == "  price: expected a number, got 'home'"
    # A value from default: matched nothing on the page.
    assert '  colour  jmespath: colour, default: "grey"' in lines


def test_records_all_dropped_exit_3(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    spec = demo_variant(
        workdir / "dropped.yaml",
        ("id: {jmespath: id, type: int, required: true}", "id: {jmespath: ID, required: true}"),
    )
    result = try_(cli, spec, "products", "-n", "1", base=demo_server)

    assert result.exit_code == 3
    assert "records: 10 found by `items`, 0 kept, 10 dropped; the first 1 shown" in result.stdout
    assert "  record 1  (dropped: required field(s) empty: id)" in result.stdout.splitlines()
    assert result.stderr == "crawlrunner: every record was dropped (10): required field(s) empty: id\n"
    # Dropped records lead to no child request, as in a run.
    assert "requests of child target product_details: none" in result.stdout.splitlines()


def test_json_output_has_every_record_and_field(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "catalogue", "-f", "json", base=demo_server)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["target"] == "catalogue" and data["problem"] is None
    assert data["fetch"]["status"] == 200 and data["fetch"]["content_type"] == "text/html"
    assert data["found"] == data["kept"] == len(data["records"]) == 30
    first = data["records"][0]
    assert first["values"] == {"id": 1, "name": "Compact Lamp 1", "link": "/shop/products/1.html", "price": 41.75}
    price = first["fields"][3]
    assert price["source"].startswith("css: span.price, ")
    assert {**price, "source": None} == {
        "name": "price",
        "value": 41.75,
        "source": None,
        "found": True,
        "from_default": False,
        "error": None,
    }
    (children,) = data["requests"]
    assert children["target"] == "product_pages" and children["count"] == 30 and len(children["first"]) == 10
    assert json.loads(try_(cli, DEMO, "catalogue", "--json", base=demo_server).stdout)["records"] == data["records"]


def test_links_a_page_would_follow(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "site_map", "/shop/products/2.html", "-n", "3", base=demo_server)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Catalogue, products 1 and 3: the page itself is not followed again.
    links = lines.index("links to follow: 3")
    assert lines[links + 1 :] == [
        f"  GET {demo_server}/shop/",
        f"  GET {demo_server}/shop/products/1.html",
        f"  GET {demo_server}/shop/products/3.html",
    ]


def test_robots_txt_is_honoured_for_a_target_that_obeys_it(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    result = try_(cli, DEMO, "site_map", "/docs/drafts/next-release.html", base=demo_server)

    assert result.exit_code == 1
    assert "  not fetched: disallowed by robots.txt (the target has follow.robots: true)" in result.stdout
    assert "HTTP" not in result.stdout


def test_a_failed_fetch_shows_the_error_kind_and_exits_1(
    cli: CliRunner, write_spec: Callable[..., Path], demo_server: str, closed_port: int, workdir: Path
) -> None:
    result = try_(cli, DEMO, "products", base=f"http://127.0.0.1:{closed_port}")

    assert result.exit_code == 1
    assert "  failed: connect_error: " in result.stdout
    assert "next page: none, the chain ends here after 1 page (0 items): failed" in result.stdout
    assert result.stderr.startswith("crawlrunner: the fetch failed: connect_error: ")

    missing = try_(cli, DEMO, "product_details", "/api/products/99", base=demo_server)
    assert missing.exit_code == 1
    assert "  failed: http_status: HTTP 404 Not Found" in missing.stdout.splitlines()


def test_a_saved_body_is_extracted_without_any_network(
    cli: CliRunner, demo_server: str, closed_port: int, workdir: Path
) -> None:
    with urllib.request.urlopen(f"{demo_server}/shop/products/5.html", timeout=10) as response:
        saved = workdir / "page.html"
        saved.write_bytes(response.read())
    # Nothing listens at this base URL: a request would fail.
    offline = f"http://127.0.0.1:{closed_port}"
    result = try_(cli, DEMO, "product_pages", "--body", str(saved), base=offline)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"product_pages: a saved page, as if from {offline}",
        f"  {saved.stat().st_size:,} bytes, read as text/html; nothing was fetched",
    ]
    assert any(line.split()[:2] == ["title", '"Quiet'] for line in lines)

    # With a URL: the page's address, for its links.
    linked = try_(cli, DEMO, "site_map", "/shop/products/5.html", "--body", str(saved), base=offline)
    assert linked.exit_code == 0, linked.output
    assert f"  GET {offline}/shop/products/4.html" in linked.stdout.splitlines()
    # On another host than the target's, a run would follow none of them.
    elsewhere = try_(cli, DEMO, "site_map", "https://elsewhere.example/p/5.html", "--body", str(saved), base=offline)
    assert "links to follow: 0 (3 more not followed: seen, off its hosts or past max_pages)" in elsewhere.stdout


def test_secrets_are_masked_in_everything_shown(
    cli: CliRunner, demo_server: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_TRY_KEY", "key-try-5b7d9e")
    spec = demo_variant(
        workdir / "secret.yaml",
        ("url: /api/products\n", "url: /api/products?key=${env.CR_TRY_KEY}\n"),
        ("        category: category\n", "        category: category\n        seen_at: {meta: url}\n"),
    )
    for fmt in ("text", "json"):
        result = try_(cli, spec, "products", "-f", fmt, base=demo_server)

        assert result.exit_code == 0, result.output
        assert "key-try-5b7d9e" not in result.output
        assert "key=***" in result.stdout


def test_nothing_is_written(cli: CliRunner, demo_server: str, workdir: Path) -> None:
    for target in ("products", "catalogue", "site_map"):
        assert try_(cli, DEMO, target, base=demo_server).exit_code == 0
    assert list(workdir.iterdir()) == []
    # Not even a download: the body is read into memory.
    files = workdir / "files.yaml"
    files.write_text(
        f"name: files\nhttp: {{base_url: '{demo_server}'}}\ntargets:\n  - {{name: f, url: /shop/, download: true}}\n"
    )
    result = try_(cli, files, "f")
    assert result.exit_code == 0, result.output
    assert "no extraction rules: the page yields no records" in result.stdout
    assert list(workdir.iterdir()) == [files]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("products", "/api/products"),
        ("catalogue", "/shop/"),
        ("site_map", "/shop/"),
        ("product_pages", "/shop/products/7.html"),
    ],
)
def test_the_records_shown_are_the_records_a_run_extracts(target: str, path: str, demo_server: str) -> None:
    """``trial`` traces each field on its own; a run's extraction must agree with it, value for value."""
    spec = load_spec(DEMO, base_url=demo_server)
    url = demo_server + path
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    trial = try_page(spec, target, url, body=body)
    fetched = FetchResult(target, "GET", url, utc_now(), final_url=url, body=body)
    outcome = process(RequestPlan(spec.target(target), url), fetched, derive=False)

    assert trial.records and [r.values for r in trial.records if r.dropped is None] == outcome.records
    assert trial.found == outcome.items
    assert trial.field_errors == outcome.field_error_examples


def test_the_trace_agrees_with_extraction_on_every_kind_of_field(
    demo_server: str, write_spec: Callable[..., Path]
) -> None:
    """Defaults, failed conversions, many, join, regex, const, meta and dropped records, traced as extracted."""
    spec = load_spec(
        write_spec(
            f"""
name: kinds
http: {{base_url: "{demo_server}"}}
targets:
  - name: kinds
    url: /api/products
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int, required: true}}
        price: {{jmespath: price, type: number}}
        bad: {{jmespath: category, type: int}}
        euro: {{const: "1,299", type: number, decimal: ","}}
        word: {{jmespath: name, regex: '^(\\w+)'}}
        colour: {{jmespath: colour, default: grey}}
        both: {{jmespath: "[name, category]", join: " / "}}
        all: {{jmespath: "[name, category]", many: true}}
        at: {{meta: url}}
        odd: {{jmespath: "id == `3` && name || `null`", required: true}}
"""
        )
    )
    url = f"{demo_server}/api/products"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    trial = try_page(spec, "kinds", url, body=body)
    outcome = process(
        RequestPlan(spec.target("kinds"), url),
        FetchResult("kinds", "GET", url, utc_now(), final_url=url, body=body),
        derive=False,
    )

    assert [r.values for r in trial.records if r.dropped is None] == outcome.records
    assert trial.field_errors == outcome.field_error_examples and "bad" in outcome.field_error_examples
    assert trial.found - trial.kept == outcome.dropped == 9
    first = {f.name: f for f in trial.records[0].fields}
    assert first["colour"].value == "grey" and first["colour"].from_default and not first["colour"].found
    assert (
        first["bad"].value is None and first["bad"].found and first["bad"].error == outcome.field_error_examples["bad"]
    )
    assert first["word"].source == "jmespath: name, regex: ^(\\w+)" and first["word"].value == "Compact"
    assert first["euro"].source == 'const: "1,299", type: number, decimal: ","'
    assert trial.empty_fields == ("colour",)
