"""An export as a Parquet file, each column typed by what the database declares.

Optional: pyarrow comes with ``pip install 'crawlrunner[parquet]'``, and is
imported when a file is written, never before. A column's type follows its
kind (``field_types.Columns``): int → int64, float → double, bool → boolean,
date → date32, datetime → a UTC timestamp in microseconds (a value stored
without an offset is taken as UTC), str → string, bytes → binary, and json
(``type: json``, ``many: true``) → string holding the JSON text, since
Parquet has no type for any JSON value. Rows are written ``ROW_GROUP`` at a
time, one row group each, so a table of any size takes constant memory.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from typing import IO, Any

from ..errors import StorageError, UsageError

ROW_GROUP = 10_000
INSTALL = "Parquet needs pyarrow: pip install 'crawlrunner[parquet]'"


def pyarrow() -> tuple[Any, Any]:
    """The ``pyarrow`` and ``pyarrow.parquet`` modules; a ``UsageError`` saying how to install them if missing."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise UsageError(INSTALL) from None


def _json_text(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(value: Any) -> Any:
    """A column of mixed values (an untyped field) holds text: a number as its digits."""
    return value if isinstance(value, str) else _json_text(value)


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else value


def _date(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _timestamp(value: Any) -> Any:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if isinstance(moment, datetime) and moment.tzinfo is None else moment


def _same(value: Any) -> Any:
    return value


# kind → (the arrow type's name in pyarrow, its arguments), and how a stored value becomes one.
_TYPES: dict[str, tuple[str, tuple[Any, ...], Callable[[Any], Any]]] = {
    "int": ("int64", (), _same),
    "float": ("float64", (), _float),
    "bool": ("bool_", (), _same),
    "json": ("string", (), _json_text),
    "date": ("date32", (), _date),
    "datetime": ("timestamp", ("us", "UTC"), _timestamp),
    "str": ("string", (), _text),
    "bytes": ("binary", (), _same),
}


def write(out: IO[bytes], columns: Sequence[str], kinds: Mapping[str, str], rows: Iterator[Sequence[Any]]) -> int:
    """Write ``rows`` to ``out`` as Parquet, each column typed by its kind ('str' if unknown); the number of rows.

    A value that does not fit its column's type (text stored in an INTEGER
    column, say) is a ``StorageError`` naming the column.
    """
    pa, pq = pyarrow()
    specs = [_TYPES[kinds.get(name, "str")] for name in columns]
    schema = pa.schema(
        [pa.field(name, getattr(pa, type_)(*args)) for name, (type_, args, _) in zip(columns, specs, strict=True)]
    )
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        while chunk := list(islice(rows, ROW_GROUP)):
            arrays = [
                _array(pa, name, [row[i] for row in chunk], convert, schema.field(i).type)
                for i, (name, (_, _, convert)) in enumerate(zip(columns, specs, strict=True))
            ]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            count += len(chunk)
    return count


def _array(pa: Any, name: str, values: list[Any], convert: Callable[[Any], Any], type_: Any) -> Any:
    """One column of a row group, its values converted to its type."""
    try:
        return pa.array([None if v is None else convert(v) for v in values], type=type_)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise StorageError(f"column {name!r}: a value does not fit its type ({type_}): {exc}") from None
