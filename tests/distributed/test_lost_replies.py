"""A statement that committed, but whose reply never reached the worker (the connection dropped in
between, as when the server restarts): the worker runs it again (``connect.retrying``), and that must
be safe.

Made to happen at will by a proxy between the worker and PostgreSQL that
speaks just enough of the wire protocol to see one kind of statement go by:
it lets the statement run and commit, keeps the whole reply (up to
ReadyForQuery, which the server sends after the commit), and cuts the
connection instead of passing the reply on.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crawlrunner.backends.postgres import statements as sql

from .. import pg
from .app import Site
from .conftest import Workers, check_flat, fetch, flat_spec, wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(90)]

_UNTYPED_FIRST = 8  # the startup packet (and a cancel request) has no type byte: length, then a code


class ReplyCutter:
    """A Unix-socket proxy to a cluster that drops the reply of the ``nth`` statement containing ``marker``.

    Only a statement that changed rows counts (its CommandComplete says
    ``UPDATE n`` with n > 0). Serves at ``url(dbname)``; ``cut`` says
    whether it happened.

    With ``hold=True`` it does not cut a reply: it holds the ``nth``
    execution of the statement (any, changing rows or not) before the server
    sees it, until ``release()``; ``held`` says it is holding one.
    """

    def __init__(self, cluster: pg.Cluster, marker: str, nth: int, hold: bool = False) -> None:
        self.cluster, self.marker, self.nth, self.hold = cluster, marker.encode(), nth, hold
        self.seen = 0
        self.cut = False
        self.held = False
        self.binds = 0
        self._released: asyncio.Event | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="cut-", dir="/tmp"))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def url(self, dbname: str) -> str:
        return f"postgresql://{pg.SUPERUSER}@/{dbname}?host={self.directory}&port={self.cluster.port}"

    def __enter__(self) -> ReplyCutter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def release(self) -> None:
        assert self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)

    async def _start(self) -> None:
        self._released = asyncio.Event()
        path = self.directory / f".s.PGSQL.{self.cluster.port}"
        self._server = await asyncio.start_unix_server(self._serve, path=str(path))

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        assert self._released is not None
        self._released.set()
        for task in list(self._connections):  # connections of workers still running: cut
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        real = str(self.cluster.sockets / f".s.PGSQL.{self.cluster.port}")
        writers = [client_out]
        pumps: list[asyncio.Future[None]] = []
        try:
            server_in, server_out = await asyncio.open_unix_connection(real)
            writers.append(server_out)
            state = {"statements": set(), "watching": False}
            pumps = [
                asyncio.ensure_future(self._from_client(client_in, server_out, state)),
                asyncio.ensure_future(self._from_server(server_in, client_out, state)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in writers:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._connections.discard(task)

    async def _from_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            head = await reader.readexactly(4)
            (length,) = struct.unpack("!I", head)
            writer.write(head + await reader.readexactly(length - 4))  # startup or cancel: passed on
            while True:
                kind = await reader.readexactly(1)
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack("!I", head)[0] - 4)
                if kind == b"P":  # Parse: statement name, query
                    name, _, rest = body.partition(b"\0")
                    if self.marker in rest.partition(b"\0")[0]:
                        state["statements"].add(name)
                elif kind == b"B":  # Bind: portal name, statement name
                    statement = body.partition(b"\0")[2].partition(b"\0")[0]
                    if statement in state["statements"]:
                        state["watching"] = not self.hold
                        self.binds += 1
                        if self.hold and self.binds == self.nth:
                            assert self._released is not None
                            self.held = True
                            await self._released.wait()  # this connection's statement waits here
                            self.held = False
                writer.write(kind + head + body)
                await writer.drain()

    async def _from_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]
    ) -> None:
        held: list[bytes] = []
        changed = False
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind = await reader.readexactly(1)
                head = await reader.readexactly(4)
                message = kind + head + await reader.readexactly(struct.unpack("!I", head)[0] - 4)
                if not state["watching"]:
                    writer.write(message)
                    await writer.drain()
                    continue
                held.append(message)
                if kind == b"C":  # CommandComplete: "UPDATE n"
                    tag = message[5:].rstrip(b"\0").split()
                    changed = changed or (tag[:1] == [b"UPDATE"] and int(tag[-1]) > 0)
                if kind != b"Z":  # ReadyForQuery: the statement is over, committed
                    continue
                state["watching"] = False
                if changed and not self.cut:
                    self.seen += 1
                    if self.seen == self.nth:
                        self.cut = True
                        return  # the reply is dropped with the connection
                writer.write(b"".join(held))
                await writer.drain()
                held, changed = [], False


COUNT = 60


@pytest.fixture
def cutter_factory(pg_cluster: pg.Server) -> Iterator[Callable[..., ReplyCutter]]:
    if not isinstance(pg_cluster, pg.Cluster):
        pytest.skip("needs the tests' own cluster (its socket)")
    with contextlib.ExitStack() as stack:
        yield lambda marker, nth, hold=False: stack.enter_context(ReplyCutter(pg_cluster, marker, nth, hold))


def test_a_claim_whose_reply_was_lost_does_not_strand_its_requests(
    serve: Callable[..., Site], workers: Workers, pg_url: str, cutter_factory: Callable[..., ReplyCutter],
    tmp_path: Path,
) -> None:  # fmt: skip
    """Its leases would stay with the live worker, which never learns of them: nobody would ever send
    those requests, and the run would never end (found here, fixed: ``frontier.RELEASE_UNKNOWN``)."""
    site = serve(latency=(0.02, 0.05))
    spec = flat_spec(tmp_path, site, "paced", COUNT, name="cut", connections=2, per_host=0)
    cutter = cutter_factory("lease_token = nextval('_crawlrunner_lease_tokens')", 3)  # statements.CLAIM
    url = cutter.url(pg_url.split("?")[0].rsplit("/", 1)[1])
    worker = workers.run(spec, url)
    try:
        code: int | None = worker.process.wait(10)  # the crawl takes about 2 s
    except subprocess.TimeoutExpired:
        code = None
    assert cutter.cut, "the proxy never saw a claim to cut"
    stranded = fetch(pg_url, "SELECT id, url, lease_owner FROM _crawlrunner_requests WHERE state = 'leased'")
    assert code == 0, f"the worker did not finish in 10 s ({code}); requests leased to it and never sent: {stranded}"
    run_id = int(fetch(pg_url, "SELECT id FROM _crawlrunner_runs")[0][0])
    check_flat(pg_url, site, "paced", COUNT, run_id)


def test_a_commit_whose_reply_was_lost_is_not_written_twice(
    serve: Callable[..., Site], workers: Workers, pg_url: str, cutter_factory: Callable[..., ReplyCutter],
    tmp_path: Path,
) -> None:  # fmt: skip
    """The sink's commit (its fence statement) runs again after the lost reply: the fence makes that safe."""
    site = serve(latency=(0.02, 0.05))
    spec = flat_spec(tmp_path, site, "paced", COUNT, name="cut", connections=2, per_host=0)
    cutter = cutter_factory("r.lease_token = v.token", 3)  # statements.FENCE
    url = cutter.url(pg_url.split("?")[0].rsplit("/", 1)[1])
    worker = workers.run(spec, url)
    code = worker.wait(30)
    assert cutter.cut, "the proxy never saw a commit to cut"
    assert code == 0, worker.output()
    assert "lost the database connection" in worker.err
    run_id = int(fetch(pg_url, "SELECT id FROM _crawlrunner_runs")[0][0])
    check_flat(pg_url, site, "paced", COUNT, run_id)


