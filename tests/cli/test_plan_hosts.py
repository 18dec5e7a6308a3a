"""`crawlrunner plan`: per host, the known requests and the least time politeness lets them take."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from crawlrunner.cli import main
from crawlrunner.host_plan import host_plans
from crawlrunner.spec import load_spec_text

from ..conftest import query


def _plan(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(main, ["plan", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_rate_limit_sets_a_floor_on_a_hosts_time(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(
        "name: slow\nhttp: {base_url: 'https://api.example.com', rate_limit: {per_second: 2}, limits: {per_host: 4}}\n"
        "targets:\n  - {name: items, url: '/items/{id}', vars: {id: {from: 1, to: 100}}}\n"
    )

    output = _plan(cli, str(spec), "-n", "0")

    assert "  https://api.example.com: 100 known requests; 1 request every 0.5 s, 4 at a time: at least 49s" in output
    assert "warning" not in output


def test_hosts_are_counted_apart_when_the_urls_choose_them(tmp_path: Path) -> None:
    seeds = tmp_path / "urls.txt"
    seeds.write_text("https://a.example/1\nhttps://b.example/1\nhttps://a.example/2\nhttps://A.example/3\n")
    spec = load_spec_text(
        "name: s\ntargets:\n  - {name: pages, url: '{url}', seeds: urls.txt, rate_limit: {min_delay: 3}}\n"
        "  - {name: api, url: 'https://b.example/api', paginate: {type: next_url, next: next}}\n",
        file=str(tmp_path / "spec.yaml"),
    )

    hosts = {h.origin: h for h in host_plans(spec)}

    assert {o: (h.requests, h.more_from) for o, h in hosts.items()} == {
        "https://a.example": (3, set()),
        "https://b.example": (2, {"api"}),
    }
    assert hosts["https://a.example"].min_seconds == 6.0  # three requests, two gaps of 3 s
    # Each target's rate limit paces its own requests: the api's is not held up by the pages'.
    assert hosts["https://b.example"].paced == {3.0: 1, 0.0: 1}
    assert hosts["https://b.example"].min_seconds == 0.0


def test_a_follow_limit_below_the_start_urls_is_a_warning(cli: CliRunner, write_spec: Callable[..., Path]) -> None:
    spec = write_spec(
        "name: docs\nhttp: {base_url: 'https://docs.example'}\ntargets:\n"
        "  - {name: pages, url: '/p/{n}', vars: {n: {from: 1, to: 30}}, follow: {max_pages: 10}}\n"
    )

    output = _plan(cli, str(spec), "-n", "0")

    assert "warning: pages: follow.max_pages 10 is below its 30 start URLs: a complete crawl is impossible" in output


def test_a_request_budget_that_stops_the_run_early_is_a_warning(
    cli: CliRunner, write_spec: Callable[..., Path]
) -> None:
    spec = write_spec(
        "name: b\nhttp: {base_url: 'https://api.example.com'}\n"
        "targets:\n  - {name: items, url: '/items/{id}', vars: {id: {from: 1, to: 50}}}\n"
    )

    result = cli.invoke(main, ["run", str(spec), "--dry-run", "--max-requests", "20"])

    assert result.exit_code == 0, result.output
    assert "warning: --max-requests 20 stops the run before its 50 known requests" in result.output


def test_what_the_last_complete_run_hit_is_read_from_its_database(
    server: str, cli: CliRunner, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = write_spec(
        f"name: cut\nhttp: {{base_url: '{server}'}}\ntargets:\n"
        "  - name: items\n    url: /items/page\n    params: {per_page: 5}\n"
        "    paginate: {type: page_number, max_pages: 2}\n    extract: {records: data, fields: {id: id}}\n"
    )
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path), "-q"]).exit_code == 0
    (run_id,) = query(db_path, "SELECT max(id) FROM _crawlrunner_runs")[0]

    output = _plan(cli, str(spec), "-o", str(db_path), "-n", "0")

    assert (
        f"warning: items: the last complete run ({run_id}) cut 1 pagination chain at max_pages 2: "
        "a complete crawl needs a larger paginate.max_pages"
    ) in output
    assert "ms a request in the last complete run" in output  # its latency, from the fetch log


def test_a_database_that_cannot_be_read_is_said_and_the_plan_still_shown(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec("name: n\ntargets:\n  - {name: items, url: 'https://api.example.com/items'}\n")
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("not sqlite")

    output = _plan(cli, str(spec), "-o", str(not_a_database))

    assert "GET https://api.example.com/items" in output
    assert "(earlier runs not read:" in output


def test_a_database_from_before_host_stats_is_read_for_the_rest(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    import sqlite3
    from contextlib import closing

    from crawlrunner.backends.sqlite.schema import MIGRATIONS

    spec = write_spec("name: old\ntargets:\n  - {name: items, url: 'https://api.example.com/items'}\n")
    database = tmp_path / "old.db"
    with closing(sqlite3.connect(database)) as conn:
        for migration in MIGRATIONS[:4]:  # layout 4: no host_stats yet
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 4")
        conn.execute(
            "INSERT INTO runs (spec_name, spec_file, spec_hash, started_at, finished_at, status)"
            " VALUES ('old', 'spec.yaml', 'x', '2026-01-01', '2026-01-01', 'completed')"
        )
        conn.execute(
            "INSERT INTO fetch_log (run_id, target, method, url, status, bytes, elapsed_ms, attempts, records,"
            " fetched_at) VALUES (1, 'items', 'GET', 'https://api.example.com/items', 200, 10, 250, 1, 1, '2026-01-01')"
        )
        conn.commit()

    output = _plan(cli, str(spec), "-o", str(database))

    assert "earlier runs not read" not in output
    assert "250 ms a request in the last complete run" in output
