"""Fixtures of the distributed tests: a slow test server, worker processes, and the database read back.

Every worker is a real ``crawlrunner run`` process (the installed entry
point) sharing a real PostgreSQL database (the session's throw-away
cluster, ``pg_url``) with the others. Its output goes to files (a pipe
nobody reads would fill and stall it), shown when a test fails. Every wait
has a time limit, and every process a test started (and the helpers those
started) is killed at the end of the test, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ENTRY_POINT, NO_ASYNCPG, ThreadedServer, postgres_unavailable
from .app import Site

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

TIMEOUT = 2.0  # CRAWLRUNNER_WORKER_TIMEOUT of the workers: a heartbeat every 1/3 s
EXIT_WAIT = 60.0  # seconds a worker gets to finish a run, at most


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Worker:
    """One ``crawlrunner`` process a test started."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def wait(self, timeout: float = EXIT_WAIT) -> int:
        """The exit status; fails the test (with the output) if the process is not done in time."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} (pid {self.pid}) still runs after {timeout} s:\n{self.output()}", pytrace=False)

    def output(self) -> str:
        out = self.stdout.read_text(errors="replace") if self.stdout.exists() else ""
        err = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return f"--- {self.name} stdout ---\n{out}--- {self.name} stderr ---\n{err}"

    @property
    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


class Workers:
    """Starts ``crawlrunner`` processes, and kills whatever is left of them at the end of the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Worker] = []
        self.env = {**os.environ, "CRAWLRUNNER_WORKER_TIMEOUT": str(TIMEOUT)}
        self.env.pop("CRAWLRUNNER_TEST_POSTGRES", None)

    def start(self, *args: str | Path, name: str | None = None, env: dict[str, str] | None = None) -> Worker:
        name = name or f"worker{len(self.started) + 1}"
        stdout, stderr = self.directory / f"{name}.out", self.directory / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [str(ENTRY_POINT), *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env={**self.env, **(env or {})},
            )  # fmt: skip
        worker = Worker(name, process, stdout, stderr)
        self.started.append(worker)
        return worker

    def run(self, spec: Path, url: str, *args: str, name: str | None = None) -> Worker:
        """``crawlrunner run SPEC -o URL``, its log at INFO (to its stderr file)."""
        return self.start("run", spec, "-o", url, "-v", "--no-progress", *args, name=name)

    def wait_all(self, timeout: float = EXIT_WAIT) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        return {w.name: w.wait(max(deadline - time.monotonic(), 0.1)) for w in self.started}

    def outputs(self) -> str:
        return self.outputs_of(self.started)

    @staticmethod
    def outputs_of(workers: Sequence[Worker]) -> str:
        return "\n".join(w.output() for w in workers)

    def cleanup(self) -> None:
        """SIGKILL every process started here that still runs, and its descendants (``--workers``' helpers)."""
        pids: list[int] = []
        for worker in self.started:
            if worker.alive():
                pids += [worker.pid, *descendants(worker.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        for worker in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.cleanup()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(started.outputs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, for the ``workers`` fixture to see whether the test failed."""
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def serve() -> Iterator[Callable[..., Site]]:
    """Start a :class:`Site` (settings as keywords) on a port of its own; ``site.url`` is its base URL."""
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> Site:
            site = Site(**settings)
            server = stack.enter_context(ThreadedServer(site.make_app()))
            site.url = server.url
            return site

        yield start


# -- reading the database back, with asyncpg (not crawlrunner's own reading code) ------------------


def fetch(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args, timeout=10)]
        finally:
            await conn.close(timeout=10)

    return asyncio.run(go())


def fetchval(url: str, sql: str, *args: Any) -> Any:
    rows = fetch(url, sql, *args)
    return rows[0][0] if rows else None


def tables(url: str) -> set[str]:
    return {row[0] for row in fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def cli(*args: str | Path, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``crawlrunner`` with ``args``, to its end."""
    return subprocess.run(
        [str(ENTRY_POINT), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "CRAWLRUNNER_WORKER_TIMEOUT": str(TIMEOUT), **(env or {})},
    )  # fmt: skip


def runs(url: str) -> list[dict[str, Any]]:
    """``crawlrunner runs URL -f json``: one dict per run."""
    done = cli("runs", url, "-f", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``condition`` until it is true (returned); fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(every)


def fetched(url: str) -> int:
    """Requests committed so far, all runs (0 before the layout exists)."""
    try:
        return int(fetchval(url, "SELECT count(*) FROM _crawlrunner_fetch_log") or 0)
    except asyncpg.UndefinedTableError:
        return 0


def duplicates(values: Sequence[Any]) -> dict[Any, int]:
    seen: dict[Any, int] = {}
    for value in values:
        seen[value] = seen.get(value, 0) + 1
    return {value: count for value, count in seen.items() if count > 1}


# -- the crawl most tests run: pagination, children, link following --------------------------------

CRAWL = """
name: {name}
http:
  base_url: "{base}"
  limits: {{connections: {connections}}}
targets:
  - name: listing
    url: /api/items?page=1
    paginate: {{type: next_url, next: next}}
    mode: upsert
    key: [id]
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        detail: detail
  - name: detail
    parent: listing
    url_field: detail
    extract:
      fields:
        id: {{jmespath: id, type: int}}
        name: name
  - name: pages
    url: /site/0.html
    follow: {{max_depth: 10}}
    extract:
      format: html
      fields:
        n: {{css: "h1::attr(data-n)", type: int}}
"""


def crawl_spec(directory: Path, site: Site, name: str = "crawl", connections: int = 3, file: str = "") -> Path:
    path = directory / (file or f"{name}.yaml")
    path.write_text(CRAWL.format(name=name, base=site.url, connections=connections), encoding="utf-8")
    return path


def expected_paths(site: Site) -> dict[str, set[str]]:
    return {"listing": site.list_paths, "detail": site.detail_paths, "pages": site.site_paths}


def check_crawl(url: str, site: Site, run_id: int) -> dict[str, Any]:
    """Assert that run ``run_id`` of ``CRAWL`` stored every record and logged every request exactly once.

    Returns what was counted, for the test's output.
    """
    found: dict[str, Any] = {}
    records = {
        "listing": ([r[0] for r in fetch(url, "SELECT id FROM listing")], site.item_ids),
        "detail": ([r[0] for r in fetch(url, "SELECT id FROM detail WHERE _run_id = $1", run_id)], site.item_ids),
        "pages": ([r[0] for r in fetch(url, "SELECT n FROM pages WHERE _run_id = $1", run_id)], site.site_numbers),
    }
    for target, (got, wanted) in records.items():
        missing, extra, repeated = wanted - set(got), set(got) - wanted, duplicates(got)
        found[f"{target} records"] = len(got)
        assert not missing and not extra and not repeated, (
            f"{target}: {len(got)} records for {len(wanted)} expected; missing {sorted(missing)}, "
            f"unexpected {sorted(extra)}, stored more than once {repeated}"
        )
    upserted = fetch(url, "SELECT count(*) FROM listing WHERE _run_id = $1", run_id)[0][0]
    assert upserted == len(site.item_ids), f"listing rows of run {run_id}: {upserted}"

    # The fetch log: one row per request (it is written in the fenced commit, with the records).
    base = site.url
    log = fetch(
        url, "SELECT target, url, status, error_kind, records FROM _crawlrunner_fetch_log WHERE run_id = $1", run_id
    )
    for target, paths in expected_paths(site).items():
        logged = [row[1].removeprefix(base) for row in log if row[0] == target]
        unlogged, unasked, relogged = paths - set(logged), set(logged) - paths, duplicates(logged)
        found[f"{target} fetch_log rows"] = len(logged)
        assert not unlogged and not unasked and not relogged, (
            f"fetch_log of {target}: missing {sorted(unlogged)}, unexpected {sorted(unasked)}, "
            f"logged more than once {relogged}"
        )
    failures = [row for row in log if row[3] is not None or row[2] != 200]
    assert not failures, f"failed requests in the fetch log: {failures[:5]}"
    stored = sum(len(got) for got, _ in records.values())
    assert sum(row[4] for row in log) == stored, "fetch_log.records does not add up to the rows stored"

    # Every page the server served is in the log, and nothing it did not expect was asked for.
    every = set().union(*expected_paths(site).values())
    assert set(site.served) == every, (
        f"served but not expected: {sorted(set(site.served) - every)[:10]}; "
        f"expected but never served: {sorted(every - set(site.served))[:10]}"
    )
    found["fetches at the server"] = sum(site.served.values())
    found["pages fetched more than once"] = sum(1 for count in site.served.values() if count > 1)

    states = dict(
        fetch(url, "SELECT state, count(*) FROM _crawlrunner_requests WHERE run_id = $1 GROUP BY state", run_id)
    )
    assert set(states) == {"done"}, f"requests of run {run_id} by state: {states}"
    found["requests"] = states["done"]
    return found


# -- a flat crawl: one target, N requests to one route -------------------------------------------

FLAT = """
name: {name}
http:
  base_url: "{base}"
  limits: {{connections: {connections}, per_host: {per_host}}}
  {http}
targets:
  - name: {target}
    url: /{route}/{{n}}
    vars: {{n: {{from: 1, to: {count}}}}}
    extract: {{fields: {{n: {{jmespath: n, type: int}}}}}}
"""


def flat_spec(
    directory: Path, site: Site, route: str, count: int, *, name: str = "flat", connections: int = 4,
    per_host: int = 8, http: str = "",
) -> Path:  # fmt: skip
    """A spec fetching ``/{route}/1`` to ``/{route}/{count}`` (``http``: more YAML lines of ``http:``)."""
    path = directory / f"{name}.yaml"
    text = FLAT.format(
        name=name, base=site.url, connections=connections, per_host=per_host, http=http, target=route,
        route=route, count=count,
    )  # fmt: skip
    path.write_text(text, encoding="utf-8")
    return path


def check_flat(url: str, site: Site, route: str, count: int, run_id: int) -> None:
    """Every ``/{route}/{n}`` stored once, logged once, run ``run_id`` completed."""
    got = [row[0] for row in fetch(url, f"SELECT n FROM {route} WHERE _run_id = $1", run_id)]
    wanted = set(range(1, count + 1))
    assert set(got) == wanted and not duplicates(got), (
        f"missing {sorted(wanted - set(got))}, stored more than once {duplicates(got)}"
    )
    logged = [
        row[0]
        for row in fetch(url, "SELECT url FROM _crawlrunner_fetch_log WHERE run_id = $1 AND status = 200", run_id)
    ]
    assert len(logged) == count and not duplicates(logged), f"fetch_log: {len(logged)} rows, {duplicates(logged)}"
    status = fetch(url, "SELECT status FROM _crawlrunner_runs WHERE id = $1", run_id)[0][0]
    assert status == "completed"
