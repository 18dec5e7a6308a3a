"""The command line through click's runner: exit codes, messages, no tracebacks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.cli import main

from ..conftest import query

GOOD = """
name: cli
http: {{base_url: "{base}"}}
targets:
  - name: item
    urls: [/json/item/1, /json/item/2]
    extract:
      fields: {{id: id, name: name}}
"""


def test_validate_accepts_a_good_spec(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    path = write_spec(GOOD, base="http://127.0.0.1:9")
    result = cli.invoke(main, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok (1 target, 2 start requests)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: x\ntargets:\n  - name: a\n    url: http://h/\n    methd: GET\n",
            "{file}:5:5: targets[0].methd: unknown key 'methd' (did you mean 'method'?)",
            id="misspelt-key",
        ),
        pytest.param(
            "name: x\nhttp:\n  limits: {connections: many}\ntargets:\n  - name: a\n    url: http://h/\n",
            "{file}:3:25: http.limits.connections: expected an integer, got a string",
            id="wrong-type",
        ),
        pytest.param(
            "name: x\ntargets:\n  - name: a\n    url: [http://h/\n",
            "{file}:5:1: YAML syntax error: expected ',' or ']', but got '<stream end>'",
            id="yaml-syntax",
        ),
    ],
)
def test_bad_specs_give_located_messages_and_exit_2(
    cli: CliRunner, write_spec: Callable[..., Path], text: str, expected: str
) -> None:
    path = write_spec(text)
    for command in (["validate", str(path)], ["run", str(path)]):
        result = cli.invoke(main, command)

        assert result.exit_code == 2, result.output
        assert expected.format(file=path) in result.stderr.splitlines()
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_reports_every_file(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    good = write_spec(GOOD, name="good.yaml", base="http://127.0.0.1:9")
    bad = write_spec("name: x\n", name="bad.yaml")
    result = cli.invoke(main, ["validate", str(good), str(bad)])

    assert result.exit_code == 2
    assert f"{good}: ok" in result.stdout
    assert f"{bad}:1:1: missing required key 'targets'" in result.stderr
    assert result.stderr.rstrip().endswith("crawlrunner: 1 problem found")


def test_missing_spec_file_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(main, ["run", str(tmp_path / "nope.yaml")])

    assert result.exit_code == 2
    assert f"{tmp_path / 'nope.yaml'}: no such file" in result.stderr
    assert "Traceback" not in result.output


def test_unset_environment_variable_is_a_spec_error(
    cli: CliRunner, write_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CR_NOT_SET", raising=False)
    path = write_spec("name: x\ntargets:\n  - name: a\n    url: http://h/?k=${env.CR_NOT_SET}\n")
    result = cli.invoke(main, ["run", str(path)])

    assert result.exit_code == 2
    assert "targets[0].url: environment variable CR_NOT_SET is not set" in result.stderr


def test_run_writes_the_database_and_a_summary(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    path = write_spec(GOOD, base=server)
    result = cli.invoke(main, ["run", str(path), "-o", str(db_path)])

    assert result.exit_code == 0, result.output
    assert query(db_path, "SELECT id, name FROM item ORDER BY id") == [(1, "item 1"), (2, "item 2")]
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "target", "requests", "ok", "failed", "retries", "records", "bytes", "p50", "ms", "p95", "ms", "max", "ms"
    ]  # fmt: skip
    assert lines[2].split()[:6] == ["item", "2", "2", "0", "0", "2"]
    assert lines[-1] == "exit status 0: everything succeeded"
    assert f"database: {db_path}" in result.stdout


def test_run_exits_1_when_a_request_fails(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    path = write_spec(GOOD.replace("/json/item/2", "/status/404"), base=server)
    result = cli.invoke(main, ["run", str(path), "-o", str(db_path)])

    assert result.exit_code == 1
    assert (
        f"failed requests: http_status 1 (e.g. {server}/status/404: HTTP 404 Not Found) (see the _crawlrunner_fetch_log table)"
        in result.stdout
    )
    assert query(db_path, "SELECT count(*) FROM item") == [(1,)]
    assert query(db_path, "SELECT status, attempts FROM _crawlrunner_fetch_log WHERE status = 404") == [
        (404, 1)
    ]  # 4xx: no retry


def test_run_only_some_targets(cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    text = GOOD + "  - name: other\n    url: /json/item/3\n    extract: {{fields: {{id: id}}}}\n"
    path = write_spec(text, base=server)
    result = cli.invoke(main, ["run", str(path), "-o", str(db_path), "--target", "other"])

    assert result.exit_code == 0, result.output
    assert query(db_path, "SELECT target, count(*) FROM _crawlrunner_fetch_log GROUP BY target") == [("other", 1)]

    unknown = cli.invoke(main, ["run", str(path), "-o", str(db_path), "--target", "nope"])
    assert unknown.exit_code == 2
    assert "no target named 'nope' in the spec (targets: item, other)" in unknown.stderr


def test_run_base_url_override(cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    path = write_spec(GOOD, base="http://127.0.0.1:9")
    result = cli.invoke(main, ["run", str(path), "-o", str(db_path), "--base-url", server])

    assert result.exit_code == 0, result.output
    assert query(db_path, "SELECT count(*) FROM item") == [(2,)]


def test_output_that_is_not_a_database_is_refused(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    result = cli.invoke(main, ["run", str(write_spec(GOOD, base=server)), "-o", str(notes)])

    assert result.exit_code == 2
    assert "exists and is not an SQLite database; refusing to overwrite it" in result.stderr
    assert notes.read_text() == "keep me"


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_logs_one_line_per_request(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, where: str
) -> None:
    command = ["run", str(write_spec(GOOD, base=server)), "-o", str(db_path)]
    result = cli.invoke(main, ["-v", *command] if where == "before" else [*command, "-v"])

    request_lines = [line for line in result.stderr.splitlines() if " GET " in line]
    assert len(request_lines) == 2
    assert all("→ 200" in line for line in request_lines)


def test_quiet_prints_no_summary(cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    result = cli.invoke(main, ["run", str(write_spec(GOOD, base=server)), "-o", str(db_path), "-q"])

    assert result.exit_code == 0
    assert result.stdout == ""


def test_a_bad_base_url_option_is_blamed_on_the_option(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    result = cli.invoke(main, ["run", str(write_spec(GOOD, base="http://h")), "--base-url", "ftp://x"])

    assert result.exit_code == 2
    assert "--base-url: expected an absolute http:// or https:// URL, got 'ftp://x'" in result.stderr


def test_a_foreign_sqlite_database_is_refused(cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path) -> None:
    foreign = tmp_path / "theirs.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE runs (x)")
    result = cli.invoke(main, ["run", str(write_spec(GOOD, base="http://127.0.0.1:9")), "-o", str(foreign)])

    assert result.exit_code == 2
    assert "an SQLite database crawlrunner did not make; refusing to write into it" in result.stderr
    assert query(foreign, "SELECT name FROM sqlite_master") == [("runs",)]


def test_demo_writes_demo_db_in_the_current_directory(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(main, ["demo"])

    assert result.exit_code == 0, result.output
    database = tmp_path / "demo.db"

    assert "run 1 completed" in result.stdout
    suggestion = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("sqlite3 ")]
    assert len(suggestion) == 1
    sql = suggestion[0].split(" ", 2)[2].strip('"')
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(sql).fetchall()
    assert len(rows) == 5 and all(isinstance(price, float) for _, price in rows)
    counts = dict(query(database, "SELECT target, sum(records) FROM _crawlrunner_fetch_log GROUP BY target"))
    assert counts == {"products": 30, "product_details": 30, "catalogue": 30, "product_pages": 30, "site_map": 31}
    assert query(database, "SELECT count(*) FROM product_details d JOIN products p ON p.id = d.id") == [(30,)]
    assert query(database, "SELECT count(*) FROM product_pages WHERE catalogue_id IS NULL") == [(0,)]


def test_every_command_has_help_with_an_example(cli: CliRunner) -> None:
    for name, command in main.commands.items():
        result = cli.invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert command.help and "Example" in command.help, name
        assert "Exit status" in result.output


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            "url: /x\n    extract: {records: 'items[', fields: {a: a}}",
            "{file}:6:24: targets[0].extract.records: invalid JMESPath 'items[': ",
            id="jmespath-records",
        ),
        pytest.param(
            "url: /x\n    extract: {format: html, fields: {a: 'div[>'}}",
            "{file}:6:41: targets[0].extract.fields.a: invalid CSS selector 'div[>': ",
            id="css-field",
        ),
        pytest.param(
            "url: /x\n    extract: {format: html, fields: {a: {xpath: '//a[@'}}}",
            "{file}:6:49: targets[0].extract.fields.a.xpath: invalid XPath '//a[@': ",
            id="xpath-field",
        ),
        pytest.param(
            "url: /x\n    extract: {fields: {a: {regex: 'a(b'}}}",
            "{file}:6:35: targets[0].extract.fields.a.regex: invalid regular expression 'a(b': ",
            id="regex-field",
        ),
        pytest.param(
            "url: /x\n    paginate: {type: next_url, next: 'links.[next'}\n    extract: {fields: {a: a}}",
            "{file}:6:38: targets[0].paginate.next: invalid JMESPath 'links.[next': ",
            id="paginate-next",
        ),
        pytest.param(
            "url: /x\n    follow: {links: 'a[href'}",
            "{file}:6:21: targets[0].follow.links: invalid CSS selector 'a[href': ",
            id="follow-links",
        ),
    ],
)
def test_every_invalid_selector_exits_2_with_its_location(
    cli: CliRunner, write_spec: Callable[..., Path], target: str, expected: str
) -> None:
    path = write_spec(f"name: x\nhttp: {{base_url: 'http://127.0.0.1:9'}}\ntargets:\n  - name: t\n    {target}\n")
    result = cli.invoke(main, ["validate", str(path)])

    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert len(lines) == 1 and lines[0].startswith(expected.format(file=path)), result.stderr
    assert "Traceback" not in result.output


def test_unmet_expectations_exit_3_and_are_listed(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    text = GOOD.replace(
        "fields: {{id: id, name: name}}", "fields: {{id: id, name: name}}\n    expect: {{min_records: 3}}"
    )
    result = cli.invoke(main, ["run", str(write_spec(text, base=server)), "-o", str(db_path)])

    assert result.exit_code == 3, result.output
    assert "expectations not met:\n  - item: 2 records, expected at least 3" in result.stdout


def test_summary_names_fields_that_could_not_be_converted(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    text = GOOD.replace("name: name", "name: {{jmespath: name, type: int}}")
    result = cli.invoke(main, ["run", str(write_spec(text, base=server)), "-o", str(db_path)])

    assert result.exit_code == 0, result.output
    assert "2 field values could not be converted and were stored as null:" in result.stdout
    assert "  - item.name: expected an integer, got 'item 1'" in result.stdout or "got 'item 2'" in result.stdout
