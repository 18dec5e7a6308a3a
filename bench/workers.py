"""Scale-out: worker processes sharing one run in PostgreSQL (`crawlrunner run ... --workers N`).

    python bench/workers.py [--reps 3] [--quick] [--only scaling|cpu|dbtime]

Everything runs on a throw-away PostgreSQL cluster (tests/pg.py: initdb in a
temporary directory, a Unix socket, fsync off), a fresh database per run.
Every run is checked: each document fetched once, none failed, one row per
id, the run completed.

- scaling: an I/O-bound crawl. A local aiohttp server, in a process of its
  own, answers each JSON document after 50 ms; specs/bench-workers-latency.yaml
  fetches 3,200 of them at 8 connections per worker, with 1, 2 and 4 workers.
  requests/s of the whole command (start-up included) and of the crawl as
  fetch_log tells it: first to last fetch, and the stretch when every worker
  was fetching; each against linear, rate_N / (N x rate_1). For reference,
  the same documents split between 4 independent SQLite crawls (no shared
  run): what the machine does with no coordination at all.
- cpu: the json-detail site of bench/run.py (20,000 documents from the local
  nginx), the same concurrency per process: one process on SQLite, one and
  two workers on PostgreSQL. nginx, PostgreSQL and the workers share the cores.
- dbtime: the two-worker json-detail crawl, and the four-worker latency
  crawl, with pg_stat_statements loaded: the server's time per request in
  each kind of statement (the claim, the fenced commit, loading start
  requests, ...), and the CPU time of every process of the cluster (/proc).

Medians of --reps runs, the configurations interleaved. Prints the tables and
the command that made them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shlex
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]  # bench/run.py's helpers, tests/pg.py's cluster

import run as bench  # noqa: E402

from tests.pg import Cluster  # noqa: E402

LATENCY = 0.05  # seconds the latency server waits before each answer
LATENCY_SPEC = REPO / "specs" / "bench-workers-latency.yaml"
DETAIL_SPEC = REPO / "specs" / "bench-json-detail.yaml"
SCALING_WORKERS = (1, 2, 4)
INDEPENDENT = 4  # SQLite crawls side by side, for reference
SECTIONS = ("scaling", "cpu", "dbtime")
# Documents (full, --quick) of the latency crawl, at 8 connections and 50 ms
# at most 160 requests/s per worker, so 3,200 take one worker 20 s; and of
# the json-detail crawl.
LATENCY_DOCUMENTS = {False: 3_200, True: 640}
DETAIL_DOCUMENTS = {False: 20_000, True: 4_000}


# -- the servers ---------------------------------------------------------------------------------


def serve(port: int) -> None:
    """The latency server (``workers.py --serve PORT``, in a process of its own)."""
    from aiohttp import web

    async def item(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        await asyncio.sleep(LATENCY)
        return web.json_response({"id": n, "name": f"item {n}", "price": round(n * 0.37, 2), "sku": f"SKU-{n:06d}"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/item/{n}", item)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()

    try:
        import uvloop  # the speedups extra: less of the machine's CPU for the server
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


@contextmanager
def latency_server() -> Iterator[str]:
    """The latency server in its own process; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/item/1", timeout=2) as response:
                    response.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the latency server did not start")
        yield base
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def nginx(tmp: Path) -> Iterator[str]:
    """bench/run.py's nginx on the generated site (made first if missing); yields its base URL."""
    site = HERE / "site"
    if not (site / "big.bin").exists():
        subprocess.run([sys.executable, str(HERE / "site.py"), str(site)], check=True)
    process = bench.start_nginx(site, tmp)
    try:
        yield bench.BASE
    finally:
        process.terminate()
        process.wait(10)


def wrk_rate(url: str, connections: int) -> str:
    """requests/s wrk gets from ``url`` at ``connections``: the latency server's own ceiling."""
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", "-d3s", url], capture_output=True, text=True, check=False)
    line = next((row for row in done.stdout.splitlines() if row.startswith("Requests/sec")), "Requests/sec: ?")
    return line.split(":", 1)[1].strip()


# -- specs and commands --------------------------------------------------------------------------


