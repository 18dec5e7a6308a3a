"""``type: number``: numbers as people write them, with and without ``decimal``.

The rules are the ones docs/spec.md states; each row of the tables below is
one of them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawlrunner.coercion import SQL_TYPES, coerce
from crawlrunner.errors import CoercionError, SpecError
from crawlrunner.extract import process
from crawlrunner.plan import RequestPlan
from crawlrunner.results import FetchResult, Outcome
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Target


def number(value: Any, decimal: str | None = None) -> Any:
    return coerce(value, "number", None, decimal)


# Without ``decimal``: the documented heuristic.
GUESSED = [
    ("$1,299.00", 1299.0),
    ("1.299,00 €", 1299.0),
    ("1 299", 1299.0),
    ("1\u202f299", 1299.0),  # narrow no-break space (French)
    ("1\u00a0299,50", 1299.5),  # no-break space
    ("CHF 1'299.50", 1299.5),
    ("12%", 12.0),
    ("12 %", 12.0),
    ("-3.5", -3.5),
    ("\u22123.5", -3.5),  # the unicode minus sign
    ("-$3.50", -3.5),
    ("$-3.50", -3.5),
    ("€ \u22123,50", -3.5),
    ("(12.50)", -12.5),  # accounting
    ("($1,299.00)", -1299.0),
    ("(12.50 €)", -12.5),
    ("(-12.50)", -12.5),  # not a double negative
    ("(123) reviews", 123.0),  # parentheses around more than the number and its symbols
    ("SKU-123", 123.0),  # a hyphen, not a sign
    ("+3", 3.0),
    ("1,5", 1.5),
    ("1,29", 1.29),
    ("1,2999", 1.2999),
    ("1,299", 1299.0),  # one separator before exactly three digits: thousands
    ("1.299", 1299.0),
    ("0.125", 0.125),  # ... but not after a leading 0
    ("1299.000", 1299.0),  # ... nor after four digits
    ("1 299,000", 1299.0),  # ... nor next to spaces that group
    ("1,299,000", 1299000.0),  # repeated: thousands
    ("1.299.000,5", 1299000.5),
    ("1,299.5", 1299.5),  # both: the last is the decimal separator
    ("1.299,5", 1299.5),
    (".5", 0.5),
    ("$.99", 0.99),
    ("No.5", 5.0),
    ("12.–", 12.0),  # Swiss: twelve francs
    ("  42  ", 42.0),
    ("0", 0.0),
    ("\u0661\u0662", 12.0),  # Arabic-Indic digits
    ("Price: 1,299.00 USD", 1299.0),
]


@pytest.mark.parametrize(("text", "value"), GUESSED)
def test_numbers_as_people_write_them(text: str, value: float) -> None:
    result = number(text)
    assert type(result) is float
    assert result == value


# With ``decimal``: the other separator and spaces only group, by threes.
STATED = [
    ("1,299", ".", 1299.0),
    ("1,299", ",", 1.299),
    ("1.299", ".", 1.299),
    ("1.299", ",", 1299.0),
    ("$1,299.00", ".", 1299.0),
    ("1.299,00 €", ",", 1299.0),
    ("1 299", ".", 1299.0),
    ("1 299", ",", 1299.0),
    ("0.125", ".", 0.125),
    ("1,5", ",", 1.5),
    ("1,299,000", ".", 1299000.0),
    ("-1.299,5", ",", -1299.5),
    ("12%", ",", 12.0),
]


@pytest.mark.parametrize(("text", "decimal", "value"), STATED)
def test_a_stated_decimal_separator_settles_the_ambiguous_cases(text: str, decimal: str, value: float) -> None:
    assert number(text, decimal) == value


REFUSED = [
    ("n/a", None, "expected a number, got 'n/a'"),
    ("call us", None, "expected a number, got 'call us'"),
    ("", None, "expected a number, got ''"),
    ("-", None, "expected a number, got '-'"),
    ("2 for $10", None, "more than one number in '2 for $10'"),
    ("$9.99 (was $12.99)", None, "more than one number in '$9.99 (was $12.99)'"),
    ("1e5", None, "more than one number in '1e5'"),
    ("1 2999", None, "more than one number in '1 2999'"),
    ("1,2,3", None, "not a number as written: '1,2,3'"),
    ("1.299.00", None, "not a number as written: '1.299.00'"),
    ("1,00,000", None, "not a number as written: '1,00,000'"),  # groups of two
    ("1,2.5", None, "not a number as written: '1,2.5'"),
    ("1.299 000", None, "not a number as written: '1.299 000'"),
    ("1,5", ".", "not a number with decimal '.': '1,5'"),  # "," then groups, by threes
    ("$1,299.00", ",", "not a number with decimal ',': '$1,299.00'"),
    ("0.125", ",", "not a number with decimal ',': '0.125'"),
    (",5", ".", "not a number with decimal '.': ',5'"),
    ("9" * 400, None, "expected a finite number, got '" + "9" * 36 + "..."),
]


@pytest.mark.parametrize(("text", "decimal", "message"), REFUSED)
def test_no_number_or_more_than_one_is_refused_never_guessed(text: str, decimal: str | None, message: str) -> None:
    with pytest.raises(CoercionError) as info:
        number(text, decimal)
    assert str(info.value) == message


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), (-7, -7.0), (2.5, 2.5), (0, 0.0), (2**70, float(2**70))])
@pytest.mark.parametrize("decimal", [None, ","])
def test_json_numbers_pass_through_as_floats(value: int | float, expected: float, decimal: str | None) -> None:
    result = number(value, decimal)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize("value", [True, False, [1], {"a": 1}, math.inf, math.nan, 10**400])
def test_booleans_and_other_values_are_refused(value: Any) -> None:
    with pytest.raises(CoercionError):
        number(value)


def test_none_stays_none() -> None:
    assert number(None) is None


def test_a_number_field_is_a_real_column() -> None:
    assert SQL_TYPES["number"] == SQL_TYPES["float"] == "REAL"


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_grouped_prices_read_back_in_either_convention(value: float) -> None:
    english = f"${value:,.2f}"
    german = english.translate(str.maketrans(",.", ".,"))
    assert number(english) == number(german) == round(value, 2)
    assert number(english, ".") == number(german, ",") == round(value, 2)


@given(st.text())
def test_any_text_gives_a_finite_float_or_a_coercion_error(text: str) -> None:
    for decimal in (None, ".", ","):
        try:
            result = number(text, decimal)
        except CoercionError:
            continue
        assert type(result) is float and math.isfinite(result)


# --- in a spec ------------------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    return [str(p) for p in info.value.problems]


def test_decimal_without_type_number_is_a_located_spec_error() -> None:
    text = (
        "name: x\n"
        "targets:\n"
        "  - name: t\n"
        "    url: https://example.com/\n"
        "    extract:\n"
        "      fields:\n"
        "        price: {jmespath: price, type: float, decimal: ','}\n"
        "        total: {jmespath: total, decimal: '.'}\n"
    )
    assert problems(text) == [
        "s.yaml:7:56: targets[0].extract.fields.price.decimal: decimal needs type: number",
        "s.yaml:8:43: targets[0].extract.fields.total.decimal: decimal needs type: number",
    ]


def test_decimal_is_a_dot_or_a_comma() -> None:
    (problem,) = problems(
        "name: x\ntargets:\n  - name: t\n    url: https://example.com/\n    extract:\n"
        "      fields: {price: {jmespath: price, type: number, decimal: ' '}}\n"
    )
    assert problem.startswith("s.yaml:6:") and "targets[0].extract.fields.price.decimal" in problem


def test_a_default_is_read_with_the_field_s_decimal() -> None:
    spec = load_spec_text(
        "name: x\ntargets:\n  - name: t\n    url: https://example.com/\n    extract:\n"
        "      fields: {price: {jmespath: price, type: number, decimal: ',', default: '1.299'}}\n",
        environ={},
    )
    assert spec.targets[0].extract is not None
    assert spec.targets[0].extract.fields[0].decimal == ","
    assert "the default does not fit type number" in "\n".join(
        problems(
            "name: x\ntargets:\n  - name: t\n    url: https://example.com/\n    extract:\n"
            "      fields: {price: {jmespath: price, type: number, default: 'n/a'}}\n"
        )
    )


# --- extraction: the key-path shortcut and the general path -------------------


def target(extract: str) -> Target:
    spec = load_spec_text(
        f"name: t\ntargets:\n  - name: t\n    url: https://example.com/\n    extract: {extract}\n", environ={}
    )
    return spec.targets[0]


def extract(rules: Target, body: str) -> Outcome:
    fetch = FetchResult(
        target="t",
        method="GET",
        url="https://example.com/",
        fetched_at="2024-01-01T00:00:00.000+00:00",
        status=200,
        body=body.encode("utf-8"),
    )
    return process(RequestPlan(rules, fetch.url), fetch)


@pytest.mark.parametrize("shortcut", [True, False])
def test_json_fields_read_numbers_on_both_extraction_paths(shortcut: bool) -> None:
    rules = target("{records: items, fields: {price: {jmespath: p, type: number, decimal: ','}}}")
    assert rules.extract is not None and rules.extract.key_paths is not None
    if not shortcut:
        general = dataclasses.replace(rules.extract)
        object.__setattr__(general, "key_paths", None)  # the same rules, taken the long way
        rules = dataclasses.replace(rules, extract=general)
    items = [{"p": "1.299,50 €"}, {"p": 12}, {"p": "n/a"}, {"p": "2 for $10"}, {"p": True}, {"p": None}]

    outcome = extract(rules, json.dumps({"items": items}))

    assert [r["price"] for r in outcome.records] == [1299.5, 12.0, None, None, None, None]
    assert outcome.field_errors == 3
    assert outcome.field_error_examples == {"price": "expected a number, got 'n/a'"}


def test_html_fields_read_numbers_and_lists_of_them() -> None:
    rules = target(
        "{format: html, records: li, fields: {"
        "price: {css: 'span::text', type: number}, every: {css: 'span::text', type: number, many: true}}}"
    )
    body = "<ul><li><span>$1,299.00</span> <span>1 299,50 €</span></li><li><span>call us</span></li></ul>"

    outcome = extract(rules, body)

    assert [(r["price"], r["every"]) for r in outcome.records] == [(1299.0, [1299.0, 1299.5]), (None, None)]
    assert outcome.field_errors == 2
