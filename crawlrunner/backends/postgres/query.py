"""The read side of the PostgreSQL backend: ad-hoc SQL, exports, runs and changes.

The same views as ``backends.sqlite.query``, for ``crawlrunner.read`` and the
commands built on it, and synchronous like them: ``read_only(url)`` opens one
connection in a read-only transaction and drives it from an event loop of
its own, run in a thread of its own for the duration of the block (so it
works whether or not the caller runs an event loop: a notebook does). Rows
come through a server-side cursor, a chunk at a time, so a table of any size
is read in constant memory.

Read-only means a ``READ ONLY`` transaction (and ``default_transaction_read_only``
for the session): no statement can change a table. What else a statement
may do is the role's business (``COPY ... TO`` a server file needs superuser
or ``pg_write_server_files``): give readers a role that may only SELECT.

Every error says which database, as ``display_name`` shows it: never with its
password. asyncpg is imported when a connection is opened, never before.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ... import runtime
from ...errors import OutputPathError, StorageError
from ..cursors import COMPLETED, NO_RUN_YET
from ..field_types import CHANGE_COLUMNS, Columns, decode_changes, decode_rows
from ..sitemap_runs import POSTGRES_LAST_RUN
from . import connect
from .layout import upgrade_for_reading
from .membership import worker_timeout
from .schema import quote_identifier
from .tables import history_name

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.cursor import Cursor

T = TypeVar("T")

Rows = tuple[Sequence[str], Iterator[Sequence[Any]]]

# Rows per fetch from the cursor: from FIRST_CHUNK, sized after each chunk to
# about CHUNK_BYTES of text and bytes (stored bodies are large, most rows
# small), within [MIN_CHUNK, MAX_CHUNK].
FIRST_CHUNK = 100
MIN_CHUNK = 10
MAX_CHUNK = 5000
CHUNK_BYTES = 4 << 20
CLOSE_TIMEOUT = 5.0
# A reader whose consumer stalls (`| less`) sits idle in its transaction,
# holding its snapshot and its tables' share locks (a worker's ALTER TABLE
# would wait on them): the server ends such a session after this long.
IDLE_IN_TRANSACTION = "15min"
CLOSED = "the connection is closed: rows were read after their block ended"
SERVER_SETTINGS = {
    "default_transaction_read_only": "on",
    "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION,
    "application_name": "crawlrunner read",
}


class Session:
    """One read-only connection to a PostgreSQL database, used from synchronous code.

    Made by ``read_only``; ``call`` runs an operation on the session's own
    event loop (in its own thread) and returns its result, with the
    driver's errors turned into ``StorageError``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = connect.display_name(url)
        self._conn: asyncpg.Connection | None = None
        self._loop = (runtime.loop_factory() or asyncio.new_event_loop)()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crawlrunner-pg-read", daemon=True)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "the session is not open"
        return self._conn

    def call(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``operation(connection)``, awaited on the session's loop; its error as a ``StorageError``.

        All of it runs in the loop's thread: asyncpg's objects are used there only.
        """
        if self._closed:
            raise StorageError(f"{self.name}: {CLOSED}")
        conn = self.conn

        async def run() -> T:
            return await operation(conn)

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result()
        except BaseException as exc:
            future.cancel()  # an interrupt (Ctrl-C) while waiting: stop the work too
            if isinstance(exc, Exception):
                raise self._error(exc) from None
            raise

    def _error(self, exc: Exception) -> Exception:
        driver = connect.driver()
        if not isinstance(exc, (driver.PostgresError, driver.InterfaceError, OSError, asyncio.TimeoutError)):
            return exc  # ours (OutputPathError ...), or a bug: as it is
        # Not connect.connection_lost: to the driver, a wrong number of parameters is an InterfaceError too.
        lost = isinstance(exc, (OSError, asyncio.TimeoutError, driver.PostgresConnectionError)) or (
            isinstance(exc, driver.PostgresError) and connect.connection_lost(exc)
        )
        if lost:
            return StorageError(f"{self.name}: lost the database connection: {describe(exc)}")
        if self._conn is not None and self._conn.is_closed():  # found closed: the driver's words say less
            return StorageError(f"{self.name}: lost the database connection (the server closed it)")
        return StorageError(f"{self.name}: {describe(exc)}")

    def open(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
        try:
            self._conn = future.result()
        except BaseException:
            future.cancel()
            self.close()
            raise

    async def _connect(self) -> asyncpg.Connection:
        driver = connect.driver()
        connect.check_url(self.url)
        try:
            conn: asyncpg.Connection = await driver.connect(
                self.url, timeout=connect.CONNECT_TIMEOUT, server_settings=SERVER_SETTINGS
            )
        except Exception as exc:
            raise connect.open_error(self.url, exc) from None
        try:
            # Once, as SQLite's read commands do: reading an older layout would need
            # every query in two versions.
            await upgrade_for_reading(conn, self.name)
            # One snapshot for the whole block: `changes` reads twice.
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, Exception):
                raise self._error(exc) from None
            raise
        return conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Nothing to keep: a reader never commits.
            await asyncio.wait_for(conn.close(), timeout=CLOSE_TIMEOUT)
        except Exception:  # a server gone away, or a statement still running
            conn.terminate()

    def close(self) -> None:
        """Close the connection, stop the loop and its thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(CLOSE_TIMEOUT + 1)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


def describe(exc: BaseException) -> str:
    """The server's message on one line, with its detail and hint."""
    message = getattr(exc, "message", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc))
    parts = [message.strip() or type(exc).__name__]
    for extra in ("detail", "hint"):
        text = getattr(exc, extra, None)
        if text:
            parts.append(f"{extra}: {text}")
    return " ".join("; ".join(parts).split())


