"""What the command line (and any Python caller) uses: run a spec, get a result.

Nothing here parses options or prints; ``cli`` does that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StorageError, UsageError, most_telling
from .expectations import TargetFacts, conversion_problems, drift_note, health_problems, unfollowed_note, unmet
from .plan import RequestPlan
from .results import FetchResult, Outcome
from .runtime import blocking
from .secrets import mask_references
from .sitemaps import limit_notes
from .spec.model import Spec, Target
from .stats import RunStats, TargetStats

if TYPE_CHECKING:
    from .backends.base import Backend, StoredBody
    from .progress import Reporter

log = logging.getLogger(__name__)


def with_concurrency(spec: Spec, connections: int) -> Spec:
    """``spec`` with another connection pool size (a command-line override)."""
    limits = replace(spec.http.limits, connections=connections)
    return replace(spec, http=replace(spec.http, limits=limits))


@dataclass(frozen=True, repr=False)
class RunResult:
    """How a run went: its id and status in the database, counters, expectations."""

    run_id: int
    database: Path | str  # a file, or a database URL (without its password)
    status: str
    stats: RunStats
    duration: float
    unmet: list[str] = field(default_factory=list)
    tolerated: frozenset[str] = frozenset()  # targets whose failures are within max_failed_ratio
    failed_by_target: Mapping[str, int] | None = None  # from the database (a resumed run's too)
    run_totals: tuple[int, int] | None = None  # (requests, records) of the whole run, every session
    already_completed: bool = False  # a resume of a run that had completed: nothing was fetched or changed
    health: list[str] = field(default_factory=list)  # extraction-health problems: exit status 3, as unmet expectations
    facts: Mapping[str, TargetFacts] = field(default_factory=dict)  # per target, read back when the run ended
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    def __repr__(self) -> str:
        # Short, for a notebook cell's output: the dataclass's own repr spells out every counter.
        requests, records = self.run_totals or (self.totals.requests, self.totals.records)
        return f"<RunResult run {self.run_id} {self.status}: {requests} requests, {records} records in {self.database}>"

    @property
    def totals(self) -> TargetStats:
        return self.stats.totals

    @property
    def ok(self) -> bool:
        """Completed, expectations met, and no failed request beyond a declared tolerance."""
        if self.status not in ("completed", "reextracted", "limited") or self.unmet or self.health:
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
    insecure: bool = False,
    join: int | None = None,
    opened: Callable[[int], None] | None = None,
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

    A target with ``tls.verify: false`` raises ``InsecureTLSError`` before
    anything is opened, unless ``insecure`` is true: the caller, not the spec
    alone, decides to skip certificate checks.

    With a ``postgresql://`` output, any number of processes running the
    same spec share one run: the first creates it, the others join it, and
    starting them again after a crash resumes it. ``join`` takes part only in
    run ``join`` (a worker started for a run already open: nothing to do if
    it is over). ``opened`` is called with the run's id once it is open.
    """
    if not insecure:
        only = None if only is None else list(only)  # read here and again by the run
        spec.check_tls(selected_targets(spec, only))
    with redacted_logs(spec):
        start = _Start(resume, retry_failed, join, opened)
        return await _run(spec, output, only, stop, start, reporter, max_requests, max_records)


@dataclass(frozen=True)
class _Start:
    """How ``run_async`` was asked to begin."""

    resume: bool = False
    retry_failed: bool = False
    join: int | None = None
    opened: Callable[[int], None] | None = None


