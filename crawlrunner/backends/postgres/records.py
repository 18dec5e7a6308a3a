"""A committed batch's data rows on PostgreSQL: records, their history, validators, bodies.

``RecordWriter.write`` runs inside the sink's transaction, after the fence
(``statements.FENCE``) and the fetch-log rows, for the outcomes that will be
committed. It keeps the SQLite writer's semantics (``backends/sqlite/writer.py``):

- ``append`` and ``replace`` targets: each record a new row.
- ``upsert``: one row per key. A key new to the table gets an ``added``
  history row, a key whose other fields changed a ``changed`` one (its old
  and new values), compared with the table as it was before the batch; the
  last record of a key in a batch wins. Keys match with NULLs equal.
- a 304 keeps the rows stored for that URL, as this run's (not in ``append``).
- ETag / Last-Modified of conditional targets, and zlib-compressed bodies
  of ``store_bodies`` targets, with secrets masked (URLs as references).

Each table gets one statement per batch: the values travel as one array per
column (``unnest``; a large append goes by COPY). The statements are made
once per target, at its first batch, from its columns' types. Upserts into
one table take turns across workers (an advisory lock held to the commit),
so that each compares with what the one before committed.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ...errors import StorageError
from ...expectations import TargetFacts
from ...results import Outcome
from ...spec.model import Spec, Target
from .schema import quote_identifier
from .tables import Converter, array_type, column_types, converter, field_names, history_table, sql_key

if TYPE_CHECKING:
    import asyncpg

UPSERT_VALIDATORS = """
INSERT INTO validators (target, url, etag, last_modified, run_id)
SELECT v.target, v.url, v.etag, v.last_modified, $1::bigint
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS v(target, url, etag, last_modified)
ORDER BY v.target, v.url
ON CONFLICT (target, url) DO UPDATE
SET etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified, run_id = EXCLUDED.run_id
"""
INSERT_BODIES = """
INSERT INTO bodies (fetch_id, run_id, target, url, final_url, status, content_type, charset, fetched_at, body)
SELECT b.fetch_id, $1::bigint, b.target, b.url, b.final_url, b.status, b.content_type, b.charset, b.fetched_at, b.body
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::text[],
    $9::timestamptz[], $10::bytea[])
    AS b(fetch_id, target, url, final_url, status, content_type, charset, fetched_at, body)
"""
# jsonb_build_object takes at most 100 arguments: longer objects are joined.
_PAIRS_PER_OBJECT = 50
# From this many records on, an append goes by COPY: as fast as unnest at
# 5,000 rows, twice as fast at 25,000 (unnest's arrays cost the server more).
COPY_ROWS = 5000
# The history's key: a JSON array, as SQLite's json_array writes it ([1,"a"]).
_key_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _when(text: str) -> datetime:
    """A fetch time (ISO 8601, as ``utc_now`` writes it) for a timestamptz column."""
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


# Upserts into one table take turns, across workers: both sides of a
# concurrent upsert would compare with the table as it was before either
# committed (two 'added' rows for one key, a change recorded from a stale
# value). The lock is held to the commit; the next one's statements see it.
# (A lock per key would not do: a batch holds thousands of keys, more than
# the server's lock table takes.)
LOCK_UPSERTS = "SELECT pg_advisory_xact_lock($1::integer, $2::integer)"
UPSERT_LOCK_CLASS = 0x63727570  # the first half of those locks' keys ("crup")


def _lock_key(table: str) -> int:
    """The second half of the upsert lock of ``table``: a 32-bit number of its own."""
    return int.from_bytes(hashlib.sha256(table.encode()).digest()[:4], "big", signed=True)


def _object(alias: str, names: Sequence[str]) -> str:
    """A jsonb object of ``alias``'s columns ``names``, keyed by name (``json_object`` in the SQLite layout)."""
    if not names:
        return "'{}'::jsonb"
    parts = []
    for start in range(0, len(names), _PAIRS_PER_OBJECT):
        chunk = names[start : start + _PAIRS_PER_OBJECT]
        pairs = ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}', {alias}.{quote_identifier(n)}" for n in chunk)
        parts.append(f"jsonb_build_object({pairs})")
    return " || ".join(parts)


