"""Extraction on hand-made bodies: selectors, coercion, required/default, bad documents.

Records hold Python values (booleans stay booleans, lists stay lists);
``sql_value`` is what the writer turns them into for SQLite.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlrunner.coercion import sql_row, sql_value
from crawlrunner.errors import SpecError
from crawlrunner.extract import process
from crawlrunner.plan import RequestPlan
from crawlrunner.results import FetchResult, Outcome
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Target


def extraction(extract_yaml: str) -> Target:
    """A one-target spec's target whose extract block is ``extract_yaml``."""
    body = "\n".join("      " + line for line in extract_yaml.strip("\n").splitlines())
    spec = load_spec_text(
        f"name: t\ntargets:\n  - name: t\n    url: https://example.com/\n    extract:\n{body}\n",
        environ={},
    )
    target = spec.targets[0]
    assert target.extract is not None
    return target


def _extract(target: Target, fetch: FetchResult) -> Outcome:
    """The extract stage for one response of ``target`` (no derived requests here)."""
    return process(RequestPlan(target, fetch.url), fetch)


def fetched(body: bytes | str | Any, charset: str | None = None) -> FetchResult:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return FetchResult(
        target="t",
        method="GET",
        url="https://example.com/",
        fetched_at="2024-01-01T00:00:00.000+00:00",
        status=200,
        charset=charset,
        body=body,
    )


def run(rules: Target, body: bytes | str | Any, charset: str | None = None) -> Outcome:
    return _extract(rules, fetched(body, charset))


# --- JSON ---------------------------------------------------------------------


PRODUCTS = extraction(
    """
records: items
fields:
  id: {jmespath: id, type: int, required: true}
  name: name
  price: {jmespath: price, type: float}
  in_stock: {jmespath: stock.available, type: bool}
  tags: {jmespath: tags, type: json}
"""
)


def test_json_records_selector_gives_one_record_per_item() -> None:
    outcome = run(
        PRODUCTS,
        {
            "items": [
                {"id": 1, "name": "Kettle", "price": 19.5, "stock": {"available": True}, "tags": ["b", "a"]},
                {"id": "2", "name": "Mug", "price": "3", "stock": {"available": "no"}, "tags": {"k": 1}},
            ]
        },
    )
    assert outcome.fetch.ok
    assert outcome.records == [
        {"id": 1, "name": "Kettle", "price": 19.5, "in_stock": True, "tags": ["b", "a"]},
        {"id": 2, "name": "Mug", "price": 3.0, "in_stock": False, "tags": {"k": 1}},
    ]
    assert outcome.derived == []
    assert (outcome.dropped, outcome.field_errors) == (0, 0)


def test_json_records_selector_on_an_object_gives_one_record() -> None:
    outcome = run(PRODUCTS, {"items": {"id": 7, "name": "Solo"}})
    assert [r["id"] for r in outcome.records] == [7]


def test_json_records_selector_that_finds_nothing_gives_no_records_and_no_error() -> None:
    outcome = run(PRODUCTS, {"other": []})
    assert outcome.fetch.ok
    assert outcome.records == []
    assert (outcome.dropped, outcome.field_errors) == (0, 0)


@pytest.mark.parametrize(("value", "kind"), [(5, "int"), (2.5, "float"), ("five", "str"), (True, "bool")])
def test_json_records_selector_on_a_scalar_is_an_extract_error(value: Any, kind: str) -> None:
    outcome = run(PRODUCTS, {"items": value})
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error == f"records selector 'items' found {kind}, expected a list"
    assert outcome.records == []


def test_json_without_records_gives_one_record_per_document() -> None:
    rules = extraction(
        """
fields:
  id: {jmespath: product.id, type: int}
  first_tag: product.tags[0]
  tag_count: length(product.tags)
"""
    )
    outcome = run(rules, {"product": {"id": 42, "tags": ["x", "y", "z"]}})
    assert outcome.records == [{"id": 42, "first_tag": "x", "tag_count": 3}]


