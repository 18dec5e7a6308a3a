"""A committed batch's data rows on PostgreSQL: records, their history, validators, bodies.

``RecordWriter.write`` runs inside the sink's transaction, after the fence
(``statements.FENCE``) and the fetch-log rows, for the outcomes that will be
committed. It keeps the SQLite writer's semantics (``backends/sqlite/writer.py``):

- ``append`` and ``replace`` targets: each record a new row.
- ``upsert``: one row per key. A key new to the table gets an ``added``
  history row, a key whose other fields changed a ``changed`` one (its old
  and new values), a key marked removed that comes back a ``restored`` one
  (the upsert clears its ``_removed_run``), compared with the table as it
  was before the batch; the last record of a key in a batch wins. Keys
  match with NULLs equal.
- a 304 keeps the rows stored for that URL, as this run's (not in ``append``).
- ETag / Last-Modified of conditional targets (with what a page fetched
  whole led to, ``backends.recrawl``), and zlib-compressed bodies
  of ``store_bodies`` targets, with secrets masked (URLs as references).
- the run's cursors of incremental targets, raised to the batch's largest
  values (``backends/cursors.py``).

Each table gets one statement per batch: the values travel as one array per
column (``unnest``; a large append goes by COPY). The statements are made
once per target, at its first batch, from its columns' types. Upserts into
one table take turns across workers (an advisory lock held to the commit),
so that each compares with what the one before committed.

``finish_completed`` closes a completed crawl: it empties ``replace``
tables of older rows, and records the keys of ``upsert`` tables the crawl
no longer saw as ``removed`` (see ``backends/removals.py``).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ...errors import StorageError
from ...incremental import Cursors
from ...results import Outcome
from ...sitemaps import LastRun
from ...spec.model import Spec, Target
from ..cursors import COMPLETED, merged, reached, start_points
from ..recrawl import LedToColumns, usable_validators
from ..removals import GAPS, RunGaps, removal_targets, upsert_targets
from ..sitemap_runs import POSTGRES_LAST_RUN, as_last_runs, since_last_run
from .schema import quote_identifier
from .tables import Converter, array_type, as_text, column_types, converter, field_names, history_table, sql_key

if TYPE_CHECKING:
    import asyncpg

UPSERT_VALIDATORS = """
INSERT INTO _crawlrunner_validators (target, url, etag, last_modified, run_id)
SELECT v.target, v.url, v.etag, v.last_modified, $1::bigint
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS v(target, url, etag, last_modified)
ORDER BY v.target, v.url
ON CONFLICT (target, url) DO UPDATE
SET etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified, run_id = EXCLUDED.run_id
"""
# A page fetched whole: what it led to too (a 304 leaves that as it was).
UPSERT_WHOLE_PAGES = """
INSERT INTO _crawlrunner_validators (target, url, etag, last_modified, run_id, led_to, led_to_spec)
SELECT v.target, v.url, v.etag, v.last_modified, $1::bigint, v.led_to, v.led_to_spec
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    AS v(target, url, etag, last_modified, led_to, led_to_spec)
ORDER BY v.target, v.url
ON CONFLICT (target, url) DO UPDATE
SET etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified, run_id = EXCLUDED.run_id,
    led_to = EXCLUDED.led_to, led_to_spec = EXCLUDED.led_to_spec
"""
INSERT_BODIES = """
INSERT INTO _crawlrunner_bodies (fetch_id, run_id, target, url, final_url, status, content_type, charset, fetched_at, body)
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


