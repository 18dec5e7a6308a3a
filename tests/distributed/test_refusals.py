"""What a worker refuses, with a one-line message and nothing written: another spec than the run's,
many workers on SQLite, and databases it cannot or must not use."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from .. import pg
from .app import Site
from .conftest import CRAWL, Workers, check_crawl, cli, crawl_spec, fetch, fetched, runs, tables, wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(90)]

CHANGED = "the spec (or a seed file) changed since run {run} started; joining it would fetch a different crawl"


def one_line_error(stderr: str) -> str:
    """The message of a command that failed cleanly: one line, no traceback."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def layout(url: str) -> dict[str, object]:
    """Everything a refused worker must leave as it was: rows of the run's bookkeeping, tables, columns, indexes."""
    return {
        "runs": fetch(url, "SELECT id, status, fingerprints, resumed FROM _crawlrunner_runs ORDER BY id"),
        "workers": fetch(url, "SELECT count(*) FROM _crawlrunner_workers")[0][0],
        "columns": fetch(
            url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY 1, 2",
        ),
        "indexes": fetch(
            url,
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
        ),
    }


def other_spec(directory: Path, site: Site, name: str, *, new_key: bool = False) -> Path:
    """``CRAWL`` changed as a new version of it might be: more connections, a target added; ``new_key``:
    the listing's upsert key changed too."""
    text = CRAWL.format(name=name, base=site.url, connections=4)
    if new_key:
        text = text.replace("    key: [id]\n", "    key: [detail]\n")
    text += (
        "  - name: extra\n"
        "    url: /paced/1\n"
        "    extract: {fields: {n: {jmespath: n, type: int}}}\n"
    )  # fmt: skip
    assert text != CRAWL.format(name=name, base=site.url, connections=3)
    path = directory / "other.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def start_a_run(serve: Callable[..., Site], workers: Workers, url: str, directory: Path) -> tuple[Site, Path, int]:
    """A slow run of ``CRAWL`` going on, with one worker."""
    site = serve(pages=8, site_pages=20, latency=(0.1, 0.2))
    spec = crawl_spec(directory, site, name="shared")
    workers.run(spec, url, name="running")
    wait_until(lambda: fetched(url) >= 5, 30, "the run to start")
    return site, spec, int(fetch(url, "SELECT id FROM _crawlrunner_runs")[0][0])


def test_a_worker_with_another_spec_is_refused_while_the_run_goes(
    serve: Callable[..., Site], workers: Workers, pg_url: str, tmp_path: Path
) -> None:
    site, spec, run_id = start_a_run(serve, workers, pg_url, tmp_path)
    other = other_spec(tmp_path, site, "shared")
    before = fetch(pg_url, "SELECT id, status, fingerprints, resumed FROM _crawlrunner_runs ORDER BY id")
    joined = fetch(pg_url, "SELECT count(*) FROM _crawlrunner_workers")[0][0]

    refused = cli("run", other, "-o", pg_url, "--no-progress")
    message = one_line_error(refused.stderr)
    assert refused.returncode == 2, refused.stderr
    assert CHANGED.format(run=run_id) in message, message
    assert f"crawlrunner stop {pg_url} {run_id}" in message  # how to end the run instead
    assert refused.stdout == ""
    # No run, no worker row.
    assert fetch(pg_url, "SELECT id, status, fingerprints, resumed FROM _crawlrunner_runs ORDER BY id") == before
    assert fetch(pg_url, "SELECT count(*) FROM _crawlrunner_workers")[0][0] == joined

    # With --workers too: refused before any helper starts.
    refused = cli("run", other, "-o", pg_url, "--no-progress", "--workers", "2")
    assert refused.returncode == 2 and CHANGED.format(run=run_id) in one_line_error(refused.stderr)
    assert fetch(pg_url, "SELECT count(*) FROM _crawlrunner_workers")[0][0] == joined

    running = workers.started[0]
    assert running.wait(60) == 0, running.output()
    assert [(r["id"], r["status"]) for r in runs(pg_url)] == [(run_id, "completed")]
    check_crawl(pg_url, site, run_id)

    # Once it is over, the other spec starts a run of its own.
    after = cli("run", other, "-o", pg_url, "--no-progress", "-q", timeout=90)
    assert after.returncode == 0, after.stderr
    listed = runs(pg_url)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "completed"), (run_id + 1, "completed")], listed
    assert fetch(pg_url, "SELECT count(*) FROM extra WHERE _run_id = $1", run_id + 1)[0][0] == 1


def test_a_refused_worker_leaves_the_running_runs_tables_alone(
    serve: Callable[..., Site], workers: Workers, pg_url: str, tmp_path: Path
) -> None:
    """The refused spec changes the listing's upsert key and adds a target. Found here, fixed: the
    worker prepared its targets' tables before it was refused, replacing the key's index under the
    running workers, whose next upsert then failed (no unique index matching ON CONFLICT)."""
    site, spec, run_id = start_a_run(serve, workers, pg_url, tmp_path)
    other = other_spec(tmp_path, site, "shared", new_key=True)
    before = layout(pg_url)

    refused = cli("run", other, "-o", pg_url, "--no-progress")
    assert refused.returncode == 2 and CHANGED.format(run=run_id) in refused.stderr, refused.stderr
    changed = layout(pg_url)

    # The run it was refused from goes on unharmed, to the end.
    running = workers.started[0]
    code = running.wait(60)
    problems = []
    if "extra" in tables(pg_url):
        problems.append("a table was made for a target of the refused spec")
    for key in ("columns", "indexes"):
        if changed[key] != before[key]:
            gone = sorted(set(before[key]) - set(changed[key]))  # type: ignore[call-overload]
            new = sorted(set(changed[key]) - set(before[key]))  # type: ignore[call-overload]
            problems.append(f"{key} changed by the refused worker: gone {gone}, new {new}")
    if "upsert key changed" in refused.stderr:
        problems.append(f"the refused worker said: {refused.stderr.strip().splitlines()[0]}")
    if code != 0:
        problems.append(f"the running worker failed ({code}): {running.err[-600:]}")
    assert not problems, "\n".join(problems)
    check_crawl(pg_url, site, run_id)


