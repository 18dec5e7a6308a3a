"""``host_stats``: per run and origin, how polite the run had to be, kept the same way by every backend.

Each session of a run (each worker of a shared one) adds its own counts to
the run's row when it ends, so a resumed run's row covers all its sessions;
``crawl_delay`` keeps the last value read (robots.txt may change between
sessions). The statement is written once, in SQL both SQLite and PostgreSQL
read; each backend says how its parameters are spelt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..stats import HostStats

COLUMNS = ("run_id", "origin", "requests", "throttled", "unavailable", "cooldowns", "cooldown_seconds", "crawl_delay")
_ADDED = ("requests", "throttled", "unavailable", "cooldowns", "cooldown_seconds")


def upsert(placeholders: Sequence[str]) -> str:
    """The statement that adds one row's counts to the run's, with ``placeholders`` (``?`` or ``$n``) in order."""
    added = ", ".join(f"{name} = _crawlrunner_host_stats.{name} + excluded.{name}" for name in _ADDED)
    return (
        f"INSERT INTO _crawlrunner_host_stats ({', '.join(COLUMNS)}) VALUES ({', '.join(placeholders)})"
        f" ON CONFLICT (run_id, origin) DO UPDATE SET {added},"
        " crawl_delay = coalesce(excluded.crawl_delay, _crawlrunner_host_stats.crawl_delay)"
    )


def rows(run_id: int, hosts: Mapping[str, HostStats]) -> list[tuple[Any, ...]]:
    """One row per origin this session sent to or read robots.txt of, in ``COLUMNS`` order."""
    return [
        (run_id, origin, h.requests, h.throttled, h.unavailable, h.cooldowns, h.cooldown_seconds, h.crawl_delay)
        for origin, h in sorted(hosts.items())
        if h.requests or h.crawl_delay is not None
    ]