@dataclass(frozen=True)
class _Table:
    """What writing one target's records takes: its statements, and a converter per field."""

    converters: tuple[Converter, ...]
    insert: str  # $1 run, $2 urls, $3 fetch times, (upsert: $4 history keys), then one array per field
    lock: int | None = None  # upsert: the second half of its lock's key
    copy: tuple[str, ...] | None = None  # append, replace: the columns COPY fills (None: a column needs a cast)


def _insert_statement(target: Target, arrays: Sequence[str]) -> str:
    names = field_names(target)
    columns = ", ".join(["_run_id", "_url", "_fetched_at", *(quote_identifier(n) for n in names)])
    params = ", ".join(f"${i}::{a}" for i, a in enumerate(["text[]", "timestamptz[]", *arrays], 2))
    return f"INSERT INTO {quote_identifier(target.name)} ({columns}) SELECT $1::bigint, u.* FROM unnest({params}) AS u"


def _upsert_statement(target: Target, arrays: Sequence[str]) -> str:
    """History rows, then the rows themselves, in one statement (both see the table as it was)."""
    names = field_names(target)
    table, history = quote_identifier(target.name), quote_identifier(history_table(target))
    quoted = [quote_identifier(n) for n in names]
    keys = [quote_identifier(k) for k in target.key]
    others = [n for n in names if n not in target.key]
    params = ", ".join(f"${i}::{a}" for i, a in enumerate(["text[]", "timestamptz[]", "text[]", *arrays], 2))
    key_list = ", ".join(keys)
    # The same key twice in the batch: the last record wins, at its first place.
    stage = (
        f"SELECT DISTINCT ON ({key_list}) u.*, min(u._n) OVER (PARTITION BY {key_list}) AS _first"
        f" FROM unnest({params}) WITH ORDINALITY AS u(_url, _fetched_at, _key, {', '.join(quoted)}, _n)"
        f" ORDER BY {key_list}, u._n DESC"
    )
    # The stored row of a staged key: by the unique index when no key part is
    # NULL (the usual case), else matching NULL with NULL.
    olds = "".join(f", o.{quote_identifier(n)}" for n in others)
    exact = " AND ".join(f"o.{k} = s.{k}" for k in keys)
    some_null = " OR ".join(f"s.{k} IS NULL" for k in keys)
    loose = " AND ".join(f"(o.{k} = s.{k} OR (o.{k} IS NULL AND s.{k} IS NULL))" for k in keys)
    stored = (
        f"(SELECT true AS _found{olds} FROM {table} AS o WHERE {exact}"
        f" UNION ALL SELECT true{olds} FROM {table} AS o WHERE ({some_null}) AND {loose} LIMIT 1)"
    )
    differs = " OR ".join(f"t.{quote_identifier(n)} IS DISTINCT FROM s.{quote_identifier(n)}" for n in others)
    updated = [f"{c} = EXCLUDED.{c}" for c in ["_run_id", "_url", "_fetched_at", *map(quote_identifier, others)]]
    changed = " OR ".join(f"cur.{quote_identifier(n)} IS DISTINCT FROM EXCLUDED.{quote_identifier(n)}" for n in others)
    changed = changed or "false"
    updated += [
        f"_changed_run = CASE WHEN {changed} THEN EXCLUDED._run_id ELSE cur._changed_run END",
        f"_changed_at = CASE WHEN {changed} THEN EXCLUDED._fetched_at ELSE cur._changed_at END",
    ]
    columns = ", ".join(["_run_id", "_url", "_fetched_at", *quoted])
    values = ", ".join(f"s.{c}" for c in quoted)
    return (
        f"WITH s AS MATERIALIZED ({stage}),\n"
        f"history AS (\n"
        f"    INSERT INTO {history} (run_id, key, change, old, new, at)\n"
        f"    SELECT $1::bigint, s._key, CASE WHEN t._found THEN 'changed' ELSE 'added' END,\n"
        f"        CASE WHEN t._found THEN {_object('t', others)} END, {_object('s', others)}, s._fetched_at\n"
        f"    FROM s LEFT JOIN LATERAL {stored} AS t ON true\n"
        f"    WHERE t._found IS NULL OR ({differs or 'false'})\n"
        f"    ORDER BY t._found IS NOT NULL, s._first\n"
        f")\n"
        f"INSERT INTO {table} AS cur ({columns}, _first_seen_run, _first_seen_at, _changed_run, _changed_at)\n"
        f"SELECT $1::bigint, s._url, s._fetched_at, {values}, $1::bigint, s._fetched_at, $1::bigint, s._fetched_at\n"
        f"FROM s ORDER BY s._first\n"
        f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(updated)}"
    )


