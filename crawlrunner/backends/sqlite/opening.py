"""Opening a run on an SQLite file: fresh, resumed, or retrying the last run's failures.

This is where a run's starting point is decided, from what earlier sessions
committed:

- **fresh**: a new ``runs`` row; every start request, numbered in plan order.
  An unfinished earlier run is left alone (with a warning saying how to
  resume it).
- **resume**: the spec's last unfinished run, refused if the spec or one of
  its seed files changed since it began. Start requests already done are
  skipped by number, saved derived requests come back as pending, and the
  URLs the run already followed are remembered, so nothing is fetched twice.
- **retry failed**: a new run whose only requests are the ones the last run
  of the spec failed, saved as pending first so that it can be resumed too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

from ...errors import ResumeError
from ...follow import start_hosts
from ...plan import RequestPlan, plan_requests
from ...spec.model import Spec, Target
from ..base import OpenedRun, RunLimits, Start
from ..local import LocalFrontier, LocalState, numbered
from .store import Store
from .writer import SQLiteSink

log = logging.getLogger(__name__)


async def open_run(store: Store, spec: Spec, targets: list[Target], start: Start, limits: RunLimits) -> OpenedRun:
    """Begin or resume a run of ``spec``'s ``targets`` in ``store``: its frontier and its sink."""
    await store.prepare_targets(t for t in targets if t.extract is not None)
    wanted = {t.name for t in targets}
    if start is Start.RESUME:
        run_id, state = await _resume(store, spec, wanted)
    else:
        await _warn_if_unfinished(store, spec)
        previous = await store.latest_run(spec) if start is Start.RETRY_FAILED else None
        if start is Start.RETRY_FAILED and previous is None:
            raise ResumeError(f"{store.path}: no earlier run of {spec.name!r} to retry")
        run_id = await store.begin_run(spec)
        state = LocalState(await store.next_request_id(run_id))
        if previous is None:
            state.start = _start_requests(spec, wanted)
        else:
            # Fresh ids (from the frontier): these are this run's requests now.
            failed = await store.failed_requests(spec, previous)
            state.pending = [_as_retry(p) for p in failed if p.target.name in wanted]
    state.start_hosts = {t.name: start_hosts(t) for t in targets if t.follow is not None and not t.follow.domains}
    frontier = LocalFrontier(targets, state, limits)
    if start is Start.RETRY_FAILED:
        await store.save_pending(run_id, spec, state.pending)  # numbered by the frontier, so resumable
    return OpenedRun(
        run_id,
        frontier,
        SQLiteSink(store, run_id, spec),
        validators=await store.validators(targets),
        whole_crawl=start is not Start.RETRY_FAILED,
    )


async def _resume(store: Store, spec: Spec, wanted: set[str]) -> tuple[int, LocalState]:
    unfinished = await store.unfinished_run(spec)
    if unfinished is None:
        raise ResumeError(f"{store.path}: no unfinished run of {spec.name!r} to resume")
    run_id, _, digest = unfinished
    if digest != spec.digest:
        raise ResumeError(
            f"{store.path}: the spec (or a seed file) changed since run {run_id} started; "
            "resuming would fetch a different crawl. Run without --resume to start afresh."
        )
    saved = await store.resume_state(spec, run_id)
    state = LocalState(
        await store.next_request_id(run_id),
        start=_start_requests(spec, wanted, skip_below=saved.low_water, skip=saved.done_above),
        pending=[p for p in saved.pending if p.target.name in wanted],
        followed=saved.followed,
    )
    await store.reopen_run(run_id)
    log.info(
        "resuming run %d: %d start requests done, %d saved requests pending",
        run_id, saved.low_water + len(saved.done_above), len(state.pending),
    )  # fmt: skip
    return run_id, state


async def _warn_if_unfinished(store: Store, spec: Spec) -> None:
    unfinished = await store.unfinished_run(spec)
    if unfinished is not None:
        log.warning(
            "run %d of %r did not finish (%s); `crawlrunner run --resume` continues it. Starting a new run.",
            unfinished[0], spec.name, unfinished[1],
        )  # fmt: skip


def _start_requests(
    spec: Spec, wanted: set[str], *, skip_below: int = 0, skip: set[int] | None = None
) -> Iterator[RequestPlan]:
    # Numbered over the whole spec, then filtered: a start request keeps its
    # number whichever targets a session runs.
    numbered_plans = numbered(plan_requests(spec), skip_below=skip_below, skip=skip)
    return (p for p in numbered_plans if p.target.name in wanted)


def _as_retry(plan: RequestPlan) -> RequestPlan:
    return replace(plan, request_id=None, seq=None, chain=None)
