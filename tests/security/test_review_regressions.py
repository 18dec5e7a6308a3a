"""Protections added after a security review, one test each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.errors import SpecError
from crawlrunner.http.guard import is_blocked
from crawlrunner.spec import load_spec, load_spec_text

from .. import server_app
from ..conftest import query

Spec = Callable[..., Path]
TRICKY = "hunter 2!&=#ä+x"


async def test_a_secret_with_url_syntax_in_it_is_sent_as_data_and_never_stored(
    server: str, write_spec: Spec, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_TRICKY", TRICKY)
    result = await run_async(
        load_spec(
            write_spec(
                "name: t\nhttp: {{base_url: '{base}'}}\ntargets:\n"
                "  - {{name: t, url: '/echo?key=${{env.CR_TRICKY}}&page=2', extract: {{fields: {{query: {{jmespath: query, type: json}}, url: {{meta: final_url}}}}}}}}\n",
                base=server,
            )
        ),
        output=db_path,
    )

    assert result.ok
    stored = query(db_path, "SELECT query, url FROM t")[0]
    assert stored[0] == '{"key": "***", "page": "2"}'  # the server got one key and the page, intact
    assert "hunter" not in str(stored[1]) and "hunter" not in str(
        query(db_path, "SELECT url, final_url FROM _crawlrunner_fetch_log")
    )
    for path in db_path.parent.glob("out.db*"):
        assert b"hunter" not in path.read_bytes()


def test_plan_masks_a_child_targets_url_template(
    cli: CliRunner, write_spec: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_CHILD_KEY", "child-key-77a1")
    spec = write_spec(
        "name: p\nhttp: {base_url: 'http://127.0.0.1:9'}\ntargets:\n"
        "  - {name: p, url: /list, extract: {records: items, fields: {id: id}}}\n"
        "  - {name: c, parent: p, url: '/item/{id}?key=${env.CR_CHILD_KEY}'}\n"
    )
    result = cli.invoke(main, ["plan", str(spec)])

    assert result.exit_code == 0
    assert "child-key-77a1" not in result.output and "key=***" in result.output


async def test_library_logging_is_masked_whatever_handlers_the_application_has(
    server: str, write_spec: Spec, db_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_LOG_KEY", "log-key-31f0c2")
    with caplog.at_level(logging.DEBUG):
        await run_async(
            load_spec(
                write_spec(
                    "name: l\nhttp: {{base_url: '{base}'}}\ntargets:\n"
                    "  - {{name: t, url: '/items/loop?api_key=${{env.CR_LOG_KEY}}', paginate: {{type: next_url, next: next}},"
                    " extract: {{records: items, fields: {{id: id}}}}}}\n",
                    base=server,
                )
            ),
            output=db_path,
        )

    assert "pagination loop" in caplog.text or "retrying" in caplog.text or caplog.records
    assert "log-key-31f0c2" not in caplog.text
    assert "log-key-31f0c2" not in " ".join(r.getMessage() for r in caplog.records)


async def test_the_guard_runs_before_robots_txt_is_fetched(server: str, write_spec: Spec, db_path: Path) -> None:
    before = server_app.hits["robots.txt"]
    await run_async(
        load_spec(
            write_spec(
                # The host comes from a variable: written in the spec, it would be refused at validation.
                "name: g\nhttp: {{block_private_addresses: true}}\ntargets:\n"
                "  - {{name: t, url: 'http://{{host}}/site/guard/0.html', vars: {{host: ['{host}']}},"
                " follow: {{max_depth: 1}}}}\n",
                host=server.removeprefix("http://"),
            )
        ),
        output=db_path,
    )

    assert server_app.hits["robots.txt"] == before
    assert query(db_path, "SELECT error_kind FROM _crawlrunner_fetch_log") == [("blocked_address",)]


def test_the_guard_cannot_be_combined_with_a_proxy() -> None:
    with pytest.raises(SpecError, match="cannot be checked through a proxy"):
        load_spec_text(
            "name: g\nhttp: {block_private_addresses: true, proxy: 'http://proxy.example:3128'}\n"
            "targets:\n  - {name: t, url: 'https://example.com/'}\n",
            "s.yaml",
        )


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "2002:a9fe:a9fe::", "::127.0.0.1", "::ffff:0:7f00:1"])
def test_ipv4_addresses_inside_ipv6_ones_are_checked(address: str) -> None:
    assert is_blocked(address)


async def test_a_malformed_start_url_of_a_follow_target_is_a_recorded_failure(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    result = await run_async(
        load_spec(
            write_spec(
                # Written literally, 'http://[::1/' is a spec error; from a variable it is only known at run time.
                "name: m\ntargets:\n  - {{name: t, urls: ['{{u}}'], vars: {{u: ['http://[::1/', '{base}/html/1']}},"
                " follow: {{max_depth: 0, robots: false}}}}\n",
                base=server,
            )
        ),
        output=db_path,
    )

    assert result.status == "completed"
    kinds = sorted(str(k) for (k,) in query(db_path, "SELECT error_kind FROM _crawlrunner_fetch_log"))
    assert kinds == ["None", "invalid_url"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: 2024-13-45\ntargets: []\n", "cannot read '2024-13-45'"),
        ("name: " + "9" * 5000 + "\ntargets: []\n", "quote it to keep it text"),
        ("name: x\x01y\ntargets: []\n", "YAML error"),
    ],
    ids=["impossible-date", "huge-integer", "control-character"],
)
def test_values_python_cannot_build_are_spec_errors(text: str, message: str, tmp_path: Path, cli: CliRunner) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli.invoke(main, ["validate", str(path)])

    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_init_refuses_a_name_that_is_not_a_plain_name(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("my: crawl", "#x", "../../tmp/evil"):
        result = cli.invoke(main, ["init", "a.yaml", "--name", name])
        assert result.exit_code == 2 and "--name:" in result.stderr
    assert not (tmp_path / "a.yaml").exists()
