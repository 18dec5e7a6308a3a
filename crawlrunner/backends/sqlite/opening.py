"""Opening a run on an SQLite file: fresh, resumed, or retrying the last run's failures.

This is where a run's starting point is decided, from what earlier sessions
committed:

- **fresh**: a new ``runs`` row; every start request, numbered within its
  target in plan order. An unfinished earlier run is left alone (with a
  warning saying how to resume it).
- **resume**: the spec's last run. Refused if what the spec or one of its
  seed files fetches or stores changed since it began, except by adding
  targets (compared by the fingerprints of ``spec.fingerprints``, which say
  what counts): start requests are numbered within
  their target, so the other targets' numbers still say which are done. Start
  requests already done are skipped by number, saved derived requests come
  back as pending, and the URLs the run already followed are remembered, so
  nothing is fetched twice. A run that completed is resumed only for targets
  added since; otherwise there is nothing to do, and nothing is changed.
- **retry failed**: a new run whose only requests are the ones the last run
  of the spec failed, saved as pending first so that it can be resumed too.

Runs made before layout version 3 numbered start requests across the whole
spec; resuming one (under the very same spec) renumbers them first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace

from ...errors import ResumeError
from ...follow import start_hosts
from ...incremental import Cursors
from ...plan import RequestPlan, count_requests, plan_target
from ...spec.model import Spec, Target
from ..base import OpenedRun, RunLimits, Start
from ..local import LocalFrontier, LocalState, numbered
from ..recrawl import expected_keys, led_to_reader
from .store import DoneStarts, RunRow, Store
from .writer import SQLiteSink

log = logging.getLogger(__name__)

UNFINISHED = ("running", "interrupted", "failed", "limited")


async def open_run(store: Store, spec: Spec, targets: list[Target], start: Start, limits: RunLimits) -> OpenedRun:
    """Begin or resume a run of ``spec``'s ``targets`` in ``store``: its frontier and its sink."""
    await store.prepare_targets(t for t in targets if t.extract is not None)
    wanted = {t.name for t in targets}
    if start is Start.RESUME:
        run_id, resumed, whole_crawl, cursors = await _resume(store, spec, wanted)
        if resumed is None:  # it completed, and the spec adds nothing to it
            frontier = LocalFrontier(targets, LocalState(0))
            return OpenedRun(run_id, frontier, SQLiteSink(store, run_id, spec), already_completed=True)
        frontier = LocalFrontier(targets, _with_hosts(resumed, targets), limits)
    elif start is Start.RETRY_FAILED:
        run_id, frontier = await _begin_retry(store, spec, targets, limits)
        whole_crawl, cursors = False, await store.cursors(spec, run_id)  # for the child requests it leads to
    else:
        await _warn_if_unfinished(store, spec)
        run_id, whole_crawl = await store.begin_run(spec), True
        cursors = await store.cursors(spec, run_id)
        state = LocalState(await store.next_request_id(run_id), start=_start_requests(spec, wanted, cursors=cursors))
        frontier = LocalFrontier(targets, _with_hosts(state, targets), limits)
    validators = await store.validators(targets, expected_keys(spec, targets))
    earlier = await store.counts_by_target(run_id) if start is Start.RESUME else {}
    return OpenedRun(
        run_id, frontier, SQLiteSink(store, run_id, spec), validators, led_to_reader(spec, store.led_to),
        whole_crawl=whole_crawl, cursors=cursors, last_runs=await store.last_runs(spec, run_id), earlier=earlier,
    )  # fmt: skip


async def _begin_retry(store: Store, spec: Spec, targets: list[Target], limits: RunLimits) -> tuple[int, LocalFrontier]:
    """A new run of the requests the spec's last run failed, recorded with them in one transaction."""
    await _warn_if_unfinished(store, spec)
    previous = await store.last_run(spec)
    if previous is None:
        raise ResumeError(f"{store.path}: no earlier run of {spec.name!r} to retry")
    wanted = {t.name for t in targets}
    failed = await store.failed_requests(spec, previous.id)
    async with store.transaction("record the retry"):
        run_id = await store.begin_run(spec, retry_of=previous.id)
        # Fresh ids (from the frontier): these are this run's requests now,
        # saved as pending with the run's row, so that it can be resumed.
        state = LocalState(
            await store.next_request_id(run_id), pending=[_as_retry(p) for p in failed if p.target.name in wanted]
        )
        frontier = LocalFrontier(targets, _with_hosts(state, targets), limits)
        await store.save_pending(run_id, spec, state.pending)
    return run_id, frontier


