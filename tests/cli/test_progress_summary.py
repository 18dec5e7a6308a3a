"""What a person watching a run sees: progress lines, the stopping line, counters after a resume, the summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.cli import main

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