@contextmanager
def redacted_logs(spec: Spec) -> Iterator[None]:
    """Mask the spec's secrets in every crawlrunner log record while the block runs.

    Done where records are made (the record factory), so it holds however
    the application configured logging: handlers, propagation, caplog.
    """
    redact = spec.redactor
    # A token fetched while the run goes joins the redactor then (http.tokens).
    if not redact and not any(t.fetch.auth is not None and t.fetch.auth.fetches_token for t in spec.targets):
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
    how: _Start,
    reporter: Reporter | None,
    max_requests: int | None,
    max_records: int | None,
) -> RunResult:
    # Imported here so that loading and validating a spec stays light.
    from .backends import is_database_url, open_backend, output_name
    from .backends.base import RunLimits, Start
    from .engine import crawl
    from .http.session import open_session

    location = output if output is not None else spec.default_output
    database = output_name(location) if is_database_url(location) else Path(location)
    wanted = selected_targets(spec, only)
    targets = [t for t in spec.targets if wanted is None or t.name in wanted]
    if how.join is not None:
        start = Start.JOIN
    else:
        start = Start.RESUME if how.resume else Start.RETRY_FAILED if how.retry_failed else Start.FRESH
    started = time.perf_counter()
    async with open_backend(location) as backend:
        run = await backend.open_run(spec, targets, start, RunLimits(max_requests, max_records), run_id=how.join)
        if how.opened is not None and not run.already_completed:
            how.opened(run.run_id)
        if run.already_completed:
            stats = RunStats({t.name: TargetStats() for t in targets})
            failed, totals = await backend.failures_by_target(run.run_id), await backend.run_totals(run.run_id)
            return RunResult(
                run.run_id, database, "completed", stats, time.perf_counter() - started,
                failed_by_target=failed, run_totals=totals, already_completed=True,
            )  # fmt: skip
        status = "failed"
        try:
            async with open_session(spec.http) as session:
                stats = await crawl(spec, session, run, targets=targets, stop=stop, reporter=reporter)
            await _keep_host_stats(backend, run.run_id, stats)
            if stop is not None and stop.is_set():
                status = "interrupted"
            else:
                status = "limited" if run.frontier.limited else "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            # Only a whole crawl may empty a replace table of older rows: not a
            # retry of a few failures, nor a run cut short by --max-requests.
            status = await backend.finish_run(run.run_id, status, targets, whole_crawl=run.whole_crawl)
        facts = await backend.run_facts(run.run_id, spec, targets)
        # From the database, so failures before a resume count too.
        failures = await backend.failures_by_target(run.run_id)
        totals = await backend.run_totals(run.run_id)
    checked = check_run(targets, facts, status, stats)
    cut = [note for name, fact in facts.items() for note in limit_notes(name, fact)]
    cut += [note for t in targets if t.name in facts and (note := unfollowed_note(t, facts[t.name])) is not None]
    return RunResult(
        run.run_id, database, status, stats, time.perf_counter() - started, checked.unmet,
        frozenset(t.name for t in targets if t.expect is not None and t.expect.max_failed_ratio is not None),
        failures, totals, health=checked.health, facts=facts, notes=[*cut, *checked.notes],
    )  # fmt: skip


@dataclass
class Checked:
    """What the end-of-run checks found: unmet expectations, extraction-health problems, and notes."""

    unmet: list[str] = field(default_factory=list)
    health: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_run(targets: Iterable[Target], facts: Mapping[str, TargetFacts], status: str, stats: RunStats) -> Checked:
    """Extraction health and expectations, on a run that got to its end; notes on what was not checked.

    A run stopped early (``--max-requests``, ``--max-records``: "limited")
    is a trial of the spec: judging its numbers against a whole crawl's
    would be wrong, so nothing is checked and the summary says so. An
    interrupted or failed run is not checked either: it is not over.
    """
    targets = list(targets)
    if status == "limited":
        if any(t.expect is not None for t in targets):
            return Checked(
                notes=["expectations not checked: the run was stopped early by --max-requests / --max-records"]
            )
        return Checked()
    if status not in ("completed", "reextracted"):
        return Checked()
    checked = Checked()
    for target in targets:
        known = facts.get(target.name)
        if known is None:
            continue
        checked.health.extend(health_problems(target, known))
        if (session := stats.targets.get(target.name)) is not None:
            checked.health.extend(conversion_problems(target, known, session.unconverted, session.field_error_examples))
        checked.unmet.extend(unmet(target, known))
        note = drift_note(target, known)
        if note is not None:
            checked.notes.append(note)
    return checked


