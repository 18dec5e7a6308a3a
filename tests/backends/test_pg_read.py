"""Reading a PostgreSQL crawl database: ``runs``, ``query``, ``export`` and ``changes`` given a URL.

The data is written here with asyncpg, in the backend's layout
(``layout.ensure_layout`` and target tables made by hand), and read through the
real command line (click's runner, and the installed ``crawlrunner`` once)
and the library API.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socketserver
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

import crawlrunner
from crawlrunner.backends.postgres.layout import ensure_layout
from crawlrunner.cli import main
from crawlrunner.errors import OutputPathError, StorageError
from crawlrunner.read import stream_export

from .. import pg
from ..conftest import ENTRY_POINT, NO_ASYNCPG, postgres_unavailable

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

# Whichever test comes first starts the session's cluster (initdb and a start).
pytestmark = pytest.mark.timeout(120)

SECRET = "pw-8d1f3c-not-for-printing"

RUN_COLUMNS = [
    "id", "spec_name", "status", "started_at", "finished_at", "requests", "ok", "failed", "unchanged", "records",
    "bytes", "resumed",
]  # fmt: skip

SETUP = """
INSERT INTO _crawlrunner_runs (spec_name, spec_file, spec_hash, status, started_at, finished_at,
                  requests, ok, failed, unchanged, records, bytes, resumed)
VALUES ('shop', 'shop.yaml', 'h1', 'completed', '2024-05-01 10:00:00+00', '2024-05-01 10:05:00+00',
        3, 2, 1, 1, 5, 300, 0),
       ('shop', 'shop.yaml', 'h1', 'running', '2024-05-02 10:00:00+00', NULL, 0, 0, 0, 0, 0, 0, 1);
-- Run 1's row has its counters (written when it ended); its log is not read again.
INSERT INTO _crawlrunner_fetch_log (run_id, target, method, url, status, bytes, elapsed_ms, attempts, records, fetched_at)
VALUES (1, 'products', 'GET', 'http://shop/1', 200, 999, 1, 1, 9, now());
-- Run 2 is running: four requests logged so far, by two workers.
INSERT INTO _crawlrunner_fetch_log (run_id, target, method, url, status, bytes, elapsed_ms, attempts, records, error_kind,
                       fetched_at, worker_id)
VALUES (2, 'products', 'GET', 'http://shop/a', 200, 1000, 5, 1, 2, NULL, now(), 1),
       (2, 'products', 'GET', 'http://shop/b', 304, 0, 5, 1, 0, NULL, now(), 2),
       (2, 'products', 'GET', 'http://shop/c', NULL, 0, 5, 3, 0, 'timeout', now(), 1),
       (2, 'products', 'GET', 'http://shop/d', 200, 2500, 5, 1, 3, NULL, now(), 2);
INSERT INTO _crawlrunner_workers (run_id, hostname, pid, left_at, status)
VALUES (1, 'a', 10, '2024-05-01 10:05:00+00', 'completed'),
       (2, 'a', 11, NULL, 'running'), (2, 'b', 12, NULL, 'running'), (2, 'c', 13, now(), 'failed');

CREATE TABLE products (
    _run_id bigint NOT NULL REFERENCES _crawlrunner_runs(id),
    _url text NOT NULL,
    _fetched_at timestamptz NOT NULL,
    _first_seen_run bigint,
    _first_seen_at timestamptz,
    _changed_run bigint,
    _changed_at timestamptz,
    sku text,
    name text,
    price numeric,
    in_stock boolean,
    tags jsonb,
    thumbnail bytea
);
-- Written out of order: an export orders by run, fetch time and page, then storage order.
INSERT INTO products VALUES
    (2, 'http://shop/a', '2024-05-02 10:00:01.25+00', 1, '2024-05-01 10:00:01+00', 2, '2024-05-02 10:00:01.25+00',
     'A-1', 'Anvil, large', 19.90, true, '{"colour": "black", "sizes": [1, 2]}', '\\x00ff10'),
    (1, 'http://shop/b', '2024-05-01 10:00:02+00', 1, '2024-05-01 10:00:02+00', NULL, NULL,
     'B-2', 'Bucket "classic"', 5, false, '["steel"]', NULL),
    (2, 'http://shop/a', '2024-05-02 10:00:01.25+00', 2, '2024-05-02 10:00:01.25+00', NULL, NULL,
     'A-2', 'Axe', 7.5, NULL, NULL, NULL);
