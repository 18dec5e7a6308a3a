"""``backends.health`` on PostgreSQL: ``:name`` parameters numbered for asyncpg, each read one pooled connection."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .connect import retrying

if TYPE_CHECKING:
    import asyncpg

_NAMED = re.compile(r"(?<!:):([a-z_]+)\b")
# An upsert: workers leaving a shared run together each count it, the last one's numbers stay.
_KEEP = """
INSERT INTO _crawlrunner_extraction_health (run_id, target, field, records, empty)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
ON CONFLICT (run_id, target, field) DO UPDATE SET records = excluded.records, empty = excluded.empty
"""


def numbered(sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``sql`` with each ``:name`` as ``$n``, and the values in that order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _NAMED.sub(number, sql), [params[name] for name in order]


class PostgresFacts:
    """The ``FactsDatabase`` of one pool."""

    def __init__(self, pool: asyncpg.Pool, name: str) -> None:
        self.pool, self.name = pool, name

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        statement, values = numbered(sql, params)

        async def once() -> list[tuple[Any, ...]]:
            async with self.pool.acquire() as conn:
                return [tuple(row) for row in await conn.fetch(statement, *values)]

        return await retrying(self.name, "read back the run", once)

    async def keep_health(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return

        async def once() -> None:
            async with self.pool.acquire() as conn:
                await conn.execute(_KEEP, *zip(*rows, strict=True))

        await retrying(self.name, "keep the run's extraction health", once)