@dataclass
class _Rows:
    """One target's records in a batch, with their provenance."""

    urls: list[str] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


class RecordWriter:
    """Writes the data rows of a sink's batches (see the module's docstring); built once per sink."""

    def __init__(self, spec: Spec, run_id: int) -> None:
        self.spec = spec
        self.run_id = run_id
        self.redact = spec.redactor
        self.targets = {t.name: t for t in spec.targets}
        self._tables: dict[str, _Table] = {}
        self._unchanged = {
            t.name: f"UPDATE {quote_identifier(t.name)} SET _run_id = $1 WHERE _url = ANY($2::text[])"
            for t in spec.targets
            if t.mode != "append" and t.extract is not None
        }

    async def write(self, conn: asyncpg.Connection, kept: Sequence[tuple[Outcome, int]]) -> None:
        """Write the records, history, 304 marks, validators and bodies of ``kept``: (outcome, its fetch_log id).

        Inside the caller's transaction; ``kept`` holds only outcomes that were fetched.
        """
        redact, tokenize = self.redact, self.redact.tokenize
        targets, unchanged_targets = self.targets, self._unchanged
        records: dict[str, _Rows] = {}
        unchanged: dict[str, set[str]] = {}
        validators: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        bodies: list[tuple[Any, ...]] = []
        for outcome, fetch_id in kept:
            fetch = outcome.fetch
            target = targets[fetch.target]
            name, url = target.name, redact(fetch.url)
            if fetch.status == 304 and name in unchanged_targets:
                unchanged.setdefault(name, set()).add(url)
            if target.conditional and fetch.ok:
                etag, modified = fetch.headers.get("ETag"), fetch.headers.get("Last-Modified")
                if etag or modified:
                    validators[(name, tokenize(fetch.url))] = (etag, modified)
            if target.store_bodies and fetch.ok and fetch.status != 304 and not fetch.body_path:
                bodies.append(
                    (
                        fetch_id, name, tokenize(fetch.url), tokenize(fetch.final_url) if fetch.final_url else None,
                        fetch.status, fetch.content_type, fetch.charset, _when(fetch.fetched_at),
                        # A body can echo a credential back; it is not kept either.
                        zlib.compress(redact.bytes(fetch.body) if redact else fetch.body, 6),
                    )
                )  # fmt: skip
            if outcome.records:
                rows = records.get(name)
                if rows is None:
                    rows = records[name] = _Rows()
                count = len(outcome.records)
                rows.urls.extend([url] * count)
                rows.times.extend([_when(fetch.fetched_at)] * count)
                rows.records.extend(outcome.records)
        # In the spec's order, so that workers take the upsert locks in one order.
        for target in self.spec.targets:
            if target.name in records:
                await self._write_records(conn, target, records[target.name])
        for name in sorted(unchanged):
            await conn.execute(self._unchanged[name], self.run_id, sorted(unchanged[name]))
        if validators:
            names, urls = zip(*validators, strict=True)
            etags, dates = zip(*validators.values(), strict=True)
            await conn.execute(UPSERT_VALIDATORS, self.run_id, names, urls, etags, dates)
        if bodies:
            await conn.execute(INSERT_BODIES, self.run_id, *zip(*bodies, strict=True))

    async def _write_records(self, conn: asyncpg.Connection, target: Target, rows: _Rows) -> None:
        table = await self._table(conn, target)
        records = rows.records
        columns = [
            convert([record.get(name) for record in records])
            for name, convert in zip(field_names(target), table.converters, strict=True)
        ]
        if table.lock is None:
            if table.copy is not None and len(records) >= COPY_ROWS:
                # asyncpg quotes the table's and the columns' names itself.
                rows_in = zip(repeat(self.run_id), rows.urls, rows.times, *columns)
                await conn.copy_records_to_table(target.name, records=rows_in, columns=table.copy)
            else:
                await conn.execute(table.insert, self.run_id, rows.urls, rows.times, *columns)
            return
        redact = self.redact if self.redact else None
        key = target.key
        keys = [_key_json([sql_key(record.get(k), redact) for k in key]) for record in records]
        await conn.execute(LOCK_UPSERTS, UPSERT_LOCK_CLASS, table.lock)
        await conn.execute(table.insert, self.run_id, rows.urls, rows.times, keys, *columns)

    async def _table(self, conn: asyncpg.Connection, target: Target) -> _Table:
        """The target's statements and converters, made at its first batch from its columns' types.

        The columns' types, not the spec's: a column kept from an earlier
        spec where a field had another type (see ``tables.prepare_targets``)
        gets values it can hold.
        """
        table = self._tables.get(target.name)
        if table is not None:
            return table
        types = await column_types(conn, target.name)
        missing = [n for n in field_names(target) if n not in types]
        if not types or missing:
            what = f"columns {', '.join(missing)}" if types else "its table"
            raise StorageError(f"target {target.name!r}: {what} missing (the tables were not prepared)")
        column_type = [types[n] for n in field_names(target)]
        redact = self.redact if self.redact else None
        converters = tuple(converter(t, redact) for t in column_type)
        arrays = [array_type(t) for t in column_type]
        if target.mode == "upsert":
            table = _Table(converters, _upsert_statement(target, arrays), _lock_key(target.name))
        else:
            typed = all(a.count("[]") == 1 for a in arrays)  # no text[]::other[] cast
            copy = ("_run_id", "_url", "_fetched_at", *field_names(target)) if typed else None
            table = _Table(converters, _insert_statement(target, arrays), copy=copy)
        self._tables[target.name] = table
        return table


