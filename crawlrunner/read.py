"""Reading a crawl database from Python: what ``query``, ``export``, ``runs`` and ``changes`` print.

::

    import crawlrunner

    top = crawlrunner.query("shop.db", "SELECT name, price FROM products ORDER BY price DESC LIMIT 5")
    for name, price in top:
        print(name, price)
    products = crawlrunner.export("shop.db", "products", run_id=3).records()  # a list of dicts
    crawlrunner.list_runs("shop.db")
    crawlrunner.changes("shop.db", "products", since=12)
    crawlrunner.export_parquet("shop.db", "products", "products.parquet")  # typed columns; needs pyarrow

Each function opens the database read-only, reads every row and closes it
before returning a ``Table``: a plain frozen value, safe to keep and pass
around (``pandas.DataFrame(table.rows, columns=table.columns)`` works), with
no connection left open behind it. A result too big to hold in memory is
read with the matching ``stream_*`` context manager instead, which yields the
rows lazily while the connection is open; the command line uses those, so
exporting a large table takes constant memory.

A PostgreSQL database is named by its URL wherever a file is::

    crawlrunner.query("postgresql://crawl@db/crawls", "SELECT count(*) FROM products WHERE _run_id = $1", [3])

There each block is one read-only transaction (a single snapshot), rows come
through a server-side cursor, ``params`` fill PostgreSQL's ``$1``, ``$2``...
placeholders (not ``?``), and values keep PostgreSQL's types (``datetime``,
``Decimal``, ``bool``; ``jsonb`` as its JSON text). ``list_runs`` counts a
running run from its fetch log (its row's counters are written when it ends)
and adds a last column, ``workers``: how many are in the run now. Credentials
come from the URL, ``PGPASSWORD`` or ``~/.pgpass``; no message shows a password.

Errors: a missing file or database, or an unknown target table, is an
``OutputPathError`` (a usage problem); bad SQL, a write attempt, a damaged
file or a server that cannot be reached is a ``StorageError``. Both are
``CrawlRunnerError``. A URL without the PostgreSQL driver installed
(``pip install 'crawlrunner[postgres]'``) is a ``UsageError``.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import parquet
from .backends.field_types import Columns
from .backends.postgres import query as pg
from .backends.postgres.connect import is_postgres_url
from .backends.sqlite import query as sql
from .backends.sqlite.query import is_database as is_database  # for the CLI: never export over a database
from .backends.sqlite.query import refuse_database as refuse_database
from .host_plan import KnownHosts, Pushback
from .origins import origin

Database = str | Path


@dataclass(frozen=True, slots=True)
class Table:
    """Rows read from a crawl database, with their column names. Iterating yields the rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True)
class Stream:
    """Rows still being read: valid only inside the ``stream_*`` block that yielded it."""

    columns: tuple[str, ...]
    rows: Iterator[Sequence[Any]]

    def read(self) -> Table:
        """Every remaining row, as a ``Table``."""
        return Table(self.columns, tuple(tuple(row) for row in self.rows))


@contextmanager
def _stream(
    database: Database,
    reader: Callable[[sqlite3.Connection], sql.Rows],
    pg_reader: Callable[[pg.Session], pg.Rows],
) -> Iterator[Stream]:
    """Rows of an SQLite file, or of a PostgreSQL database when ``database`` is its URL."""
    if is_postgres_url(database):
        assert isinstance(database, str)
        with pg.read_only(database) as session:
            columns, rows = pg_reader(session)
            yield Stream(_names(columns), rows)
        return
    with sql.read_only(database) as conn:
        columns, rows = reader(conn)
        yield Stream(_names(columns), rows)


def _names(columns: Sequence[str]) -> tuple[str, ...]:
    """The column names as a tuple; an export's ``Columns`` as they are (they can say their kinds)."""
    return columns if isinstance(columns, tuple) else tuple(columns)


def stream_query(database: Database, statement: str, params: Sequence[Any] = ()) -> AbstractContextManager[Stream]:
    """``query``, lazily: ``with stream_query(db, "SELECT ...") as rows: for row in rows.rows: ...``."""
    return _stream(
        database,
        lambda conn: sql.execute(conn, statement, params),
        lambda session: pg.execute(session, statement, params),
    )


def stream_export(database: Database, target: str, run_id: int | None = None) -> AbstractContextManager[Stream]:
    """``export``, lazily."""
    return _stream(
        database,
        lambda conn: sql.export_rows(conn, target, run_id),
        lambda session: pg.export_rows(session, target, run_id),
    )


def stream_runs(database: Database) -> AbstractContextManager[Stream]:
    """``list_runs``, lazily."""
    return _stream(database, sql.runs, pg.runs)


def stream_changes(database: Database, target: str, since: int | None = None) -> AbstractContextManager[Stream]:
    """``changes``, lazily."""
    return _stream(
        database,
        lambda conn: sql.changes(conn, target, since),
        lambda session: pg.changes(session, target, since),
    )


def query(database: Database, statement: str, params: Sequence[Any] = ()) -> Table:
    """The rows of one SQL statement, run on a read-only connection (a write fails).

    ``params`` fill the statement's placeholders: ``?`` in SQLite, ``$1``,
    ``$2``... in PostgreSQL.
    """
    with stream_query(database, statement, params) as rows:
        return rows.read()


