"""Progress of a run on PostgreSQL: discovered totals from the shared frontier, counts that go on after a resume."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from crawlrunner.api import run_async
from crawlrunner.backends.postgres import frontier
from crawlrunner.progress import PlainReporter
from crawlrunner.spec import load_spec

SLOW = """
name: pg-progress-resume
http: {{base_url: "{base}", limits: {{connections: 1}}}}
targets:
  - name: items
    url: "/slow/pg-progress-resume/0.1?n={{n}}"
    vars: {{n: {{from: 1, to: 8}}}}
    extract: {{fields: {{key: key}}}}
"""

# 100 parents on 5 pages; a child request per parent, found as the parents' pages come in.
FAMILY = """
name: pg-progress-family
http: {{base_url: "{base}", limits: {{connections: 2}}}}
targets:
  - name: parents
    url: /parents
    paginate: {{type: page_number}}
    extract: {{records: parents, fields: {{id: {{jmespath: id, type: int}}}}}}
  - name: children
    parent: parents
    url: "/slow/pg-progress-family/0.02?parent={{id}}"
    extract: {{fields: {{key: key}}}}
"""


async def test_a_resumed_run_on_postgresql_counts_on_from_its_earlier_sessions(
    server: str, write_spec: Callable[..., Path], pg_url: str
) -> None:
    spec = load_spec(write_spec(SLOW, base=server))
    first = await run_async(spec, output=pg_url, max_requests=3)
    assert first.status == "limited" and first.totals.requests == 3

    out = io.StringIO()
    result = await run_async(spec, output=pg_url, resume=True, reporter=PlainReporter(out, interval=0.05))

    assert result.totals.requests == 5 and result.run_totals == (8, 8)
    counts = [
        (int(m[1]), int(m[2]))
        for m in re.finditer(r"progress:   items: (\d+)/8 requests, [\d.]+/s, (\d+) records", out.getvalue())
    ]
    # From the first session's 3 requests and records on, not from zero.
    assert counts and all(3 <= done <= 8 and 3 <= records <= 8 for done, records in counts), out.getvalue()
    assert re.search(r"overall: [3-8]/8 requests \(\d+%\)", out.getvalue())


async def test_a_child_target_on_postgresql_shows_what_was_found_so_far(
    server: str, write_spec: Callable[..., Path], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frontier, "QUEUED_EVERY", 0.1)  # counted often enough for a run of a few seconds
    spec = load_spec(write_spec(FAMILY, base=server))
    out = io.StringIO()

    result = await run_async(spec, output=pg_url, reporter=PlainReporter(out, interval=0.05))

    assert result.ok and result.totals.requests == 6 + 100
    found = [
        (int(m[1]), int(m[2]))
        for m in re.finditer(r"progress:   children: (\d+) requests \((\d+) found so far\)", out.getvalue())
    ]
    assert found, out.getvalue()
    # More than this worker's done and in flight (2 connections): the requests waiting in the database count.
    assert any(total > done + 2 for done, total in found), found
    # A stale count is corrected by what was leased since: never more than there are.
    assert all(done <= total <= 100 for done, total in found), found