async def reextract_async(
    spec: Spec, *, output: str | Path | None = None, only: Iterable[str] | None = None
) -> RunResult:
    """Rebuild target tables from stored bodies (``store_bodies: true``), without a request.

    The result is a run with status "reextracted"; its fetch-log rows have
    ``attempts`` 0, since nothing was fetched.
    """
    from .backends import is_database_url, open_backend, output_name

    location = output if output is not None else spec.default_output
    wanted = selected_targets(spec, only)
    targets = [
        t for t in spec.targets if t.store_bodies and t.extract is not None and (wanted is None or t.name in wanted)
    ]
    if not targets:
        raise UsageError(f"{spec.source}: no target keeps bodies (store_bodies: true) to re-extract")
    if is_database_url(location):
        raise UsageError(f"{output_name(location)}: reextract works on SQLite outputs")
    database = Path(location)
    if not database.is_file():
        raise UsageError(f"{database}: no such database: re-extraction reads the bodies an earlier run stored")
    started = time.perf_counter()
    stats = RunStats({t.name: TargetStats() for t in targets})
    async with open_backend(database) as backend:
        run_id, sink = await backend.begin_reextraction(spec, targets)
        status = "failed"
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(sink.run(), name="crawlrunner-sink")
                async for stored in backend.stored_bodies(spec, targets):
                    outcome = _reextracted(spec, stored)
                    stats.add(outcome)
                    await sink.write(outcome)
                await sink.close()
            status = "reextracted"
        except BaseExceptionGroup as group:
            raise most_telling(group) from None
        finally:
            await backend.finish_run(run_id, status, targets, whole_crawl=True)
        facts = await backend.run_facts(run_id, spec, targets)
    checked = check_run(targets, facts, status, stats)
    return RunResult(
        run_id, database, status, stats, time.perf_counter() - started, checked.unmet,
        health=checked.health, facts=facts, notes=checked.notes,
    )  # fmt: skip


def _reextracted(spec: Spec, stored: StoredBody) -> Outcome:
    """What the target's rules make of a stored body now; it leads to no request."""
    from .extract import process

    plan = stored.plan
    if plan is None or plan.invalid is not None:  # re-extraction needs no secret: a masked URL will do
        plan = RequestPlan(spec.target(stored.target), mask_references(stored.url))
    fetch = FetchResult(
        stored.target, plan.method, plan.url, stored.fetched_at,
        final_url=mask_references(stored.final_url) if stored.final_url else None,
        status=stored.status, content_type=stored.content_type, charset=stored.charset, body=stored.body, attempts=0,
    )  # fmt: skip
    outcome = process(plan, fetch, derive=False)
    outcome.plan = None  # not a request of this run: no done mark to write
    return outcome


def stop_run(database: str, run_id: int) -> int:
    """Make every worker of run ``run_id`` in a shared (PostgreSQL) database finish and exit.

    Workers see it at their next heartbeat: requests in flight finish, the
    rest stay to do (starting workers again resumes the run). Returns how
    many workers were alive.
    """
    from . import runtime
    from .backends import is_database_url

    if not is_database_url(database):
        raise UsageError(
            f"{database}: stop works on a shared run (a postgresql:// URL); stop an SQLite run with Ctrl-C"
        )
    from .backends.postgres.backend import request_stop

    return runtime.run(request_stop(database, run_id))


run = blocking(
    run_async,
    "run",
    """Blocking form of ``run_async``, for scripts and notebooks; it takes the same arguments.

    The crawl runs on uvloop's loop when it is installed. Called where an
    event loop is already running (Jupyter, an async orchestrator's task), it
    runs the crawl on a loop of its own in a worker thread and waits for it,
    so ``stop``, ``reporter`` and ``opened`` are used on that thread's loop.
    Interrupting the wait (Ctrl-C, the notebook's stop button) cancels the
    crawl: everything fetched is committed and the run marked "interrupted".
    In async code, ``await run_async(...)`` instead.
    """,
)

reextract = blocking(reextract_async, "reextract", """Blocking form of ``reextract_async``; the same arguments.""")


async def _keep_host_stats(backend: Backend, run_id: int, stats: RunStats) -> None:
    """Keep how polite the session had to be; a database that cannot take it does not fail a finished crawl."""
    try:
        await backend.keep_host_stats(run_id, stats.hosts)
    except StorageError as exc:
        log.warning("run %d: the hosts' politeness counts were not kept (host_stats): %s", run_id, exc)
