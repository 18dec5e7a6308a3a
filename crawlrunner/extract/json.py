"""JSON documents: decode strictly, select with compiled JMESPath."""

from __future__ import annotations

import json
from typing import Any

import math

from ..errors import ExtractError
from ..selectors import Selector


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; storing them as numbers would poison sums.
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    # 1e400 overflows to inf, which no column can hold.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is out of range")
    return number


# One decoder for every document: ``json.loads`` with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)


def parse(body: bytes, charset: str | None) -> Any:
    if not body.strip():
        raise ExtractError("empty body where JSON was expected")
    try:
        text = body.decode(charset or "utf-8-sig")
    except (UnicodeDecodeError, LookupError) as exc:
        raise ExtractError(f"cannot decode the body as {charset or 'UTF-8'}: {exc}") from None
    try:
        return _DECODER.decode(text)
    except ValueError as exc:
        raise ExtractError(f"not valid JSON: {exc}") from None


def select_records(document: Any, records: Selector) -> list[Any]:
    """The records a records selector finds: a list, or one object."""
    found = records.query.search(document)
    if found is None:
        return []
    if isinstance(found, list):
        return found
    if isinstance(found, dict):
        return [found]
    raise ExtractError(f"records selector {records.source!r} found {type(found).__name__}, expected a list")


def select(node: Any, query: Any) -> list[Any]:
    """Every value a JMESPath expression selects (a projection gives several)."""
    found = query.search(node)
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def select_first(node: Any, query: Any) -> Any:
    return query.search(node)


def text_of(node: Any) -> str:
    return node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)