async def _resume(store: Store, spec: Spec, wanted: set[str]) -> tuple[int, LocalState | None, bool, Cursors]:
    """The run to resume, where it starts from (None: it completed, nothing to add), if it is a whole crawl, its cursors.

    The cursors are what they were when the run began: only completed runs before it count.
    """
    run = await store.last_run(spec)
    if run is None or run.status not in (*UNFINISHED, "completed"):
        raise ResumeError(f"{store.path}: no unfinished run of {spec.name!r} to resume")
    added = _added_targets(store, spec, run)
    if run.fingerprints is None and run.status != "completed":
        # Numbered across the spec by a release before layout version 3 (and the spec is the same).
        await store.renumber_start_requests(run.id, _spec_wide_offsets(spec), spec)
    # Added targets this session does not run stay "added" for a later resume;
    # a retry of failures takes none (it has no start requests).
    joining = [name for name in added if name in wanted and run.retry_of is None]
    if run.retry_of is not None and any(name in wanted for name in added):
        raise ResumeError(
            f"{store.path}: run {run.id} retries the failures of run {run.retry_of}; the targets added to the spec "
            f"since ({', '.join(added)}) are not part of it. Run without --resume to fetch them."
        )
    cursors = await store.cursors(spec, run.id)
    if run.status == "completed":
        if not joining:
            return run.id, None, run.retry_of is None, cursors
        wanted = set(joining)  # every other target's requests were done
    # A retry of failures has no start requests: all it does is saved, pending.
    starts = set() if run.retry_of is not None else wanted
    saved = await store.resume_state(spec, run.id)
    state = LocalState(
        await store.next_request_id(run.id),
        start=_start_requests(spec, starts, saved.done, cursors),
        pending=[p for p in saved.pending if p.target.name in wanted],
        followed=saved.followed,
        sitemap_documents=saved.sitemap_documents,
        sitemap_urls=saved.sitemap_urls,
    )
    fingerprints = spec.fingerprints
    if run.fingerprints is not None:
        fingerprints = run.fingerprints.joined_by(joining, spec.fingerprints)
    await store.reopen_run(run.id, spec, fingerprints)
    log.info(
        "resuming run %d: %d start requests done, %d saved requests pending%s",
        run.id, sum(map(len, saved.done.values())), len(state.pending),
        f"; targets joining it: {', '.join(joining)}" if joining else "",
    )  # fmt: skip
    return run.id, state, run.retry_of is None, cursors


def _added_targets(store: Store, spec: Spec, run: RunRow) -> list[str]:
    """The targets ``spec`` adds to the run; ``ResumeError`` if anything else changed since it began."""
    if run.fingerprints is not None:
        added = spec.fingerprints.added_since(run.fingerprints)
    else:  # made before layout version 3: only its whole-spec digest to go by
        added = [] if run.spec_hash == spec.digest else None
    if added is None:
        raise ResumeError(
            f"{store.path}: the spec (or a seed file) changed since run {run.id} started; "
            "resuming would fetch a different crawl. Run without --resume to start afresh."
        )
    return added


async def _warn_if_unfinished(store: Store, spec: Spec) -> None:
    run = await store.last_run(spec)
    if run is not None and run.status in UNFINISHED:
        log.warning(
            "run %d of %r did not finish (%s); `crawlrunner run --resume` continues it. Starting a new run.",
            run.id, spec.name, run.status,
        )  # fmt: skip


def _start_requests(
    spec: Spec, wanted: set[str], done: Mapping[str, DoneStarts] | None = None, cursors: Cursors | None = None
) -> Iterator[RequestPlan]:
    """The start requests of the ``wanted`` targets, lazily, without those ``done``; incremental ones from ``cursors``.

    Numbered within each target: the numbers of one target do not depend on
    which others the spec has, or which a session runs.
    """
    for target in spec.targets:
        if target.name in wanted:
            finished = done.get(target.name, DoneStarts()) if done else DoneStarts()
            plans = plan_target(target, cursors)
            yield from numbered(plans, skip_below=finished.low_water, skip=set(finished.above))


def _spec_wide_offsets(spec: Spec) -> dict[str, int]:
    """Each target's first start-request number when they were numbered across the spec (layouts before 3)."""
    offsets, first = {}, 0
    for target in spec.targets:
        if first:
            offsets[target.name] = first
        first += count_requests(target) or 0  # None: a child target, which has no start requests
    return offsets


def _with_hosts(state: LocalState, targets: list[Target]) -> LocalState:
    """``state`` with the start hosts of its link-following targets, from the spec (see ``FollowScope``)."""
    state.start_hosts = {t.name: start_hosts(t) for t in targets if t.follow is not None and not t.follow.domains}
    return state


def _as_retry(plan: RequestPlan) -> RequestPlan:
    """A failed request, for a new run: fresh ids; a page keeps its place in its chain (max_pages still holds)."""
    return replace(plan, request_id=None, seq=None)