async def finish_completed(conn: asyncpg.Connection, run_id: int, targets: Iterable[Target]) -> None:
    """A completed whole crawl empties its ``replace`` targets of older runs' rows (in the caller's transaction).

    The caller decides that the run is one: completed (or re-extracted), a
    crawl of the whole spec, not a retry of failures nor a limited run.
    """
    for target in targets:
        if target.mode == "replace" and target.extract is not None:
            await conn.execute(f"DELETE FROM {quote_identifier(target.name)} WHERE _run_id <> $1", run_id)


async def target_facts(conn: asyncpg.Connection, run_id: int, target: Target) -> TargetFacts:
    """Records, requests, failures and null counts (of its ``expect.not_null`` fields) of one target in one run."""
    row = await conn.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE error_kind IS NOT NULL) FROM fetch_log WHERE run_id = $1 AND target = $2",
        run_id,
        target.name,
    )
    requests, failed = (int(row[0]), int(row[1])) if row is not None else (0, 0)
    records, nulls = 0, {}
    if target.extract is not None:
        fields = target.expect.not_null if target.expect else ()
        null_counts = "".join(f", count(*) FILTER (WHERE {quote_identifier(f)} IS NULL)" for f in fields)
        row = await conn.fetchrow(
            f"SELECT count(*){null_counts} FROM {quote_identifier(target.name)} WHERE _run_id = $1", run_id
        )
        if row is not None:
            records, nulls = int(row[0]), {f: int(n) for f, n in zip(fields, row[1:], strict=True)}
    return TargetFacts(records=records, requests=requests, failed=failed, nulls=nulls)


async def validators(
    conn: asyncpg.Connection, targets: Iterable[Target]
) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Stored ETag / Last-Modified per (target, tokenized URL) of the conditional targets."""
    names = [t.name for t in targets if t.conditional]
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT target, url, etag, last_modified FROM validators WHERE target = ANY($1::text[])", names
    )
    return {(str(t), str(u)): (e, m) for t, u, e, m in rows}
