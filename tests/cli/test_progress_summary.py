"""What a person watching a run sees: progress lines, the stopping line, counters after a resume, the summary."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.progress import LiveView, PlainReporter
from crawlrunner.spec import load_spec
from crawlrunner.stats import RunStats, TargetStats

MIXED = """
name: mixed
http: {{base_url: "{base}", limits: {{connections: 2}}}}
targets:
  - name: slow
    url: "/slow/progress-mixed/0.1?n={{n}}"
    vars: {{n: {{from: 1, to: 8}}}}
  - name: pages
    url: /items/next
    paginate: {{type: next_url, next: next}}
    extract: {{records: items, fields: {{id: id}}}}
"""

SLOW = """
name: {key}
http: {{base_url: "{base}", limits: {{connections: {connections}}}}}
targets:
  - name: items
    url: "/slow/{key}/{seconds}?n={{n}}"
    vars: {{n: {{from: 1, to: 8}}}}
    extract: {{fields: {{key: key}}}}
"""

FAILING = """
name: failing
http: {{base_url: "{base}"}}
targets:
  - name: pages
    url: "/status/{{code}}?key=${{env.CR_PROGRESS_KEY}}&n={{n}}"
    vars: {{code: [200, 404], n: {{from: 1, to: 3}}}}
    extract: {{fields: {{status: status}}}}
  - name: gone
    url: "http://127.0.0.1:{closed}/nothing?key=${{env.CR_PROGRESS_KEY}}"
    retry: null
    extract: {{fields: {{status: status}}}}
"""


def test_summary_names_an_example_url_per_failure_kind_with_secrets_masked(
    cli: CliRunner,
    server: str,
    write_spec: Callable[..., Path],
    db_path: Path,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CR_PROGRESS_KEY", "key-progress-5d1c")
    spec = write_spec(FAILING, base=server, closed=closed_port)

    result = cli.invoke(main, ["run", str(spec), "-o", str(db_path), "--no-progress"])

    assert result.exit_code == 1, result.output
    assert "key-progress-5d1c" not in result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("failed requests:")]
    # One example per kind (the first request of that kind to fail), the spec's secret masked.
    assert line.count("(e.g. ") == 2, line
    assert f"http_status 3 (e.g. {server}/status/404?key=***&n=" in line
    assert ": HTTP 404 Not Found)" in line
    assert f"(e.g. http://127.0.0.1:{closed_port}/nothing?key=***: " in line


def test_a_discovered_total_is_what_was_found_so_far_and_the_overall_line_adds_it_up() -> None:
    stats = RunStats({"items": TargetStats(requests=4), "pages": TargetStats(requests=3, records=120)})
    view = LiveView(stats, {"items": 10, "pages": None}, queued=lambda: {"pages": 4})
    view.flying["pages"] = 1
    view.started -= 7.0  # 7 requests in 7 s: 1.0/s

    assert view.line("items") == "items: 4/10 requests, 0.6/s, 0 records, ETA 10s"
    assert view.line("pages") == "pages: 3 requests (8 found so far), 0.4/s, 120 records"
    assert view.overall() == "overall: 7/≥18 requests (39%), 1.0/s, ETA ≥11s"
    stats.targets["pages"] = TargetStats()
    view.totals = {"items": 10, "pages": 0}
    assert view.overall() == "overall: 4/10 requests (40%), 0.6/s, ETA 10s"


async def test_plain_progress_has_an_overall_line_with_an_eta_and_discovered_totals(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    out = io.StringIO()
    spec = load_spec(write_spec(MIXED, base=server))

    result = await run_async(spec, output=db_path, reporter=PlainReporter(out, interval=0.05))

    assert result.ok and result.totals.requests == 8 + 25
    lines = out.getvalue().splitlines()
    overall = [line for line in lines if line.startswith("progress:   overall: ")]
    assert overall and all(re.fullmatch(r"progress:   overall: \d+/≥\d+ requests \(\d+%\), [\d.]+/s(, ETA ≥\w+)?", line)
                           for line in overall), overall  # fmt: skip
    assert any(", ETA ≥" in line for line in overall), overall
    assert any(re.fullmatch(r"progress:   slow: \d/8 requests, [\d.]+/s, 0 records, ETA \w+", line) for line in lines)
    pages = [line for line in lines if line.startswith("progress:   pages: ")]
    assert pages and all(re.match(r"progress:   pages: \d+ requests \(\d+ found so far\), ", line) for line in pages)
    assert "?" not in out.getvalue()


async def test_after_a_stop_the_view_says_how_many_requests_are_finishing(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    out, stop = io.StringIO(), asyncio.Event()
    spec = load_spec(write_spec(SLOW, base=server, key="progress-stop", connections=2, seconds=1))
    asyncio.get_running_loop().call_later(0.3, stop.set)  # while the first two requests are in flight

    result = await run_async(spec, output=db_path, stop=stop, reporter=PlainReporter(out, interval=0.05))

    assert result.status == "interrupted" and result.totals.requests == 2
    headers = [line for line in out.getvalue().splitlines() if not line.startswith("progress:   ")]
    assert any(re.fullmatch(r"progress: stopping: 2 in flight, finishing… \(\w+ elapsed\)", line) for line in headers)
    assert re.fullmatch(r"progress: \w+ elapsed, \d in flight", headers[0])  # before the stop: the usual header


async def test_a_resumed_run_counts_on_from_its_earlier_sessions(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(write_spec(SLOW, base=server, key="progress-resume", connections=1, seconds=0.1))
    first = await run_async(spec, output=db_path, max_requests=3)
    assert first.status == "limited" and first.totals.requests == 3

    out = io.StringIO()
    result = await run_async(spec, output=db_path, resume=True, reporter=PlainReporter(out, interval=0.05))

    assert result.totals.requests == 5 and result.run_totals == (8, 8)
    pattern = r"progress:   items: (\d+)/8 requests, [\d.]+/s, (\d+) records"
    counts = [(int(m[1]), int(m[2])) for m in re.finditer(pattern, out.getvalue())]
    # From the first session's 3 requests and records on, not from zero.
    assert counts and all(3 <= done <= 8 and 3 <= records <= 8 for done, records in counts), out.getvalue()
    assert re.search(r"overall: [3-8]/8 requests \(\d+%\)", out.getvalue())
