"""JSON documents: decode strictly, select with compiled JMESPath."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ..errors import ExtractError
from ..runtime import SPEEDUPS
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


def _fast_loads() -> Callable[[bytes], Any] | None:
    if not SPEEDUPS:
        return None
    try:
        import orjson
    except ImportError:
        return None
    loads: Callable[[bytes], Any] = orjson.loads
    return loads


_orjson_loads = _fast_loads()
_UTF8 = frozenset({"utf-8", "utf8"})
# orjson reads integers past 64 bits as floats, losing digits the standard
# decoder keeps: a document with a run of 19 digits takes the standard path.
# Found by mapping every digit to "0" and searching: ten times faster than a
# regular expression, which pays for every position of the body. ``find``,
# not ``in``: ``bytes in bytes`` first tries the operand as an integer, and
# raises and clears a TypeError for every document.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def parse(body: bytes, charset: str | None) -> Any:
    if not body.strip():
        raise ExtractError("empty body where JSON was expected")
    utf8 = charset is None or charset.lower() in _UTF8
    if _orjson_loads is not None and utf8 and body.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) < 0:
        try:
            return _orjson_loads(body)
        except ValueError:
            # The standard decoder says what is wrong, or reads what orjson
            # refuses but the standard path accepts (a BOM, a lone surrogate).
            pass
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