def test_json_untyped_fields_keep_the_json_type() -> None:
    rules = extraction(
        """
fields:
  n: n
  f: f
  s: s
  b: b
  obj: obj
  arr: arr
  missing: nothing.here
"""
    )
    outcome = run(rules, {"n": 3, "f": 2.5, "s": "text", "b": True, "obj": {"z": 1, "a": "é"}, "arr": [1, 2]})
    assert outcome.records == [
        {"n": 3, "f": 2.5, "s": "text", "b": True, "obj": {"z": 1, "a": "é"}, "arr": [1, 2], "missing": None}
    ]


COERCE = extraction(
    """
fields:
  i: {jmespath: i, type: int}
  f: {jmespath: f, type: float}
  b: {jmespath: b, type: bool}
  j: {jmespath: j, type: json}
  s: {jmespath: s, type: str}
"""
)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"i": 5, "f": 5, "b": True, "j": 1, "s": "x"}, {"i": 5, "f": 5.0, "b": True, "j": 1, "s": "x"}),
        ({"i": "12", "f": "2.5", "b": "yes", "j": "a", "s": 3}, {"i": 12, "f": 2.5, "b": True, "j": "a", "s": "3"}),
        (
            {"i": " 7 ", "f": " 1e3 ", "b": "Off", "j": None, "s": [1]},
            {"i": 7, "f": 1000.0, "b": False, "j": None, "s": "[1]"},
        ),
        (
            {"i": 3.0, "f": -0.5, "b": 0, "j": {"b": 2, "a": [1]}, "s": {"k": "é"}},
            {"i": 3, "f": -0.5, "b": False, "j": {"b": 2, "a": [1]}, "s": '{"k": "é"}'},
        ),
        ({"i": "4.0", "f": 1, "b": "1", "j": True, "s": False}, {"i": 4, "f": 1.0, "b": True, "j": True, "s": "false"}),
        ({"i": False, "f": 0, "b": "N", "j": [], "s": 1.5}, {"i": 0, "f": 0.0, "b": False, "j": [], "s": "1.5"}),
    ],
)
def test_json_type_coercion(document: dict[str, Any], expected: dict[str, Any]) -> None:
    outcome = run(COERCE, document)
    assert outcome.records == [expected]
    assert outcome.field_errors == 0
    assert type(outcome.records[0]["i"]) is int
    assert type(outcome.records[0]["f"]) is float
    assert type(outcome.records[0]["b"]) is bool


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (True, 1),
        (False, 0),
        ({"b": 2, "a": ["é"]}, '{"a": ["é"], "b": 2}'),
        ([3, 1], "[3, 1]"),
        ("text", "text"),
        (7, 7),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (2**63, "9223372036854775808"),
        (-(2**63) - 1, "-9223372036854775809"),
        (2.5, 2.5),
        (None, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_sql_value_is_what_sqlite_stores(value: Any, stored: Any) -> None:
    assert sql_value(value) == stored
    assert type(sql_value(value)) is type(stored)
    # The writer's per-row form, with its inline checks, stores the same.
    (in_a_row,) = sql_row((), [value])
    assert in_a_row == stored
    assert type(in_a_row) is type(stored)


@pytest.mark.parametrize(
    ("document", "failed"),
    [
        ({"i": "twelve"}, "i"),
        ({"i": 2.5}, "i"),
        ({"i": [1]}, "i"),
        ({"f": "abc"}, "f"),
        ({"f": "inf"}, "f"),
        ({"f": "nan"}, "f"),
        ({"f": {"x": 1}}, "f"),
        ({"b": "maybe"}, "b"),
        ({"b": 2}, "b"),
        ({"b": [True]}, "b"),
    ],
)
def test_json_coercion_failure_gives_null_and_counts_a_field_error(document: dict[str, Any], failed: str) -> None:
    outcome = run(COERCE, document)
    assert outcome.fetch.ok
    assert len(outcome.records) == 1
    assert outcome.records[0][failed] is None
    assert outcome.field_errors == 1
    assert outcome.dropped == 0


def test_coercion_failures_are_counted_per_field_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="crawlrunner.extract"):
        outcome = run(COERCE, {"i": "x", "f": "y", "b": "z", "s": "fine"})
    assert outcome.field_errors == 3
    assert outcome.records == [{"i": None, "f": None, "b": None, "j": None, "s": "fine"}]
    assert any("expected an integer, got 'x'" in message for message in caplog.messages)