FENCE = "r.lease_token = v.token"  # statements.FENCE, which opens every commit of the sink


def test_a_worker_presumed_dead_while_its_commit_waits_writes_nothing_twice(
    serve: Callable[..., Site], workers: Workers, pg_url: str, cutter_factory: Callable[..., ReplyCutter],
    tmp_path: Path,
) -> None:  # fmt: skip
    """A worker's commit is stuck (its database connection stalls) while the others declare it lost and
    put its requests back; it claims them again itself and fetches them again, and then the stuck
    commit goes through, followed by the outcomes queued behind it, old and new.

    Seen for real after a database outage longer than the worker timeout
    (test_operations.py, down-3s): the first worker to beat again declares
    the other lost. Here the stall is a proxy holding the sink's second
    commit, and the reaping is the reaper's own statements, run from here.

    Found here, fixed: the sink fenced each outcome with the token the
    leases held at commit time (the new claim's), by request id, so the
    stale outcome and the fresh one were both written, or the stale one was
    dropped, took the new token with it, and stranded its request.
    """
    site = serve(latency=(0.05, 0.1))
    spec = flat_spec(tmp_path, site, "paced", COUNT, name="stale", connections=2, per_host=0)
    cutter = cutter_factory(FENCE, 2, hold=True)
    url = cutter.url(pg_url.split("?")[0].rsplit("/", 1)[1])
    worker = workers.run(spec, url)
    wait_until(lambda: cutter.held, 20, "the sink's second commit, held")
    at_hold = len(site.arrivals)
    # Outcomes queue up behind the stuck commit (their requests stay leased).
    wait_until(lambda: len(site.arrivals) >= at_hold + 6, 20, "more requests fetched meanwhile")
    run_id = int(fetch(pg_url, "SELECT id FROM _crawlrunner_runs")[0][0])
    reaped = reap(pg_url, run_id)
    print(f"held the sink's commit after {at_hold} requests; reaped {len(reaped)} leased requests: {sorted(reaped)}")
    assert reaped

    # The worker claims them again (it is the only one) and fetches them again.
    def refetched() -> bool:
        counts = Counter(site.url + a.path for a in site.arrivals)
        return all(counts[u] >= 2 for u in reaped.values())

    wait_until(refetched, 20, "the reaped requests to be fetched again")
    cutter.release()
    try:
        code: int | None = worker.process.wait(10)  # it has about 2 s of work left
    except subprocess.TimeoutExpired:
        code = None
    left = fetch(pg_url, "SELECT id, url, state, lease_owner, claims FROM _crawlrunner_requests WHERE state <> 'done'")
    twice = fetch(pg_url, "SELECT n, count(*) FROM paced GROUP BY n HAVING count(*) > 1")
    print(f"exit status {code}; stored more than once {twice}; never done {left}")
    assert not twice, f"records stored more than once: {twice}"
    assert code == 0, f"the worker did not finish: requests leased to it, never done: {left}\n{worker.output()}"
    check_flat(pg_url, site, "paced", COUNT, run_id)


def reap(url: str, run_id: int) -> dict[int, str]:
    """What another worker's heartbeat does to a worker whose heartbeat is stale (``Membership.beat``):
    declare it lost, and put its leased requests back to pending. Every worker of the run here."""

    async def go() -> dict[int, str]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            async with conn.transaction():
                leased = {
                    int(r[0]): str(r[1])
                    for r in await conn.fetch(
                        "SELECT id, url FROM _crawlrunner_requests WHERE run_id = $1 AND state = 'leased'", run_id
                    )
                }
                await conn.fetch(sql.LOST_WORKERS, run_id, -1.0)  # a heartbeat older than a second from now: all
                await conn.execute(sql.REAP, run_id)
            return leased
        finally:
            await conn.close(timeout=10)

    return asyncio.run(go())
