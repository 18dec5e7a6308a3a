"""Throw-away PostgreSQL servers for the tests, and the databases made on them.

A :class:`Cluster` is a server of our own: ``initdb`` into a temporary
directory, started with ``pg_ctl`` on a Unix socket only (no TCP port is
opened), with fsync off for speed, and deleted afterwards. Its programs come
from :func:`find_bindir`.

When ``CRAWLRUNNER_TEST_POSTGRES`` holds the URL of a server that already
runs (``postgresql://user:pw@localhost/postgres``), :class:`ExistingServer`
stands in for it: the tests make their own databases there (the role needs
CREATEDB) and never stop it.

Both give a URL that asyncpg and libpq (psql) accept, ``url(dbname)``, and
make or drop databases with psql, so that no event loop is needed to set a
test up. Every program run here has a time limit.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit, urlunsplit

ENV_VAR = "CRAWLRUNNER_TEST_POSTGRES"
"""Names an existing server to use instead of starting one (a ``postgresql://`` URL)."""

SUPERUSER = "postgres"
"""The cluster's superuser, and the system user that runs it when we are root."""

# initdb takes about half a second, a start or a stop less; the limits are
# for a machine that is busy, not for a normal run.
INITDB_TIMEOUT = 60.0
PG_CTL_TIMEOUT = 30
PSQL_TIMEOUT = 30.0

# A Unix socket's path must fit in sun_path (108 bytes with its NUL); the
# server's socket is <dir>/.s.PGSQL.<port>.
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")

# The ports of the clusters this process runs: no two of them share one.
_ports_in_use: set[int] = set()


class ClusterError(RuntimeError):
    """A server program failed; the message carries its output or the server log's end."""


def _has_server_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def find_bindir() -> Path | None:
    """The directory of the server's programs (initdb and pg_ctl), or None.

    ``pg_config --bindir`` when it holds them, else the highest version's
    ``/usr/lib/postgresql/*/bin`` (Debian's layout, where pg_config may come
    from another package or be missing).
    """
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        pass
    else:
        bindir = Path(found.stdout.strip())
        if found.stdout.strip() and _has_server_programs(bindir):
            return bindir

    def version(bindir: Path) -> tuple[int, ...]:
        name = bindir.parent.name
        return tuple(int(part) for part in name.split(".")) if name.replace(".", "").isdigit() else (-1,)

    candidates = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if _has_server_programs(path)]
    return max(candidates, key=version) if candidates else None


def find_psql(bindir: Path | None = None) -> Path | None:
    """psql beside the server's programs, else the first on PATH, or None."""
    if bindir is not None and os.access(bindir / "psql", os.X_OK):
        return bindir / "psql"
    found = shutil.which("psql")
    return Path(found) if found else None


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Server:
    """What the tests need of a PostgreSQL server: database URLs, and databases made or dropped."""

    owned = False
    """True for a server of our own (it may be stopped, restarted, thrown away)."""

    def __init__(self, psql: Path | None) -> None:
        self.psql = psql
        """The psql that makes and drops databases; None when none is installed."""

    def url(self, dbname: str) -> str:
        """A ``postgresql://`` URL of database ``dbname`` on this server."""
        raise NotImplementedError

    @property
    def admin_url(self) -> str:
        """The URL psql connects to for CREATE and DROP DATABASE."""
        return self.url(SUPERUSER)

    def _environment(self) -> dict[str, str] | None:
        return None

    def execute(self, sql: str) -> None:
        """Run one statement with psql on the admin database; ClusterError when it fails."""
        if self.psql is None:
            raise ClusterError("psql not found: install the PostgreSQL client (postgresql-client-15)")
        command = [str(self.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.admin_url, "-c", sql]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=PSQL_TIMEOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"psql did not finish in {PSQL_TIMEOUT}s: {sql}") from exc
        if done.returncode != 0:
            raise ClusterError(f"psql failed ({done.returncode}) on {sql!r}: {done.stderr.strip()}")

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; return its URL."""
        self.execute(f"CREATE DATABASE {_quote_identifier(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, ending any connection to it."""
        self.execute(f"DROP DATABASE IF EXISTS {_quote_identifier(name)} WITH (FORCE)")


class ExistingServer(Server):
    """A server that runs already, named by a URL (``CRAWLRUNNER_TEST_POSTGRES``); never stopped."""

    def __init__(self, dsn: str, psql: Path | None = None) -> None:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            # Not the value itself: it may hold a password.
            raise ValueError(f"{ENV_VAR} must be a postgresql:// URL (postgresql://user:password@host/dbname)")
        super().__init__(psql or find_psql(find_bindir()))
        self.dsn = dsn
        self._parts = parts

    def url(self, dbname: str) -> str:
        return urlunsplit(self._parts._replace(path="/" + quote(dbname, safe="")))

    @property
    def admin_url(self) -> str:
        return self.dsn


def _free_port() -> int:
    """A port number no cluster of this process has, and nothing listens on over TCP right now.

    The server opens no TCP port (listen_addresses is empty), but the number
    names its socket file and keys its shared memory: distinct numbers keep
    two clusters from meeting there.
    """
    while True:
        with closing(socket.socket()) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _ports_in_use:
            _ports_in_use.add(port)
            return port


