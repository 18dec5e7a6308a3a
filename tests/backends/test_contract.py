"""The contract every backend keeps, run against each of them (SQLite today).

The engine relies on these and nothing else: a record and its request's done
mark commit together (so do the requests it led to and its fetch-log row);
a run opened again resumes from exactly what was committed; a retry brings
back only the failed requests. A new backend joins the ``opener`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from crawlrunner.backends import open_backend
from crawlrunner.backends.base import Backend, OpenedRun, Start
from crawlrunner.backends.batching import COMMIT_INTERVAL
from crawlrunner.errors import ErrorKind, ResumeError, StorageError
from crawlrunner.extract import process
from crawlrunner.plan import RequestPlan
from crawlrunner.results import FetchResult, Outcome, utc_now
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec

from ..conftest import query

SPEC = """
name: contract
http: {base_url: "http://shop.test"}
targets:
  - name: lists
    url: /list/{n}
    vars: {n: {from: 1, to: 3}}
    extract:
      records: items
      fields: {id: {jmespath: id, type: int}}
  - name: details
    parent: lists
    url: /item/{id}
    extract: {fields: {id: {jmespath: id, type: int}, name: name}}
"""


def _spec() -> Spec:
    return load_spec_text(SPEC)


Opener = Callable[[], AbstractAsyncContextManager[Backend]]


@pytest.fixture(params=["sqlite"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        return lambda: open_backend(tmp_path / "out.db")
    raise AssertionError(request.param)


def _response(plan: RequestPlan, body: bytes) -> Outcome:
    fetch = FetchResult(
        plan.target.name, plan.method, plan.url, utc_now(), status=200, content_type="application/json", body=body
    )
    return process(plan, fetch, children=_spec().children(plan.target.name) if plan.target.name == "lists" else ())


async def _one(run: OpenedRun, body: bytes) -> tuple[RequestPlan, Outcome]:
    """Claim the next request and build its outcome as the engine would (admitted derived requests)."""
    plan = await run.frontier.claim()
    assert plan is not None
    outcome = _response(plan, body)
    outcome.derived = run.frontier.admit(plan, outcome)
    return plan, outcome


async def _crawl(run: OpenedRun, *, failing: str | None = None) -> None:
    """Drive ``run`` to its end as the engine would: every page an empty list, ``failing`` URLs a 503."""
    writer = asyncio.create_task(run.sink.run())
    while (plan := await run.frontier.claim()) is not None:
        fetch = FetchResult(plan.target.name, plan.method, plan.url, utc_now(), status=503)
        if failing is not None and plan.url.endswith(failing):
            fetch.error_kind, fetch.error = ErrorKind.HTTP_STATUS, "503"
        else:
            fetch.status, fetch.body, fetch.content_type = 200, b'{"items": []}', "application/json"
        outcome = process(plan, fetch)
        outcome.derived = run.frontier.admit(plan, outcome)
        await run.sink.write(outcome)
        await run.frontier.complete(plan, outcome.derived)
    await run.sink.close()
    await writer


async def test_a_record_its_done_mark_and_the_requests_it_led_to_commit_together(opener: Opener) -> None:
    spec = _spec()
    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        writer = asyncio.create_task(run.sink.run())
        plan, outcome = await _one(run, b'{"items": [{"id": 7}, {"id": 8}]}')
        assert [p.url for p in outcome.derived] == ["http://shop.test/item/7", "http://shop.test/item/8"]
        await run.sink.write(outcome)
        await run.frontier.complete(plan, outcome.derived)
        await run.sink.flush()
        # Derived work is served first: a child page, fetched but never handed to the sink.
        lost, _ = await _one(run, b'{"id": 7, "name": "kettle"}')
        assert lost.url == "http://shop.test/item/7"
        writer.cancel()  # cancelling the sink commits what it was handed, and only that
        with pytest.raises(asyncio.CancelledError):
            await writer
        await backend.finish_run(run.run_id, "interrupted", spec.targets, whole_crawl=True)

    async with opener() as backend:
        resumed = await backend.open_run(spec, list(spec.targets), Start.RESUME)
        assert resumed.run_id == run.run_id
        claimed = []
        while len(claimed) < 4:
            next_plan = await resumed.frontier.claim()
            assert next_plan is not None
            claimed.append(next_plan)
        # The saved child requests first (the one fetched but not committed is
        # among them), then the start requests not yet done: list 1 is done.
        assert [p.url for p in claimed] == [
            "http://shop.test/item/7",
            "http://shop.test/item/8",
            "http://shop.test/list/2",
            "http://shop.test/list/3",
        ]
        assert claimed[0].parent == {"id": 7}
        assert {p.request_id for p in claimed[:2]} == {p.request_id for p in outcome.derived}
        for each in claimed:
            await resumed.frontier.release(each)
        await backend.finish_run(resumed.run_id, "interrupted", spec.targets, whole_crawl=True)
    database = Path(backend.name)
    assert query(database, "SELECT id FROM lists ORDER BY id") == [(7,), (8,)]
    assert query(database, "SELECT count(*) FROM details") == [(0,)]
    assert query(database, "SELECT url FROM _crawlrunner_fetch_log") == [("http://shop.test/list/1",)]


async def test_an_outcome_taken_while_the_writer_gathers_a_batch_is_committed_on_cancel(opener: Opener) -> None:
    # Commits come at most every COMMIT_INTERVAL: a cancel during that wait must
    # still commit the outcome the writer had already taken from its queue.
    spec = _spec()
    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        writer = asyncio.create_task(run.sink.run())
        for _ in range(2):
            plan, outcome = await _one(run, b'{"items": []}')
            await run.sink.write(outcome)
            await run.frontier.complete(plan, outcome.derived)
            await asyncio.sleep(COMMIT_INTERVAL / 5)  # the second is taken within the first's interval
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        await backend.finish_run(run.run_id, "interrupted", spec.targets, whole_crawl=True)
    assert query(Path(backend.name), "SELECT url FROM _crawlrunner_fetch_log ORDER BY id") == [
        ("http://shop.test/list/1",),
        ("http://shop.test/list/2",),
    ]


async def test_a_batch_that_fails_to_commit_leaves_nothing_of_itself(opener: Opener) -> None:
    spec = _spec()
    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        plan, outcome = await _one(run, b'{"items": [{"id": 1}]}')
        broken = Outcome(FetchResult("no_such_target", "GET", "http://shop.test/x", utc_now()))
        writer = asyncio.create_task(run.sink.run())
        await run.sink.write(outcome)
        await run.sink.write(broken)  # same batch; its target does not exist, so the batch cannot commit
        with pytest.raises((KeyError, StorageError)):
            await writer
        await backend.finish_run(run.run_id, "failed", spec.targets, whole_crawl=True)
    database = Path(backend.name)
    assert query(database, "SELECT count(*) FROM lists") == [(0,)]
    assert query(database, "SELECT count(*) FROM _crawlrunner_requests") == [(0,)]
    assert query(database, "SELECT count(*) FROM _crawlrunner_fetch_log") == [(0,)]


async def test_resume_is_refused_without_an_unfinished_run_or_after_the_spec_changed(opener: Opener) -> None:
    spec = _spec()
    async with opener() as backend:
        with pytest.raises(ResumeError, match="no unfinished run of 'contract' to resume"):
            await backend.open_run(spec, list(spec.targets), Start.RESUME)
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        await backend.finish_run(run.run_id, "interrupted", spec.targets, whole_crawl=True)
        changed = load_spec_text(SPEC.replace("to: 3", "to: 4"))
        with pytest.raises(ResumeError, match="changed since run"):
            await backend.open_run(changed, list(changed.targets), Start.RESUME)


async def test_retrying_failures_starts_a_new_run_with_only_the_failed_requests(opener: Opener) -> None:
    spec = _spec()
    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        await _crawl(run, failing="/2")
        await backend.finish_run(run.run_id, "completed", spec.targets, whole_crawl=True)
        assert await backend.failures_by_target(run.run_id) == {"lists": 1}
        assert await backend.run_totals(run.run_id) == (3, 0)

        retry = await backend.open_run(spec, list(spec.targets), Start.RETRY_FAILED)
        assert retry.run_id != run.run_id and not retry.whole_crawl
        again = await retry.frontier.claim()
        assert again is not None and again.url == "http://shop.test/list/2" and again.seq is None
        await retry.frontier.release(again)
        await backend.finish_run(retry.run_id, "interrupted", spec.targets, whole_crawl=False)


async def test_resuming_a_completed_run_changes_nothing_unless_the_spec_added_targets(opener: Opener) -> None:
    spec = _spec()
    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        await _crawl(run)
        await backend.finish_run(run.run_id, "completed", spec.targets, whole_crawl=True)

        again = await backend.open_run(spec, list(spec.targets), Start.RESUME)
        assert again.run_id == run.run_id and again.already_completed
        assert await again.frontier.claim() is None
        database = Path(backend.name)
        assert query(database, "SELECT status, resumed FROM _crawlrunner_runs") == [("completed", 0)]

        # A target added (first in the list): the run goes on with its requests only.
        grown = load_spec_text(SPEC.replace("targets:\n", "targets:\n  - {name: extra, url: /extra}\n"))
        extended = await backend.open_run(grown, list(grown.targets), Start.RESUME)
        assert extended.run_id == run.run_id and not extended.already_completed
        added = await extended.frontier.claim()
        assert added is not None and (added.url, added.seq) == ("http://shop.test/extra", 0)
        await extended.frontier.release(added)
        assert await extended.frontier.claim() is None
        await backend.finish_run(extended.run_id, "interrupted", grown.targets, whole_crawl=True)


PAGED = """
name: paged
http: {base_url: "http://shop.test"}
targets:
  - name: pages
    url: /items
    paginate: {type: page_number, max_pages: 3}
    extract: {records: items, fields: {id: {jmespath: id, type: int}}}
