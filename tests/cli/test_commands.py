"""The commands around a run: plan, init, schema, query, export, runs, and run's overrides."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.progress import PlainReporter
from crawlrunner.spec import load_spec, spec_schema

from ..conftest import query

SPEC = """
name: cmds
http: {{base_url: "{base}", headers: {{X-Token: "${{env.CR_CMD_TOKEN}}"}}}}
targets:
  - name: items
    url: /json/item/{{id}}
    vars: {{id: {{from: 1, to: 12}}}}
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}
"""


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CR_CMD_TOKEN", "tok-cmd-8f3e2a")
    return "tok-cmd-8f3e2a"


def test_plan_shows_requests_with_secrets_masked_and_fetches_nothing(
    cli: CliRunner, write_spec: Callable[..., Path], closed_port: int, token: str
) -> None:
    spec = write_spec(SPEC, base=f"http://127.0.0.1:{closed_port}")
    for command in (["plan", str(spec), "-n", "2"], ["run", str(spec), "--dry-run"]):
        result = cli.invoke(main, command)

        assert result.exit_code == 0, result.output
        assert token not in result.output
        lines = result.stdout.splitlines()
        assert lines[0] == "items: 12 start requests"
        assert lines[1] == f"  GET http://127.0.0.1:{closed_port}/json/item/1"
        assert "      X-Token: ***" in lines
    assert not (spec.parent / "cmds.db").exists()


@pytest.mark.parametrize("kind", ["json-api", "html", "gateway"])
def test_init_writes_a_starter_that_validates_and_never_overwrites(
    kind: str, cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("API_TOKEN", raising=False)
    result = cli.invoke(main, ["init", "mine.yaml", "--kind", kind])

    assert result.exit_code == 0, result.output
    assert load_spec(tmp_path / "mine.yaml").name == "mine"
    assert (tmp_path / "mine.yaml").read_text().startswith("# yaml-language-server: $schema=")
    again = cli.invoke(main, ["init", "mine.yaml"])
    assert again.exit_code == 2 and "exists; not overwriting it" in again.stderr


def test_schema_prints_the_json_schema(cli: CliRunner) -> None:
    result = cli.invoke(main, ["schema"])

    assert result.exit_code == 0
    assert json.loads(result.stdout) == spec_schema()


def test_query_export_and_runs_read_the_database(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path, token: str
) -> None:
    assert cli.invoke(main, ["run", str(write_spec(SPEC, base=server)), "-o", str(db_path)]).exit_code == 0

    as_json = cli.invoke(main, ["query", str(db_path), "SELECT id, name FROM items ORDER BY id LIMIT 2", "-f", "json"])
    assert json.loads(as_json.stdout) == [{"id": 1, "name": "item 1"}, {"id": 2, "name": "item 2"}]

    out = tmp_path / "items.jsonl"
    exported = cli.invoke(main, ["export", str(db_path), "items", "-o", str(out)])
    assert exported.exit_code == 0 and "12 rows written to" in exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == list(range(1, 13)) and rows[0]["_run_id"] == 1

    as_csv = cli.invoke(main, ["export", str(db_path), "items", "-f", "csv", "--run", "1"])
    assert as_csv.stdout.splitlines()[0] == "id,name,_run_id,_url,_fetched_at"
    assert len(as_csv.stdout.splitlines()) == 13

    listed = cli.invoke(main, ["runs", str(db_path), "-f", "jsonl"])
    run_row = json.loads(listed.stdout.splitlines()[0])
    assert (run_row["status"], run_row["requests"], run_row["records"]) == ("completed", 12, 12)

    for command, message in (
        (["export", str(db_path), "nope"], "no target table 'nope' (tables: items)"),
        (["query", str(tmp_path / "missing.db"), "SELECT 1"], "no such database file"),
        (["changes", str(db_path), "items"], "keeps no history"),
    ):
        failed = cli.invoke(main, command)
        assert failed.exit_code == 2 and message in failed.stderr, failed.output
    bad_sql = cli.invoke(main, ["query", str(db_path), "SELEC nonsense"])
    assert bad_sql.exit_code == 1 and "syntax error" in bad_sql.stderr
    read_only = cli.invoke(main, ["query", str(db_path), "DELETE FROM items"])
    assert read_only.exit_code == 1 and "readonly" in read_only.stderr
    assert query(db_path, "SELECT count(*) FROM items") == [(12,)]


def test_read_commands_never_write_over_the_database_nor_fail_with_a_traceback(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path, token: str
) -> None:
    assert cli.invoke(main, ["run", str(write_spec(SPEC, base=server)), "-o", str(db_path)]).exit_code == 0
    before = db_path.read_bytes()

    # -o naming the crawl database (or any SQLite file) by mistake must not destroy it.
    onto_db = cli.invoke(main, ["export", str(db_path), "items", "-o", str(db_path)])
    assert onto_db.exit_code == 2 and "is an SQLite database; an export will not overwrite it" in onto_db.stderr
    assert db_path.read_bytes() == before and query(db_path, "SELECT count(*) FROM items") == [(12,)]

    for target, code, message in (
        (tmp_path / "no" / "such" / "folder.csv", 2, "cannot write: No such file or directory"),
        (tmp_path, 2, "is a directory"),  # click's own check
        (Path("/dev/full"), 1, "cannot write: No space left on device"),
    ):
        failed = cli.invoke(main, ["export", str(db_path), "items", "-f", "csv", "-o", str(target)])
        assert failed.exit_code == code and message in failed.stderr, failed.output
        assert isinstance(failed.exception, SystemExit) and "Traceback" not in failed.output

    # Read-only is read-only: ATTACH would create a file.
    attach = cli.invoke(main, ["query", str(db_path), f"ATTACH '{tmp_path / 'new.db'}' AS other"])
    assert attach.exit_code == 1 and "too many attached databases" in attach.stderr
    assert not (tmp_path / "new.db").exists()


def test_run_overrides_concurrency_and_early_stops(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, token: str
) -> None:
    spec = str(write_spec(SPEC, base=server))
    limited = cli.invoke(main, ["run", spec, "-o", str(db_path), "--max-requests", "5", "-c", "1"])
    assert limited.exit_code == 0, limited.output
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE run_id = 1") == [(5,)]

    by_records = cli.invoke(main, ["run", spec, "-o", str(db_path), "--max-records", "3", "-c", "1"])
    assert by_records.exit_code == 0
    assert query(db_path, "SELECT count(*) FROM items WHERE _run_id = 2") == [(3,)]


def test_json_logs_are_one_object_per_line_with_secrets_masked(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, token: str
) -> None:
    text = SPEC.replace("/json/item/{{id}}", "/json/item/{{id}}?t=${{env.CR_CMD_TOKEN}}")
    result = cli.invoke(
        main, ["run", str(write_spec(text, base=server)), "-o", str(db_path), "-v", "--log-format", "json"]
    )

    entries = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(entries) == 12
    assert {e["level"] for e in entries} == {"debug"} and all(e["time"].endswith("Z") for e in entries)
    assert all("?t=***" in e["message"] for e in entries)
    assert token not in result.output


async def test_progress_off_a_terminal_is_plain_periodic_lines(
    server: str, write_spec: Callable[..., Path], db_path: Path, token: str
) -> None:
    text = SPEC.replace("/json/item/{{id}}", "/slow/progress/0.05?n={{id}}").replace(
        "extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}", ""
    )
    text = text.replace('http: {{base_url: "{base}"', 'http: {{base_url: "{base}", limits: {{connections: 2}}')
    out = io.StringIO()
    await run_async(load_spec(write_spec(text, base=server)), output=db_path, reporter=PlainReporter(out, interval=0.1))

    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("progress: ") for line in lines)
    assert any(re.search(r"items: \d+/12 requests, [\d.]+/s", line) for line in lines)
    assert "\x1b" not in out.getvalue()


def test_plan_checks_a_base_url_override_like_run(cli: CliRunner, write_spec: Callable[..., Path], token: str) -> None:
    spec = str(write_spec(SPEC, base="http://h"))
    for command in (["plan", spec], ["run", spec, "--dry-run"], ["run", spec]):
        result = cli.invoke(main, [*command, "--base-url", "ftp://x"])

        assert result.exit_code == 2
        assert "crawlrunner: --base-url: expected an absolute http:// or https:// URL, got 'ftp://x'" in result.stderr
        assert "problem" not in result.stderr  # blamed on the option, not on the spec file