def _short_temporary_directory() -> Path:
    """A new private directory whose path leaves room for the socket's name."""
    parent = tempfile.gettempdir()
    if len(parent) + len("/crawlrunner-pg-XXXXXXXX/run") > _MAX_SOCKET_DIR:
        parent = "/tmp"
    return Path(tempfile.mkdtemp(prefix="crawlrunner-pg-", dir=parent))


class Cluster(Server):
    """A PostgreSQL server of our own, in a temporary directory, on a Unix socket only.

    Use it as a context manager (started on entry, stopped and deleted on
    exit), or call :meth:`start`, :meth:`stop` and :meth:`close`. It keeps its
    socket directory and port across :meth:`restart`, so URLs stay valid.
    """

    owned = True

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise ClusterError("PostgreSQL binaries not found (initdb, pg_ctl)")
        super().__init__(find_psql(found))
        self.bindir = found
        self.base = _short_temporary_directory()
        self.data = self.base / "data"
        self.sockets = self.base / "run"
        self.log = self.base / "postgres.log"
        self.port = _free_port()
        self.running = False
        self._initialized = False
        # initdb and pg_ctl refuse to run as root: then they run as the
        # postgres user, which must own what they write.
        self._as_root = os.geteuid() == 0
        self._prefix = ["runuser", "-u", SUPERUSER, "--"] if self._as_root else []

    def url(self, dbname: str) -> str:
        # No host in the authority; the socket's directory and port as query
        # parameters, the form both asyncpg and libpq read.
        host = quote(str(self.sockets), safe="/")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={self.port}"

    def _environment(self) -> dict[str, str]:
        # The caller's PGHOST, PGPORT, PGOPTIONS and the like must not reach
        # the cluster or psql: this server is named by its URL alone.
        return {key: value for key, value in os.environ.items() if not key.startswith("PG")}

    def _run(self, program: str, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        command = [*self._prefix, str(self.bindir / program), *args]
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                cwd=self.base,
                env=self._environment(),
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{program} did not finish in {timeout}s{self._log_tail()}") from exc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return f"\n--- end of {self.log} ---\n" + "\n".join(text.splitlines()[-lines:])

    def _initdb(self) -> None:
        self.sockets.mkdir()
        self.log.touch()
        if self._as_root:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.base, self.sockets, self.log):
                os.chown(path, user.pw_uid, user.pw_gid)
        # C locale: byte order for text, as SQLite compares, and no
        # dependence on the locales a machine happens to have.
        done = self._run(
            "initdb",
            ["-D", str(self.data), "-A", "trust", "--no-sync", "-U", SUPERUSER, "-E", "UTF8", "--locale=C"],
            INITDB_TIMEOUT,
        )
        if done.returncode != 0:
            raise ClusterError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        # Settings go in the configuration file (later lines win), not on
        # pg_ctl's command line: no shell quoting, and a restart keeps them.
        # fsync off costs nothing but durability across a crash of the
        # machine. synchronous_commit stays on: off, a commit returns before
        # its WAL is written at all, and an immediate stop (restart()) loses
        # the last commits, which a test of resuming after the server went
        # away must be able to count on (with fsync off, the write is cheap).
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": "'" + str(self.sockets).replace("'", "''") + "'",
            "port": str(self.port),
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/pg.py\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))
        self._initialized = True

    def start(self) -> None:
        """Initialize the cluster the first time, then start it and wait until it accepts connections."""
        if self.running:
            return
        if not self._initialized:
            self._initdb()
        # Should pytest end without its teardown (an internal error), the
        # server still goes with the interpreter; close() takes this back.
        atexit.register(self._stop_quietly)
        try:
            done = self._run(
                "pg_ctl",
                ["-D", str(self.data), "-l", str(self.log), "-w", "-t", str(PG_CTL_TIMEOUT), "start"],
                PG_CTL_TIMEOUT + 10,
            )
        except ClusterError:
            self._stop_quietly()
            raise
        if done.returncode != 0:
            # It may be up after all (a slow start past -t): do not leave it behind.
            self._stop_quietly()
            raise ClusterError(f"pg_ctl start failed ({done.returncode}): {done.stdout}{done.stderr}{self._log_tail()}")
        self.running = True

    def _stop_quietly(self) -> None:
        """Stop the server if it runs, whatever we think its state is; no error either way."""
        if self.data.is_dir():
            try:
                self._run("pg_ctl", ["-D", str(self.data), "-m", "immediate", "-w", "stop"], PG_CTL_TIMEOUT + 10)
            except ClusterError:
                pass
        self.running = False

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``: no checkpoint, as after a crash of the server)."""
        if not self.running:
            return
        done = self._run(
            "pg_ctl",
            ["-D", str(self.data), "-m", "immediate", "-w", "-t", str(PG_CTL_TIMEOUT), "stop"],
            PG_CTL_TIMEOUT + 10,
        )
        if done.returncode != 0:
            raise ClusterError(f"pg_ctl stop failed ({done.returncode}): {done.stdout}{done.stderr}{self._log_tail()}")
        self.running = False

    def restart(self) -> None:
        """Stop at once and start again, on the same socket and port: every connection is cut."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            atexit.unregister(self._stop_quietly)
            shutil.rmtree(self.base, ignore_errors=True)
            _ports_in_use.discard(self.port)

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
