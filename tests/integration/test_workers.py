"""The worker pool: hired as work shows up, up to one per pooled connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from crawlrunner.api import run_async
from crawlrunner.progress import LiveView
from crawlrunner.spec import load_spec

from .. import server_app


class WorkerCensus:
    """A progress reporter that notes the name of every worker task alive while the run goes."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def run(self, view: LiveView) -> None:
        while True:
            self.seen |= {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("crawlrunner-worker-")}
            await asyncio.sleep(0.002)


async def test_a_huge_pool_does_not_start_a_worker_per_connection_for_a_small_crawl(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            "name: small\nhttp: {{base_url: '{base}', limits: {{connections: 1000, per_host: 0}}}}\n"
            "targets:\n  - {{name: t, url: '/slow/census/0.05?n={{n}}', vars: {{n: {{from: 1, to: 3}}}}}}\n",
            base=server,
        )
    )
    census = WorkerCensus()
    result = await run_async(spec, output=db_path, reporter=census)

    assert result.status == "completed" and result.totals.ok == 3
    # One worker per request in flight, and one more waiting for work: not 1,000.
    assert 1 <= len(census.seen) <= 4, sorted(census.seen)


async def test_workers_are_hired_up_to_the_connection_limit_when_there_is_work(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            "name: busy\nhttp: {{base_url: '{base}', limits: {{connections: 8, per_host: 0}}}}\n"
            "targets:\n  - {{name: t, url: '/slow/ramp/0.2?n={{n}}', vars: {{n: {{from: 1, to: 24}}}}}}\n",
            base=server,
        )
    )
    census = WorkerCensus()
    result = await run_async(spec, output=db_path, reporter=census)

    assert result.status == "completed" and result.totals.ok == 24
    assert server_app.peak_in_flight["ramp"] == 8  # the whole pool was used
    assert len(census.seen) == 8  # and never more workers than connections
