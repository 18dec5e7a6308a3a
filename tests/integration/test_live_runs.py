"""``runs`` while a run goes: its counters come from what it has logged so far, not its row's zeros."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import crawlrunner
from crawlrunner.api import run_async

# Two quick pages, then one that keeps the run open while it is read.
SPEC = """
name: live
http: {{base_url: "{base}", retry: null}}
targets:
  - name: items
    urls: [/json/item/1, /json/item/2]
    extract: {{fields: {{id: {{jmespath: id, type: int}}}}}}
  - name: slow
    urls: [/slow/live-runs/20]
"""


def _running_row(database: Path) -> dict[str, object] | None:
    rows = crawlrunner.list_runs(database).records()
    return rows[-1] if rows and rows[-1]["status"] == "running" and rows[-1]["requests"] == 2 else None


async def test_runs_counts_a_running_sqlite_run_from_its_fetch_log(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = crawlrunner.load_spec(write_spec(SPEC, base=server))
    stop = asyncio.Event()
    run = asyncio.create_task(run_async(spec, output=db_path, stop=stop))
    try:
        deadline = time.monotonic() + 15
        row = None
        while row is None and time.monotonic() < deadline and not run.done():
            await asyncio.sleep(0.1)
            row = await asyncio.to_thread(_running_row, db_path) if db_path.exists() else None
    finally:
        stop.set()
        result = await asyncio.wait_for(run, 30)

    assert row is not None, "the run's two quick pages were never counted while it ran"
    assert [row[name] for name in ("ok", "failed", "unchanged", "records")] == [2, 0, 0, 2]
    assert isinstance(row["bytes"], int) and row["bytes"] > 0 and row["finished_at"] is None
    # Once it has ended, its row's own counters are shown, the same as the live ones plus what ended it.
    ended = crawlrunner.list_runs(db_path).records()[-1]
    assert ended["status"] == result.status == "interrupted" and ended["records"] == 2
