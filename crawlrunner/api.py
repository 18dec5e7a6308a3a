"""What the command line (and any Python caller) uses: load, run, summarise.

Nothing here parses options or prints; ``cli`` does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .spec.model import Spec
from .stats import RunStats, TargetStats


@dataclass(frozen=True)
class RunResult:
    """How a run went: its id and status in the database, and its counters."""

    run_id: int
    database: Path
    status: str
    stats: RunStats
    duration: float

    @property
    def totals(self) -> TargetStats:
        return self.stats.totals

    @property
    def ok(self) -> bool:
        """True when every request succeeded."""
        return self.status == "completed" and self.totals.failed == 0


async def run_async(
    spec: Spec,
    *,
    output: str | Path | None = None,
    only: Iterable[str] | None = None,
) -> RunResult:
    """Run ``spec`` and write everything to ``output`` (default: the spec's).

    Failed requests are recorded, not raised. A cancellation (Ctrl-C) marks
    the run interrupted after committing everything fetched, then propagates.
    """
    # Imported here so that loading and validating a spec stays light.
    from .engine import crawl
    from .http.session import open_session
    from .store.sqlite import BatchWriter, Store

    database = Path(output if output is not None else spec.default_output)
    wanted = list(only) if only is not None else None
    targets = [t for t in spec.targets if wanted is None or t.name in wanted]
    started = time.perf_counter()
    async with Store.open(database) as store:
        await store.prepare_targets(t for t in targets if t.extract is not None)
        run_id = await store.begin_run(spec)
        status = "failed"
        try:
            async with open_session(spec.http) as session:
                stats = await crawl(spec, session, BatchWriter(store, run_id, spec), only=wanted)
            status = "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            await store.finish_run(run_id, status)
    return RunResult(run_id, database, status, stats, time.perf_counter() - started)


def run(spec: Spec, *, output: str | Path | None = None, only: Iterable[str] | None = None) -> RunResult:
    """Blocking form of ``run_async``, for scripts."""
    return asyncio.run(run_async(spec, output=output, only=only))