REQUIRED = extraction(
    """
records: items
fields:
  id: {jmespath: id, type: int, required: true}
  name: {jmespath: name, default: unnamed}
  rank: {jmespath: rank, type: int, default: 0}
  note: note
"""
)


def test_required_missing_is_dropped_and_counted() -> None:
    outcome = run(
        REQUIRED,
        {"items": [{"id": 1, "name": "a"}, {"name": "no id"}, {"id": None}, {"id": ""}, {"id": 2}]},
    )
    assert [r["id"] for r in outcome.records] == [1, 2]
    assert outcome.dropped == 3
    assert outcome.field_errors == 0


def test_required_that_fails_coercion_is_dropped_and_counted_as_a_field_error() -> None:
    outcome = run(REQUIRED, {"items": [{"id": "not-a-number"}, {"id": 3}]})
    assert [r["id"] for r in outcome.records] == [3]
    assert (outcome.dropped, outcome.field_errors) == (1, 1)


def test_default_is_used_when_the_value_is_missing_null_or_empty() -> None:
    outcome = run(
        REQUIRED, {"items": [{"id": 1}, {"id": 2, "name": None, "rank": ""}, {"id": 3, "name": "x", "rank": 5}]}
    )
    assert outcome.records == [
        {"id": 1, "name": "unnamed", "rank": 0, "note": None},
        {"id": 2, "name": "unnamed", "rank": 0, "note": None},
        {"id": 3, "name": "x", "rank": 5, "note": None},
    ]


def test_falsy_values_are_not_replaced_by_the_default() -> None:
    rules = extraction("fields:\n  n: {jmespath: n, default: 9}\n  b: {jmespath: b, default: true}\n")
    assert run(rules, {"n": 0, "b": False}).records == [{"n": 0, "b": 0}]


def test_default_is_coerced_like_a_found_value() -> None:
    rules = extraction(
        "fields:\n  n: {jmespath: n, type: int, default: '12'}\n  b: {jmespath: b, type: bool, default: 'no'}\n"
    )
    outcome = run(rules, {})
    assert outcome.records == [{"n": 12, "b": False}]
    assert type(outcome.records[0]["n"]) is int
    assert outcome.field_errors == 0


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "{jmespath: n, type: int, default: '1.5'}",
            "the default does not fit type int: expected an integer, got '1.5'",
        ),
        ("{jmespath: n, type: int, default: 2.5}", "the default does not fit type int: expected an integer, got 2.5"),
        (
            "{jmespath: n, type: bool, default: maybe}",
            "the default does not fit type bool: expected a boolean, got 'maybe'",
        ),
        (
            "{jmespath: n, type: float, default: 'inf'}",
            "the default does not fit type float: expected a finite number, got 'inf'",
        ),
        (
            "{jmespath: n, type: date, default: tomorrow}",
            "the default does not fit type date: expected a date (ISO 8601), got 'tomorrow'",
        ),
    ],
)
def test_default_that_does_not_fit_the_type_is_a_located_spec_error(field: str, message: str) -> None:
    text = f"name: t\ntargets:\n  - name: t\n    url: https://example.com/\n    extract:\n      fields:\n        n: {field}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    column = 12 + field.index("default: ") + len("default: ")
    assert [str(p) for p in info.value.problems] == [
        f"s.yaml:7:{column}: targets[0].extract.fields.n.default: {message}"
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"items": [{"id": NaN}]}', "not valid JSON: NaN is not valid JSON"),
        (b'{"items": [{"id": Infinity}]}', "not valid JSON: Infinity is not valid JSON"),
        (b'{"items": [{"id": -Infinity}]}', "not valid JSON: -Infinity is not valid JSON"),
    ],
)
def test_nan_and_infinity_are_rejected(body: bytes, error: str) -> None:
    outcome = run(PRODUCTS, body)
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error == error
    assert not outcome.fetch.ok
    assert outcome.records == []


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5E+309"])
def test_overflowing_numbers_make_the_body_invalid_json(number: str) -> None:
    # A number too large for a float would otherwise become inf, which records,
    # record schemas and child templates cannot use and SQLite stores as NULL.
    rules = extraction("fields:\n  v: v\n  j: {jmespath: v, type: json}\n")
    outcome = run(rules, f'{{"v": {number}}}'.encode())
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error == f"not valid JSON: number {number} is out of range"
    assert outcome.records == []


