"""The SQLite sink: the run's single writer, outcomes in, batched transactions out.

One transaction holds, for every outcome in the batch: its fetch-log row,
its records (appended, or upserted with their history), the request's
"done" mark, the requests it led to (pending, for a resume), its ETag and
Last-Modified (with what the page led to: ``backends.recrawl``), its body
when the target keeps bodies, and the cursor its records reach (incremental
targets). So a record is never committed without its request's done mark,
and the reverse: a run killed at any moment resumes without losing or
duplicating a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from itertools import chain
from operator import itemgetter
from typing import Any

from ...coercion import sql_row
from ...errors import StorageError
from ...results import Outcome
from ...secrets import Redactor
from ...spec.model import Spec, Target
from ..batching import COMMIT_INTERVAL, BatchingSink
from ..cursors import merged, reached
from ..recrawl import LedToColumns
from ..rows import RequestRows, chain_end_row, fetch_row
from .inference import ColumnTypes, batch_kinds
from .layout import BUSY_TIMEOUT_MS
from .rows import INSERT as REQUEST_INSERT
from .rows import MARK as MARK_REQUEST
from .rows import SKIP as SKIP_REQUEST
from .schema import field_names, history_table, insert_record, insert_statement, json_object, quote_identifier
from .store import Store

log = logging.getLogger(__name__)

_FETCH_COLUMNS = (
    "id", "run_id", "target", "method", "url", "final_url", "status", "content_type", "bytes", "body_path",
    "elapsed_ms", "attempts", "records", "error_kind", "error", "fetched_at", "etag", "last_modified", "request_id",
    "items", "unfollowed", "seq",
)  # fmt: skip
# Null in the row of a request that succeeded without a warning, its body
# kept in memory: most rows. Their rows leave these columns out, since
# sqlite3 passes every None through its adaptation protocol (a failed
# attribute lookup each, on the writer's thread: several times the cost of
# binding an int).
_USUALLY_NULL = ("body_path", "error_kind", "error")
_BODY_PATH_AT, _ERROR_KIND_AT, _ERROR_AT = (_FETCH_COLUMNS.index(name) for name in _USUALLY_NULL)
_URL_AT, _ETAG_AT, _MODIFIED_AT = (_FETCH_COLUMNS.index(name) for name in ("url", "etag", "last_modified"))
_plain_fetch_row = itemgetter(*(i for i, name in enumerate(_FETCH_COLUMNS) if name not in _USUALLY_NULL))


_INSERT_FETCH = insert_statement("_crawlrunner_fetch_log", _FETCH_COLUMNS)
_INSERT_PLAIN_FETCH = insert_statement(
    "_crawlrunner_fetch_log", [name for name in _FETCH_COLUMNS if name not in _USUALLY_NULL]
)
_INSERT_CHAIN_END = insert_statement(
    "_crawlrunner_chain_ends", ("fetch_id", "run_id", "target", "url", "pages", "items", "reason")
)
# ?8: the response was a 304, which leaves what the page led to as it was.
_UPSERT_VALIDATOR = (
    "INSERT INTO _crawlrunner_validators (target, url, etag, last_modified, run_id, led_to, led_to_spec)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (target, url) DO UPDATE SET etag = excluded.etag,"
    " last_modified = excluded.last_modified, run_id = excluded.run_id,"
    " led_to = CASE WHEN ?8 THEN led_to ELSE excluded.led_to END,"
    " led_to_spec = CASE WHEN ?8 THEN led_to_spec ELSE excluded.led_to_spec END"
)
_UPSERT_CURSOR = (
    "INSERT INTO _crawlrunner_cursors (run_id, target, scope, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, target, scope) DO UPDATE SET value = excluded.value"
)
_SCOPES_PER_SELECT = 500  # well within SQLite's limit on a statement's variables
_INSERT_BODY = (
    "INSERT INTO _crawlrunner_bodies (fetch_id, run_id, target, url, final_url, status, content_type, charset, fetched_at, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _sql_row(record: dict[str, Any], redact: Redactor) -> list[Any]:
    """A record's values as SQLite stores them, secrets masked."""
    return [redact(v) if isinstance(v, str) else v for v in sql_row((), record.values())]


_ROWS_PER_STATEMENT = 64
_VALUES_GROUP = re.compile(r"VALUES (\((?:\?, )*\?\))")


