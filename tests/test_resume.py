"""Crash-safety: a real `crawlrunner run` killed with SIGKILL at random moments,
resumed until it completes, stores every expected record exactly once."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from .conftest import ENTRY_POINT, query

# Long enough (several seconds) that the random kills land mid-run, however
# fast the engine gets.
ITEMS = 8000
SPEC = """
name: killable
http: {{base_url: "{base}", limits: {{connections: 4}}, retry: null}}
targets:
  - name: items
    url: /json/item/{{id}}
    vars: {{id: {{from: 1, to: ITEMS}}}}
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}
  - name: parents
    url: /parents
    paginate: {{type: page_number}}
    extract:
      records: parents
      fields: {{id: {{jmespath: id, type: int}}}}
  - name: children
    parent: parents
    url: /parents/{{id}}/children
    extract:
      records: children
      fields: {{parent_id: {{parent: id}}, n: {{jmespath: n, type: int}}}}
""".replace("ITEMS", str(ITEMS))


def _last_status(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        rows = query(db, "SELECT status FROM _crawlrunner_runs ORDER BY id DESC LIMIT 1")
    except sqlite3.OperationalError:
        return None  # killed before the tables were made
    return str(rows[0][0]) if rows else None


def _start(spec: Path, db: Path, resume: bool) -> subprocess.Popen[str]:
    command = [str(ENTRY_POINT), "run", str(spec), "-o", str(db), "-q"] + (["--resume"] if resume else [])
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.subprocess
@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_runs_resume_without_losing_or_repeating_a_record(
    seed: int, server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    rng = random.Random(seed)
    spec = write_spec(SPEC, base=server)
    db = tmp_path / "killed.db"
    kills = 0
    resume = False
    for attempt in range(12):
        child = _start(spec, db, resume)
        if attempt and not resume:
            # On a busy machine start-up alone can outlast every pause: once a kill
            # has landed before the run was recorded, wait for the run to exist.
            deadline = time.monotonic() + 30
            while _last_status(db) is None and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.8))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
        if child.returncode == 0:
            # Finished; or, killed just after it marked the run completed, resumed to nothing.
            break
        kills += 1
        # Killed before the run was even recorded: there is nothing to resume yet.
        resume = _last_status(db) is not None
    else:
        child = _start(spec, db, resume=True)
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr

    assert kills >= 1
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    runs = query(db, "SELECT id, status, resumed FROM _crawlrunner_runs")
    assert runs[-1][1] == "completed"
    last = runs[-1][0]
    # One run, resumed after each kill (a kill before the run was recorded aside).
    assert len(runs) == 1 and runs[0][2] >= 1, (runs, kills)
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM items WHERE _run_id = ?", last) == [(ITEMS, ITEMS)]
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM parents WHERE _run_id = ?", last) == [(100, 100)]
    assert query(
        db, "SELECT count(*), count(DISTINCT parent_id || '.' || n) FROM children WHERE _run_id = ?", last
    ) == [(1000, 1000)]
    assert query(db, "SELECT count(*) FROM _crawlrunner_requests WHERE run_id = ? AND state = 'pending'", last) == [
        (0,)
    ]

    # Resuming is idempotent: a completed run resumes to nothing, and is left as it was.
    before = query(db, "SELECT * FROM _crawlrunner_runs")
    child = _start(spec, db, resume=True)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert query(db, "SELECT * FROM _crawlrunner_runs") == before