"""


async def test_a_retried_page_keeps_its_place_in_its_chain(opener: Opener) -> None:
    """Page 2 of a max_pages: 3 chain fails; retried, it goes on to page 3 and stops there, counting from page 1."""
    spec = load_spec_text(PAGED)

    def answer(plan: RequestPlan, status: int) -> Outcome:
        fetch = FetchResult(plan.target.name, plan.method, plan.url, utc_now(), status=status)
        if status == 200:
            fetch.body, fetch.content_type = b'{"items": [{"id": 1}, {"id": 2}]}', "application/json"
        else:
            fetch.error_kind, fetch.error = ErrorKind.HTTP_STATUS, str(status)
        return process(plan, fetch)

    async def step(run: OpenedRun, status: int) -> Outcome:
        plan = await run.frontier.claim()
        assert plan is not None
        outcome = answer(plan, status)
        outcome.derived = run.frontier.admit(plan, outcome)
        await run.sink.write(outcome)
        await run.frontier.complete(plan, outcome.derived)
        return outcome

    async with opener() as backend:
        run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
        writer = asyncio.create_task(run.sink.run())
        await step(run, 200)
        failed = await step(run, 503)
        assert failed.fetch.url == "http://shop.test/items?page=2" and failed.chain_end is not None
        await run.sink.close()
        await writer
        await backend.finish_run(run.run_id, "completed", spec.targets, whole_crawl=True)

        retry = await backend.open_run(spec, list(spec.targets), Start.RETRY_FAILED)
        writer = asyncio.create_task(retry.sink.run())
        second = await step(retry, 200)
        third = await step(retry, 200)
        assert await retry.frontier.claim() is None
        await retry.sink.close()
        await writer
        await backend.finish_run(retry.run_id, "completed", spec.targets, whole_crawl=False)

    assert [p.url for p in second.derived] == ["http://shop.test/items?page=3"]
    assert third.chain_end is not None
    assert (third.chain_end.reason, third.chain_end.pages, third.chain_end.items) == ("max_pages", 3, 6)