def test_large_but_finite_numbers_and_big_integers_are_kept() -> None:
    rules = extraction("fields:\n  v: v\n  w: w\n")
    outcome = run(rules, b'{"v": 1.7e308, "w": 123456789012345678901234567890}')
    assert outcome.records == [{"v": 1.7e308, "w": 123456789012345678901234567890}]


@pytest.mark.parametrize("body", [b"", b"   \n\t "])
def test_empty_json_body_is_an_extract_error(body: bytes) -> None:
    outcome = run(PRODUCTS, body)
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error == "empty body where JSON was expected"
    assert outcome.records == []


def test_malformed_json_is_an_extract_error() -> None:
    outcome = run(PRODUCTS, b'{"items": [1')
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error is not None and outcome.fetch.error.startswith("not valid JSON: ")


def test_json_that_is_not_utf8_is_an_extract_error() -> None:
    outcome = run(PRODUCTS, b'{"name": "caf\xe9"}')
    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error is not None and outcome.fetch.error.startswith("cannot decode the body as UTF-8: ")


def test_json_declared_charset_is_used_and_a_bom_is_accepted() -> None:
    rules = extraction("fields:\n  name: name\n")
    assert run(rules, '{"name": "café"}'.encode("latin-1"), "latin-1").records == [{"name": "café"}]
    assert run(rules, b'\xef\xbb\xbf{"name": "bom"}').records == [{"name": "bom"}]


def test_unknown_charset_is_an_extract_error() -> None:
    outcome = run(extraction("fields:\n  name: name\n"), b"{}", "no-such-charset")
    assert outcome.fetch.error_kind == "extract_error"


# --- HTML ---------------------------------------------------------------------


LISTING = extraction(
    """
format: html
records: li.product
fields:
  id: {css: "::attr(data-id)", type: int, required: true}
  name: a::text
  link: a::attr(href)
  price: {css: "span.price::attr(data-price)", type: float}
  blurb: {css: p.blurb}
  sku: {xpath: "./dl/dd[@class='sku']/text()"}
  badge: {xpath: "./span[@class='badge']/@title", default: none}
"""
)

LISTING_HTML = """<!doctype html>
<html><body>
<ul>
  <li class="product" data-id="1">
    <a href="/p/1">  Kettle  </a>
    <span class="price" data-price="19.50">19,50 €</span>
    <p class="blurb">Boils
       <b>water</b>
       fast</p>
    <dl><dt>SKU</dt><dd class="sku">K-001</dd></dl>
    <span class="badge" title="new">!</span>
  </li>
  <li class="product" data-id="2"><a href="/p/2">Mug</a><span class="price" data-price="cheap">?</span></li>
  <li class="product"><a href="/p/3">No id</a></li>
  <li class="other" data-id="4"><a href="/p/4">Not a product</a></li>
</ul>
</body></html>"""


def test_html_records_with_css_attr_text_and_xpath() -> None:
    outcome = run(LISTING, LISTING_HTML)
    assert outcome.fetch.ok
    assert outcome.records == [
        {
            "id": 1,
            "name": "Kettle",
            "link": "/p/1",
            "price": 19.5,
            "blurb": "Boils water fast",
            "sku": "K-001",
            "badge": "new",
        },
        {"id": 2, "name": "Mug", "link": "/p/2", "price": None, "blurb": None, "sku": None, "badge": "none"},
    ]
    assert outcome.dropped == 1  # the product without data-id
    assert outcome.field_errors == 1  # data-price="cheap"


def test_html_element_gives_whitespace_normalised_text_of_all_descendants() -> None:
    rules = extraction("format: html\nfields:\n  title: {css: h1}\n  cell: {xpath: '//td'}\n")
    html = "<h1>\n  Hello,\n\t<em>big</em>   <span>wide</span>\n world </h1><table><tr><td> a\n b </td></tr></table>"
    assert run(rules, html).records == [{"title": "Hello, big wide world", "cell": "a b"}]


