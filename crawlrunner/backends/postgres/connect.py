"""Reaching a PostgreSQL server: the URL, the connection pool, and surviving a restart.

Credentials come from the URL, ``PGPASSWORD`` or ``~/.pgpass`` (asyncpg reads
all three, as libpq does) and are never printed or stored: ``display_name``
is the URL without its password, and every error message uses it.

A server that goes away mid-run (a restart, a fail-over) is waited for:
``retrying`` runs an operation again, with backoff, while the connection is
what failed, for up to ``RECONNECT_SECONDS``. Every operation handed to it
must be safe to run twice: the frontier's and the sink's are (a commit whose
outcome was lost is fenced by its lease tokens, so running it again writes
nothing twice).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import OutputPathError, StorageError, UsageError

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
RECONNECT_SECONDS = 60.0  # how long a run waits for its database to come back
CONNECT_TIMEOUT = 10.0
# A worker that stops answering mid-transaction (a dead machine, SIGSTOP) holds
# row locks; the server ends such a transaction after this long, so the others
# can take its work back. Far longer than any transaction crawlrunner opens.
IDLE_IN_TRANSACTION = "30s"

T = TypeVar("T")


def is_postgres_url(output: object) -> bool:
    return isinstance(output, str) and output.partition("://")[0].lower() in SCHEMES


def display_name(url: str) -> str:
    """``url`` as it may be shown and stored: without its password, in the URL or its query."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{hostport}" if user else hostport
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    query = urlencode(kept, safe="/")  # a socket directory stays readable: ?host=/run/postgresql
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def driver() -> Any:
    try:
        import asyncpg
    except ImportError:
        raise UsageError(
            "a postgresql:// output needs the asyncpg driver: pip install 'crawlrunner[postgres]'"
        ) from None
    return asyncpg


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if not parts.path.strip("/") and "dbname" not in dict(parse_qsl(parts.query)):
        raise UsageError(f"{display_name(url)}: name the database, as in postgresql://user@host/DATABASE")
    if re.search(r"\s", url):
        raise UsageError(f"{display_name(url)}: a database URL cannot contain spaces")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection (or the server) went away, rather than the SQL failed."""
    asyncpg = driver()
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True
    if type(exc) is asyncpg.InterfaceError:  # "connection is closed": a pooled connection the server dropped
        return "closed" in str(exc)
    if isinstance(exc, asyncpg.PostgresError):
        code = getattr(exc, "sqlstate", "") or ""
        # 08: connection exception; 57P01-3: admin/crash shutdown, cannot connect now.
        return code.startswith("08") or code in ("57P01", "57P02", "57P03")
    return False


def open_error(url: str, exc: BaseException) -> Exception:
    """What the user sees when the database cannot be reached at all."""
    asyncpg = driver()
    name = display_name(url)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return StorageError(
            f"{name}: password authentication failed (the password comes from the URL, PGPASSWORD or ~/.pgpass)"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return StorageError(f"{name}: the server refused the user: {exc}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return OutputPathError(f"{name}: no such database on the server (create it first: createdb ...)")
    if isinstance(exc, socket.gaierror):
        return StorageError(f"{name}: cannot resolve the database host: {exc.strerror or exc}")
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return StorageError(f"{name}: cannot connect to the database server: {reason}")
    if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
        return StorageError(f"{name}: {exc}")
    if isinstance(exc, ValueError):  # asyncpg's reading of the URL
        return UsageError(f"{name}: not a usable database URL: {exc}")
    return StorageError(f"{name}: {exc}")


@asynccontextmanager
async def open_pool(url: str, *, size: int = 3) -> AsyncIterator[asyncpg.Pool]:
    """A small pool of connections to ``url`` for one process, closed when the block ends."""
    asyncpg = driver()
    check_url(url)
    try:
        # A startup setting, not a SET: the pool's reset (RESET ALL) on every
        # release would undo a SET, and brings a startup setting back instead.
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=size, timeout=CONNECT_TIMEOUT, command_timeout=None,
            statement_cache_size=256, server_settings={"idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION},
        )  # fmt: skip
    except Exception as exc:
        raise open_error(url, exc) from None
    try:
        yield pool
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=5)
        except Exception:  # a server gone away: nothing left to close politely
            pool.terminate()


async def retrying(name: str, doing: str, operation: Callable[[], Awaitable[T]]) -> T:
    """``operation()``, run again with backoff while the connection is what fails.

    Gives up after ``RECONNECT_SECONDS`` with a ``StorageError``; an error of
    the SQL itself is a ``StorageError`` at once. A deadlock or a
    serialization failure (which PostgreSQL resolves by aborting one side) is
    also run again.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONNECT_SECONDS
    delay = 0.05
    warned = False
    asyncpg = driver()
    while True:
        try:
            return await operation()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            await asyncio.sleep(random.uniform(0, 0.02))
            continue
        except Exception as exc:
            if not connection_lost(exc):
                if isinstance(exc, asyncpg.PostgresError):
                    raise StorageError(f"{name}: cannot {doing}: {exc}") from None
                raise
            if loop.time() >= deadline:
                raise StorageError(f"{name}: cannot {doing}: the database stayed unreachable ({exc})") from None
            if not warned:
                log.warning("%s: lost the database connection (%s); reconnecting", name, type(exc).__name__)
                warned = True
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)
