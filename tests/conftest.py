"""Shared fixtures: real servers on 127.0.0.1, real SQLite files, the real CLI.

Servers run in a background thread with their own event loop, so that both
async tests and the CLI (which runs its own ``asyncio.run``) can reach them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import os
import socket
import sqlite3
import ssl
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import NoReturn

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.demo.site import make_app as make_demo_app

from . import pg
from .server_app import make_app

REPO = Path(__file__).resolve().parent.parent
# The installed `crawlrunner` command, for tests that run it as its own process.
ENTRY_POINT = Path(sys.executable).with_name("crawlrunner")


class ThreadedServer:
    """An aiohttp application served on 127.0.0.1 from a background thread."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self._app = app
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        # Handlers stop when their client goes away, and shutdown does not wait
        # a minute for requests a test abandoned on purpose.
        self._runner = web.AppRunner(self._app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        scheme = "https" if self._ssl else "http"
        self.url = f"{scheme}://127.0.0.1:{self._runner.addresses[0][1]}"

    def __exit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The runner's heap, made by collecting (every test module, the items), out of the collector's sight.

    It lives to the end of the session, and a full collection would trace
    it again and again: 0.1-0.2 s with the interpreter stopped (the test
    servers' threads too), enough to cut a timed gap short, as a paced
    request sent late after its turn.
    """
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown: the module's fixtures are gone by then
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a module's last test: its garbage collected, and what it left alive frozen too, for the same reason.

    Collected here, a cycle the module leaked (an unclosed socket's
    ResourceWarning) fails the module's own last test, not the next file's.
    """
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Everything frozen back in the collector's sight: garbage made of frozen objects is found and reported."""
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def crawlrunner_logger_as_it_was() -> Iterator[None]:
    """Each test starts with the crawlrunner logger untouched by the CLI a test before ran.

    The CLI sets the logger up for its process (a handler, a level, no
    propagation, ``-q`` remembered); in one test process that would leak
    into the next test: its ``caplog`` would see nothing.
    """
    logger = logging.getLogger("crawlrunner")
    saved = logger.handlers[:], logger.level, logger.propagate, dict(logger.__dict__)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
    for key in set(logger.__dict__) - set(saved[3]):
        del logger.__dict__[key]


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL of the behaviour test server (tests/server_app.py)."""
    with ThreadedServer(make_app()) as running:
        yield running.url


@pytest.fixture(scope="session")
def faults() -> Iterator[str]:
    """Base URL of the misbehaving server (tests/integration/fault_app.py)."""
    from .integration import fault_app

    with ThreadedServer(fault_app.make_app()) as running:
        yield running.url


@pytest.fixture(scope="session")
def other_origin() -> Iterator[str]:
    """The same misbehaving app on another port: another origin."""
    from .integration import fault_app

    with ThreadedServer(fault_app.make_app()) as running:
        yield running.url


@pytest.fixture(scope="session")
def demo_server() -> Iterator[str]:
    """Base URL of the bundled demo shop."""
    with ThreadedServer(make_demo_app()) as running:
        yield running.url


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text to a spec file in tmp_path; ``{name}`` placeholders are filled."""

    def write(text: str, name: str = "spec.yaml", **values: object) -> Path:
        path = tmp_path / name
        path.write_text(text.format(**values) if values else text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "out.db"


def query(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows from a real SQLite file, read with the standard library."""
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


NO_ASYNCPG = "asyncpg is not installed: pip install -e '.[test]'"


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip a test that needs PostgreSQL; under CI (``CI`` set), fail it: CI must run them.

    At a test module's top (a failed ``import asyncpg``) it skips the whole
    module, or under CI fails its collection.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the PostgreSQL tests must run there)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Server]:
    """The session's PostgreSQL server (tests/pg.py).

    A throw-away :class:`pg.Cluster` on a Unix socket, or the server that
    ``CRAWLRUNNER_TEST_POSTGRES`` names (a :class:`pg.ExistingServer`, never
    stopped). ``.owned`` tells them apart: only a Cluster may be restarted.
    A test that stops or restarts it must leave it running.
    """
    if importlib.util.find_spec("asyncpg") is None:
        postgres_unavailable(NO_ASYNCPG)
    dsn = os.environ.get(pg.ENV_VAR)
    if dsn:
        server = pg.ExistingServer(dsn)
        if server.psql is None:
            postgres_unavailable(f"psql not found: {pg.ENV_VAR} is set, and the tests make their databases with psql")
        yield server
        return
    bindir = pg.find_bindir()
    if bindir is None:
        postgres_unavailable(
            f"PostgreSQL binaries not found (initdb, pg_ctl): install postgresql-15, or set {pg.ENV_VAR}"
        )
    with pg.Cluster(bindir) as cluster:
        yield cluster


@pytest.fixture
def make_pg_database(pg_cluster: pg.Server) -> Iterator[Callable[[], str]]:
    """Make a new, empty database on the session's server at each call; return its URL."""
    if isinstance(pg_cluster, pg.Cluster):
        pg_cluster.start()  # in case a test stopped it and failed before starting it again
    names: list[str] = []

    def make() -> str:
        names.append(f"crawlrunner_test_{uuid.uuid4().hex[:12]}")
        return pg_cluster.create_database(names[-1])

    yield make
    # A throw-away cluster goes whole; on someone's server, clean up.
    if not pg_cluster.owned:
        for name in names:
            pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def output(request: pytest.FixtureRequest, db_path: Path) -> str:
    """Each backend's output, one test per backend: the SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(db_path)
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    """The URL of a new, empty database on the session's server, one per test."""
    return make_pg_database()
