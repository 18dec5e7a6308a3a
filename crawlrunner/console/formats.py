"""Rows rendered for people and tools: a text table, CSV, JSON or JSON lines; Parquet to a file.

Every writer takes the column names and an iterator of rows, writes them to
a text stream and returns how many rows it wrote; all but the text table
stream, so an export of any size takes constant memory.
"""

from __future__ import annotations

import csv
import errno
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ..errors import OutputPathError, StorageError, UsageError
from ..read import refuse_database, write_parquet

Writer = Callable[[IO[str], Sequence[str], Iterator[Sequence[Any]]], int]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(_flat(value))


def _flat(value: Any) -> Any:
    """A value as one CSV or table cell: JSON for lists, objects and booleans (a JSON field, a bool field).

    Compact, as SQLite's own JSON functions write it.
    """
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return value


def write_table(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]], *, limit_width: int = 60) -> int:
    """A plain text table; returns the number of rows."""
    materialised = [[_text(v) for v in row] for row in rows]
    clipped = [[v if len(v) <= limit_width else v[: limit_width - 1] + "…" for v in row] for row in materialised]
    widths = [max([len(c), *(len(r[i]) for r in clipped)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in clipped:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() + "\n")
    return len(materialised)


def write_csv(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else _flat(v) for v in row])
        count += 1
    return count


def write_jsonl(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    for row in rows:
        record = dict(zip(columns, (_jsonable(v) for v in row), strict=False))
        out.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        count += 1
    return count


def write_json(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    records = [dict(zip(columns, (_jsonable(v) for v in row), strict=False)) for row in rows]
    json.dump(records, out, ensure_ascii=False, indent=2, default=_json_default)
    out.write("\n")
    return len(records)


def _jsonable(value: Any) -> Any:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else value


def _json_default(value: Any) -> Any:
    """A value JSON has no type for (PostgreSQL's): dates and times in ISO 8601, numerics as numbers, else text."""
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


WRITERS: dict[str, Writer] = {"table": write_table, "csv": write_csv, "jsonl": write_jsonl, "json": write_json}
# Formats written to a file only, never to a terminal: typed by the columns' kinds (an export's).
BINARY: dict[str, Callable[[Path, Sequence[str], Iterator[Sequence[Any]]], int]] = {"parquet": write_parquet}

# An export file that cannot be opened is a usage problem (exit 2); one that cannot be written, not.
_PATH_ERRORS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EROFS})


def write_rows(columns: Sequence[str], rows: Iterator[Sequence[Any]], fmt: str, output: Path | None) -> int:
    """Write ``rows`` as ``fmt`` to ``output`` (stdout when None); the number written.

    Never over an SQLite file (``-o`` naming the crawl database by mistake
    would destroy it); a file that cannot be opened is an ``OutputPathError``,
    one that cannot be written (a full disk) a ``StorageError``.
    """
    if output is not None:
        refuse_database(output)
    elif fmt in BINARY:
        raise UsageError(f"{fmt} is a binary format: name the file to write with -o FILE")
    try:
        if fmt in BINARY:
            assert output is not None
            return BINARY[fmt](output, columns, rows)
        if output is None:
            return WRITERS[fmt](sys.stdout, columns, rows)
        with output.open("w", encoding="utf-8", newline="") as fh:
            return WRITERS[fmt](fh, columns, rows)
    except BrokenPipeError:
        raise  # the reader stopped early (`| head`): not an error to report
    except OSError as exc:
        where = output or "standard output"
        error = OutputPathError if output is not None and exc.errno in _PATH_ERRORS else StorageError
        raise error(f"{where}: cannot write: {exc.strerror}") from None