CREATE TABLE _crawlrunner_history_products (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES _crawlrunner_runs(id),
    key text NOT NULL,
    change text NOT NULL,
    old text,
    new text,
    at timestamptz NOT NULL
);
INSERT INTO _crawlrunner_history_products (run_id, key, change, old, new, at) VALUES
    (1, '["A-1"]', 'added', NULL, '{"price": 21.5}', '2024-05-01 10:00:01+00'),
    (1, '["B-2"]', 'added', NULL, '{"price": 5}', '2024-05-01 10:00:02+00'),
    (2, '["A-1"]', 'changed', '{"price": 21.5}', '{"price": 19.9}', '2024-05-02 10:00:01.25+00'),
    (2, '["A-2"]', 'added', NULL, '{"price": 7.5}', '2024-05-02 10:00:01.25+00');
-- A target kept in append mode: no history.
CREATE TABLE pages (_run_id bigint NOT NULL, _url text NOT NULL, _fetched_at timestamptz NOT NULL, title text);
-- Not a target's table (no _run_id).
CREATE TABLE notes (body text);
"""


def _execute(url: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement, timeout=60)
        finally:
            await conn.close(timeout=10)

    asyncio.run(run())


def _fetchval(url: str, sql: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(sql, timeout=10)
        finally:
            await conn.close(timeout=10)

    return asyncio.run(run())


async def _make_layout(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        async with conn.transaction():
            await ensure_layout(conn, "test")
    finally:
        await conn.close(timeout=10)


@pytest.fixture
def db(pg_cluster: pg.Server, pg_url: str) -> str:
    """A crawl database with two runs (one still running), an upsert target with history, and an append target.

    Its URL carries a password that no output may show (our own cluster
    trusts every local login, so any password will do; someone else's server
    keeps the URL's own).
    """
    asyncio.run(_make_layout(pg_url))
    _execute(pg_url, SETUP)
    parts = urlsplit(pg_url)
    if not pg_cluster.owned or parts.password:
        return pg_url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}:{SECRET}@{host}"))


def _secret(url: str) -> str | None:
    return urlsplit(url).password


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _failed(result: Result, code: int, url: str) -> str:
    """The one line of stderr, checked: the exit status, no traceback, no password."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    password = _secret(url)
    assert not password or password not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("crawlrunner: "), result.stderr
    return lines[0]


def test_runs_shows_the_rows_counters_and_a_running_runs_live_counts_and_workers(cli: CliRunner, db: str) -> None:
    listed = [json.loads(line) for line in _ok(cli.invoke(main, ["runs", db, "-f", "jsonl"])).splitlines()]

    assert [list(row) for row in listed] == [[*RUN_COLUMNS, "workers"]] * 2
    finished, running = listed
    assert finished["status"] == "completed" and finished["finished_at"] == "2024-05-01T10:05:00+00:00"
    counters = ("requests", "ok", "failed", "unchanged", "records", "bytes", "resumed", "workers")
    assert [finished[name] for name in counters] == [3, 2, 1, 1, 5, 300, 0, 0]
    # From the fetch log: 4 requests, 3 without error (one a 304), one failed; 5 records; 3500 bytes.
    assert running["status"] == "running" and running["finished_at"] is None
    assert [running[name] for name in counters] == [4, 3, 1, 1, 5, 3500, 1, 2]

    table = _ok(cli.invoke(main, ["runs", db])).splitlines()
    assert table[0].split() == [*RUN_COLUMNS, "workers"]
    assert table[3].split()[:3] == ["2", "shop", "running"] and table[3].split()[-1] == "2"

    runs = crawlrunner.list_runs(db)
    assert runs.columns == (*RUN_COLUMNS, "workers")
    assert runs.records()[1]["bytes"] == 3500 and isinstance(runs.records()[1]["bytes"], int)


def test_query_reads_with_dollar_placeholders_in_one_read_only_transaction(cli: CliRunner, db: str) -> None:
    rows = crawlrunner.query(db, "SELECT sku, price, in_stock FROM products WHERE _run_id = $1 ORDER BY sku", [2])
    assert rows.columns == ("sku", "price", "in_stock")
    assert [(sku, str(price), stock) for sku, price, stock in rows] == [("A-1", "19.90", True), ("A-2", "7.5", None)]

    as_json = json.loads(
        _ok(cli.invoke(main, ["query", db, "SELECT sku, price FROM products ORDER BY sku", "-f", "json"]))
    )
    assert as_json == [{"sku": "A-1", "price": 19.9}, {"sku": "A-2", "price": 7.5}, {"sku": "B-2", "price": 5}]
    assert _ok(cli.invoke(main, ["query", db, "SELECT 1 AS x, 2 AS x", "-f", "csv"])).splitlines() == ["x,x", "1,2"]

    for write in (
        "DELETE FROM products",
        "INSERT INTO notes VALUES ('x')",
        "CREATE TABLE mine (x int)",
        "WITH gone AS (DELETE FROM products RETURNING sku) SELECT * FROM gone",
        "SELECT nextval('_crawlrunner_runs_id_seq')",
    ):
        refused = _failed(cli.invoke(main, ["query", db, write]), 1, db)
        assert "in a read-only transaction" in refused, refused
        with pytest.raises(StorageError, match="read-only transaction"):
            crawlrunner.query(db, write)
    assert _fetchval(db, "SELECT count(*) FROM products") == 3
    assert _fetchval(db, "SELECT to_regclass('mine') IS NULL") is True


def test_bad_sql_is_a_storage_error_naming_the_database_without_its_password(cli: CliRunner, db: str) -> None:
    bad = _failed(cli.invoke(main, ["query", db, "SELEC nonsense"]), 1, db)
    assert 'syntax error at or near "SELEC"' in bad
    assert urlsplit(db).path in bad and (not _secret(db) or f"{urlsplit(db).username}@" in bad)

    missing = _failed(cli.invoke(main, ["query", db, "SELECT * FROM nowhere"]), 1, db)
    assert 'relation "nowhere" does not exist' in missing
    hinted = _failed(cli.invoke(main, ["query", db, "SELECT nothing_like_this(1)"]), 1, db)
    assert "function nothing_like_this(integer) does not exist; hint: " in hinted

    with pytest.raises(StorageError, match=r"placeholders are \$1, \$2"):
        crawlrunner.query(db, "SELECT * FROM products WHERE _run_id = ?", [1])
    with pytest.raises(StorageError, match="expects 1 argument"):
        crawlrunner.query(db, "SELECT * FROM products WHERE _run_id = $1")


def test_export_orders_rows_as_stored_and_renders_postgres_types(cli: CliRunner, db: str, tmp_path: Path) -> None:
    lines = _ok(cli.invoke(main, ["export", db, "products"])).splitlines()
    records = [json.loads(line) for line in lines]

    assert [(r["_run_id"], r["sku"]) for r in records] == [(1, "B-2"), (2, "A-1"), (2, "A-2")]
    first, anvil, axe = records
    assert anvil["_fetched_at"] == "2024-05-02T10:00:01.250000+00:00" and anvil["_changed_run"] == 2
    assert (anvil["price"], anvil["in_stock"], first["in_stock"], axe["in_stock"]) == (19.9, True, False, None)
    assert first["price"] == 5 and isinstance(first["price"], int)
    assert anvil["tags"] == {"colour": "black", "sizes": [1, 2]}  # jsonb: asyncpg's text read back as the value
    assert anvil["thumbnail"] == "<3 bytes>" and axe["tags"] is None

    out = tmp_path / "products.json"
    exported = cli.invoke(main, ["export", db, "products", "-f", "json", "-o", str(out)])
    assert exported.exit_code == 0 and "3 rows written to" in exported.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == records

    as_csv = list(csv.reader(io.StringIO(_ok(cli.invoke(main, ["export", db, "products", "-f", "csv", "--run", "2"])))))
    assert as_csv[0][:3] == ["_run_id", "_url", "_fetched_at"] and len(as_csv) == 3
    row = dict(zip(as_csv[0], as_csv[1], strict=True))
    assert row["_fetched_at"] == "2024-05-02 10:00:01.250000+00:00" and row["price"] == "19.90"
    assert (row["in_stock"], row["_first_seen_at"], json.loads(row["tags"])["sizes"]) == (
        "true",  # as SQLite's bool fields: one CSV for both backends
        "2024-05-01 10:00:01+00:00",
        [1, 2],
    )

    table = crawlrunner.export(db, "products", run_id=1)
    assert table.records()[0]["name"] == 'Bucket "classic"' and table.records()[0]["_run_id"] == 1
    assert crawlrunner.export(db, "pages").rows == ()


def test_unknown_tables_and_targets_without_history_are_usage_errors(cli: CliRunner, db: str) -> None:
    for command, message in (
        (["export", db, "nope"], "no target table 'nope' (tables: pages, products)"),
        (["export", db, "notes"], "no target table 'notes'"),
        (["changes", db, "nope"], "no target table 'nope'"),
        (["changes", db, "pages"], "'pages' keeps no history: changes are recorded for targets with mode: upsert"),
    ):
        assert message in _failed(cli.invoke(main, command), 2, db)
    with pytest.raises(OutputPathError, match="no target table"):
        crawlrunner.export(db, "_crawlrunner_history_products")


def test_changes_default_to_the_latest_run_and_since_takes_every_later_one(cli: CliRunner, db: str) -> None:
    latest = [
        json.loads(line) for line in _ok(cli.invoke(main, ["changes", db, "products", "-f", "jsonl"])).splitlines()
    ]

    assert [(c["run_id"], c["change"], c["key"]) for c in latest] == [
        (2, "changed", ["A-1"]),
        (2, "added", ["A-2"]),
    ]
    assert (
        latest[0]["old"] == {"price": 21.5}
        and latest[0]["changed"] == ["price"]
        and latest[0]["at"] == "2024-05-02T10:00:01.250000+00:00"
    )

    since = crawlrunner.changes(db, "products", since=0)
    assert since.columns == ("run_id", "change", "key", "changed", "old", "new", "at") and len(since) == 4
    nothing = cli.invoke(main, ["changes", db, "products", "--since", "2"])
    assert nothing.exit_code == 0 and "no changes in products after run 2" in nothing.stderr


class _PasswordRefusingServer(socketserver.ThreadingTCPServer):
    """Speaks just enough of PostgreSQL's protocol to ask for a password and refuse it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RefusePassword)
        self.passwords: list[bytes] = []


class _RefusePassword(socketserver.BaseRequestHandler):
    server: _PasswordRefusingServer

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.request.recv(count - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def handle(self) -> None:
        self.request.settimeout(10)
        while True:  # SSLRequest and GSSENCRequest: 'N', not here; then the startup message
            length, code = struct.unpack("!ii", self._read(8))
            self._read(length - 8)
            if code not in (80877103, 80877104):
                break
            self.request.sendall(b"N")
        self.request.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind, length = struct.unpack("!ci", self._read(5))
        self.server.passwords.append(self._read(length - 4).rstrip(b"\x00"))
        fields = b"".join(
            key + value.encode() + b"\x00"
            for key, value in (
                (b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28P01"),
                (b"M", 'password authentication failed for user "crawl"'),
            )
        ) + b"\x00"  # fmt: skip
        self.request.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


@pytest.fixture
def refusing_server() -> Iterator[_PasswordRefusingServer]:
    server = _PasswordRefusingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_servers_that_cannot_be_reached_or_refuse_the_login_fail_in_one_line(
    cli: CliRunner, closed_port: int, refusing_server: _PasswordRefusingServer, pg_url: str
) -> None:
    refused_port = refusing_server.server_address[1]
    for url, code, message in (
        (f"postgresql://crawl:{SECRET}@127.0.0.1:{closed_port}/crawls", 1, "cannot connect to the database server"),
        (f"postgresql://crawl:{SECRET}@127.0.0.1:{refused_port}/crawls", 1, "password authentication failed"),
        (f"postgres://crawl:{SECRET}@no-such-host.invalid/crawls", 1, "cannot resolve the database host"),
        (f"postgresql://crawl:{SECRET}@127.0.0.1:{closed_port}/", 2, "name the database"),
    ):
        for command in (["runs", url], ["query", url, "SELECT 1"], ["export", url, "t"], ["changes", url, "t"]):
            line = _failed(cli.invoke(main, command), code, url)
            assert message in line and line.startswith(f"crawlrunner: {url.split('://')[0]}://crawl@"), line
    assert refusing_server.passwords and set(refusing_server.passwords) == {SECRET.encode()}

    parts = urlsplit(pg_url)
    no_database = urlunsplit(parts._replace(path="/crawlrunner_no_such_database"))
    assert "no such database on the server" in _failed(cli.invoke(main, ["runs", no_database]), 2, no_database)


def test_without_asyncpg_a_url_asks_for_the_extra(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg: ImportError
    line = _failed(cli.invoke(main, ["runs", f"postgresql://crawl:{SECRET}@localhost/crawls"]), 2, "")
    assert "pip install 'crawlrunner[postgres]'" in line


def test_a_stream_holds_one_connection_until_its_block_ends(db: str) -> None:
    application = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crawlrunner read'"
    with stream_export(db, "products") as rows:
        assert next(rows.rows)[rows.columns.index("sku")] == "B-2"
        assert _fetchval(db, application) == 1
        rest = rows.read()
    assert [row[rows.columns.index("sku")] for row in rest] == ["A-1", "A-2"]
    assert _fetchval(db, application) == 0
    with stream_export(db, "products") as rows:
        pass
    with pytest.raises(StorageError, match="after their block ended"):
        next(rows.rows)


def test_a_server_gone_mid_stream_is_a_storage_error(pg_cluster: pg.Server, db: str) -> None:
    if not isinstance(pg_cluster, pg.Cluster):
        pytest.skip("restarts the server: only a throw-away one of our own")
    _execute(db, "INSERT INTO pages SELECT 2, 'http://shop/' || i, now(), 't' FROM generate_series(1, 1000) AS i")
    started = time.monotonic()
    with (
        pytest.raises(StorageError, match="lost the database connection") as lost,
        stream_export(db, "pages") as rows,
    ):
        next(rows.rows)  # the first chunk: more to come
        pg_cluster.restart()
        rows.read()
    assert not _secret(db) or str(_secret(db)) not in str(lost.value)
    assert time.monotonic() - started < 30
    assert crawlrunner.query(db, "SELECT count(*) FROM pages").rows == ((1000,),)  # and the next read works


async def test_the_library_reads_from_inside_a_running_event_loop(db: str) -> None:
    # A notebook runs one: the reader drives its connection from a loop of its own.
    assert crawlrunner.query(db, "SELECT count(*) FROM products").rows == ((3,),)


def test_a_large_export_streams_in_chunks_in_bounded_memory(cli: CliRunner, db: str, tmp_path: Path) -> None:
    count = 20_000
    _execute(
        db,
        "INSERT INTO products (_run_id, _url, _fetched_at, sku, name, price, in_stock)"
        f" SELECT 2, 'http://shop/p/' || i, '2024-05-03 00:00:00+00'::timestamptz + i * interval '1 ms',"
        f" 'P-' || i, repeat('x', 2000), i, i % 2 = 0 FROM generate_series(1, {count}) AS i",
    )
    started = time.monotonic()
    out = tmp_path / "products.csv"
    exported = cli.invoke(main, ["export", db, "products", "-f", "csv", "--run", "2", "-o", str(out)])
    assert exported.exit_code == 0 and f"{count + 2} rows written to" in exported.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        skus = [row[7] for row in csv.reader(fh)]
    assert skus[:3] == ["sku", "A-1", "A-2"] and skus[-1] == f"P-{count}" and len(skus) == count + 3

    # About 40 MB of rows, never all held at once.
    tracemalloc.start()
    try:
        with stream_export(db, "products") as rows:
            seen = sum(1 for _ in rows.rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count + 3
    assert peak < 20_000_000, f"peak {peak} bytes"
    assert time.monotonic() - started < 60


@pytest.mark.subprocess
def test_the_installed_command_reads_a_url_and_imports_no_driver_until_then(db: str) -> None:
    environment = {**os.environ, "PYTHONWARNINGS": "error"}
    listed = subprocess.run(
        [ENTRY_POINT, "runs", db, "-f", "csv"], capture_output=True, text=True, timeout=60, env=environment
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == ",".join([*RUN_COLUMNS, "workers"]) and listed.stderr == ""

    bad = subprocess.run(
        [ENTRY_POINT, "query", db, "SELECT * FROM nowhere"], capture_output=True, text=True, timeout=60, env=environment
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and 'relation "nowhere" does not exist' in bad.stderr
    assert not _secret(db) or str(_secret(db)) not in bad.stderr

    light = subprocess.run(
        [sys.executable, "-c", "import sys, crawlrunner, crawlrunner.read; print('asyncpg' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert light.stdout.strip() == "False", light.stderr
