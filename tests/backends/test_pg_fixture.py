"""The PostgreSQL test fixtures (tests/pg.py, conftest's pg_cluster and pg_url) do what the backend's tests rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from .. import pg
from ..conftest import NO_ASYNCPG, postgres_unavailable

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

# Whichever test comes first starts the session's cluster (initdb and a start).
pytestmark = pytest.mark.timeout(120)

USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql, timeout=10)
    finally:
        await conn.close(timeout=10)


async def test_a_test_database_answers(pg_url: str) -> None:
    assert await _fetchval(pg_url, "SELECT 1") == 1
    assert await _fetchval(pg_url, USER_TABLES) == 0


async def test_each_database_is_new_and_empty(pg_url: str, make_pg_database: Callable[[], str]) -> None:
    other = make_pg_database()
    assert other != pg_url
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        await conn.execute("CREATE TABLE mine (x int)")
    finally:
        await conn.close(timeout=10)

    assert await _fetchval(pg_url, USER_TABLES) == 1
    assert await _fetchval(other, USER_TABLES) == 0
    assert await _fetchval(pg_url, "SELECT current_database()") != await _fetchval(other, "SELECT current_database()")


@pytest.mark.parametrize("turn", [1, 2])
async def test_what_one_test_wrote_is_not_in_the_next_ones_database(pg_url: str, turn: int) -> None:
    assert await _fetchval(pg_url, USER_TABLES) == 0
    await _fetchval(pg_url, f"CREATE TABLE written_by_turn_{turn} (x int)")
    assert await _fetchval(pg_url, USER_TABLES) == 1


async def test_a_restart_cuts_connections_keeps_commits_and_takes_new_connections(
    pg_cluster: pg.Server, pg_url: str
) -> None:
    if not isinstance(pg_cluster, pg.Cluster):
        pytest.skip(f"{pg.ENV_VAR} names a server of someone's: it is never restarted")
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        await conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        sleeper = asyncio.create_task(conn.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)  # the query is in flight
        try:
            await asyncio.to_thread(pg_cluster.restart)
        finally:
            await asyncio.to_thread(pg_cluster.start)  # whatever happened, the session's cluster runs on
        # A query in flight fails at once; the connection is gone for good.
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await asyncio.wait_for(sleeper, 10)
        assert conn.is_closed()
        with pytest.raises(asyncpg.InterfaceError):
            await conn.fetchval("SELECT 1")
    finally:
        await conn.close(timeout=10)

    # Same URL, a new connection; a commit made before an immediate stop survives it.
    assert await _fetchval(pg_url, "SELECT count(*) FROM t") == 1


async def test_an_existing_server_is_used_through_its_url(pg_cluster: pg.Server) -> None:
    server = pg.ExistingServer(pg_cluster.admin_url)
    url = server.create_database("made_through_the_url")
    try:
        assert await _fetchval(url, "SELECT current_database()") == "made_through_the_url"
    finally:
        server.drop_database("made_through_the_url")
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await _fetchval(url, "SELECT 1")


def test_an_existing_servers_url_names_another_database_and_keeps_the_rest() -> None:
    server = pg.ExistingServer("postgresql://crawler:s%40cret@db.example:5433/postgres?sslmode=disable")
    assert server.url("other db") == "postgresql://crawler:s%40cret@db.example:5433/other%20db?sslmode=disable"
    assert pg.ExistingServer("postgres://u@localhost").url("x") == "postgres://u@localhost/x"
    with pytest.raises(ValueError, match=pg.ENV_VAR):
        pg.ExistingServer("host=localhost dbname=postgres")


async def test_a_cluster_of_its_own_runs_beside_the_sessions_and_leaves_nothing(pg_cluster: pg.Server) -> None:
    bindir = pg.find_bindir()
    if bindir is None:
        pytest.skip(f"{pg.ENV_VAR} is set and there are no PostgreSQL binaries here to start a cluster with")
    with pg.Cluster(bindir) as cluster:
        assert cluster.url("d") == f"postgresql://postgres@/d?host={cluster.sockets}&port={cluster.port}"
        if isinstance(pg_cluster, pg.Cluster):
            assert (cluster.port, cluster.sockets) != (pg_cluster.port, pg_cluster.sockets)
        assert await _fetchval(cluster.url("postgres"), "SHOW fsync") == "off"
        assert await _fetchval(cluster.url("postgres"), "SHOW listen_addresses") == ""
    assert not cluster.base.exists()
    with pytest.raises(OSError):
        await _fetchval(cluster.url("postgres"), "SELECT 1")


def test_without_postgresql_a_test_is_skipped_but_under_ci_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no server"):
        postgres_unavailable("no server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no server"):
        postgres_unavailable("no server")