def test_many_workers_need_a_postgresql_output(
    serve: Callable[..., Site], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = serve()
    spec = crawl_spec(tmp_path, site, name="local")
    db = tmp_path / "out.db"
    done = cli("run", spec, "-o", db, "--workers", "2", "--no-progress")
    assert done.returncode == 2, done.stderr
    message = one_line_error(done.stderr)
    assert "many workers need a postgresql:// output" in message, message
    assert not db.exists() and site.arrivals == []
    # The spec's own output (local.db, in the working directory) likewise.
    monkeypatch.chdir(tmp_path)
    done = cli("run", spec, "--workers", "3", "--no-progress")
    assert done.returncode == 2 and "many workers need a postgresql:// output" in one_line_error(done.stderr)
    assert not (tmp_path / "local.db").exists() and site.arrivals == []


# -- databases it cannot use ------------------------------------------------------------------------


def run_refused(url: str, spec: Path, site: Site) -> tuple[int, str]:
    done = cli("run", spec, "-o", url, "--no-progress", timeout=30)
    assert done.stdout == "" and site.arrivals == [], (done.stdout, site.arrivals)
    return done.returncode, one_line_error(done.stderr)


def test_an_unreachable_database_server(serve: Callable[..., Site], tmp_path: Path, closed_port: int) -> None:
    site = serve()
    spec = crawl_spec(tmp_path, site)
    code, message = run_refused(f"postgresql://crawl@127.0.0.1:{closed_port}/crawls", spec, site)
    assert code == 1
    assert message.startswith(f"crawlrunner: postgresql://crawl@127.0.0.1:{closed_port}/crawls: cannot connect"), (
        message
    )


def test_a_misspelt_database_name(
    serve: Callable[..., Site], tmp_path: Path, pg_cluster: pg.Server, pg_url: str
) -> None:
    site = serve()
    spec = crawl_spec(tmp_path, site)
    missing = pg_cluster.url(f"crawlrunner_nosuch_{uuid.uuid4().hex[:8]}")
    code, message = run_refused(missing, spec, site)
    assert code == 2
    assert "no such database on the server" in message, message
    # The reading commands too.
    done = cli("runs", missing)
    assert done.returncode != 0 and "no such database" in one_line_error(done.stderr)
    assert tables(pg_url) == set()  # (the real database, next to it, is untouched)


@contextlib.contextmanager
def password_user(cluster: pg.Cluster, role: str, password: str) -> Iterator[None]:
    """A role that must give its password (scram) on the cluster's socket; every other role keeps trust."""
    hba = cluster.data / "pg_hba.conf"
    original = hba.read_text()
    cluster.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        hba.write_text(f"local all {role} scram-sha-256\n" + original)
        cluster.execute("SELECT pg_reload_conf()")
        yield
    finally:
        hba.write_text(original)
        cluster.execute("SELECT pg_reload_conf()")
        cluster.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_wrong_password(serve: Callable[..., Site], tmp_path: Path, pg_cluster: pg.Server, pg_url: str) -> None:
    if not isinstance(pg_cluster, pg.Cluster):
        pytest.skip("changes the server's pg_hba.conf: only on the tests' own cluster")
    site = serve()
    spec = crawl_spec(tmp_path, site)
    role, secret, wrong = f"crawler_{uuid.uuid4().hex[:8]}", "right-8c2f", "wrong-secret-5e1a"
    dbname = pg_url.split("?")[0].rsplit("/", 1)[1]
    query = pg_url.split("?", 1)[1]
    with password_user(pg_cluster, role, secret):
        code, message = run_refused(f"postgresql://{role}:{quote(wrong)}@/{dbname}?{query}", spec, site)
        assert code == 1
        assert "password authentication failed" in message and wrong not in message, message
        # The right one works (so the refusal was the password's).
        good = cli("query", f"postgresql://{role}:{secret}@/{dbname}?{query}", "SELECT 1 AS one", "-f", "csv")
        assert good.returncode == 0 and good.stdout.split() == ["one", "1"], good.stderr
    assert tables(pg_url) == set()


def test_a_database_of_another_program(serve: Callable[..., Site], tmp_path: Path, pg_url: str) -> None:
    site = serve()
    spec = crawl_spec(tmp_path, site)
    fetch(pg_url, "CREATE TABLE customers (id integer PRIMARY KEY, name text)")
    fetch(pg_url, "INSERT INTO customers VALUES (1, 'Ada')")
    code, message = run_refused(pg_url, spec, site)
    assert code == 2
    assert "a database crawlrunner did not make (it has tables: customers); refusing to write into it" in message
    assert tables(pg_url) == {"customers"}
    assert fetch(pg_url, "SELECT * FROM customers") == [(1, "Ada")]
