"""The SQLite output: one connection per run, one writer, batched transactions.

Fetch-log rows and the records extracted from them are committed in the same
transaction, so the database never holds records of a fetch it does not
know about (the base for resuming an interrupted run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from ..errors import OutputPathError, StorageError
from ..expectations import TargetFacts
from ..coercion import sql_value
from ..results import Outcome, utc_now
from ..secrets import Redactor
from ..spec.model import Spec, Target
from .schema import (
    BASE_DDL,
    SCHEMA_VERSION,
    create_target_table,
    insert_record,
    quote_identifier,
    target_columns,
)

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000
BATCH_SIZE = 500
QUEUE_SIZE = 2000

_INSERT_FETCH = (
    "INSERT INTO fetch_log (run_id, target, method, url, final_url, status, content_type, bytes,"
    " body_path, elapsed_ms, attempts, records, error_kind, error, fetched_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _check_is_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise OutputPathError(f"{path}: is a directory, not a database file") from None
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot open: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise OutputPathError(f"{path}: exists and is not an SQLite database; refusing to overwrite it")


class Store:
    """An open output database. Use ``async with Store.open(path) as store``."""

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path) -> AsyncIterator[Store]:
        db_path = Path(path)
        _check_is_sqlite(db_path)
        if db_path.parent and not db_path.parent.exists():
            raise OutputPathError(f"{db_path}: the folder {db_path.parent} does not exist")
        # Shielded: a cancel mid-connect would leave aiosqlite's thread calling
        # back into a closed loop; let the connect finish, then close it.
        connecting = asyncio.ensure_future(aiosqlite.connect(db_path, isolation_level=None))
        try:
            conn = await asyncio.shield(connecting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await (await connecting).close()
            raise
        except sqlite3.Error as exc:
            raise StorageError(f"{db_path}: cannot open: {exc}") from None
        try:
            store = cls(db_path, conn)
            await store._initialise()
            yield store
        finally:
            await conn.close()

    async def _initialise(self) -> None:
        try:
            await self.conn.execute("PRAGMA journal_mode=WAL")
            await self.conn.execute("PRAGMA synchronous=NORMAL")
            await self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await self.conn.execute("PRAGMA foreign_keys=ON")
            async with self.conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path}: made by a newer crawlrunner (schema {version}, this one knows {SCHEMA_VERSION})"
                )
            if version == 0:
                async with self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'") as cursor:
                    row = await cursor.fetchone()
                if row and row[0]:
                    raise OutputPathError(
                        f"{self.path}: an SQLite database crawlrunner did not make; refusing to write into it"
                    )
            await self.conn.executescript(BASE_DDL)
            await self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def prepare_targets(self, targets: Iterable[Target]) -> None:
        """Create each target's table, adding columns for fields new to the spec."""
        try:
            for target in targets:
                for statement in create_target_table(target):
                    await self.conn.execute(statement)
                async with self.conn.execute(f"PRAGMA table_info({quote_identifier(target.name)})") as cursor:
                    existing = {row[1] for row in await cursor.fetchall()}
                for name, declaration in target_columns(target):
                    if name not in existing:
                        log.info("adding column %s to table %s", name, target.name)
                        await self.conn.execute(
                            f"ALTER TABLE {quote_identifier(target.name)} "
                            f"ADD COLUMN {quote_identifier(name)} {declaration}".rstrip()
                        )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot create tables: {exc}") from None

    async def begin_run(self, spec: Spec) -> int:
        try:
            cursor = await self.conn.execute(
                "INSERT INTO runs (spec_name, spec_file, spec_hash, started_at, status) VALUES (?, ?, ?, ?, 'running')",
                (spec.name, spec.source, spec.digest, utc_now()),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot record the run: {exc}") from None
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def finish_run(self, run_id: int, status: str) -> None:
        """Close the run's row; its counts come from the fetch log itself."""
        try:
            await self.conn.execute(
                """
                UPDATE runs SET status = ?, finished_at = ?,
                    requests = totals.requests, ok = totals.ok, failed = totals.failed,
                    records = totals.records, bytes = totals.bytes
                FROM (
                    SELECT count(*) AS requests,
                           coalesce(sum(error_kind IS NULL), 0) AS ok,
                           coalesce(sum(error_kind IS NOT NULL), 0) AS failed,
                           coalesce(sum(records), 0) AS records,
                           coalesce(sum(bytes), 0) AS bytes
                    FROM fetch_log WHERE run_id = ?
                ) AS totals
                WHERE id = ?
                """,
                (status, utc_now(), run_id, run_id),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot finish the run: {exc}") from None


    async def target_facts(self, run_id: int, target: Target) -> TargetFacts:
        """Records, requests, failures and null counts of one target in one run."""
        fields = target.expect.not_null if target.expect else ()
        try:
            async with self.conn.execute(
                "SELECT count(*), coalesce(sum(error_kind IS NOT NULL), 0) FROM fetch_log WHERE run_id = ? AND target = ?",
                (run_id, target.name),
            ) as cursor:
                requests, failed = await cursor.fetchone() or (0, 0)
            records, nulls = 0, {}
            if target.extract is not None:
                null_sums = "".join(f", coalesce(sum({quote_identifier(f)} IS NULL), 0)" for f in fields)
                async with self.conn.execute(
                    f"SELECT count(*){null_sums} FROM {quote_identifier(target.name)} WHERE _run_id = ?", (run_id,)
                ) as cursor:
                    row = await cursor.fetchone() or (0,)
                records, nulls = row[0], dict(zip(fields, row[1:]))
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot read back the run: {exc}") from None
        return TargetFacts(records=records, requests=requests, failed=failed, nulls=nulls)


class BatchWriter:
    """The single writer: outcomes in, batched transactions out.

    ``put`` waits when the queue is full, which is the engine's backpressure:
    fetching can never run ahead of the disk by more than ``QUEUE_SIZE``
    documents. ``run`` is a task; cancelling it still commits what was queued.
    """

    _STOP: Any = object()

    def __init__(self, store: Store, run_id: int, spec: Spec) -> None:
        self.store = store
        self.run_id = run_id
        self.redact: Redactor = spec.redactor
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        self.inserts = {t.name: insert_record(t) for t in spec.targets if t.extract is not None}

    async def put(self, outcome: Outcome) -> None:
        await self.queue.put(outcome)

    async def close(self) -> None:
        """Ask ``run`` to finish once everything queued so far is written."""
        await self.queue.put(self._STOP)

    async def run(self) -> None:
        current: asyncio.Future[None] | None = None
        try:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < BATCH_SIZE and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                stop = batch[-1] is self._STOP
                # Shielded, so a cancel cannot roll back a batch half-way.
                current = asyncio.ensure_future(self._write([o for o in batch if o is not self._STOP]))
                await asyncio.shield(current)
                if stop:
                    return
        except asyncio.CancelledError:
            # Interrupted: finish the batch in hand, commit what already
            # arrived, then let the cancellation go on.
            if current is not None:
                await current
            pending = []
            while not self.queue.empty():
                item = self.queue.get_nowait()
                if item is not self._STOP:
                    pending.append(item)
            await self._write(pending)
            raise

    def _rows(self, batch: list[Outcome]) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
        log_rows: list[tuple[Any, ...]] = []
        records: dict[str, list[tuple[Any, ...]]] = {}
        redact = self.redact
        for outcome in batch:
            fetch = outcome.fetch
            url = redact(fetch.url) if redact else fetch.url
            final_url = redact(fetch.final_url) if redact and fetch.final_url else fetch.final_url
            error = redact(fetch.error) if redact and fetch.error else fetch.error
            log_rows.append(
                (
                    self.run_id, fetch.target, fetch.method, url, final_url, fetch.status,
                    fetch.content_type, fetch.size, fetch.body_path, round(fetch.elapsed * 1000, 3),
                    fetch.attempts, len(outcome.records), fetch.error_kind, error, fetch.fetched_at,
                )
            )  # fmt: skip
            if outcome.records:
                rows = records.setdefault(fetch.target, [])
                for record in outcome.records:
                    values = [sql_value(v) for v in record.values()]
                    if redact:
                        # A record can quote a secret (a {meta: url}, an echoing API).
                        values = [redact(v) if isinstance(v, str) else v for v in values]
                    rows.append((self.run_id, url, fetch.fetched_at, *values))
        return log_rows, records

    async def _write(self, batch: list[Outcome]) -> None:
        if not batch:
            return
        log_rows, records = self._rows(batch)
        conn = self.store.conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.executemany(_INSERT_FETCH, log_rows)
                for target, rows in records.items():
                    await conn.executemany(self.inserts[target], rows)
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"{self.store.path}: cannot write: {exc}") from None
