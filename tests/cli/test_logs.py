"""Logs for machines and people: structured JSON lines, located spec errors as JSON, timestamped text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from crawlrunner.cli import main

SPEC = """
name: logs
http: {{base_url: "{base}"}}
targets:
  - name: items
    url: /json/item/{{id}}?key=${{env.CR_LOG_KEY}}
    vars: {{id: {{from: 1, to: 3}}}}
    extract: {{fields: {{id: {{jmespath: id, type: int}}}}}}
  - name: missing
    url: /status/404
"""

BROKEN = """
name: broken
targets:
  - name: items
    url: http://127.0.0.1/x
    retry: {attempts: many}
"""


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_request_lines_carry_structured_fields(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "key-5a1c9e")
    spec = write_spec(SPEC, base=server)
    result = cli.invoke(main, ["--log-format", "json", "-v", "run", str(spec), "-o", str(db_path)])

    assert result.exit_code == 1, result.output  # the 404 failed
    requests = [e for e in _json_lines(result.stderr) if "target" in e]
    assert len(requests) == 4
    ok = next(e for e in requests if e["url"].endswith("/json/item/2?key=***"))
    assert ok["target"] == "items" and ok["method"] == "GET" and ok["status"] == 200
    assert ok["records"] == 1 and ok["attempts"] == 1 and ok["error_kind"] is None
    assert ok["bytes"] > 0 and isinstance(ok["ms"], int)
    assert ok["level"] == "info" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ok["time"])
    missing = next(e for e in requests if e["target"] == "missing")
    assert missing["status"] == 404 and missing["records"] == 0 and missing["error_kind"] == "http_status"
    assert "key-5a1c9e" not in result.output


def test_a_spec_error_under_json_logs_is_a_located_object(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(BROKEN)
    for command in (["--log-format", "json", "run", str(spec)], ["validate", str(spec), "--log-format", "json"]):
        result = cli.invoke(main, command)

        assert result.exit_code == 2, result.output
        entries = _json_lines(result.stderr)
        assert len(entries) == len(result.stderr.splitlines())  # nothing but JSON on stderr
        problem = entries[0]
        assert problem["file"] == str(spec) and problem["line"] == 6 and problem["column"] > 1
        assert problem["path"] == "targets[0].retry.attempts" and "integer" in problem["message"]
        assert problem["level"] == "error"
        assert entries[-1]["message"].startswith("1 problem")


def test_text_log_lines_start_with_a_timestamp(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "k")
    result = cli.invoke(main, ["run", str(write_spec(SPEC, base=server)), "-o", str(db_path), "-v"])

    lines = [line for line in result.stderr.splitlines() if "crawlrunner.engine" in line]
    assert len(lines) == 4
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} I crawlrunner\.engine: ", line) for line in lines)
