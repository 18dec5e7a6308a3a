"""``backends.health`` on an SQLite file: its statements run on the store's connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import StorageError
from .store import Store

_KEEP = (
    "INSERT INTO _crawlrunner_extraction_health (run_id, target, field, records, empty) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, target, field) DO UPDATE SET records = excluded.records, empty = excluded.empty"
)


class SQLiteFacts:
    """The ``FactsDatabase`` of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        try:
            async with self.store.conn.execute(sql, dict(params)) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StorageError(f"{self.store.path}: cannot read back the run: {exc}") from None

    async def keep_health(self, rows: Sequence[tuple[Any, ...]]) -> None:
        async with self.store.transaction("keep the run's extraction health"):
            await self.store.conn.executemany(_KEEP, rows)
