"""Drift and packaging checks: the shipped files, the README and the entry point."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

import crawlrunner
from crawlrunner.cli import main
from crawlrunner.spec import load_spec

from .conftest import ENTRY_POINT, REPO, query

SHIPPED_SPECS = sorted([*REPO.glob("examples/*.yaml"), *REPO.glob("specs/*.yaml")])


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_spec_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.targets


def test_project_smoke_spec_runs_against_the_demo_shop(demo_server: str, tmp_path: Path) -> None:
    from crawlrunner.api import run

    spec = load_spec(REPO / "specs" / "demo-smoke.yaml", base_url=demo_server)
    result = run(spec, output=tmp_path / "smoke.db")

    assert result.ok
    assert query(tmp_path / "smoke.db", "SELECT count(*) FROM first_page") == [(10,)]
    assert query(tmp_path / "smoke.db", "SELECT title FROM one_product") == [("Compact Clock 7",)]


def test_public_names_are_exported_and_resolve() -> None:
    assert crawlrunner.__all__ == sorted(crawlrunner.__all__)
    for name in crawlrunner.__all__:
        assert getattr(crawlrunner, name) is not None, name


def test_every_command_is_in_the_readme() -> None:
    readme = _readme()
    for name in main.commands:
        assert f"crawlrunner {name}" in readme, name


def test_ci_runs_the_readme_test_command() -> None:
    readme = _readme()
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    test_command = next(c.strip() for c in commands if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_ci_runs_the_checks_after_the_tests() -> None:
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    checks = ["ruff check .", "ruff format --check .", "mypy", "lint-imports --no-cache"]
    assert [line for line in lines if line in checks] == checks


# STYLE.md, habit 1: a module owns one concept; past this, split it.
MAX_MODULE_LINES = 600


def test_no_module_is_over_the_line_limit() -> None:
    lengths = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((REPO / "crawlrunner").rglob("*.py"))
    }
    too_long = {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert too_long == {}, f"over {MAX_MODULE_LINES} lines, split them: {too_long}"


@pytest.mark.subprocess
def test_installed_entry_point_and_module_run(tmp_path: Path) -> None:
    assert ENTRY_POINT.exists(), "install the package first: pip install -e '.[test]'"
    version = subprocess.run([ENTRY_POINT, "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and crawlrunner.__version__ in version.stdout

    demo = subprocess.run(
        [sys.executable, "-m", "crawlrunner", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert demo.returncode == 0, demo.stderr
    assert query(tmp_path / "demo.db", "SELECT count(*) FROM products") == [(30,)]
    assert demo.stderr == ""


def _start_run(spec: Path, db_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ENTRY_POINT, "run", str(spec), "-o", str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def _wait_for_rows(db_path: Path, sql: str, at_least: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db_path.exists():
            try:
                if query(db_path, sql)[0][0] >= at_least:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    pytest.fail(f"the run never got to {at_least} rows of: {sql}")


def _slow_spec(write_spec: Callable[..., Path], server: str, key: str, seconds: float, count: int) -> Path:
    slow = "\n".join(f"      - /slow/{key}/{seconds}?n={i}" for i in range(count))
    return write_spec(
        f"""
