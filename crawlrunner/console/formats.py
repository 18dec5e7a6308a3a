"""Rows rendered for people and tools: a text table, CSV, JSON or JSON lines.

Every writer takes the column names and an iterator of rows, writes them to
a text stream and returns how many rows it wrote; all but the text table
stream, so an export of any size takes constant memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

Writer = Callable[[IO[str], Sequence[str], Iterator[Sequence[Any]]], int]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


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
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count


def write_jsonl(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(dict(zip(columns, (_jsonable(v) for v in row), strict=False)), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_json(out: IO[str], columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    records = [dict(zip(columns, (_jsonable(v) for v in row), strict=False)) for row in rows]
    json.dump(records, out, ensure_ascii=False, indent=2)
    out.write("\n")
    return len(records)


def _jsonable(value: Any) -> Any:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else value


WRITERS: dict[str, Writer] = {"table": write_table, "csv": write_csv, "jsonl": write_jsonl, "json": write_json}