def test_html_element_text_does_not_add_spaces_inside_inline_markup() -> None:
    rules = extraction("format: html\nfields:\n  p: {css: p}\n")
    assert run(rules, "<p>Read <b>more</b>! Price: 10<sup>€</sup></p>").records == [{"p": "Read more! Price: 10€"}]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<ul><li>Tea</li><li>Coffee</li></ul>", "Tea Coffee"),
        ("<div><p>Street 1</p><p>Berlin</p></div>", "Street 1 Berlin"),
        ("<div>Street 1<br>Berlin</div>", "Street 1 Berlin"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
    ],
    ids=["li", "p", "br", "td"],
)
def test_html_element_text_separates_block_elements_and_line_breaks(html: str, text: str) -> None:
    rules = extraction("format: html\nfields:\n  t: {xpath: '/html/body/*[1]'}\n")
    assert run(rules, html).records == [{"t": text}]


def test_html_without_records_gives_one_record_per_document_and_first_match_wins() -> None:
    rules = extraction("format: html\nfields:\n  first: li::text\n  title: title::text\n")
    outcome = run(rules, "<title> T </title><ul><li>one</li><li>two</li></ul>")
    assert outcome.records == [{"first": "one", "title": "T"}]


def test_html_fields_default_to_str() -> None:
    rules = extraction("format: html\nfields:\n  n: span::text\n")
    assert run(rules, "<span>42</span>").records == [{"n": "42"}]


def test_html_xpath_functions_returning_numbers_and_booleans() -> None:
    rules = extraction(
        "format: html\nfields:\n"
        "  count: {xpath: 'count(//li)', type: int}\n"
        "  any: {xpath: 'boolean(//li)', type: bool}\n"
        "  none: {xpath: 'boolean(//table)', type: bool}\n"
    )
    assert run(rules, "<ul><li>a</li><li>b</li></ul>").records == [{"count": 2, "any": True, "none": False}]


def test_html_empty_body_gives_no_records_and_no_error() -> None:
    outcome = run(LISTING, b"")
    assert outcome.fetch.ok
    assert outcome.records == []
    assert (outcome.dropped, outcome.field_errors) == (0, 0)


def test_html_empty_body_gives_no_record_and_a_warning_not_a_row_of_defaults() -> None:
    rules = extraction("format: html\nfields:\n  t: {css: title, default: untitled}\n  h: h1\n")
    outcome = run(rules, b"")
    assert outcome.records == []
    assert outcome.fetch.ok and outcome.fetch.error == "empty body: no records"


def test_html_charset_is_used() -> None:
    rules = extraction("format: html\nfields:\n  t: p::text\n")
    assert run(rules, "<p>café</p>".encode("cp1252"), "cp1252").records == [{"t": "café"}]


def test_html_undecodable_bytes_are_a_recorded_charset_error_not_replacement_characters() -> None:
    rules = extraction("format: html\nfields:\n  t: p::text\n")
    outcome = run(rules, b"<p>caf\xe9</p>")
    assert outcome.fetch.error_kind == "charset_error"
    assert outcome.records == []


def test_html_whitespace_only_text_counts_as_empty() -> None:
    rules = extraction("format: html\nfields:\n  t: {css: 'p::text', default: blank, required: true}\n")
    assert run(rules, "<p>   \n </p>").records == [{"t": "blank"}]


DECODER_CORPUS = [
    b'{"a": 1, "b": [1.5, -0.0, 1e-400, 1.7976931348623157e308], "c": null, "d": true}',
    b'{"id": 18446744073709551615, "neg": -9223372036854775809, "big": 123456789012345678901234567890}',
    b'{"s": "\\ud800 lone", "z": "\\u0000", "e": "caf\\u00e9"}',
    b'\xef\xbb\xbf{"bom": 1}',
    b'{"a": 1, "a": 2}',
    b"  [1, 2]  ",
    b'{"a": 1} trailing',
    b'{"n": NaN}',
    b'{"n": 1e400}',
    b'{"bad": "\xff"}',
    b"[01]",
    b'"unterminated',
]


