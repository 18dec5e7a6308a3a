"""What a kill -9 costs: the requests a resume must fetch again are those in
flight, in the sink's queue and in the batch being committed — about one per
worker, plus a batch — never thousands."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from . import server_app
from .conftest import ENTRY_POINT

CONNECTIONS = 16
QUEUE = 64  # the sink's queue for this many workers (crawlrunner.backends.batching.queue_size)

SPEC = """
name: window
http: {{base_url: "{base}", limits: {{connections: 16, per_host: 0}}, retry: null}}
targets:
  - name: items
    url: /slow/window/0?n={{n}}
    vars: {{n: {{from: 1, to: 20000}}}}
    extract: {{fields: {{n: {{jmespath: n, type: int}}}}}}
"""


def _committed(db: Path) -> int:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM _crawlrunner_fetch_log").fetchone()[0])


def _wait_for_rows(db: Path, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if db.exists() and _committed(db) > 0:
                return
        except sqlite3.OperationalError:
            pass  # the layout is still being created
        time.sleep(0.02)
    raise AssertionError("the run never committed a row")


@pytest.mark.subprocess
@pytest.mark.timeout(120)
def test_a_kill_while_the_database_is_slow_loses_at_most_a_worker_pool_and_a_batch_of_work(
    server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(SPEC, base=server)
    db = tmp_path / "window.db"
    server_app.hits["window"] = 0
    child = subprocess.Popen(
        [str(ENTRY_POINT), "run", str(spec), "-o", str(db), "-q", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_rows(db, child)
        # Another writer holds the database: the crawl's commits wait (busy
        # timeout), as on a slow disk, while its workers keep fetching until
        # the sink's queue is full.
        with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            time.sleep(1.5)
            assert child.poll() is None, "the run ended before the kill"
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
            blocker.execute("ROLLBACK")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)

    fetched, committed = server_app.hits["window"], _committed(db)
    lost = fetched - committed
    # In flight + queued + one batch (a batch is what the queue held).
    assert 0 < lost <= CONNECTIONS + 2 * QUEUE, (fetched, committed)
