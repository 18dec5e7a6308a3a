"""A worker killed with SIGKILL while it holds requests: the others take them back after the worker
timeout, and the run ends soon after, with nothing lost."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .app import Site
from .conftest import TIMEOUT, Workers, check_flat, fetch, fetched, flat_spec, runs, wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(90)]

COUNT = 150
# After the kill: the timeout, a heartbeat round (timeout / 6) for a live worker
# to see it, a claim poll, a request (≤ 0.2 s) and its commit, then the
# workers' exit; a second for the machine being busy.
MARGIN = TIMEOUT / 6 + 0.25 + 0.2 + 1.0


def test_a_killed_workers_requests_are_taken_over_within_the_timeout(
    serve: Callable[..., Site], workers: Workers, pg_url: str, tmp_path: Path
) -> None:
    site = serve(latency=(0.1, 0.2))
    spec = flat_spec(tmp_path, site, "paced", COUNT, name="dead", connections=3, per_host=0)
    crew = [workers.run(spec, pg_url) for _ in range(3)]
    wait_until(lambda: fetched(pg_url) >= 0.8 * COUNT, 60, "most of the crawl")
    run_id = int(fetch(pg_url, "SELECT id FROM _crawlrunner_runs")[0][0])

    # The victim: a worker holding requests now, late in the run, so that its
    # requests are what the run waits for.
    def holder() -> tuple[int, int] | None:
        rows = fetch(
            pg_url,
            "SELECT w.pid, w.id FROM _crawlrunner_requests r JOIN _crawlrunner_workers w ON w.id = r.lease_owner"
            " WHERE r.state = 'leased' GROUP BY w.pid, w.id ORDER BY count(*) DESC LIMIT 1",
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    pid, worker_id = wait_until(holder, 10, "a worker holding requests")
    victim = next(w for w in crew if w.pid == pid)
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait(10)
    held = [
        int(r[0])
        for r in fetch(
            pg_url, "SELECT id FROM _crawlrunner_requests WHERE state = 'leased' AND lease_owner = $1", worker_id
        )
    ]
    print(f"killed {victim.name} (worker {worker_id}) holding requests {held}; {fetched(pg_url)}/{COUNT} committed")
    assert held, "the victim committed everything it held before it died: nothing to take back"

    def taken_back() -> bool:
        states = fetch(pg_url, "SELECT state FROM _crawlrunner_requests WHERE id = ANY($1::bigint[])", held)
        return all(s[0] == "done" for s in states)

    wait_until(taken_back, TIMEOUT + MARGIN + 10, "the victim's requests to be done by the others", every=0.02)
    redone = time.monotonic() - killed
    others = [w for w in crew if w is not victim]
    codes = {w.name: w.wait(TIMEOUT + MARGIN + 10) for w in others}
    ended = time.monotonic() - killed
    print(f"its requests done {redone:.2f} s after the kill; the others exited {ended:.2f} s after it: {codes}")

    assert codes == {w.name: 0 for w in others}
    # Not before the timeout (they were the dead worker's), nor long after it.
    assert TIMEOUT - TIMEOUT / 6 - 0.1 <= redone <= TIMEOUT + MARGIN, redone
    assert ended <= TIMEOUT + MARGIN + 0.5, ended
    rows = fetch(pg_url, "SELECT worker_id FROM _crawlrunner_fetch_log WHERE request_id = ANY($1::bigint[])", held)
    assert len(rows) == len(held) and worker_id not in {r[0] for r in rows}, rows
    lost = fetch(pg_url, "SELECT status FROM _crawlrunner_workers WHERE id = $1", worker_id)[0][0]
    assert lost == "lost"
    assert [(r["id"], r["status"]) for r in runs(pg_url)] == [(run_id, "completed")]
    check_flat(pg_url, site, "paced", COUNT, run_id)
