"""Shared fixtures: real servers on 127.0.0.1, real SQLite files, the real CLI.

Servers run in a background thread with their own event loop, so that both
async tests and the CLI (which runs its own ``asyncio.run``) can reach them.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.demo.site import make_app as make_demo_app

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
