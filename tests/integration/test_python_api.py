"""``crawlrunner.run`` as a notebook or an orchestrator calls it: inside a running loop, with run_async's arguments."""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import crawlrunner
from crawlrunner.api import reextract_async, run_async
from crawlrunner.progress import LiveView

from ..conftest import query

Spec = Callable[..., Path]

ITEMS = """
name: items
http: {{base_url: "{base}", retry: null}}
targets:
  - name: items
    urls: [/json/item/1, /json/item/2, /json/item/3]
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}
"""


async def test_run_inside_a_running_loop_crawls_on_a_worker_threads_loop(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    spec = crawlrunner.load_spec(write_spec(ITEMS, base=server))
    opened_on: list[threading.Thread] = []

    # The sync call from a coroutine, as a Jupyter cell makes it: asyncio.run would refuse.
    result = crawlrunner.run(spec, output=db_path, opened=lambda _: opened_on.append(threading.current_thread()))

    assert result.ok
    assert query(db_path, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (3,)]
    assert opened_on and opened_on[0] is not threading.current_thread()
    assert opened_on[0].name == "crawlrunner-loop"
    assert asyncio.get_running_loop().is_running()  # the caller's loop is left as it was


async def test_a_spec_error_inside_a_running_loop_is_raised_to_the_caller(
    server: str, write_spec: Spec, tmp_path: Path
) -> None:
    spec = crawlrunner.load_spec(write_spec(ITEMS, base=server))
    (tmp_path / "a-directory.db").mkdir()

    with pytest.raises(crawlrunner.StorageError):
        crawlrunner.run(spec, output=tmp_path / "a-directory.db")


async def test_interrupting_a_run_inside_a_loop_stops_the_crawl_and_commits_it(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    slow = ", ".join(f"'/slow/pyapi/5?n={i}'" for i in range(4))
    text = ITEMS + f"  - {{{{name: slow, urls: [{slow}]}}}}\n"
    spec = crawlrunner.load_spec(write_spec(text, base=server))

    def interrupt_soon(_: int) -> None:
        # What the notebook's interrupt button does: a SIGINT to the kernel, whose main thread waits in run().
        main = threading.main_thread().ident
        assert main is not None
        threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()

    # Jupyter's kernel keeps Python's own SIGINT handler; the test's runner put asyncio's in its place.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            crawlrunner.run(spec, output=db_path, opened=interrupt_soon)
    finally:
        signal.signal(signal.SIGINT, previous)

    assert query(db_path, "SELECT status FROM _crawlrunner_runs") == [("interrupted",)]
    assert query(db_path, "SELECT count(*) FROM items") == [(3,)]


def test_run_and_reextract_take_exactly_their_async_forms_arguments() -> None:
    assert inspect.signature(crawlrunner.run) == inspect.signature(run_async)
    assert inspect.signature(crawlrunner.reextract) == inspect.signature(reextract_async)
    assert crawlrunner.run.__name__ == "run"
    assert "worker thread" in (crawlrunner.run.__doc__ or "")


def test_run_passes_stop_limits_and_the_progress_reporter_through(
    server: str, write_spec: Spec, tmp_path: Path
) -> None:
    spec = crawlrunner.load_spec(write_spec(ITEMS, base=server))
    seen: list[int] = []

    class Counting:
        async def run(self, view: LiveView) -> None:
            while True:
                seen.append(view.stats.totals.requests)
                await asyncio.sleep(0.01)

    limited = crawlrunner.run(spec, output=tmp_path / "a.db", max_requests=2, reporter=Counting())
    stop = asyncio.Event()
    stop.set()
    stopped = crawlrunner.run(spec, output=tmp_path / "b.db", stop=stop)

    assert (limited.status, limited.totals.requests) == ("limited", 2)
    assert seen
    assert stopped.status == "interrupted"


def test_a_run_results_repr_is_one_short_line(server: str, write_spec: Spec, db_path: Path) -> None:
    spec = crawlrunner.load_spec(write_spec(ITEMS, base=server))

    result = crawlrunner.run(spec, output=db_path)

    assert repr(result) == f"<RunResult run 1 completed: 3 requests, 3 records in {db_path}>"
