"""Logs for machines and people: structured JSON lines, located spec errors as JSON, timestamped text."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec

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
    assert (
        ok["level"] == "debug"
        and ok["logger"] == "crawlrunner.requests"
        and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ok["time"])
    )
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


def test_v_shows_timestamped_request_lines_and_without_it_there_are_none(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "k")
    spec = str(write_spec(SPEC, base=server))
    verbose = cli.invoke(main, ["run", spec, "-o", str(db_path), "-v"])
    plain = cli.invoke(main, ["run", spec, "-o", str(db_path)])

    lines = [line for line in verbose.stderr.splitlines() if "crawlrunner.requests" in line]
    assert len(lines) == 4
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} D crawlrunner\.requests: ", line) for line in lines)
    assert "crawlrunner.requests" not in plain.stderr and "GET" not in plain.stderr


def test_summary_json_file_has_status_and_counts_by_target_and_kind(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "key-77b2")
    out = tmp_path / "summary.json"
    result = cli.invoke(
        main, ["run", str(write_spec(SPEC, base=server)), "-o", str(db_path), "--summary-json", str(out)]
    )

    assert result.exit_code == 1, result.output
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["exit_status"] == 1 and summary["status"] == "completed" and summary["ok"] is False
    assert summary["run_id"] == 1 and summary["database"] == str(db_path)
    items, missing = summary["targets"]["items"], summary["targets"]["missing"]
    assert (items["requests"], items["ok"], items["failed"], items["records"]) == (3, 3, 0, 3)
    assert items["bytes"] > 0 and items["failed_by_kind"] == {}
    assert (
        missing["failed_by_kind"] == {"http_status": 1} and "/status/404" in missing["failure_examples"]["http_status"]
    )
    assert summary["totals"]["requests"] == 4 and summary["unmet_expectations"] == []
    assert summary["summary"][-1] == "exit status 1: some requests failed"
    assert "key-77b2" not in out.read_text(encoding="utf-8")
    assert "requests" in result.stdout  # the text summary is still shown


def test_summary_json_on_stdout_with_unmet_expectations(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "k")
    text = SPEC.replace("  - name: missing\n    url: /status/404\n", "    expect: {{min_records: 5}}\n")
    result = cli.invoke(main, ["run", str(write_spec(text, base=server)), "-o", str(db_path), "--summary-json", "-"])

    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)  # stdout is the JSON alone: the text summary went to stderr
    assert summary["exit_status"] == 3 and summary["ok"] is False
    assert len(summary["unmet_expectations"]) == 1 and "5" in summary["unmet_expectations"][0]
    assert summary["targets"]["items"]["records"] == 3
    assert "exit status 3" in result.stderr


def test_summary_json_to_a_missing_folder_fails_before_fetching(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path, closed_port: int, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "k")
    spec = write_spec(SPEC, base=f"http://127.0.0.1:{closed_port}")
    result = cli.invoke(
        main, ["run", str(spec), "-o", str(tmp_path / "x.db"), "--summary-json", str(tmp_path / "no" / "s.json")]
    )

    assert result.exit_code == 2
    assert "--summary-json: no folder" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


async def test_the_library_logs_requests_at_debug_so_an_info_host_is_not_flooded(
    server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "k")
    spec = load_spec(write_spec(SPEC, base=server))
    logging.getLogger("crawlrunner.requests").setLevel(logging.NOTSET)  # as in a host process: no -v of a CLI test
    with caplog.at_level(logging.INFO, logger="crawlrunner"):  # an orchestrator's task log
        await run_async(spec, output=db_path)
    assert not [r for r in caplog.records if r.name == "crawlrunner.requests"]

    with caplog.at_level(logging.DEBUG, logger="crawlrunner.requests"):
        await run_async(spec, output=db_path)
    lines = [r for r in caplog.records if r.name == "crawlrunner.requests"]
    assert len(lines) == 4 and {r.levelno for r in lines} == {logging.DEBUG}
