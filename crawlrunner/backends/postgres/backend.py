"""The PostgreSQL backend: one database shared by every worker of a run, on any number of machines.

Opening a run (one transaction, serialised per spec name by an advisory lock):

- a run of the spec is **running** (a worker's heartbeat is fresh): join it,
  if the spec is the same (compared as ``--resume`` compares it) and the
  worker runs the same targets; else refused;
- the spec's last run is **unfinished** (interrupted, failed, limited, or
  running with every worker dead) under the same spec: resume it. Starting
  workers again after any crash is the resume;
- otherwise a new run (``--resume`` then finds nothing to resume).

A worker leaving (``finish_run``) gives back what it leased, and the run
closes with the last worker to leave: ``completed`` (once, with its replace
tables emptied of older rows) when nothing is left to do, else the status
of the one that left last.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from ...errors import OutputPathError, ResumeError, UsageError
from ...expectations import TargetFacts
from ...spec.fingerprints import Fingerprints
from ...spec.model import Spec, Target
from ...stats import HostStats, TargetStats
from .. import health, host_stats
from ..base import Backend, OpenedRun, RunLimits, Sink, Start, StoredBody
from ..recrawl import expected_keys, led_to_reader
from . import records
from . import statements as sql
from .connect import display_name, open_pool, retrying
from .frontier import Leases, PostgresFrontier
from .health import PostgresFacts
from .hosts import ClusterSlots
from .hosts_sql import release_worker_turns
from .layout import ensure_layout, layout_version
from .membership import Membership, worker_timeout
from .tables import prepare_targets
from .writer import PostgresSink

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

UNFINISHED = ("running", "interrupted", "failed", "limited")
# What a run's sessions so far fetched, per target: (target, requests, failed, records).
COUNTS_BY_TARGET = "SELECT target, count(*), count(error_kind), coalesce(sum(records), 0) FROM _crawlrunner_fetch_log WHERE run_id = $1 GROUP BY target"


class PostgresBackend(Backend):
    """A PostgreSQL database. Use ``async with PostgresBackend.open(url) as backend``."""

    def __init__(self, pool: asyncpg.Pool, url: str, exits: AsyncExitStack) -> None:
        self.pool = pool
        self.name = display_name(url)
        self._exits = exits
        self._timeout = worker_timeout()
        self._worker_id: int | None = None
        self._run_id = 0
        self._membership: Membership | None = None
        self._resumed = False  # the run this worker opened was an unfinished one, taken up again

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[PostgresBackend]:
        async with AsyncExitStack() as exits:
            pool = await exits.enter_async_context(open_pool(url, size=4))
            backend = cls(pool, url, exits)
            await retrying(backend.name, "prepare the database", backend._ensure_layout)
            try:
                yield backend
            finally:
                await backend._leave_if_joined()

    async def _ensure_layout(self) -> None:
        """Create crawlrunner's tables in an empty database, upgrade an older layout; refuse another program's database."""
        async with self.pool.acquire() as conn, conn.transaction():
            await ensure_layout(conn, self.name)

    async def open_run(
        self,
        spec: Spec,
        targets: list[Target],
        start: Start,
        limits: RunLimits | None = None,
        *,
        run_id: int | None = None,
    ) -> OpenedRun:
        if self._worker_id is not None:
            raise UsageError(f"{self.name}: this backend already runs a run; open another for the next")

        joined, worker_id, finished = await self._join(spec, targets, start, run_id)
        if joined is None:  # nothing to do: the run to resume (or join) is over
            assert finished is not None
            return self._already_completed(spec, targets, finished)
        run_id = self._run_id = joined
        self._worker_id = worker_id

        # Only once admitted: a worker refused (another spec) changes no table.
        async def prepare() -> None:
            async with self.pool.acquire() as conn:
                await prepare_targets(conn, [t for t in targets if t.extract is not None])

        await retrying(self.name, "create the target tables", prepare)
        async with self.pool.acquire() as conn:
            cursors = await records.cursors(conn, spec, run_id)
        leases = Leases()
        frontier = PostgresFrontier(
            self.pool, self.name, run_id, worker_id, spec, targets, limits or RunLimits(), leases, cursors
        )
        self._exits.push_async_callback(frontier.stop_counting)  # progress may count until the run's end
        sink = PostgresSink(self.pool, self.name, run_id, worker_id, spec, leases, frontier.committed)
        hosts = ClusterSlots(self.pool, run_id, worker_id, spec.http.limits.per_host, name=self.name)
        await hosts.start()
        self._exits.push_async_callback(hosts.close)
        membership = Membership(
            self.pool, run_id, worker_id, timeout=self._timeout, on_stop=frontier.close, on_lost=self._lost
        )
        self._membership = await self._exits.enter_async_context(membership)
        async with self.pool.acquire() as conn:
            validators = await records.validators(conn, targets, expected_keys(spec, targets))
            retry_of = await conn.fetchval("SELECT retry_of FROM _crawlrunner_runs WHERE id = $1", run_id)
            since = await records.last_runs(conn, spec, run_id)
            earlier = await self._counts_by_target(conn, run_id) if self._resumed else {}
        return OpenedRun(
            run_id, frontier, sink, validators, led_to_reader(spec, self._led_to), whole_crawl=retry_of is None,
            hosts=hosts, cluster_totals=lambda: self.run_totals(run_id), cursors=cursors,
            last_runs=since, earlier=earlier,
        )  # fmt: skip

    @staticmethod
    async def _counts_by_target(conn: asyncpg.Connection, run_id: int) -> dict[str, TargetStats]:
        """What run ``run_id``'s earlier sessions fetched, per target: where a resumed run's progress starts.

        Only the worker that resumes the run gets them; one joining it while it
        runs counts from zero (what the others do meanwhile is the header's
        whole-run line, not this worker's).
        """
        return {
            str(name): TargetStats(requests=requests, ok=requests - failed, failed=failed, records=records)
            for name, requests, failed, records in await conn.fetch(COUNTS_BY_TARGET, run_id)
        }

    async def _led_to(self, target: str, url: str) -> str | None:
        async def read() -> str | None:
            async with self.pool.acquire() as conn:
                return await records.led_to(conn, target, url)

        return await retrying(self.name, "read what an unchanged page led to", read)

    @staticmethod
    async def _lost(conn: asyncpg.Connection, worker_id: int) -> None:
        await release_worker_turns(conn, worker_id)

    def _already_completed(self, spec: Spec, targets: list[Target], run_id: int) -> OpenedRun:
        frontier = PostgresFrontier(self.pool, self.name, run_id, 0, spec, targets, RunLimits(), Leases())
        sink = PostgresSink(self.pool, self.name, run_id, 0, spec, Leases())
        return OpenedRun(run_id, frontier, sink, already_completed=True)

    async def _join(
        self, spec: Spec, targets: list[Target], start: Start, wanted: int | None
    ) -> tuple[int | None, int, int | None]:
        """(run id, worker id, None) of the run this worker takes part in; (None, 0, id) for one that is over."""

        async def join_once() -> tuple[int | None, int, int | None]:
            async with self.pool.acquire() as conn, conn.transaction():
                self._resumed = False  # a try whose reply was lost may have said otherwise
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", spec.name)
                if start is Start.JOIN:
                    assert wanted is not None
                    run_id = await self._given_run(conn, spec, targets, wanted)
                else:
                    run_id = await self._choose_run(conn, spec, targets, start)
                if run_id < 0:
                    return None, 0, -run_id
                worker_id = await conn.fetchval(sql.JOIN_WORKER, run_id, socket.gethostname(), os.getpid())
                return run_id, int(worker_id), None

        return await retrying(self.name, "open the run", join_once)

    async def _choose_run(self, conn: asyncpg.Connection, spec: Spec, targets: list[Target], start: Start) -> int:
        """The run to join or resume, or a new one; ``-id`` of a completed run a ``--resume`` finds."""
        last = await conn.fetchrow(
            "SELECT id, status, fingerprints FROM _crawlrunner_runs WHERE spec_name = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE",
            spec.name,
        )
        if start is Start.RETRY_FAILED:
            return await self._begin_retry(conn, spec, targets, last)
        if last is not None:
            run_id, status = int(last["id"]), str(last["status"])
            live = int(await conn.fetchval(sql.LIVE_WORKERS, run_id, self._timeout, -1))
            same_spec = last["fingerprints"] is not None and self._same_spec(spec, last["fingerprints"])
            if status == "running" and live:
                if not same_spec:
                    raise ResumeError(
                        f"{self.name}: the spec (or a seed file) changed since run {run_id} started; joining it "
                        f"would fetch a different crawl. Start workers with the spec it runs, or stop it first "
                        f"(crawlrunner stop {self.name} {run_id})."
                    )
                await self._check_targets(conn, run_id, targets)
                log.info("joining run %d (%d other worker(s))", run_id, live)
                return run_id
            if status in UNFINISHED and same_spec:
                await self._check_targets(conn, run_id, targets)
                # The spec's fingerprints are stored anew: a run stored by an
                # earlier rule (see spec/fingerprints.py) moves to this one.
                await conn.execute(
                    "UPDATE _crawlrunner_runs SET status = 'running', finished_at = NULL, resumed = resumed + 1,"
                    " stop_requested = false, fingerprints = $2 WHERE id = $1",
                    run_id, spec.fingerprints.to_json(),
                )  # fmt: skip
                log.info("resuming run %d (%s)", run_id, status)
                self._resumed = True
                return run_id
            if status == "running":  # every worker of it died, and the spec changed since
                await conn.execute(
                    "UPDATE _crawlrunner_runs SET status = 'interrupted', finished_at = now() WHERE id = $1", run_id
                )
            if start is Start.RESUME:
                if status == "completed" and same_spec:
                    return -run_id
                raise ResumeError(f"{self.name}: no unfinished run of {spec.name!r} (with this spec) to resume")
            if status in UNFINISHED:
                log.warning(
                    "run %d of %r did not finish, and the spec changed since; starting a new run", run_id, spec.name
                )
        elif start is Start.RESUME:
            raise ResumeError(f"{self.name}: no unfinished run of {spec.name!r} to resume")
        return await self._new_run(conn, spec, targets)

    @staticmethod
    async def _new_run(
        conn: asyncpg.Connection, spec: Spec, targets: list[Target], *, retry_of: int | None = None
    ) -> int:
        run_id = int(
            await conn.fetchval(
                "INSERT INTO _crawlrunner_runs (spec_name, spec_file, spec_hash, fingerprints, status, retry_of)"
                " VALUES ($1, $2, $3, $4, 'running', $5) RETURNING id",
                spec.name, spec.source, spec.digest, spec.fingerprints.to_json(), retry_of,
            )
        )  # fmt: skip
        # A retry has no start requests: its plan is loaded already, as the failures it copies.
        await conn.executemany(
            "INSERT INTO _crawlrunner_run_targets (run_id, target, position, exhausted) VALUES ($1, $2, $3, $4)",
            [(run_id, t.name, i, retry_of is not None) for i, t in enumerate(targets)],
        )
        return run_id

    async def _begin_retry(
        self, conn: asyncpg.Connection, spec: Spec, targets: list[Target], last: asyncpg.Record | None
    ) -> int:
        """A new run of the requests the spec's last run failed, copied as pending in the same transaction."""
        if last is None:
            raise ResumeError(f"{self.name}: no earlier run of {spec.name!r} to retry")
        previous = int(last["id"])
        if last["status"] == "running" and await conn.fetchval(sql.LIVE_WORKERS, previous, self._timeout, -1):
            raise ResumeError(
                f"{self.name}: run {previous} of {spec.name!r} is still running; retry its failures once it ends"
            )
        if last["status"] == "running":  # every worker of it died
            await conn.execute(
                "UPDATE _crawlrunner_runs SET status = 'interrupted', finished_at = now() WHERE id = $1", previous
            )
        run_id = await self._new_run(conn, spec, targets, retry_of=previous)
        copied = await conn.execute(sql.COPY_FAILED, previous, run_id, [t.name for t in targets])
        log.info("retrying run %d's failed requests as run %d: %s", previous, run_id, copied.rpartition(" ")[2])
        return run_id

    async def _given_run(self, conn: asyncpg.Connection, spec: Spec, targets: list[Target], run_id: int) -> int:
        """``run_id`` if it still goes on (``-run_id`` if it is over), for a worker started to help it."""
        row = await conn.fetchrow("SELECT status, fingerprints FROM _crawlrunner_runs WHERE id = $1 FOR UPDATE", run_id)
        if row is None or row["fingerprints"] is None or not self._same_spec(spec, row["fingerprints"]):
            raise ResumeError(f"{self.name}: no run {run_id} of this spec to join")
        if row["status"] == "completed":
            return -run_id
        if row["status"] != "running":
            raise ResumeError(
                f"{self.name}: run {run_id} is {row['status']}; start workers without --join to resume it"
            )
        await self._check_targets(conn, run_id, targets)
        return run_id

    @staticmethod
    def _same_spec(spec: Spec, stored: str) -> bool:
        return spec.fingerprints.added_since(Fingerprints.from_json(stored)) == []

    async def _check_targets(self, conn: asyncpg.Connection, run_id: int, targets: list[Target]) -> None:
        names = {
            r[0] for r in await conn.fetch("SELECT target FROM _crawlrunner_run_targets WHERE run_id = $1", run_id)
        }
        if names != {t.name for t in targets}:
            raise ResumeError(
                f"{self.name}: run {run_id} runs the targets {', '.join(sorted(names))}; "
                "every worker of a run runs the same ones (the same -t options)"
            )

    async def begin_reextraction(self, spec: Spec, targets: list[Target]) -> tuple[int, Sink]:
        raise UsageError(f"{self.name}: reextract works on SQLite outputs; PostgreSQL keeps bodies for SQL only")

    def stored_bodies(self, spec: Spec, targets: list[Target]) -> AsyncIterator[StoredBody]:
        raise UsageError(f"{self.name}: reextract works on SQLite outputs")

    async def finish_run(self, run_id: int, status: str, targets: Iterable[Target], *, whole_crawl: bool) -> str:
        """This worker leaves the run; the last to leave closes it (see the module's docstring)."""
        worker_id = self._worker_id
        if worker_id is None:  # an already completed run: nothing was opened
            return status
        if self._membership is not None:
            await self._membership.stop()
        targets = list(targets)
        stopped = self._membership is not None and self._membership.stop_requested

        async def leave_once() -> str:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.RELEASE_WORKER, run_id, worker_id)
                await release_worker_turns(conn, worker_id)
                current = await conn.fetchval("SELECT status FROM _crawlrunner_runs WHERE id = $1 FOR UPDATE", run_id)
                outcome = status
                if status == "completed" and not stopped and await conn.fetchval(sql.RUN_OVER, run_id):
                    # From any unfinished status: a worker presumed dead may finish
                    # a run that the others left as interrupted.
                    if current != "completed":
                        await conn.execute(sql.TOTALS, run_id, "completed")
                        if whole_crawl:
                            await records.finish_completed(conn, run_id, targets)
                    await conn.execute(sql.LEAVE, worker_id, "completed")
                    return "completed"
                if current == "completed":
                    outcome = "completed"
                elif status == "completed":  # its frontier closed (a stop) before the run was done
                    outcome = "interrupted"
                await conn.execute(sql.LEAVE, worker_id, outcome)
                others = int(await conn.fetchval(sql.LIVE_WORKERS, run_id, self._timeout, worker_id))
                if current == "running" and not others:
                    await conn.execute(sql.TOTALS, run_id, outcome)
                return outcome

        try:
            return await retrying(self.name, "finish the run", leave_once)
        finally:
            self._worker_id = None

    async def _leave_if_joined(self) -> None:
        """A run left without ``finish_run`` (an error before it): leave the run, leases given back."""
        if self._worker_id is None:
            return
        if self._membership is not None:  # a beat after leaving would count this worker live again
            await self._membership.stop()
        worker_id, self._worker_id = self._worker_id, None
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.RELEASE_WORKER, self._run_id, worker_id)
                await conn.execute(sql.LEAVE, worker_id, "failed")
        except Exception as exc:  # the database is gone: the others' reaper takes the leases back
            log.warning("%s: could not leave the run cleanly: %s", self.name, exc)

    async def keep_host_stats(self, run_id: int, hosts: Mapping[str, HostStats]) -> None:
        """Add this worker's counts to the run's rows (a reply lost after the commit would count them twice)."""
        rows = host_stats.rows(run_id, hosts)
        statement = host_stats.upsert([f"${n}" for n in range(1, len(host_stats.COLUMNS) + 1)])

        async def once() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.executemany(statement, rows)

        if rows:
            await retrying(self.name, "keep the run's host stats", once)

    async def run_facts(self, run_id: int, spec: Spec, targets: Iterable[Target]) -> dict[str, TargetFacts]:
        return await health.run_facts(PostgresFacts(self.pool, self.name), run_id, targets, spec.name)

    async def failures_by_target(self, run_id: int) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT target, count(*) FROM _crawlrunner_fetch_log WHERE run_id = $1 AND error_kind IS NOT NULL GROUP BY target",
                run_id,
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def run_totals(self, run_id: int) -> tuple[int, int]:
        """(requests, records) of the whole run so far, every worker's: counted live, the run may go on."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*), coalesce(sum(records), 0) FROM _crawlrunner_fetch_log WHERE run_id = $1", run_id
            )
        assert row is not None
        return int(row[0]), int(row[1])


async def request_stop(url: str, run_id: int) -> int:
    """Ask every worker of run ``run_id`` to finish what is in flight and leave; how many were alive."""
    name = display_name(url)
    async with open_pool(url, size=1) as pool, pool.acquire() as conn:
        if not await layout_version(conn):
            raise OutputPathError(f"{name}: not a crawlrunner database (no runs in it)")
        async with conn.transaction():  # an older layout: upgraded, as a worker would
            await ensure_layout(conn, name)
        status = await conn.fetchval(
            "UPDATE _crawlrunner_runs SET stop_requested = true WHERE id = $1 RETURNING status", run_id
        )
        if status is None:
            raise UsageError(f"{name}: no run {run_id}")
        if status != "running":
            raise UsageError(f"{name}: run {run_id} is not running (it is {status})")
        return int(await conn.fetchval(sql.LIVE_WORKERS, run_id, worker_timeout(), -1))
