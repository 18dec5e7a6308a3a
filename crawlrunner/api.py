"""What the command line (and any Python caller) uses: run a spec, get a result.

Nothing here parses options or prints; ``cli`` does that.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ResumeError, UsageError
from .spec.model import Spec
from .stats import RunStats, TargetStats

if TYPE_CHECKING:
    from .progress import Reporter

log = logging.getLogger(__name__)


def with_concurrency(spec: Spec, connections: int) -> Spec:
    """``spec`` with another connection pool size (a command-line override)."""
    limits = replace(spec.http.limits, connections=connections)
    return replace(spec, http=replace(spec.http, limits=limits))


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
    failed_by_target: Mapping[str, int] | None = None  # from the database (a resumed run's too)
    run_totals: tuple[int, int] | None = None  # (requests, records) of the whole run, every session

    @property
    def totals(self) -> TargetStats:
        return self.stats.totals

    @property
    def ok(self) -> bool:
        """Completed, expectations met, and no failed request beyond a declared tolerance."""
        if self.status not in ("completed", "reextracted", "limited") or self.unmet:
            return False
        failed = self.failed_by_target
        if failed is None:
            failed = {name: s.failed for name, s in self.stats.targets.items()}
        return all(count == 0 or name in self.tolerated for name, count in failed.items())


def selected_targets(spec: Spec, only: Iterable[str] | None) -> list[str] | None:
    """``only`` plus the parents its targets need, in spec order (None: all)."""
    if only is None:
        return None
    names = list(only)
    spec.check_targets(names)
    wanted = set(names)
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
    resume: bool = False,
    retry_failed: bool = False,
    reporter: Reporter | None = None,
    max_requests: int | None = None,
    max_records: int | None = None,
) -> RunResult:
    """Run ``spec`` and write everything to ``output`` (default: the spec's).

    Failed requests are recorded, not raised. Setting ``stop`` ends the run
    gracefully (no new requests, a short grace for those in flight) with
    status "interrupted"; a cancellation also marks the run interrupted after
    committing everything fetched, then propagates.

    ``resume`` continues the spec's last unfinished run in the same database
    (refused if the spec or its seed files changed); ``retry_failed`` starts
    a new run that fetches only the requests the last run failed.
    ``reporter`` shows progress; ``max_requests`` and ``max_records`` stop
    the run early, for trying a spec. While the run goes, every log line of
    crawlrunner's passes through the spec's redactor.
    """
    with redacted_logs(spec):
        return await _run(spec, output, only, stop, resume, retry_failed, reporter, max_requests, max_records)


@contextmanager
def redacted_logs(spec: Spec) -> Iterator[None]:
    """Mask the spec's secrets in every crawlrunner log record while the block runs.

    Done where records are made (the record factory), so it holds however
    the application configured logging: handlers, propagation, caplog.
    """
    redact = spec.redactor
    if not redact:
        yield
        return
    previous = logging.getLogRecordFactory()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name == "crawlrunner" or record.name.startswith("crawlrunner."):
            record.msg, record.args = redact(record.getMessage()), None
        return record

    logging.setLogRecordFactory(make)
    try:
        yield
    finally:
        if logging.getLogRecordFactory() is make:
            logging.setLogRecordFactory(previous)


async def _run(
    spec: Spec,
    output: str | Path | None,
    only: Iterable[str] | None,
    stop: asyncio.Event | None,
    resume: bool,
    retry_failed: bool,
    reporter: Reporter | None,
    max_requests: int | None,
    max_records: int | None,
) -> RunResult:
    # Imported here so that loading and validating a spec stays light.
    from .backends.sqlite.store import Store
    from .backends.sqlite.writer import BatchWriter
    from .engine import CrawlState, crawl
    from .expectations import unmet
    from .frontier import restore_plan
    from .http.session import open_session

    database = Path(output if output is not None else spec.default_output)
    wanted = selected_targets(spec, only)
    targets = [t for t in spec.targets if wanted is None or t.name in wanted]
    started = time.perf_counter()
    async with Store.open(database) as store:
        await store.prepare_targets(t for t in targets if t.extract is not None)
        unfinished = await store.unfinished_run(spec)
        state = CrawlState(
            iter(()),
            validators=await store.validators(targets),
            max_requests=max_requests,
            max_records=max_records,
        )
        if resume:
            if unfinished is None:
                raise ResumeError(f"{database}: no unfinished run of {spec.name!r} to resume")
            run_id, _, digest = unfinished
            if digest != spec.digest:
                raise ResumeError(
                    f"{database}: the spec (or a seed file) changed since run {run_id} started; "
                    "resuming would fetch a different crawl. Run without --resume to start afresh."
                )
            saved = await store.resume_state(run_id, [t.name for t in spec.targets if t.follow is not None])
            state.skip_below, state.skip, state.seen = saved.low_water, saved.done_above, saved.seen
            restored = (restore_plan(spec, row) for row in saved.pending)
            state.pending = [p for p in restored if p is not None and (wanted is None or p.target.name in wanted)]
            await store.reopen_run(run_id)
            state.request_ids = itertools.count(await store.next_request_id(run_id))
            log.info("resuming run %d: %d start requests done, %d saved requests pending",
                     run_id, saved.low_water + len(saved.done_above), len(state.pending))  # fmt: skip
        else:
            if unfinished is not None:
                log.warning(
                    "run %d of %r did not finish (%s); `crawlrunner run --resume` continues it. Starting a new run.",
                    unfinished[0], spec.name, unfinished[1],
                )  # fmt: skip
            previous = await store.latest_run(spec) if retry_failed else None
            if retry_failed and previous is None:
                raise ResumeError(f"{database}: no earlier run of {spec.name!r} to retry")
            run_id = await store.begin_run(spec)
            state.request_ids = itertools.count(await store.next_request_id(run_id))
            if previous is not None:
                failed = [restore_plan(spec, row) for row in await store.failed_requests(previous)]
                # Fresh ids: these are this run's requests now, saved for a resume.
                state.pending = [
                    replace(p, request_id=next(state.request_ids), seq=None, chain=None)
                    for p in failed
                    if p is not None and (wanted is None or p.target.name in wanted)
                ]
                state.plan_start = False
                await store.save_pending(run_id, spec, state.pending)
        status = "failed"
        try:
            async with open_session(spec.http) as session:
                writer = BatchWriter(store, run_id, spec)
                stats = await crawl(spec, session, writer, only=wanted, stop=stop, state=state, reporter=reporter)
            if stop is not None and stop.is_set():
                status = "interrupted"
            else:
                status = "limited" if state.limited else "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            # Only a whole crawl may empty a replace table of older rows: not a
            # retry of a few failures, nor a run cut short by --max-requests.
            await store.finish_run(run_id, status, targets, whole_crawl=not retry_failed)
        problems: list[str] = []
        tolerated = set()
        for target in targets:
            if target.expect is None:
                continue
            problems += unmet(target, await store.target_facts(run_id, target))
            if target.expect.max_failed_ratio is not None:
                tolerated.add(target.name)
        # From the database, so failures before a resume count too.
        failures = dict(await store.rows(
            "SELECT target, count(*) FROM fetch_log WHERE run_id = ? AND error_kind IS NOT NULL GROUP BY target",
            (run_id,),
        ))  # fmt: skip
        ((requests_done, records_done),) = await store.rows(
            "SELECT requests, records FROM runs WHERE id = ?", (run_id,)
        )
    return RunResult(
        run_id, database, status, stats, time.perf_counter() - started, problems, frozenset(tolerated), failures,
        (int(requests_done), int(records_done)),
    )  # fmt: skip


async def reextract_async(
    spec: Spec, *, output: str | Path | None = None, only: Iterable[str] | None = None
) -> RunResult:
    """Rebuild target tables from stored bodies (``store_bodies: true``), without a request.

    The result is a run with status "reextracted"; its fetch-log rows have
    ``attempts`` 0, since nothing was fetched.
    """
    import zlib

    from .backends.sqlite.store import Store
    from .backends.sqlite.writer import BATCH_SIZE, BatchWriter
    from .extract import process
    from .frontier import redacted_url, restore_plan
    from .plan import RequestPlan
    from .results import FetchResult

    database = Path(output if output is not None else spec.default_output)
    wanted = selected_targets(spec, only)
    targets = [
        t for t in spec.targets if t.store_bodies and t.extract is not None and (wanted is None or t.name in wanted)
    ]
    if not targets:
        raise UsageError(f"{spec.source}: no target keeps bodies (store_bodies: true) to re-extract")
    if not database.is_file():
        raise UsageError(f"{database}: no such database: re-extraction reads the bodies an earlier run stored")
    started = time.perf_counter()
    stats = RunStats({t.name: TargetStats() for t in targets})
    async with Store.open(database) as store:
        await store.prepare_targets(targets)
        run_id = await store.begin_run(spec)
        writer = BatchWriter(store, run_id, spec)
        status = "failed"
        try:
            batch = []
            async for row in store.stored_bodies(targets):
                name, url, final_url, code, content_type, charset, fetched_at, body = row[:8]
                target = spec.target(name)
                saved = restore_plan(spec, row[8:]) if row[8] is not None else None
                if saved is not None and saved.invalid is None:
                    plan = saved
                else:  # re-extraction needs no secret: a masked URL will do
                    plan = RequestPlan(target, redacted_url(url))
                fetch = FetchResult(
                    name, plan.method, plan.url, fetched_at, final_url=redacted_url(final_url) if final_url else None,
                    status=code, content_type=content_type, charset=charset, body=zlib.decompress(body), attempts=0,
                )  # fmt: skip
                outcome = process(plan, fetch)
                outcome.plan, outcome.derived = None, []
                stats.add(outcome)
                batch.append(outcome)
                if len(batch) >= BATCH_SIZE:
                    await writer.write(batch)
                    batch = []
            await writer.write(batch)
            status = "reextracted"
        finally:
            await store.finish_run(run_id, status, targets)
    return RunResult(run_id, database, status, stats, time.perf_counter() - started)


def run(
    spec: Spec,
    *,
    output: str | Path | None = None,
    only: Iterable[str] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
) -> RunResult:
    """Blocking form of ``run_async``, for scripts (on uvloop's loop when it is installed)."""
    from . import runtime

    return runtime.run(run_async(spec, output=output, only=only, resume=resume, retry_failed=retry_failed))