def export(database: Database, target: str, run_id: int | None = None) -> Table:
    """Every row of ``target``'s table (only run ``run_id``'s, if given), in the order they were stored.

    A JSON field (``type: json``, ``many: true``) comes as its value (a list,
    a dict...), a ``type: bool`` field as ``True``/``False``.
    """
    with stream_export(database, target, run_id) as rows:
        return rows.read()


def export_parquet(database: Database, target: str, path: str | Path, run_id: int | None = None) -> int:
    """``export`` to a Parquet file at ``path``, each column typed from what the database declares; the rows written.

    Needs pyarrow (``pip install 'crawlrunner[parquet]'``: else a
    ``UsageError``). Written a row group at a time, in constant memory; the
    types are those of ``crawlrunner.backends.parquet`` (JSON fields as JSON
    text). Never over an SQLite file (an ``OutputPathError``).
    """
    out = Path(path)
    refuse_database(out)
    with stream_export(database, target, run_id) as rows:
        return write_parquet(out, rows.columns, rows.rows)


def write_parquet(path: Path, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    """Rows of a ``stream_export`` block to a Parquet file at ``path``, typed by their columns' kinds; the rows written.

    Other columns (a query's) are written as text.
    """
    parquet.pyarrow()  # before the file is made: without pyarrow, none is left behind
    kinds = columns.kinds() if isinstance(columns, Columns) else {}
    with path.open("wb") as out:
        return parquet.write(out, columns, kinds, rows)


def list_runs(database: Database) -> Table:
    """One row per run, oldest first: id, spec name, status, times and counters.

    PostgreSQL adds ``workers``, how many are in each run now, and counts a
    running run from its fetch log.
    """
    with stream_runs(database) as rows:
        return rows.read()


def changes(database: Database, target: str, since: int | None = None) -> Table:
    """Keys added, values changed, keys removed and restored in an upsert target: after run ``since``, else in its latest run.

    Columns: run_id, change, key, changed, old, new, at. ``key`` is a list
    of the key's values, ``old`` and ``new`` dicts of the other fields (None
    when added or removed), ``changed`` the names of the fields whose value
    differs between them. A target that keeps no history (not ``mode:
    upsert``) is an ``OutputPathError``.
    """
    with stream_changes(database, target, since) as rows:
        return rows.read()


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What a spec's earlier runs tell ``crawlrunner plan``: its hosts, and the limits the last complete run hit."""

    hosts: KnownHosts = KnownHosts()
    run_id: int | None = None  # the spec's last completed run, the one the counts below are from
    cut_chains: Mapping[str, int] = field(default_factory=dict)  # target → chains max_pages cut short
    requests: Mapping[str, int] = field(default_factory=dict)  # target → requests made


# Requests of the last completed run read to learn each host's latency: a sample is enough for a floor.
LATENCY_SAMPLE = 20_000


def plan_facts(database: Database, spec_name: str) -> PlanFacts:
    """What ``spec_name``'s earlier runs in ``database`` learnt; empty facts if it has none (or no such database).

    Read-only. Crawl delays come from the latest run that read each host's
    robots.txt; latencies (the median of first attempts that got an answer),
    the hosts' 429s, 503s and pauses (``host_stats``) and the limits hit from
    the last completed run.
    """
    mark = "$1" if is_postgres_url(database) else "?"
    # A database of an earlier release is upgraded when read (host_stats came in layout 5): every table is there.
    delays: dict[str, float] = {}
    for host, delay in query(
        database,
        "SELECT h.origin, h.crawl_delay FROM _crawlrunner_host_stats h JOIN _crawlrunner_runs r ON r.id = h.run_id"
        f" WHERE r.spec_name = {mark} AND h.crawl_delay IS NOT NULL ORDER BY h.run_id",
        [spec_name],
    ):
        delays[host] = float(delay)
    last = query(
        database,
        f"SELECT max(id) FROM _crawlrunner_runs WHERE spec_name = {mark} AND status = 'completed'",
        [spec_name],
    )
    run_id = last.rows[0][0] if last.rows else None
    if run_id is None:
        return PlanFacts(KnownHosts(crawl_delays=delays))
    samples: dict[str, list[float]] = {}
    for url, elapsed_ms in query(
        database,
        f"SELECT url, elapsed_ms FROM _crawlrunner_fetch_log WHERE run_id = {mark} AND attempts = 1 AND status IS NOT NULL"
        f" ORDER BY id LIMIT {LATENCY_SAMPLE}",
        [run_id],
    ):
        samples.setdefault(origin(url), []).append(elapsed_ms / 1000)
    cut = query(
        database,
        f"SELECT target, count(*) FROM _crawlrunner_chain_ends WHERE run_id = {mark} AND reason = 'max_pages' GROUP BY target",
        [run_id],
    )
    made = query(
        database, f"SELECT target, count(*) FROM _crawlrunner_fetch_log WHERE run_id = {mark} GROUP BY target", [run_id]
    )
    pushback = query(
        database,
        "SELECT origin, throttled, unavailable, cooldown_seconds FROM _crawlrunner_host_stats"
        f" WHERE run_id = {mark} AND (throttled > 0 OR unavailable > 0 OR cooldown_seconds > 0)",
        [run_id],
    )
    return PlanFacts(
        KnownHosts(
            crawl_delays=delays,
            latencies={o: statistics.median(s) for o, s in samples.items()},
            pushback={o: Pushback(int(t), int(u), float(c)) for o, t, u, c in pushback},
        ),
        int(run_id),
        {target: int(n) for target, n in cut},
        {target: int(n) for target, n in made},
    )