def ranged_spec(spec: Path, first: int, last: int, tmp: Path) -> Path:
    """``spec`` itself, or a copy in ``tmp`` fetching documents ``first`` to ``last``."""
    text = spec.read_text()
    found = re.search(r"\{from: 1, to: (\d+)\}", text)
    assert found is not None, f"{spec}: no vars range to resize"
    if (first, last) == (1, int(found[1])):
        return spec
    copy = tmp / f"{spec.stem}-{first}-{last}.yaml"
    copy.write_text(text.replace(found[0], f"{{from: {first}, to: {last}}}"))
    return copy


def crawl_command(spec: Path, output: str, base: str, concurrency: int | None, workers: int | None) -> list[str]:
    command = [str(bench.BIN / "crawlrunner"), "run", str(spec), "-o", output, "--base-url", base]
    command += ["-q", "--no-progress", *(["-c", str(concurrency)] if concurrency else [])]
    return command + (["--workers", str(workers)] if workers else [])


# -- measuring -------------------------------------------------------------------------------------


def measure_all(commands: Sequence[list[str]], tmp: Path) -> bench.Measure:
    """Run ``commands`` side by side: wall time until the last ends, CPU of all (their children included), the largest RSS."""
    env = {**os.environ, "CRAWLRUNNER_NO_SPEEDUPS": ""}
    started = time.perf_counter()
    running = []
    for i, command in enumerate(commands):
        errors = (tmp / f"stderr-{i}").open("w+b")
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        running.append((command, child, errors))
    cpu = rss = 0.0
    failed = []
    for command, child, errors in running:
        # wait4's usage includes the worker processes a command started and waited for.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, bench.child_peak_mb(usage))  # a NaN (not measured) second argument leaves rss as it was
        errors.seek(0)
        if child.returncode != 0:
            failed.append(f"{shlex.join(command)} failed ({child.returncode}):\n{errors.read().decode()}")
        errors.close()
    if failed:
        raise SystemExit("\n".join(failed))
    return bench.Measure(time.perf_counter() - started, cpu, rss)


