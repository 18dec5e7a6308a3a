"""The SQLite backend: the ``Backend`` of one output file, on top of its store, opening and sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from ...errors import UsageError
from ...expectations import TargetFacts
from ...spec.model import Spec, Target
from ...stats import HostStats
from .. import health, host_stats
from ..base import Backend, OpenedRun, RunLimits, Sink, Start, StoredBody
from .health import SQLiteFacts
from .opening import open_run
from .store import Store
from .writer import SQLiteSink


class SQLiteBackend(Backend):
    """An SQLite output file. Use ``async with SQLiteBackend.open(path) as backend``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.name = str(store.path)

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path) -> AsyncIterator[SQLiteBackend]:
        async with Store.open(path) as store:
            yield cls(store)

    async def open_run(
        self,
        spec: Spec,
        targets: list[Target],
        start: Start,
        limits: RunLimits | None = None,
        *,
        run_id: int | None = None,
    ) -> OpenedRun:
        if start is Start.JOIN:
            raise UsageError(
                f"{self.name}: an SQLite file has one worker per run; many workers need a PostgreSQL output"
            )
        return await open_run(self.store, spec, targets, start, limits or RunLimits())

    async def begin_reextraction(self, spec: Spec, targets: list[Target]) -> tuple[int, Sink]:
        await self.store.prepare_targets(targets)
        run_id = await self.store.begin_run(spec)
        return run_id, SQLiteSink(self.store, run_id, spec)

    def stored_bodies(self, spec: Spec, targets: list[Target]) -> AsyncIterator[StoredBody]:
        return self.store.stored_bodies(spec, targets)

    async def finish_run(self, run_id: int, status: str, targets: Iterable[Target], *, whole_crawl: bool) -> str:
        await self.store.finish_run(run_id, status, targets, whole_crawl=whole_crawl)
        return status

    async def keep_host_stats(self, run_id: int, hosts: Mapping[str, HostStats]) -> None:
        rows = host_stats.rows(run_id, hosts)
        if rows:
            async with self.store.transaction("keep the run's host stats"):
                await self.store.conn.executemany(host_stats.upsert(["?"] * len(host_stats.COLUMNS)), rows)

    async def run_facts(self, run_id: int, spec: Spec, targets: Iterable[Target]) -> dict[str, TargetFacts]:
        return await health.run_facts(SQLiteFacts(self.store), run_id, targets, spec.name)

    async def failures_by_target(self, run_id: int) -> dict[str, int]:
        return await self.store.failures_by_target(run_id)

    async def run_totals(self, run_id: int) -> tuple[int, int]:
        return await self.store.run_totals(run_id)