@contextmanager
def read_only(url: str) -> Iterator[Session]:
    """A read-only session on the database at ``url``, closed on leaving the block.

    A database that does not exist is an ``OutputPathError`` (a usage
    problem); a server that cannot be reached, a refused login or an error
    inside the block a ``StorageError`` naming the database without its
    password; a missing asyncpg a ``UsageError``.
    """
    session = Session(url)
    session.open()
    try:
        yield session
    finally:
        session.close()


async def _open_cursor(conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> tuple[list[str], Cursor]:
    statement = await conn.prepare(sql)
    columns = [attribute.name for attribute in statement.get_attributes()]
    return columns, await statement.cursor(*params)


async def _next_chunk(cursor: Cursor, size: int, conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await cursor.fetch(size)  # type: ignore[no-any-return]


def _chunk_size(rows: Sequence[Sequence[Any]], current: int) -> int:
    """How many rows to ask for next, so that a chunk holds about ``CHUNK_BYTES``."""
    size = sum(len(value) for row in rows for value in row if isinstance(value, (str, bytes)))
    estimate = current * 2 if size <= 0 else len(rows) * CHUNK_BYTES // size
    return max(MIN_CHUNK, min(MAX_CHUNK, estimate))


def _fetch(session: Session, cursor: Cursor) -> Iterator[tuple[Any, ...]]:
    size = FIRST_CHUNK
    while True:
        chunk = session.call(partial(_next_chunk, cursor, size))
        for record in chunk:
            if session.closed:  # not even the rest of a chunk once the block has ended
                raise StorageError(f"{session.name}: {CLOSED}")
            yield tuple(record)
        if len(chunk) < size:
            return
        size = _chunk_size(chunk, size)


def execute(session: Session, sql: str, params: Sequence[Any] = ()) -> Rows:
    """The column names and a lazy iterator over the rows of ``sql`` (``$1``, ``$2``... take ``params``)."""
    try:
        columns, cursor = session.call(lambda conn: _open_cursor(conn, sql, tuple(params)))
    except StorageError as exc:
        if params and "?" in sql and "$1" not in sql:
            raise StorageError(f"{exc} (PostgreSQL's placeholders are $1, $2, ..., not ?)") from None
        raise
    return columns, _fetch(session, cursor)


def _scalar(session: Session, sql: str, *params: Any) -> Any:
    return session.call(lambda conn: conn.fetchval(sql, *params))


# The tables an unqualified name reaches (by the search_path) that have a _run_id column.
_TARGET_TABLES = """
SELECT c.relname FROM pg_catalog.pg_class AS c
WHERE c.relkind IN ('r', 'p') AND pg_catalog.pg_table_is_visible(c.oid)
  AND EXISTS (
      SELECT 1 FROM pg_catalog.pg_attribute AS a
      WHERE a.attrelid = c.oid AND a.attname = '_run_id' AND a.attnum > 0 AND NOT a.attisdropped
  )
ORDER BY c.relname
"""


def target_table(session: Session, name: str) -> str:
    """``name`` if it is a table crawlrunner wrote for a target; else a clear error."""
    tables = [row[0] for row in session.call(lambda conn: conn.fetch(_TARGET_TABLES))]
    if name not in tables:
        raise OutputPathError(f"no target table {name!r} (tables: {', '.join(tables) or 'none'})")
    return name


def export_rows(session: Session, table: str, run: int | None = None) -> Rows:
    """Every row of a target's table (or those of one run), in the order they were stored.

    PostgreSQL has no rowid: rows come by run, then fetch time and page
    (``_run_id, _fetched_at, _url``), and the records of one page in the
    order they were written (``ctid``, their place in the table). An upsert
    target's rows come by when each key was last stored.
    """
    sql = f"SELECT * FROM {quote_identifier(target_table(session, table))}"
    # asyncpg hands jsonb over as its text: exported, it is the JSON value (booleans are booleans already).
    kinds = {str(row[0]): "json" for row in session.call(lambda conn: conn.fetch(_JSONB_COLUMNS, table))}
    if run is not None:
        columns, rows = execute(session, sql + " WHERE _run_id = $1 ORDER BY _fetched_at, _url, ctid", (run,))
    else:
        columns, rows = execute(session, sql + " ORDER BY _run_id, _fetched_at, _url, ctid")
    return Columns(columns, lambda: column_kinds(session, table)), decode_rows(columns, rows, kinds)


# Column types (as ``format_type()`` names them, less any modifier) → kinds (``field_types.Columns``).
_TYPE_KINDS = {
    "bigint": "int",
    "integer": "int",
    "smallint": "int",
    "double precision": "float",
    "real": "float",
    "numeric": "float",
    "boolean": "bool",
    "jsonb": "json",
    "json": "json",
    "date": "date",
    "timestamp with time zone": "datetime",
    "timestamp without time zone": "datetime",
    "bytea": "bytes",
}


def column_kinds(session: Session, table: str) -> dict[str, str]:
    """Column → kind of a target's table, from its column types (text, and any type not known here: 'str')."""
    rows = session.call(lambda conn: conn.fetch(_COLUMN_TYPES, table))
    # Without a modifier: timestamp(3) with time zone is a timestamp with time zone.
    return {str(name): _TYPE_KINDS.get(re.sub(r"\(.*?\)", "", str(type_)), "str") for name, type_ in rows}


_COLUMN_TYPES = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
"""


_JSONB_COLUMNS = """
SELECT a.attname FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.atttypid = 'jsonb'::regtype
"""


# A run still going is counted from its fetch log (its row's counters are
# written when it ends, and several workers write the log meanwhile), as
# the SQLite backend counts it when a run finishes; for any other run
# ``live`` is empty (the HAVING), and nothing of the log is read (the WHERE).
# ``workers``: how many are in the run now (joined, not left, and beating: a
# worker killed with nobody left to notice never left).
_RUNS = """
SELECT r.id, r.spec_name, r.status, r.started_at, r.finished_at,
       coalesce(live.requests, r.requests) AS requests,
       coalesce(live.ok, r.ok) AS ok,
       coalesce(live.failed, r.failed) AS failed,
       coalesce(live.unchanged, r.unchanged) AS unchanged,
       coalesce(live.records, r.records) AS records,
       coalesce(live.bytes, r.bytes) AS bytes,
       r.resumed,
       (SELECT count(*) FROM _crawlrunner_workers AS w WHERE w.run_id = r.id AND w.left_at IS NULL
            AND w.heartbeat >= now() - make_interval(secs => $1)) AS workers
FROM _crawlrunner_runs AS r
LEFT JOIN LATERAL (
    SELECT count(*) AS requests,
           count(*) FILTER (WHERE f.error_kind IS NULL) AS ok,
           count(*) FILTER (WHERE f.error_kind IS NOT NULL) AS failed,
           count(*) FILTER (WHERE f.status = 304) AS unchanged,
           coalesce(sum(f.records), 0)::bigint AS records,
           coalesce(sum(f.bytes), 0)::bigint AS bytes
    FROM _crawlrunner_fetch_log AS f
    WHERE f.run_id = r.id AND r.status = 'running'
    HAVING r.status = 'running'
) AS live ON true
ORDER BY r.id
"""


def runs(session: Session) -> Rows:
    """One row per run: its status and counters (live for a running run), and its live workers."""
    return execute(session, _RUNS, (worker_timeout(),))


def completed_cursors(session: Session, spec_name: str) -> list[tuple[Any, ...]]:
    """The cursors of the spec's completed runs (``cursors.COMPLETED``): where its next run starts."""
    rows = session.call(lambda conn: conn.fetch(COMPLETED.format(spec="$1", run="$2"), spec_name, NO_RUN_YET))
    return [tuple(row) for row in rows]


def last_run_rows(session: Session, spec_name: str, targets: Sequence[str]) -> list[tuple[str, Any]]:
    """Per target, its ``sitemap_runs.LAST_RUN`` row for the spec's next run (None: no run counts yet)."""

    async def fetch(conn: asyncpg.Connection) -> list[tuple[str, Any]]:
        return [(name, await conn.fetchrow(POSTGRES_LAST_RUN, NO_RUN_YET, spec_name, name)) for name in targets]

    return [(name, tuple(row) if row is not None else None) for name, row in session.call(fetch)]


def changes(session: Session, table: str, since: int | None) -> Rows:
    """What changed in an upsert target (keys added, changed, restored, removed): by default, in its latest run."""
    history = history_name(target_table(session, table))  # shortened like the writer's, for long target names
    if _scalar(session, "SELECT to_regclass($1) IS NOT NULL", quote_identifier(history)) is not True:
        raise OutputPathError(f"{table!r} keeps no history: changes are recorded for targets with mode: upsert")
    if since is None:
        # The latest run that stored this target's records, changed or not.
        latest = _scalar(session, f"SELECT max(_run_id) FROM {quote_identifier(table)}")
        since = int(latest) - 1 if latest is not None else 0
    _, rows = execute(
        session,
        f"SELECT run_id, change, key, old, new, at FROM {quote_identifier(history)} WHERE run_id > $1 ORDER BY id",
        (since,),
    )
    return list(CHANGE_COLUMNS), decode_changes(rows, {})  # old and new are jsonb: their fields are typed already
