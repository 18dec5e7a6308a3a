"""How the shared writer loop gathers a batch: never longer than it takes for a whole batch to arrive.

A local file's writer lets outcomes gather between commits (``commit_interval``),
but a full queue makes every ``write`` wait, and the engine with it: the
gathering must end as soon as the batch is whole, not when the interval does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from crawlrunner.backends.batching import BatchingSink
from crawlrunner.results import FetchResult, Outcome, utc_now
from crawlrunner.spec import load_spec_text

SPEC = """
name: gathering
http: {base_url: "http://shop.test", limits: {connections: 4}}
targets:
  - {name: items, url: /item/1, extract: {fields: {id: id}}}
"""
# Far longer than any test may take: a test that waits for it fails on its timeout.
INTERVAL = 3600.0


class RecordingSink(BatchingSink):
    """Commits nothing anywhere: it records each batch's size, and can hold a commit until released."""

    commit_interval = INTERVAL

    def __init__(self) -> None:
        super().__init__(load_spec_text(SPEC))
        self.batches: list[int] = []
        self.committed = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def commit(self, batch: list[Outcome]) -> None:
        await self.release.wait()
        self.batches.append(len(batch))
        self.committed.set()


def _outcome(n: int) -> Outcome:
    return Outcome(FetchResult("items", "GET", f"http://shop.test/item/{n}", utc_now()))


@asynccontextmanager
async def _writing(sink: RecordingSink) -> AsyncIterator[None]:
    """The sink's writer running for the block; cancelled after it (which commits what it took)."""
    writer = asyncio.create_task(sink.run())
    try:
        yield
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def _committed(sink: RecordingSink, sizes: list[int]) -> None:
    while sink.batches != sizes:
        sink.committed.clear()
        await asyncio.wait_for(sink.committed.wait(), 10)


async def test_a_batch_is_committed_as_soon_as_it_is_whole_not_after_the_interval() -> None:
    sink = RecordingSink()
    size = sink.queue.maxsize
    async with _writing(sink):
        await sink.write(_outcome(0))  # the first commit goes at once: no commit came before it
        await _committed(sink, [1])
        # The next one is taken and the writer gathers for the interval; a
        # whole batch arriving ends that at once.
        for n in range(1, size + 1):
            await sink.write(_outcome(n))
        await _committed(sink, [1, size])


async def test_a_queue_already_full_when_a_batch_starts_is_committed_without_gathering() -> None:
    sink = RecordingSink()
    size = sink.queue.maxsize
    async with _writing(sink):
        sink.release.clear()  # the first commit is slow: everything after it queues up meanwhile
        await sink.write(_outcome(0))
        while not sink.queue.empty():  # the writer took it: its commit is the slow one
            await asyncio.sleep(0)
        for n in range(1, size + 1):
            await sink.write(_outcome(n))
        assert sink.queue.full()
        sink.release.set()
        await _committed(sink, [1, size])


async def test_a_slow_crawl_still_gathers_for_the_interval() -> None:
    # The other side of it: a batch that is not whole waits (here, for the
    # interval of an hour) instead of committing each outcome alone.
    sink = RecordingSink()
    async with _writing(sink):
        await sink.write(_outcome(0))
        await _committed(sink, [1])
        await sink.write(_outcome(1))
        await asyncio.sleep(0.2)
        assert sink.batches == [1]
    assert sink.batches == [1, 1]  # a cancel commits what was taken while it gathered
