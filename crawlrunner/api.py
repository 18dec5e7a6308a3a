"""What the command line (and any Python caller) uses: run a spec, get a result.

Nothing here parses options or prints; ``cli`` does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .spec.model import Spec
from .stats import RunStats, TargetStats


@dataclass(frozen=True)
class RunResult:
    """How a run went: its id and status in the database, counters, expectations."""

    run_id: int
    database: Path
    status: str
    stats: RunStats
    duration: float
    unmet: list[str] = field(default_factory=list)
    tolerated: frozenset[str] = frozenset()  # targets whose failures are within max_failed_ratio

    @property
    def totals(self) -> TargetStats:
        return self.stats.totals

    @property
    def ok(self) -> bool:
        """Completed, expectations met, and no failed request beyond a declared tolerance."""
        if self.status != "completed" or self.unmet:
            return False
        return all(s.failed == 0 or name in self.tolerated for name, s in self.stats.targets.items())


def selected_targets(spec: Spec, only: Iterable[str] | None) -> list[str] | None:
    """``only`` plus the parents its targets need, in spec order (None: all)."""
    if only is None:
        return None
    wanted = set(only)
    for name in list(wanted):
        parent = spec.target(name).parent
        while parent is not None and parent not in wanted:
            wanted.add(parent)
            parent = spec.target(parent).parent
    return [t.name for t in spec.targets if t.name in wanted]


async def run_async(
    spec: Spec,
    *,
    output: str | Path | None = None,
    only: Iterable[str] | None = None,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Run ``spec`` and write everything to ``output`` (default: the spec's).

    Failed requests are recorded, not raised. Setting ``stop`` ends the run
    gracefully (no new requests, a short grace for those in flight) with
    status "interrupted"; a cancellation also marks the run interrupted after
    committing everything fetched, then propagates.
    """
    # Imported here so that loading and validating a spec stays light.
    from .engine import crawl
    from .expectations import unmet
    from .http.session import open_session
    from .store.sqlite import BatchWriter, Store

    database = Path(output if output is not None else spec.default_output)
    wanted = selected_targets(spec, only)
    targets = [t for t in spec.targets if wanted is None or t.name in wanted]
    started = time.perf_counter()
    async with Store.open(database) as store:
        await store.prepare_targets(t for t in targets if t.extract is not None)
        run_id = await store.begin_run(spec)
        status = "failed"
        try:
            async with open_session(spec.http) as session:
                stats = await crawl(spec, session, BatchWriter(store, run_id, spec), only=wanted, stop=stop)
            status = "interrupted" if stop is not None and stop.is_set() else "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            await store.finish_run(run_id, status)
        problems: list[str] = []
        tolerated = set()
        for target in targets:
            if target.expect is None:
                continue
            problems += unmet(target, await store.target_facts(run_id, target))
            if target.expect.max_failed_ratio is not None:
                tolerated.add(target.name)
    return RunResult(run_id, database, status, stats, time.perf_counter() - started, problems, frozenset(tolerated))


def run(spec: Spec, *, output: str | Path | None = None, only: Iterable[str] | None = None) -> RunResult:
    """Blocking form of ``run_async``, for scripts."""
    return asyncio.run(run_async(spec, output=output, only=only))