name: {key}
http: {{base_url: "{server}", limits: {{connections: 4}}, retry: null}}
targets:
  - name: quick
    urls: [/json/item/1, /json/item/2, /json/item/3]
    extract: {{fields: {{id: id}}}}
  - name: slow
    urls:
{slow}
"""
    )


@pytest.mark.subprocess
def test_ctrl_c_lets_requests_in_flight_finish_commits_them_and_exits_130(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    from . import server_app

    child = _start_run(_slow_spec(write_spec, server, "graceful", 1.0, 40), db_path)
    try:
        _wait_for_rows(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'quick'", 3)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
    finally:
        child.kill()

    assert child.returncode == 130, stderr
    assert "stopping; finishing requests in flight" in stderr
    assert "interrupted by Ctrl-C; everything fetched so far is in" in stderr
    assert "Traceback" not in stderr and "Unclosed" not in stderr
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT status FROM _crawlrunner_runs").fetchall() == [("interrupted",)]
        slow_rows = conn.execute(
            "SELECT count(*), count(status = 200 OR NULL) FROM _crawlrunner_fetch_log WHERE target = 'slow'"
        ).fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Every request the server saw finished and is recorded; the rest never started.
    assert slow_rows[0] == slow_rows[1] == server_app.hits["graceful"]
    assert 0 < slow_rows[0] < 40


@pytest.mark.subprocess
def test_a_second_ctrl_c_stops_at_once_and_leaves_a_consistent_database(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    child = _start_run(_slow_spec(write_spec, server, "impatient", 30, 4), db_path)
    try:
        _wait_for_rows(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'quick'", 3)
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=10)
    finally:
        child.kill()

    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr and "Unclosed" not in stderr
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT status, requests FROM _crawlrunner_runs").fetchall() == [("interrupted", 3)]
        assert conn.execute("SELECT count(*) FROM quick").fetchall() == [(3,)]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.subprocess
def test_quiet_interrupt_prints_no_summary(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    child = subprocess.Popen(
        [ENTRY_POINT, "-q", "run", str(_slow_spec(write_spec, server, "quiet-stop", 0.5, 20)), "-o", str(db_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_rows(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'quick'", 3)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=20)
    finally:
        child.kill()

    assert child.returncode == 130
    assert stdout == ""
    assert "interrupted by Ctrl-C; everything fetched so far is in" in stderr


@pytest.mark.subprocess
def test_two_sigterms_stop_at_once_and_exit_143(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    child = _start_run(_slow_spec(write_spec, server, "term-twice", 30, 4), db_path)
    try:
        _wait_for_rows(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'quick'", 3)
        child.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=10)
    finally:
        child.kill()

    assert child.returncode == 143, stderr
    assert "stopped at once; everything fetched so far was committed" in stderr
    assert query(db_path, "SELECT status FROM _crawlrunner_runs") == [("interrupted",)]


@pytest.mark.subprocess
def test_sigterm_stops_gracefully_and_exits_143(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    child = _start_run(_slow_spec(write_spec, server, "terminated", 0.2, 40), db_path)
    try:
        _wait_for_rows(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'quick'", 3)
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=20)
    finally:
        child.kill()

    assert child.returncode == 143, stderr
    assert query(db_path, "SELECT status FROM _crawlrunner_runs") == [("interrupted",)]
    # Every message names what stopped the run and the status it exits with: never Ctrl-C's 130.
    assert "stopping; finishing requests in flight (SIGTERM again to stop at once)" in stderr
    assert "interrupted by SIGTERM; everything fetched so far is in" in stderr
    assert "exit status 143: interrupted by SIGTERM; `run --resume` continues the run" in stdout
    assert "exit status 130" not in stdout and "Ctrl-C" not in stdout + stderr


def test_every_readme_spec_fragment_validates() -> None:
    from crawlrunner.spec import load_spec_text

    environ = dict.fromkeys(
        ("SHOP_TOKEN", "API_TOKEN", "PROXY_USER", "PROXY_PASS", "SCRAPERAPI_KEY", "CLIENT_SECRET", "SHOP_PASSWORD"),
        "value-1234",
    )
    for block in re.findall(r"```yaml\n(.*?)```", _readme(), re.S):
        if block.startswith("- name:"):  # one target, as it would sit in a spec's list of targets
            block = "name: fragment\nhttp: {base_url: 'https://example.com'}\ntargets:\n" + block
        elif "targets:" not in block:
            block = "name: fragment\n" + block + "targets:\n  - {name: t, url: 'https://example.com/'}\n"
        text = block.replace("certs/internal-ca.pem", str(REPO / "README.md"))  # any existing file
        assert load_spec_text(text, str(REPO / "README.md"), environ=environ).targets


def test_the_readme_spec_example_validates() -> None:
    from crawlrunner.spec import load_spec_text

    example = next(block for block in re.findall(r"```yaml\n(.*?)```", _readme(), re.S) if "targets:" in block)
    spec = load_spec_text(example, "README.md", environ={"SHOP_TOKEN": "t0ken-value"})
    assert [t.name for t in spec.targets] == ["products", "product_pages", "docs"]


def test_the_readme_python_example_runs_against_the_demo_shop(
    demo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = _readme().split("### From Python", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    demo = (REPO / "examples" / "demo.yaml").read_text(encoding="utf-8")
    assert "http://127.0.0.1:8765" in demo  # what `crawlrunner demo --serve` listens on
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "demo.yaml").write_text(demo.replace("http://127.0.0.1:8765", demo_server), "utf-8")
    monkeypatch.chdir(tmp_path)

    exec(compile(example, "README.md", "exec"), {})

    printed = capsys.readouterr().out
    assert "<RunResult run 1 completed: 95 requests, 151 records in demo.db>" in printed, printed
    assert query(tmp_path / "demo.db", "SELECT count(*) FROM products") == [(30,)]


OFFLINE_EXAMPLES = {
    "demo.yaml": {"products": 30, "product_details": 30, "catalogue": 30, "product_pages": 30, "site_map": 31},
    "json-api-bearer.yaml": {"products": 30, "product_details": 30},
    "html-catalogue.yaml": {"listing": 30, "product": 30},
    "docs-crawl.yaml": {"pages": 6},  # /docs/ and /docs/index.html are two URLs
    "search-post.yaml": {"results": 9},
}


@pytest.mark.parametrize("name", sorted(OFFLINE_EXAMPLES))
def test_offline_examples_run_against_the_demo_shop(name: str, demo_server: str, tmp_path: Path) -> None:
    from crawlrunner.api import run

    result = run(load_spec(REPO / "examples" / name, base_url=demo_server), output=tmp_path / "x.db")

    assert result.ok, (result.unmet, result.health, result.totals.failures)
    assert result.totals.field_errors == 0, result.totals.field_error_examples
    counts = {target: stats.records for target, stats in result.stats.targets.items()}
    assert counts == OFFLINE_EXAMPLES[name]


def test_every_example_is_documented_in_the_readme() -> None:
    readme = _readme()
    for path in sorted(REPO.glob("examples/*.yaml")):
        assert f"examples/{path.name}" in readme, path.name