@lru_cache(maxsize=64)
def _rows_statement(sql: str) -> str:
    """``sql`` (an INSERT with one ``VALUES (?, ...)`` group) for ``_ROWS_PER_STATEMENT`` rows at once."""
    match = _VALUES_GROUP.search(sql)
    assert match is not None, sql
    groups = ", ".join([match.group(1)] * _ROWS_PER_STATEMENT)
    return f"{sql[: match.start(1)]}{groups}{sql[match.end(1) :]}"


def insert_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany(sql, rows)``, mostly as multi-row statements.

    executemany steps SQLite once per row, taking Python's lock back each
    time: with the event loop busy on the other side of that lock, the
    hand-overs cost more than the inserts. Full chunks of rows go in one
    statement each (one size, so SQLite prepares it once); the rest row by row.
    """
    whole = len(rows) - len(rows) % _ROWS_PER_STATEMENT
    if whole:
        statement = _rows_statement(sql)
        for start in range(0, whole, _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            conn.execute(statement, list(chain.from_iterable(chunk)))
    if whole < len(rows):
        conn.executemany(sql, rows[whole:])


Step = Callable[[sqlite3.Connection, int], object]


class _Work:
    """One batch's writes: built on the event loop, run in order on the writer's thread in one transaction.

    Each step gets the connection and the fetch-log id the batch's ids count
    from (taken inside the transaction: another run writing to the same file
    cannot take them too); rows of ``numbered`` carry ids counted from 1.
    """

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.steps.append(lambda conn, _: insert_rows(conn, sql, rows))

    def numbered(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.steps.append(lambda conn, base: insert_rows(conn, sql, [(base + r[0], *r[1:]) for r in rows]))

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.steps.append(lambda conn, _: conn.executemany(sql, rows))

    def call(self, step: Callable[[sqlite3.Connection], object]) -> None:
        self.steps.append(lambda conn, _: step(conn))


class SQLiteSink(BatchingSink):
    """The one writer of a run on an SQLite file (see ``Sink`` for the contract, ``BatchingSink`` for the queue)."""

    # Nobody waits for a commit to claim work (the frontier is in memory): batches may gather.
    commit_interval = COMMIT_INTERVAL

    def __init__(self, store: Store, run_id: int, spec: Spec) -> None:
        super().__init__(spec)
        self.store = store
        self.run_id = run_id
        self.spec = spec
        self.redact = spec.redactor
        self.targets = {t.name: t for t in spec.targets}
        self.inserts = {t.name: insert_record(t) for t in spec.targets if t.extract is not None}
        self.incremental = any(t.incremental is not None for t in spec.targets)
        self._request_row = RequestRows(run_id, self.redact).row
        self._led_to = LedToColumns(spec)
        self._column_types = ColumnTypes(spec.targets)
        # A done start request is known to a resume by its fetch-log row's seq;
        # a requests row is saved for it only where something reads it back:
        # link following's de-duplication, reextract's plans, the sitemaps read.
        self._start_rows = {t.name for t in spec.targets if t.follow or t.store_bodies or t.sitemap}
        # The writer's own connection, used on its own thread only: a batch is
        # one hand-over to it, not one per statement (each cost as much as the
        # inserts), and SQLite's work there runs beside the event loop.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="crawlrunner-writer")
        self._conn: sqlite3.Connection | None = None

    async def run(self) -> None:
        try:
            await super().run()
        finally:  # on the writer's thread, after its last commit; shielded: a cancel must not skip it
            try:
                await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._thread, self._close))
            finally:
                self._thread.shutdown(wait=False)

    async def commit(self, batch: list[Outcome]) -> None:
        """Commit ``batch`` in one transaction."""
        if not batch:
            return
        work = self._work(batch)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._commit, work)

    def _commit(self, work: _Work) -> None:
        """Run ``work`` in one transaction (on the writer's thread)."""
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                (base,) = conn.execute("SELECT coalesce(max(id), 0) FROM _crawlrunner_fetch_log").fetchone()
                for step in work.steps:
                    step(conn, int(base))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    with contextlib.suppress(sqlite3.Error):  # never hides the error that made it necessary
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"{self.store.path}: cannot write: {exc}") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.store.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _work(self, batch: list[Outcome]) -> _Work:
        """The batch's rows, built here on the event loop (the outcomes' plans are not touched on another thread)."""
        work = _Work()
        redact, tokenize = self.redact, self.redact.tokenize
        has_secrets = bool(redact)
        fetch_rows: list[tuple[Any, ...]] = []
        plain_fetch_rows: list[tuple[Any, ...]] = []  # without the ``_USUALLY_NULL`` columns
        new_requests: list[tuple[Any, ...]] = []
        marks: list[tuple[str, int | None]] = []
        records: dict[str, list[tuple[Any, ...]]] = {}
        unchanged: dict[str, list[str]] = {}
        validators: list[tuple[Any, ...]] = []
        bodies: list[tuple[Any, ...]] = []
        chain_ends: list[tuple[Any, ...]] = []
        next_id = 1  # counted from the id the transaction finds (``_Work``)
        skipped: list[tuple[str, int | None]] = []
        for outcome in batch:
            fetch, plan = outcome.fetch, outcome.plan
            if outcome.skipped is not None:  # not sent: no fetch-log row, the request marked with why
                if plan is not None:
                    if plan.seq is not None:
                        new_requests.append(self._request_row(plan, "skipped"))
                    skipped.append((outcome.skipped, plan.request_id))
                continue
            fetch_id = next_id
            next_id += 1
            logged = (*fetch_row(outcome, fetch_id, self.run_id, redact), plan.seq if plan is not None else None)
            if logged[_BODY_PATH_AT] is None and logged[_ERROR_KIND_AT] is None and logged[_ERROR_AT] is None:
                plain_fetch_rows.append(_plain_fetch_row(logged))
            else:
                fetch_rows.append(logged)
            url, etag, modified = logged[_URL_AT], logged[_ETAG_AT], logged[_MODIFIED_AT]
            if outcome.chain_end is not None:
                chain_ends.append(chain_end_row(outcome, fetch_id, self.run_id, url))
            if plan is not None:
                state = "done" if fetch.ok else "failed"
                if plan.seq is not None:  # a start request: saved only once it is done or failed,
                    if state != "done" or fetch.target in self._start_rows:  # and a done one only if read back
                        new_requests.append(self._request_row(plan, state))
                else:  # saved as pending when it was derived (or retried)
                    marks.append((state, plan.request_id))
                new_requests.extend(self._request_row(derived, "pending") for derived in outcome.derived)
            target = self.targets[fetch.target]
            if fetch.status == 304:
                unchanged.setdefault(target.name, []).append(url)
            if target.conditional and fetch.ok and (etag or modified):
                led_to, led_to_spec = self._led_to(outcome)  # none for a 304: it keeps what is stored
                known = (target.name, tokenize(fetch.url), etag, modified, self.run_id, led_to, led_to_spec)
                validators.append((*known, fetch.status == 304))
            if target.store_bodies and fetch.ok and fetch.status != 304 and not fetch.body_path:
                bodies.append(
                    (
                        fetch_id, self.run_id, target.name, tokenize(fetch.url),
                        tokenize(fetch.final_url) if fetch.final_url else None, fetch.status,
                        fetch.content_type, fetch.charset, fetch.fetched_at,
                        # A body can echo a credential back; it is not kept either.
                        zlib.compress(redact.bytes(fetch.body) if redact else fetch.body, 6),
                    )
                )  # fmt: skip
            if outcome.records:
                rows = records.setdefault(target.name, [])
                provenance = (self.run_id, url, fetch.fetched_at)
                if has_secrets:  # a record can quote a secret (a {meta: url}, an echoing API)
                    rows.extend((*provenance, *_sql_row(record, redact)) for record in outcome.records)
                else:
                    rows.extend([sql_row(provenance, record.values()) for record in outcome.records])
        # Two statements, so the log's rows go in out of id order within the
        # batch: nothing reads that order, every row carries its own id.
        work.numbered(_INSERT_FETCH, fetch_rows)
        work.numbered(_INSERT_PLAIN_FETCH, plain_fetch_rows)
        work.numbered(_INSERT_CHAIN_END, chain_ends)
        work.rows(REQUEST_INSERT, new_requests)
        work.many(MARK_REQUEST, marks)
        work.many(SKIP_REQUEST, skipped)
        if records and (open_fields := self._column_types.open_fields()) and (kinds := batch_kinds(batch, open_fields)):
            work.call(partial(self._column_types.type_columns, found=kinds, targets=self.targets))
        for name, rows in records.items():
            target = self.targets[name]
            if target.mode == "upsert":
                self._upsert(work, target, rows)
            else:
                work.rows(self.inserts[name], rows)
        for name, urls in unchanged.items():
            self._keep_unchanged(work, self.targets[name], urls)
        work.many(_UPSERT_VALIDATOR, validators)
        work.numbered(_INSERT_BODY, bodies)
        if self.incremental and (found := reached(batch, self.redact)):
            work.call(partial(self._keep_cursors, found))
        return work

    def _keep_cursors(self, found: Mapping[tuple[str, str], Any], conn: sqlite3.Connection) -> None:
        """Raise the run's cursor of each (target, scope) to the largest value the batch stores (see ``cursors``)."""
        scopes: dict[str, list[str]] = {}
        for name, scope in found:
            scopes.setdefault(name, []).append(scope)
        stored: dict[tuple[str, str], str] = {}
        for name, wanted in scopes.items():
            for start in range(0, len(wanted), _SCOPES_PER_SELECT):
                chunk = wanted[start : start + _SCOPES_PER_SELECT]
                marks = ", ".join("?" for _ in chunk)
                cursor = conn.execute(
                    f"SELECT scope, value FROM _crawlrunner_cursors WHERE run_id = ? AND target = ? AND scope IN ({marks})",
                    (self.run_id, name, *chunk),
                )
                stored.update(((name, scope), value) for scope, value in cursor.fetchall())
        rows = merged(found, stored, self.spec)
        if rows:
            conn.executemany(_UPSERT_CURSOR, [(self.run_id, *row) for row in rows])

    def _upsert(self, work: _Work, target: Target, rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``rows``, writing 'added', 'changed' and 'restored' history rows first.

        A key marked removed (``_removed_run``) that comes back is 'restored',
        its old values the ones stored before it was removed; the upsert
        clears its mark.
        """
        names = ["_run_id", "_url", "_fetched_at", *field_names(target)]
        # The same key twice in one batch: the last record wins, and history
        # compares it with the table as it was.
        positions = [names.index(k) for k in target.key]
        rows = list({tuple(row[i] for i in positions): row for row in rows}.values())
        stage = quote_identifier(f"_stage_{target.name}")
        cols = ", ".join(quote_identifier(n) for n in names)
        work.call(lambda conn: conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({cols})"))
        work.call(lambda conn: conn.execute(f"DELETE FROM {stage}"))
        work.rows(f"INSERT INTO {stage} VALUES ({', '.join('?' for _ in names)})", rows)
        table, history = quote_identifier(target.name), quote_identifier(history_table(target))
        match = " AND ".join(f"t.{quote_identifier(k)} IS s.{quote_identifier(k)}" for k in target.key)
        key = "json_array(" + ", ".join(f"s.{quote_identifier(k)}" for k in target.key) + ")"
        others = [n for n in field_names(target) if n not in target.key]
        differs = " OR ".join(f"t.{quote_identifier(n)} IS NOT s.{quote_identifier(n)}" for n in others) or "0"
        added = (
            f"INSERT INTO {history} (run_id, key, change, old, new, at)"
            f" SELECT s._run_id, {key}, 'added', NULL, {json_object('s', others)}, s._fetched_at"
            f" FROM {stage} AS s LEFT JOIN {table} AS t ON {match} WHERE t.rowid IS NULL"
        )
        changed = (
            f"INSERT INTO {history} (run_id, key, change, old, new, at)"
            f" SELECT s._run_id, {key}, CASE WHEN t._removed_run IS NULL THEN 'changed' ELSE 'restored' END,"
            f" {json_object('t', others)}, {json_object('s', others)}, s._fetched_at"
            f" FROM {stage} AS s JOIN {table} AS t ON {match} WHERE t._removed_run IS NOT NULL OR {differs}"
        )
        work.call(lambda conn: conn.execute(added))
        work.call(lambda conn: conn.execute(changed))
        work.rows(self.inserts[target.name], [(*row, row[0], row[2], row[0], row[2]) for row in rows])

    def _keep_unchanged(self, work: _Work, target: Target, urls: Iterable[str]) -> None:
        """A 304 keeps the rows already stored for that URL, as this run's (not a key gone from the page)."""
        if target.mode == "append" or target.extract is None:
            return
        # A key marked removed was not on the page when its validators were
        # taken: the unchanged page does not hold it either.
        still_there = " AND _removed_run IS NULL" if target.mode == "upsert" else ""
        work.many(
            f"UPDATE {quote_identifier(target.name)} SET _run_id = ? WHERE _url = ?{still_there}",
            [(self.run_id, url) for url in urls],
        )
