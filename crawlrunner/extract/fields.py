"""Field values → the typed values stored in SQLite."""

from __future__ import annotations

import json
import math
from typing import Any

from ..spec.model import FieldType

SQL_TYPES: dict[FieldType | None, str] = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "json": "TEXT",
    # Untyped JSON fields keep the JSON value's own type: no column affinity.
    None: "",
}

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class CoercionError(ValueError):
    """A value that cannot be read as the field's type."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def coerce(value: Any, type_: FieldType | None) -> Any:
    """``value`` as ``type_``, ready for SQLite; None stays None."""
    if value is None:
        return None
    if type_ is None:
        return _storable(value)
    if type_ == "json":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if type_ == "str":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if type_ == "bool":
        return int(_to_bool(value))
    if type_ == "int":
        return _to_int(value)
    return _to_float(value)


def _storable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return int(value)
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CoercionError(f"expected a boolean, got {_short(value)}")


def _to_int(value: Any) -> int:
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