def _decode(body: bytes, charset: str | None) -> Any:
    from crawlrunner.document import json as json_documents
    from crawlrunner.errors import ExtractError

    try:
        return json_documents.parse(body, charset)
    except ExtractError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("body", DECODER_CORPUS)
@pytest.mark.parametrize("charset", [None, "utf-8", "latin-1"])
def test_orjson_and_the_standard_decoder_read_documents_alike(
    body: bytes, charset: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The speed-up must be invisible: same values (big integers exact), same errors.
    from crawlrunner.document import json as json_documents

    pytest.importorskip("orjson")
    assert json_documents._orjson_loads is not None
    fast = _decode(body, charset)
    monkeypatch.setattr(json_documents, "_orjson_loads", None)
    assert _decode(body, charset) == fast
    assert repr(_decode(body, charset)) == repr(fast)  # -0.0 and int vs float too


_json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
)
_json_docs = st.recursive(
    _json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3)
    ),
    max_leaves=10,
)
KEY_PATHS = extraction(
    """
records: items
fields:
  a: a
  ab: a.b
  n: {jmespath: b, type: int}
  f: {jmespath: c.a, type: float}
  s: {jmespath: c, type: str}
  flag: {jmespath: a, type: bool}
"""
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_json_docs, max_size=4))
def test_the_key_path_shortcut_extracts_exactly_what_the_general_path_does(items: list[Any]) -> None:
    assert KEY_PATHS.extract is not None and KEY_PATHS.extract.key_paths is not None
    general = dataclasses.replace(KEY_PATHS.extract)
    object.__setattr__(general, "key_paths", None)  # the same rules, taken the long way
    body = json.dumps({"items": items})
    short = run(KEY_PATHS, body)
    long = run(dataclasses.replace(KEY_PATHS, extract=general), body)
    assert repr(short.records) == repr(long.records)
    assert (short.items, short.dropped, short.field_errors, short.field_error_examples) == (
        long.items, long.dropped, long.field_errors, long.field_error_examples,
    )  # fmt: skip


# --- GraphQL answers ------------------------------------------------------------

PRODUCT_NODES = extraction("records: data.products.edges[].node\nfields:\n  id: id\n")
GRAPHQL_QUERY = {"query": "{ products { edges { node { id } } } }"}


def _graphql(body: Any, request: Any = GRAPHQL_QUERY) -> Outcome:
    fetch = fetched(body)
    return process(RequestPlan(PRODUCT_NODES, fetch.url, "POST", json_body=request), fetch)


@pytest.mark.parametrize("data", [{"data": None}, {}])
def test_graphql_errors_without_data_fail_the_request_with_the_servers_messages(data: dict[str, Any]) -> None:
    errors = [{"message": f"Cannot query field 'prodcts' ({n})"} for n in range(5)]
    outcome = _graphql({"errors": errors, **data})

    assert outcome.fetch.error_kind == "extract_error"
    assert outcome.fetch.error == (
        "GraphQL errors and no data: Cannot query field 'prodcts' (0); Cannot query field 'prodcts' (1);"
        " Cannot query field 'prodcts' (2) (and 2 more)"
    )
    assert outcome.records == []


def test_graphql_errors_beside_data_keep_the_records_and_warn() -> None:
    body = {"data": {"products": {"edges": [{"node": {"id": 1}}]}}, "errors": [{"message": "price: not allowed"}]}
    outcome = _graphql(body)

    assert outcome.fetch.error_kind is None and outcome.records == [{"id": 1}]
    assert outcome.fetch.error == "GraphQL errors beside partial data: price: not allowed"


def test_an_errors_key_is_read_as_graphql_only_for_a_graphql_request() -> None:
    # A search API whose answer has an "errors" list of its own is not judged by GraphQL's rules.
    outcome = _graphql({"errors": ["x"]}, request={"q": "shoes"})
    assert outcome.fetch.error_kind is None and outcome.fetch.error is None and outcome.records == []
    assert _graphql({"data": {"products": {"edges": []}}, "errors": []}).fetch.error is None
