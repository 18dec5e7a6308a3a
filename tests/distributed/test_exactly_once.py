"""The headline guarantee: many worker processes, some killed with SIGKILL and one paused past its
lease, store every record of a shared run exactly once.

Three ``crawlrunner run`` processes share a run (pagination, parent → child
requests, link following). While it goes, one is killed with ``kill -9``
and a replacement started, three times; then another is stopped with
SIGSTOP for longer than the worker timeout (the others declare it lost and
take its requests over) and continued: it must find its leases gone, drop
its late outcomes, and carry on. The server is slow (100-200 ms a request)
so that all of this lands mid-run.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from .app import Site
from .conftest import TIMEOUT, Worker, Workers, check_crawl, crawl_spec, fetch, fetched, runs, wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(150)]

PAUSE = TIMEOUT * 1.75  # SIGSTOP this long: past the worker timeout, with a heartbeat round to spare


def worker_row(url: str, pid: int) -> tuple[int, str] | None:
    """(id, status) of the newest ``workers`` row of process ``pid``."""
    rows = fetch(url, "SELECT id, status FROM _crawlrunner_workers WHERE pid = $1 ORDER BY id DESC LIMIT 1", pid)
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def reapable(url: str, worker_id: int) -> list[int]:
    """Requests leased to ``worker_id`` that no transaction holds: what the reaper can take back.

    (A worker stopped in the middle of a commit holds its requests' rows
    locked; the reaper skips those, and the commit goes through, fenced, when
    the worker wakes up.)
    """

    async def go() -> list[int]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT id FROM _crawlrunner_requests WHERE state = 'leased' AND lease_owner = $1 FOR UPDATE SKIP LOCKED",
                    worker_id,
                )
                return [int(r[0]) for r in rows]
        finally:
            await conn.close(timeout=10)

    return asyncio.run(go())


def leased_ids(url: str, worker_id: int) -> set[int]:
    return {
        int(r[0])
        for r in fetch(
            url, "SELECT id FROM _crawlrunner_requests WHERE state = 'leased' AND lease_owner = $1", worker_id
        )
    }


def leased_by(url: str, worker_id: int) -> int:
    return len(leased_ids(url, worker_id))


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_and_paused_workers_store_every_record_exactly_once(
    seed: int, serve: Callable[..., Site], workers: Workers, pg_url: str, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    site = serve(pages=30, per_page=10, site_pages=80, latency=(0.1, 0.2))
    spec = crawl_spec(tmp_path, site, name="exactly_once", connections=3)
    total = len(site.list_paths) + len(site.detail_paths) + len(site.site_paths)  # 410 requests
    events: list[str] = []
    began = time.monotonic()

    def note(what: str) -> None:
        line = f"{time.monotonic() - began:6.2f} s  {fetched(pg_url):3d}/{total} committed  {what}"
        events.append(line)
        print(line)

    live: list[Worker] = [workers.run(spec, pg_url) for _ in range(3)]
    wait_until(lambda: fetched(pg_url) >= 10, 30, "the first commits")
    run_id = int(fetch(pg_url, "SELECT id FROM _crawlrunner_runs")[0][0])
    note(f"run {run_id} going, workers {[w.pid for w in live]}")

    killed: list[Worker] = []
    for cycle, share in enumerate((0.08, 0.18, 0.28), 1):
        threshold = share * total
        wait_until(lambda: fetched(pg_url) >= threshold, 60, f"{share:.0%} of the crawl")  # noqa: B023
        victim = rng.choice([w for w in live if w.alive()])
        row = worker_row(pg_url, victim.pid)
        leases = leased_by(pg_url, row[0]) if row else 0
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        live.remove(victim)
        killed.append(victim)
        replacement = workers.run(spec, pg_url)
        live.append(replacement)
        note(f"cycle {cycle}: kill -9 {victim.name} (pid {victim.pid}, {leases} leased); started {replacement.name}")

    wait_until(lambda: fetched(pg_url) >= 0.35 * total, 60, "35% of the crawl")
    sleeper = rng.choice([w for w in live if w.alive() and w.started < time.monotonic() - 0.5])
    sleeper_id = wait_until(lambda: worker_row(pg_url, sleeper.pid), 10, "the sleeper's worker row")[0]
    # Paused while it holds requests, so that it has late outcomes to drop.
    wait_until(lambda: leased_by(pg_url, sleeper_id) > 0, 10, f"{sleeper.name} to hold leases")
    sleeper.signal(signal.SIGSTOP)
    held = leased_ids(pg_url, sleeper_id)
    note(f"SIGSTOP {sleeper.name} (pid {sleeper.pid}, worker {sleeper_id}, {len(held)} leased)")
    time.sleep(PAUSE)
    status = worker_row(pg_url, sleeper.pid)
    left = total - fetched(pg_url)
    # The others presumed it dead and took its requests back.
    assert status is not None and status[1] == "lost", f"{sleeper.name} after {PAUSE} s stopped: {status}"
    kept = leased_ids(pg_url, sleeper_id)
    taken_back = held - kept
    assert not reapable(pg_url, sleeper_id), "a lost worker's requests were not taken back"
    woke = time.time()
    sleeper.signal(signal.SIGCONT)
    note(
        f"SIGCONT {sleeper.name}: it was {status[1]}, {len(taken_back)} of its requests taken back, "
        f"{len(kept)} still leased (in its open commit), {left} requests left"
    )
    assert left > 40, "the run was (nearly) over before the paused worker woke: make the server slower"

    codes = {w.name: w.wait(90) for w in live}
    note(f"all exited: {codes}")
    assert all(code == 0 for code in codes.values()), codes

    listed = runs(pg_url)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "completed")], listed
    found = check_crawl(pg_url, site, run_id)
    note(f"checked: {found}")

    # The paused worker carried on after waking: it dropped what it had fetched
    # under the leases taken back, and committed requests of its own afterwards.
    if taken_back:
        assert re.search(r"\d+ outcome\(s\) (dropped|not written)", sleeper.err), sleeper.err[-2000:]
    later = fetch(
        pg_url,
        "SELECT count(*) FROM _crawlrunner_fetch_log WHERE worker_id = $1 AND fetched_at > to_timestamp($2)",
        sleeper_id, woke,
    )[0][0]  # fmt: skip
    note(f"{sleeper.name} committed {later} requests after waking")
    assert later > 0
    assert len(killed) == 3
    print("\n".join(["kill/pause cycles:", *events]))