def postgres_cpu(cluster: Cluster) -> float:
    """CPU seconds of the cluster's processes so far: the postmaster, its children alive, and those that ended.

    A backend that ended (a worker closed its connection) has its times
    in the postmaster's children times once reaped.
    """
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])

    def stat(pid: int | str) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # from the third field (state) on

    ticks = sum(int(v) for v in stat(postmaster)[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields_ = stat(entry.name)
            except (OSError, ValueError):
                continue  # ended meanwhile
            if int(fields_[1]) == postmaster:
                ticks += int(fields_[11]) + int(fields_[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def fetch(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of one query on a PostgreSQL database."""
    import asyncpg

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


@dataclass
class Stored:
    """What a crawl left in its database(s)."""

    fetches: list[tuple[int, float]]  # (worker, when its request was sent: epoch seconds)
    failed: int
    ids: list[Any]
    statuses: list[str]

    def __add__(self, other: Stored) -> Stored:
        return Stored(
            self.fetches + other.fetches,
            self.failed + other.failed,
            self.ids + other.ids,
            self.statuses + other.statuses,
        )


def read_postgres(url: str) -> Stored:
    fetches = fetch(
        url, "SELECT coalesce(worker_id, 0), extract(epoch FROM fetched_at)::float8 FROM _crawlrunner_fetch_log"
    )
    failed = fetch(url, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE error_kind IS NOT NULL")[0][0]
    ids = [row[0] for row in fetch(url, "SELECT id FROM rows")]
    statuses = [row[0] for row in fetch(url, "SELECT status FROM _crawlrunner_runs")]
    return Stored([(int(w), float(t)) for w, t in fetches], int(failed), ids, statuses)


def read_sqlite(path: Path, worker: int = 0) -> Stored:
    with sqlite3.connect(path) as conn:
        fetches = [
            (worker, datetime.fromisoformat(t).timestamp())
            for (t,) in conn.execute("SELECT fetched_at FROM _crawlrunner_fetch_log")
        ]
        failed = conn.execute("SELECT count(*) FROM _crawlrunner_fetch_log WHERE error_kind IS NOT NULL").fetchone()[0]
        ids = [row[0] for row in conn.execute("SELECT id FROM rows")]
        statuses = [row[0] for row in conn.execute("SELECT status FROM _crawlrunner_runs")]
    return Stored(fetches, int(failed), ids, statuses)


def check(stored: Stored, documents: int, what: str) -> None:
    """Every document fetched once and stored once: the run did all the work, and none of it twice."""
    problems = []
    if len(stored.fetches) != documents:
        problems.append(f"{len(stored.fetches)} fetches, expected {documents}")
    if stored.failed:
        problems.append(f"{stored.failed} failed requests")
    if len(stored.ids) != documents or len(set(stored.ids)) != documents:
        problems.append(f"{len(stored.ids)} rows with {len(set(stored.ids))} distinct ids, expected {documents}")
    if any(status != "completed" for status in stored.statuses):
        problems.append(f"runs {stored.statuses}")
    if problems:
        raise SystemExit(f"{what}: " + "; ".join(problems))


@dataclass
class Result:
    """One crawl: the whole command, and the crawl as its fetch_log tells it."""

    seconds: float  # the whole command, start-up included
    cpu: float  # user + system seconds of the command(s) and their worker processes
    rss_mb: float  # the largest process's peak
    requests: int
    lead: float  # from starting the command to the first fetch
    stagger: float  # from the first fetch to the last worker's first fetch
    span: float  # first fetch to last fetch
    all_rate: float  # requests/s while every worker was fetching (the last first fetch to the first last fetch)
    server_cpu: float  # CPU seconds of the PostgreSQL cluster's processes (0: SQLite)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def crawl_rate(self) -> float:
        return self.requests / self.span

    def __str__(self) -> str:
        return (f"{self.seconds:.1f} s, {self.rate:,.0f}/s; crawl {self.crawl_rate:,.0f}/s, all fetching "
                f"{self.all_rate:,.0f}/s; CPU {self.cpu:.1f} s + PostgreSQL {self.server_cpu:.1f} s")  # fmt: skip


def crawl(
    commands: Sequence[list[str]], read: Callable[[], Stored], documents: int, what: str, tmp: Path,
    cluster: Cluster | None = None,
) -> Result:  # fmt: skip
    """Run one crawl (one command, or several side by side) and check what it stored."""
    before = postgres_cpu(cluster) if cluster else 0.0
    started = time.time()
    measured = measure_all(commands, tmp)
    server_cpu = postgres_cpu(cluster) - before if cluster else 0.0
    stored = read()
    check(stored, documents, what)
    times = sorted(t for _, t in stored.fetches)
    by_worker: dict[int, list[float]] = {}
    for worker, t in stored.fetches:
        by_worker.setdefault(worker, []).append(t)
    start, end = max(min(ts) for ts in by_worker.values()), min(max(ts) for ts in by_worker.values())
    inside = sum(1 for t in times if start <= t <= end)
    return Result(
        measured.seconds, measured.cpu, measured.rss_mb, len(times), lead=times[0] - started,
        stagger=start - times[0], span=times[-1] - times[0],
        all_rate=inside / (end - start) if end > start else float("nan"), server_cpu=server_cpu,
    )  # fmt: skip


def median(results: Sequence[Result]) -> Result:
    """The median of each measure, over runs of one configuration."""
    return Result(**{f.name: statistics.median(getattr(r, f.name) for r in results) for f in fields(Result)})


def interleaved(reps: int, configurations: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """(rep, configuration): every configuration once per rep, in reverse order on odd reps."""
    for rep in range(reps):
        for configuration in configurations if rep % 2 == 0 else list(reversed(configurations)):
            yield rep, configuration


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def section(title: str, notes: Sequence[str], table: str) -> str:
    text = f"### {title}\n\n" + "\n".join(notes) + f"\n\n{table}\n"
    print("\n" + text, flush=True)
    return text


# -- I/O-bound scaling -----------------------------------------------------------------------------


def scaling(cluster: Cluster, reps: int, quick: bool, tmp: Path) -> str:
    documents = LATENCY_DOCUMENTS[quick]
    spec = ranged_spec(LATENCY_SPEC, 1, documents, tmp)
    shares = [ranged_spec(LATENCY_SPEC, i * documents // INDEPENDENT + 1, (i + 1) * documents // INDEPENDENT, tmp)
              for i in range(INDEPENDENT)]  # fmt: skip
    configurations = [("postgresql", n) for n in SCALING_WORKERS] + [("sqlite", 1), ("sqlite", INDEPENDENT)]
    runs: dict[tuple[str, int], list[Result]] = {c: [] for c in configurations}
    with latency_server() as base:
        ceiling = wrk_rate(f"{base}/item/1", 64)
        for rep, (kind, n) in interleaved(reps, configurations):
            what = f"scaling: {kind}, {n} worker(s), rep {rep + 1}"
            if kind == "postgresql":
                name = f"scaling_{n}_{rep}"
                url = cluster.create_database(name)
                command = crawl_command(spec, url, base, None, n)
                result = crawl([command], partial(read_postgres, url), documents, what, tmp, cluster)
                cluster.drop_database(name)
            else:
                parts = [spec] if n == 1 else shares
                dbs = [tmp / f"scaling-{n}-{rep}-{i}.db" for i in range(len(parts))]
                commands = [crawl_command(p, str(db), base, None, None) for p, db in zip(parts, dbs, strict=True)]

                def read(dbs: list[Path] = dbs) -> Stored:
                    return sum((read_sqlite(db, i) for i, db in enumerate(dbs)), Stored([], 0, [], []))

                result = crawl(commands, read, documents, what, tmp)
            runs[(kind, n)].append(result)
            print(f"{what}: {result}", flush=True)
    results = {c: median(r) for c, r in runs.items()}
    rows = []
    for (kind, n), r in results.items():
        one = results[(kind, 1)]
        label = f"{n} worker{'s' if n > 1 else ''}, one run" if kind == "postgresql" else (
            "1 process" if n == 1 else f"{n} independent processes, ¼ of the ids each")  # fmt: skip
        rows.append([
            "PostgreSQL" if kind == "postgresql" else "SQLite (reference)", label, f"{r.seconds:.1f}",
            f"{r.rate:,.0f}", f"{r.rate / (n * one.rate):.2f}", f"{r.crawl_rate:,.0f}",
            f"{r.crawl_rate / (n * one.crawl_rate):.2f}", f"{r.all_rate:,.0f}", f"{r.all_rate / (n * one.all_rate):.2f}",
            f"{r.lead:.2f}", f"{r.stagger:.2f}", f"{r.cpu:.1f}", f"{r.server_cpu:.1f}" if kind == "postgresql" else "-",
        ])  # fmt: skip
    header = [
        "output", "processes", "command s", "command req/s", "vs linear", "crawl req/s (first→last fetch)", "vs linear",
        "req/s, all fetching", "vs linear", "start → first fetch s", "→ last worker's first fetch s",
        "crawlrunner CPU s", "PostgreSQL CPU s",
    ]  # fmt: skip
    notes = [
        f"{documents:,} JSON documents, each answered after {LATENCY * 1000:.0f} ms by a local aiohttp server in a "
        f"process of its own (its ceiling, wrk -t1 -c64: {ceiling} requests/s, ideal {64 / LATENCY:,.0f}); "
        "`connections: 8` per process (at most 160 requests/s each), `per_host: 0`; a fresh database per run; "
        "every run's rows checked.",
        "*command*: the whole `crawlrunner run ... --workers N` (for the independent processes: until the last one "
        "ends), start-up included. *crawl*: requests over the first to the last `fetched_at` in `fetch_log`. *all "
        "fetching*: requests sent between the last worker's first fetch and the first worker's last fetch, over that "
        "stretch. *vs linear*: rate_N / (N × rate_1) within each output; target ≥ 0.9.",
    ]
    return section("I/O-bound scaling (`--only scaling`)", notes, markdown(header, rows))


# -- CPU-bound: one machine ------------------------------------------------------------------------


def cpu_bound(cluster: Cluster, reps: int, quick: bool, concurrency: int, tmp: Path) -> str:
    documents = DETAIL_DOCUMENTS[quick]
    spec = ranged_spec(DETAIL_SPEC, 1, documents, tmp)
    contenders = [("SQLite, 1 process", 0), ("PostgreSQL, 1 worker", 1), ("PostgreSQL, 2 workers", 2)]
    runs: dict[str, list[Result]] = {label: [] for label, _ in contenders}
    with nginx(tmp) as base:
        ceiling = bench.ceiling()
        for rep, (label, workers) in interleaved(reps, contenders):
            what = f"cpu: {label}, rep {rep + 1}"
            if workers:
                name = f"cpu_{workers}_{rep}"
                url = cluster.create_database(name)
                command = crawl_command(spec, url, base, concurrency, workers)
                runs[label].append(crawl([command], partial(read_postgres, url), documents, what, tmp, cluster))
                cluster.drop_database(name)
            else:
                db = tmp / f"cpu-sqlite-{rep}.db"
                command = crawl_command(spec, str(db), base, concurrency, None)
                runs[label].append(crawl([command], partial(read_sqlite, db), documents, what, tmp))
            print(f"{what}: {runs[label][-1]}", flush=True)
    results = {label: median(r) for label, r in runs.items()}
    sqlite = results["SQLite, 1 process"]
    rows = []
    for label, r in results.items():
        rows.append([
            label, f"{r.rate:,.0f}", f"{r.rate / sqlite.rate:.2f}", f"{r.crawl_rate:,.0f}",
            f"{r.crawl_rate / sqlite.crawl_rate:.2f}", f"{r.lead:.2f}", f"{r.cpu:.1f}",
            f"{r.server_cpu:.1f}" if r.server_cpu else "-", f"{r.cpu / r.requests * 1e6:,.0f}",
            f"{(r.cpu + r.server_cpu) / r.requests * 1e6:,.0f}", f"{r.requests:,} ✓",
        ])  # fmt: skip
    header = [
        "contender", "command req/s", "vs SQLite", "crawl req/s (first→last fetch)", "vs SQLite",
        "start → first fetch s", "crawlrunner CPU s", "PostgreSQL CPU s", "crawlrunner CPU µs/req",
        "all CPU µs/req", "rows checked",
    ]  # fmt: skip
    notes = [
        f"json-detail: {documents:,} documents (~1 KB) from the local nginx (its ceiling, wrk -t2 -c64: {ceiling} "
        f"requests/s), `-c {concurrency}` per process; nginx, PostgreSQL and the workers share the machine's cores.",
        "*vs SQLite*: the ratio to one crawlrunner process on SQLite; target for 2 workers on PostgreSQL ≥ 0.5. "
        "*crawlrunner CPU*: user + system seconds of the command and its worker processes, start-up included; "
        "*PostgreSQL CPU*: of every process of the cluster (/proc) during the run. *rows checked*: one row per id, "
        "none twice, each document fetched once, the run completed.",
    ]
    return section("CPU-bound, everything on one machine (`--only cpu`)", notes, markdown(header, rows))


# -- database time per request ---------------------------------------------------------------------

# Statements by what they are for (pg_stat_statements' normalised text, on one line); the first match wins.
CATEGORIES: list[tuple[str, str]] = [
    ("set-up: layout, tables, type introspection", r"^(CREATE|ALTER|DROP)\b|typeinfo|pg_catalog|pg_attribute|pg_indexes|pg_tables|pg_class"),
    ("claim: lease pending requests", r"lease_token = nextval"),
    ("commit: fence (done where the lease holds)", r"AS v\(id, token, state, reason\)"),
    ("commit: fetch_log ids", r"fetch_log_id_seq|FROM generate_series"),
    ("commit: fetch_log rows", r"^INSERT INTO _crawlrunner_fetch_log"),
    ("commit: records", r'^INSERT INTO "'),
    ("BEGIN and COMMIT (of every transaction)", r"^(BEGIN|COMMIT|ROLLBACK)\b"),
    ("load start requests (plan → requests table)", r"^INSERT INTO _crawlrunner_requests|^SELECT target, next_seq|^UPDATE _crawlrunner_run_targets SET next_seq"),
    ("is the run over? (nothing to claim)", r"^SELECT NOT EXISTS"),
    ("asyncpg's pool: reset at every release (4 statements)", r"pg_advisory_unlock_all|^RESET ALL|^CLOSE ALL|^UNLISTEN"),
    ("politeness (hosts, cooldowns)", r"crawlrunner_host_round|\bhosts\b|host_turns"),
    ("heartbeat and reaping", r"^UPDATE _crawlrunner_workers|JOIN _crawlrunner_workers"),
]  # fmt: skip
OTHER = "other (joining, leaving, totals)"
NAMES = [name for name, _ in CATEGORIES] + [OTHER]
STATEMENTS = (
    "SELECT query, calls, total_exec_time + total_plan_time FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)"
)
HOT = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = '_crawlrunner_requests'"


def category(query: str) -> str:
    line = " ".join(query.split())
    return next((name for name, pattern in CATEGORIES if re.search(pattern, line)), OTHER)


@dataclass
class DbTime:
    """One crawl's statements, per request: category → (µs of execution and planning, calls)."""

    result: Result
    per_request: dict[str, tuple[float, float]]
    statements: dict[str, tuple[float, float]]  # by normalised text
    hot_share: float  # of the updates of ``requests``, the HOT ones (no index touched)


def db_time(cluster: Cluster, reps: int, quick: bool, concurrency: int, tmp: Path) -> str:
    # pg_stat_statements (in Debian's postgresql-15 package) is loaded at start: a restart.
    cluster.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    cluster.restart()
    for setting in ("pg_stat_statements.track = 'top'", "pg_stat_statements.track_planning = on"):
        cluster.execute(f"ALTER SYSTEM SET {setting}")
    cluster.execute("SELECT pg_reload_conf()")
    cluster.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    detail, latency = DETAIL_DOCUMENTS[quick], LATENCY_DOCUMENTS[quick]
    crawls = [
        (f"json-detail, 2 workers, `-c {concurrency}`", ranged_spec(DETAIL_SPEC, 1, detail, tmp), detail, concurrency, 2),
        ("latency, 4 workers, 8 connections", ranged_spec(LATENCY_SPEC, 1, latency, tmp), latency, None, 4),
    ]  # fmt: skip
    runs: dict[str, list[DbTime]] = {label: [] for label, *_ in crawls}
    with ExitStack() as servers:
        bases = [servers.enter_context(nginx(tmp)), servers.enter_context(latency_server())]
        for rep, (label, spec, documents, connections, workers) in interleaved(reps, crawls):
            base = bases[0] if spec.name.startswith("bench-json") else bases[1]
            name = f"dbtime_{workers}_{rep}"
            url = cluster.create_database(name)
            fetch(cluster.admin_url, "SELECT pg_stat_statements_reset()")
            seen: dict[str, list[tuple[Any, ...]]] = {}

            def read(url: str = url, name: str = name, seen: dict[str, list[tuple[Any, ...]]] = seen) -> Stored:
                # The server's counts before the checks' own queries.
                seen["statements"] = fetch(cluster.admin_url, STATEMENTS, name)
                seen["hot"] = fetch(url, HOT)
                return read_postgres(url)

            command = crawl_command(spec, url, base, connections, workers)
            result = crawl([command], read, documents, f"dbtime: {label}", tmp, cluster)
            cluster.drop_database(name)
            per_request: dict[str, tuple[float, float]] = {}
            statements: dict[str, tuple[float, float]] = {}
            for query, calls, ms in seen["statements"]:
                us, per = ms * 1000 / result.requests, calls / result.requests
                kind = category(query)
                so_far = per_request.get(kind, (0.0, 0.0))
                per_request[kind] = (so_far[0] + us, so_far[1] + per)
                statements[" ".join(query.split())] = (us, per)
            updates, hot = seen["hot"][0]
            runs[label].append(DbTime(result, per_request, statements, hot / updates if updates else 0.0))
            print(f"dbtime: {label}, rep {rep + 1}: {result}", flush=True)
    header = ["statements"]
    columns: list[list[str]] = []
    for label, measured in runs.items():
        header += [f"{label}: calls/request", "µs/request", "share"]
        med = {n: tuple(statistics.median(m.per_request.get(n, (0.0, 0.0))[i] for m in measured) for i in (0, 1))
               for n in NAMES}  # fmt: skip
        total = sum(us for us, _ in med.values())
        core = sum(us for n, (us, _) in med.items() if n.startswith(("claim", "commit", "BEGIN")))
        r = median([m.result for m in measured])
        hot = statistics.median(m.hot_share for m in measured)
        columns.append(
            [cell for n in NAMES for cell in (f"{med[n][1]:.3f}", f"{med[n][0]:,.1f}", f"{med[n][0] / total:.0%}")]
            + ["", f"**{core:,.1f}**", f"{core / total:.0%}"]
            + [f"{sum(c for _, c in med.values()):.3f}", f"**{total:,.1f}**", "100%"]
            + ["", f"{r.server_cpu / r.requests * 1e6:,.1f}", ""]
            + ["", f"{r.cpu / r.requests * 1e6:,.1f}", ""]
            + ["", f"{r.rate:,.0f} (crawl {r.crawl_rate:,.0f})", ""]
            + ["", f"{hot:.0%}", ""]
        )
        print(f"\ndbtime, {label}: statements by time (median µs and calls per request; category; text):")
        texts = {q for m in measured for q in m.statements}
        ranked = sorted(texts, key=lambda q: -statistics.median(m.statements.get(q, (0.0, 0.0))[0] for m in measured))
        for query in ranked[:20]:
            us, calls = (statistics.median(m.statements.get(query, (0.0, 0.0))[i] for m in measured) for i in (0, 1))
            print(f"  {us:8.1f} µs {calls:6.3f}  {category(query)[:24]:24}  {query[:100]}")
    labels = NAMES + [
        "**claim + fenced commit** (claim, commit: and BEGIN and COMMIT rows)", "**every statement**",
        "PostgreSQL CPU, every process of the cluster (/proc)", "crawlrunner CPU, all workers (for scale)",
        "requests/s of the command", "updates of `requests` that were HOT (touched no index)",
    ]  # fmt: skip
    rows = [
        [label] + [cell for column in columns for cell in column[3 * i : 3 * i + 3]] for i, label in enumerate(labels)
    ]
    # Kinds of statement no crawl made are left out.
    rows = [row for row in rows if row[0] not in NAMES or any(cell not in ("0.000", "0.0", "0%") for cell in row[1:])]
    notes = [
        "pg_stat_statements loaded (`track = top`, `track_planning = on`), reset before each crawl. *µs/request*: the "
        "server's execution + planning time of the statements of each kind over the run, divided by its requests. "
        "It is wall time inside the executor, so on a busy machine it includes waiting for a core; it leaves out the "
        "round trips and protocol handling, parsing, and the commit's own work at COMMIT (WAL; fsync is off in "
        "this cluster). The /proc row is all the CPU the cluster's processes used (backends, WAL writer, "
        "checkpointer, autovacuum) during the run: everything the database cost.",
    ]
    return section("Database time per request (`--only dbtime`)", notes, markdown(header, rows))


def code_version() -> str:
    """The commit, and a digest of the package's sources as they are (the working tree may differ from it)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "crawlrunner").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "crawlrunner"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return f"{commit.stdout.strip() or '?'}{' + uncommitted changes' if dirty.stdout.strip() else ''}, sources {digest.hexdigest()[:12]}"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="runs of each configuration; the tables show medians")
    parser.add_argument("--quick", action="store_true", help="fewer documents: a smoke check, not a measurement")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="only this section (may be repeated)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections per process on nginx (cpu, dbtime)")
    args = parser.parse_args()
    sections = args.only or list(SECTIONS)
    started = time.perf_counter()
    version = code_version()
    # As an installed wheel would be: compiled once, not on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "crawlrunner")], check=True)
    tables = []
    with tempfile.TemporaryDirectory() as tmp_name, Cluster() as cluster:
        tmp = Path(tmp_name)
        if "scaling" in sections:
            tables.append(scaling(cluster, args.reps, args.quick, tmp))
        if "cpu" in sections:
            tables.append(cpu_bound(cluster, args.reps, args.quick, args.concurrency, tmp))
        if "dbtime" in sections:  # last: it restarts the cluster with pg_stat_statements
            tables.append(db_time(cluster, args.reps, args.quick, args.concurrency, tmp))
    minutes = (time.perf_counter() - started) / 60
    if code_version() != version:
        print(
            f"\nWARNING: crawlrunner's sources changed during the run (were {version}): the runs measured mixed code."
        )
    command = shlex.join(["python", "bench/workers.py", *sys.argv[1:]])
    print(f"\n## Scale-out: `{command}` ({date.today().isoformat()}, {minutes:.1f} minutes)\n")
    print(
        f"Machine: {bench.machine()}. Code: {version}. Medians of {args.reps} runs, the configurations interleaved.\n"
    )
    print("\n".join(tables))
    print(f"Reproduce: `bash bench/setup.sh && {command}`")


if __name__ == "__main__":
    main()
