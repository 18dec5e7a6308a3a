"""JSON documents: decode strictly, select with compiled JMESPath."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ExtractError
from ..selectors import Selector


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; storing them as numbers would poison sums.
    raise ValueError(f"{name} is not valid JSON")


def parse(body: bytes, charset: str | None) -> Any:
    if not body.strip():
        raise ExtractError("empty body where JSON was expected")
    try:
        text = body.decode(charset or "utf-8-sig")
    except (UnicodeDecodeError, LookupError) as exc:
        raise ExtractError(f"cannot decode the body as {charset or 'UTF-8'}: {exc}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ExtractError(f"not valid JSON: {exc}") from None


def select_records(document: Any, records: Selector | None) -> list[Any]:
    if records is None:
        return [document]
    found = records.query.search(document)
    if found is None:
        return []
    if isinstance(found, list):
        return found
    if isinstance(found, dict):
        return [found]
    raise ExtractError(f"records selector {records.source!r} gave {type(found).__name__}, expected a list")


def select_value(record: Any, selector: Selector) -> Any:
    return selector.query.search(record)