# The cursors of one run and target take turns too: each worker raises the
# run's value to its batch's largest, compared in Python (as values order,
# not as text), so two must not both read the value before either writes.
CURSOR_LOCK_CLASS = 0x63637572  # "ccur"
SELECT_CURSORS = """
SELECT c.target, c.scope, c.value FROM _crawlrunner_cursors AS c
JOIN unnest($2::text[], $3::text[]) AS k(target, scope) ON c.target = k.target AND c.scope = k.scope
WHERE c.run_id = $1
"""
UPSERT_CURSORS = """
INSERT INTO _crawlrunner_cursors (run_id, target, scope, value)
SELECT $1::bigint, k.target, k.scope, k.value FROM unnest($2::text[], $3::text[], $4::text[]) AS k(target, scope, value)
ORDER BY k.target, k.scope
ON CONFLICT (run_id, target, scope) DO UPDATE SET value = EXCLUDED.value
"""


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
        f"(SELECT true AS _found, o._removed_run AS _removed{olds} FROM {table} AS o WHERE {exact}"
        f" UNION ALL SELECT true, o._removed_run{olds} FROM {table} AS o WHERE ({some_null}) AND {loose} LIMIT 1)"
    )
    differs = " OR ".join(f"t.{quote_identifier(n)} IS DISTINCT FROM s.{quote_identifier(n)}" for n in others)
    updated = [f"{c} = EXCLUDED.{c}" for c in ["_run_id", "_url", "_fetched_at", *map(quote_identifier, others)]]
    changed = " OR ".join(f"cur.{quote_identifier(n)} IS DISTINCT FROM EXCLUDED.{quote_identifier(n)}" for n in others)
    changed = changed or "false"
    updated += [
        f"_changed_run = CASE WHEN {changed} THEN EXCLUDED._run_id ELSE cur._changed_run END",
        f"_changed_at = CASE WHEN {changed} THEN EXCLUDED._fetched_at ELSE cur._changed_at END",
        "_removed_run = NULL",  # seen again: back from removal, if it was removed
    ]
    columns = ", ".join(["_run_id", "_url", "_fetched_at", *quoted])
    values = ", ".join(f"s.{c}" for c in quoted)
    return (
        f"WITH s AS MATERIALIZED ({stage}),\n"
        f"history AS (\n"
        f"    INSERT INTO {history} (run_id, key, change, old, new, at)\n"
        f"    SELECT $1::bigint, s._key,\n"
        f"        CASE WHEN t._found IS NULL THEN 'added' WHEN t._removed IS NULL THEN 'changed' ELSE 'restored' END,\n"
        f"        CASE WHEN t._found THEN {_object('t', others)} END, {_object('s', others)}, s._fetched_at\n"
        f"    FROM s LEFT JOIN LATERAL {stored} AS t ON true\n"
        f"    WHERE t._found IS NULL OR t._removed IS NOT NULL OR ({differs or 'false'})\n"
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
        self._led_to = LedToColumns(spec)
        self._incremental = any(t.incremental is not None for t in spec.targets)
        # A 304 keeps a URL's rows as this run's, except keys marked removed (see the SQLite writer).
        self._unchanged = {
            t.name: f"UPDATE {quote_identifier(t.name)} SET _run_id = $1 WHERE _url = ANY($2::text[])"
            + (" AND _removed_run IS NULL" if t.mode == "upsert" else "")
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
        whole_pages: dict[tuple[str, str], tuple[str | None, ...]] = {}
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
                    # The last outcome of a URL in the batch wins, of either kind.
                    known = (name, tokenize(fetch.url))
                    if fetch.status == 304 and known in whole_pages:  # what it led to is the page's just before
                        whole_pages[known] = (etag, modified, *whole_pages[known][2:])
                    elif fetch.status == 304:  # the page is as it was: so is what it led to
                        validators[known] = (etag, modified)
                    else:
                        validators.pop(known, None)
                        whole_pages[known] = (etag, modified, *self._led_to(outcome))
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
        if whole_pages:
            names, urls = zip(*whole_pages, strict=True)
            await conn.execute(UPSERT_WHOLE_PAGES, self.run_id, names, urls, *zip(*whole_pages.values(), strict=True))
        if validators:
            names, urls = zip(*validators, strict=True)
            etags, dates = zip(*validators.values(), strict=True)
            await conn.execute(UPSERT_VALIDATORS, self.run_id, names, urls, etags, dates)
        if bodies:
            await conn.execute(INSERT_BODIES, self.run_id, *zip(*bodies, strict=True))
        if self._incremental:
            await self._keep_cursors(conn, [outcome for outcome, _ in kept])

    async def _keep_cursors(self, conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
        """Raise the run's cursor of each (target, scope) to the largest value the batch stores (see ``cursors``)."""
        found = reached(outcomes, self.redact)
        if not found:
            return
        names = {name for name, _ in found}
        for target in self.spec.targets:  # in the spec's order, as every worker takes them
            if target.name in names:
                await conn.execute(LOCK_UPSERTS, CURSOR_LOCK_CLASS, _lock_key(f"{self.run_id}:{target.name}"))
        keys = list(found)
        stored = {
            (str(t), str(scope)): str(v)
            for t, scope, v in await conn.fetch(SELECT_CURSORS, self.run_id, [k[0] for k in keys], [k[1] for k in keys])
        }
        rows = merged(found, stored, self.spec)
        if rows:
            await conn.execute(UPSERT_CURSORS, self.run_id, *zip(*rows, strict=True))

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
    """Close a completed whole crawl's data (in the caller's transaction, the one that marks it completed).

    It empties the ``replace`` targets of older runs' rows, and records the
    keys of the ``upsert`` targets it no longer saw as removed. The caller
    decides that the run is one: completed, a crawl of the whole spec, not
    a retry of failures nor a limited run.
    """
    targets = list(targets)
    for target in targets:
        if target.mode == "replace" and target.extract is not None:
            await conn.execute(f"DELETE FROM {quote_identifier(target.name)} WHERE _run_id <> $1", run_id)
    await record_removals(conn, run_id, targets)


async def record_removals(conn: asyncpg.Connection, run_id: int, targets: Sequence[Target]) -> None:
    """Mark the keys of upsert targets that completed run ``run_id`` no longer saw as removed.

    Only for targets the run saw whole (``removals.may_record_removals``).
    A key stored by an earlier run (``_run_id`` below this one) and not
    marked yet gets ``_removed_run`` and a 'removed' history row (its values
    as ``old``, the run's finish time as ``at``): as on SQLite.
    """
    upserts = upsert_targets(targets)
    if not upserts:
        return
    gaps = [(str(target), str(what)) for target, what in await conn.fetch(GAPS.format(run="$1::bigint"), run_id)]
    empty = [
        t.name
        for t in upserts
        if not await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {quote_identifier(t.name)} WHERE _run_id = $1)", run_id
        )
    ]
    # In the spec's order, as the sinks take the upsert locks.
    for target in removal_targets(targets, RunGaps.of(gaps, empty)):
        await _mark_removed(conn, run_id, target)


async def _mark_removed(conn: asyncpg.Connection, run_id: int, target: Target) -> None:
    table, history = quote_identifier(target.name), quote_identifier(history_table(target))
    others = [n for n in field_names(target) if n not in target.key]
    keys = ", ".join(f"t.{quote_identifier(k)}" for k in target.key)
    # Another run upserting into the table waits: it would compare with rows being marked.
    await conn.execute(LOCK_UPSERTS, UPSERT_LOCK_CLASS, _lock_key(target.name))
    gone = await conn.fetch(
        f"UPDATE {table} AS t SET _removed_run = $1 WHERE t._run_id < $1 AND t._removed_run IS NULL"
        f" RETURNING t._first_seen_run, t._first_seen_at, {_object('t', others)} AS _old, {keys}",
        run_id,
    )
    if not gone:
        return
    types = await column_types(conn, target.name)
    texts = await _history_keys(conn, history, gone, [types.get(k, "text") for k in target.key])
    # In the order the keys were first seen (now() is the run's finish time: TOTALS' transaction).
    removed = sorted(zip(texts, gone, strict=True), key=lambda kr: (kr[1][0] or 0, kr[1][1] or _EPOCH, kr[0]))
    await conn.execute(
        f"INSERT INTO {history} (run_id, key, change, old, new, at)"
        " SELECT $1::bigint, r.key, 'removed', r.old, NULL, now()"
        " FROM unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS r(key, old, n) ORDER BY r.n",
        run_id,
        [text for text, _ in removed],
        [row[2] for _, row in removed],
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def _history_keys(
    conn: asyncpg.Connection, history: str, rows: Sequence[asyncpg.Record], types: Sequence[str]
) -> list[str]:
    """The history's key text (``[1,"a"]``) of each of ``rows``: (first-seen run and time, old values, key columns...).

    The key text was made from the record, before its values went into
    typed columns (an untyped ``1`` is the text ``'1'`` in its column, ``1``
    in the key), so it cannot be made again from the row: it is taken from
    the key's 'added' history row (the one at the row's first-seen run and
    time, with the same key values). A key without one (its history rows
    deleted) gets a key made from its columns.
    """
    seen = {(r[0], r[1]) for r in rows if r[0] is not None and r[1] is not None}
    found: dict[tuple[int, datetime], list[str]] = {}
    if seen:
        runs, times = zip(*seen, strict=True)
        for run, at, key in await conn.fetch(
            f"SELECT run_id, at, key FROM {history} WHERE change = 'added'"
            " AND (run_id, at) IN (SELECT * FROM unnest($1::bigint[], $2::timestamptz[])) ORDER BY id DESC",
            list(runs),
            list(times),
        ):
            found.setdefault((run, at), []).append(key)
    texts = []
    for row in rows:
        values = tuple(row[3:])
        match = next((k for k in found.get((row[0], row[1]), ()) if _same_key(k, values, types)), None)
        texts.append(match if match is not None else _key_json([sql_key(_plain(v), None) for v in values]))
    return texts


def _same_key(text: str, values: Sequence[Any], types: Sequence[str]) -> bool:
    """Whether the history key ``text`` names the stored key ``values`` (in columns of ``types``)."""
    try:
        parts = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(parts, list)
        and len(parts) == len(values)
        and all(_same(p, v, t) for p, v, t in zip(parts, values, types, strict=True))
    )


def _same(part: Any, value: Any, pg_type: str) -> bool:
    """A key part as ``tables.sql_key`` wrote it from the record, against the value its column holds."""
    if part is None or value is None:
        return part is None and value is None
    if pg_type in ("bigint", "double precision"):
        return isinstance(part, (int, float)) and not isinstance(part, bool) and part == value
    if pg_type == "boolean":
        return part in (0, 1) and bool(part) == value
    if pg_type == "date":
        return isinstance(value, date) and part == value.isoformat()
    if pg_type == "timestamp with time zone":
        try:
            return isinstance(part, str) and _when(part) == value
        except ValueError:
            return False
    if pg_type == "jsonb":
        try:
            return isinstance(part, str) and isinstance(value, str) and json.loads(part) == json.loads(value)
        except ValueError:
            return False
    # text (an untyped field: a value that was not a string is its JSON text), or a type someone chose
    return (part if isinstance(part, str) else as_text(part, None)) == (value if isinstance(value, str) else str(value))


def _plain(value: Any) -> Any:
    """A stored key value as the record would have had it, for a key made from the columns."""
    return value.isoformat() if isinstance(value, date) else value


async def cursors(conn: asyncpg.Connection, spec: Spec, run_id: int) -> Cursors:
    """Where run ``run_id``'s incremental targets start: what the spec's completed runs before it reached.

    Only runs older than it count, so every worker of the run, whenever it
    joins, renders the same requests.
    """
    if not any(t.incremental is not None for t in spec.targets):
        return Cursors()
    return start_points(await conn.fetch(COMPLETED.format(spec="$1", run="$2"), spec.name, run_id), spec)


async def last_runs(conn: asyncpg.Connection, spec: Spec, run_id: int) -> dict[str, LastRun]:
    """What ``since: last_run`` stands for in run ``run_id``, per target that has it (``sitemap_runs``).

    Only runs older than it count: every worker of the run, whenever it joins, drops the same pages.
    """
    found = [(name, await conn.fetchrow(POSTGRES_LAST_RUN, run_id, spec.name, name)) for name in since_last_run(spec)]
    return as_last_runs((name, tuple(row) if row is not None else None) for name, row in found)


async def validators(
    conn: asyncpg.Connection, targets: Iterable[Target], keys: Mapping[str, str] | None = None
) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Stored ETag / Last-Modified per (target, tokenized URL) of the conditional targets.

    ``keys``: the ``led_to_spec`` a page of a target whose pages lead
    somewhere must have (``recrawl.expected_keys``); the others are left out.
    """
    names = [t.name for t in targets if t.conditional]
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT target, url, etag, last_modified, led_to_spec FROM _crawlrunner_validators WHERE target = ANY($1::text[])",
        names,
    )
    return usable_validators(rows, keys or {})


async def led_to(conn: asyncpg.Connection, target: str, url: str) -> str | None:
    """What the page (target, tokenized URL) led to when it was last fetched whole (``validators.led_to``)."""
    text = await conn.fetchval("SELECT led_to FROM _crawlrunner_validators WHERE target = $1 AND url = $2", target, url)
    return str(text) if text is not None else None
