"""Field values → typed Python values, and those → what SQLite stores.

Records keep Python values (lists stay lists, booleans stay booleans) until
the writer stores them, so record schemas and child-target templates see
real types; ``sql_value`` does the final conversion.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .errors import CoercionError

if TYPE_CHECKING:  # spec.build imports this module: no import cycle at run time
    from .spec.model import FieldType

SQL_TYPES: dict[FieldType | None, str] = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "json": "TEXT",
    "date": "TEXT",
    "datetime": "TEXT",
    # Untyped JSON fields keep the JSON value's own type: no column affinity.
    None: "",
}

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def coerce(value: Any, type_: FieldType | None, date_format: str | None = None) -> Any:
    """``value`` as ``type_``; None stays None. Raises CoercionError."""
    if value is None or type_ is None:
        return value
    if type_ == "json":
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise CoercionError(f"not representable as JSON: {_short(value)}") from None
        return value
    if type_ == "str":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if type_ == "bool":
        return _to_bool(value)
    if type_ == "int":
        return _to_int(value)
    if type_ == "float":
        return _to_float(value)
    return _to_date(value, type_, date_format)


# Values SQLite stores as they are, whatever they hold.
_STORED_AS_IS = frozenset({str, type(None)})


def sql_values(values: Iterable[Any]) -> list[Any]:
    """``sql_value`` of each value, with the common types checked inline.

    This runs for every value stored: a call per value was a large part of
    writing a record. The rest, and the edge cases of these, go through
    ``sql_value``.
    """
    return [
        v
        if type(v) in _STORED_AS_IS
        or (type(v) is int and _INT64_MIN <= v <= _INT64_MAX)
        or (type(v) is float and math.isfinite(v))
        else sql_value(v)
        for v in values
    ]


def sql_value(value: Any) -> Any:
    """A record value as SQLite stores it.

    JSON text for lists and objects, 0/1 for booleans, and text for integers
    past 64 bits (SQLite's INTEGER cannot hold them; text keeps every digit).
    """
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _to_date(value: Any, type_: str, date_format: str | None) -> str:
    if not isinstance(value, str):
        raise CoercionError(f"expected a {type_} string, got {_short(value)}")
    text = value.strip()
    try:
        if date_format:
            parsed = datetime.strptime(text, date_format)
        elif type_ == "date" and len(text) == 10:
            return date.fromisoformat(text).isoformat()
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        how = f"format {date_format!r}" if date_format else "ISO 8601"
        raise CoercionError(f"expected a {type_} ({how}), got {_short(value)}") from None
    return parsed.date().isoformat() if type_ == "date" else parsed.isoformat()


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CoercionError(f"expected a boolean, got {_short(value)}")


def _to_int(value: Any) -> int:
    number = _read_int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        # An INTEGER column would turn it into an approximate REAL.
        raise CoercionError(f"integer out of SQLite's 64-bit range: {_short(value)}")
    return number


def _read_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
    raise CoercionError(f"expected an integer, got {_short(value)}")


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CoercionError(f"expected a number, got {_short(value)}") from None
    else:
        raise CoercionError(f"expected a number, got {_short(value)}")
    if not math.isfinite(number):
        raise CoercionError(f"expected a finite number, got {_short(value)}")
    return number
