"""The benchmark: crawlrunner vs a careful aiohttp script vs Scrapy, on a local nginx.

    python bench/run.py [--reps 3] [--concurrency 64 16] [--kinds json-detail json-list html] [--no-scrapy]

Generates the site (bench/site/, not committed) if missing, serves it with
nginx on 127.0.0.1 (keep-alive on, access log off), measures nginx's own
ceiling with wrk, then runs every contender on the same URLs at the same
concurrency, checks the exact row count, and prints medians: requests/s,
records/s, peak RSS, CPU seconds, and the ratio to the aiohttp script.
Writes the table to bench/RESULTS.md (with the machine's description).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PORT = 8088
BASE = f"http://127.0.0.1:{PORT}"
REQUESTS = {"json-detail": 20_000, "json-list": 2_000, "html": 20_000}
ROWS = {"json-detail": 20_000, "json-list": 100_000, "html": 20_000}
BIN = Path(sys.executable).parent
KEPT_FROM = "## Memory"


@dataclass
class Measure:
    seconds: float
    cpu: float
    rss_mb: float


# The contenders, in table order. "aiohttp" is the reference every ratio is
# taken against; "aiohttp+uvloop" is the same script on uvloop's loop, the
# fair match for crawlrunner with its speed-ups; "crawlrunner" has the
# speedups extra installed (bench/setup.sh), "crawlrunner-plain" runs with
# CRAWLRUNNER_NO_SPEEDUPS=1, as without it.
CONTENDERS = ["aiohttp", "aiohttp+uvloop", "crawlrunner", "crawlrunner-plain", "scrapy"]


def contender_command(name: str, kind: str, concurrency: int, db: Path) -> tuple[list[str], Path, dict[str, str]]:
    env = {**os.environ, "CRAWLRUNNER_NO_SPEEDUPS": "1" if name == "crawlrunner-plain" else ""}
    script = [sys.executable, str(HERE / "baseline_aiohttp.py"), kind, BASE, str(concurrency), str(db)]
    if name == "aiohttp":
        return script, HERE, env
    if name == "aiohttp+uvloop":
        return [*script, "uvloop"], HERE, env
    if name == "scrapy":
        return [sys.executable, str(HERE / "scrapy_bench.py"), kind, BASE, str(concurrency), str(db)], HERE, env
    spec = REPO / "specs" / f"bench-{kind}.yaml"
    return [str(BIN / "crawlrunner"), "run", str(spec), "-o", str(db), "--base-url", BASE,
            "-c", str(concurrency), "-q", "--no-progress"], REPO, env  # fmt: skip


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> Measure:
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stderr.read().decode() if child.stderr else ''}")
    return Measure(seconds, usage.ru_utime + usage.ru_stime, child_peak_mb(usage))


def child_peak_mb(usage: resource.struct_rusage) -> float:
    """A waited-for child's peak RSS in MB, from its ``wait4`` usage; NaN (and a warning) when it could be ours.

    Linux starts a child's ``ru_maxrss`` at the RSS of the process that
    forked it (the high-water mark of the memory it had before ``exec`` is
    carried over), which is at most this process's own peak: a figure not
    above that may measure this process, not the child. NaN rather than an
    exit, so that the rest of a long run is not lost.
    """
    child = usage.ru_maxrss / 1024
    with open("/proc/self/status") as status:
        own = int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024
    if child <= own + 1:  # within a megabyte of ours: not told apart
        print(f"warning: a child's peak RSS ({child:.0f} MB) is not above the benchmark's own ({own:.0f} MB): "
              "not measured", file=sys.stderr, flush=True)  # fmt: skip
        return math.nan
    return child


def median_mb(values: list[float]) -> float:
    """The median of the peaks that were measured (NaN if none was)."""
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def count_rows(db: Path) -> int:
    # Closed at once: a connection left to the garbage collector keeps its page cache, and this
    # process grew by tens of MB over a run, which every child's peak RSS then started from.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])


def start_nginx(site: Path, tmp: Path) -> subprocess.Popen[bytes]:
    conf = (HERE / "nginx.conf.template").read_text().format(tmp=tmp, port=PORT, site=site)
    (tmp / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            subprocess.run(["curl", "-sf", f"{BASE}/json/item/1.json"], check=True, capture_output=True)
            return process
        except subprocess.CalledProcessError:
            time.sleep(0.1)
    raise SystemExit("nginx did not start (run bench/setup.sh first)")


def ceiling() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        return "wrk not installed"
    out = subprocess.run(
        [wrk, "-t2", "-c64", "-d5s", f"{BASE}/json/item/1.json"], capture_output=True, text=True
    ).stdout
    line = next((row for row in out.splitlines() if row.startswith("Requests/sec")), "Requests/sec: ?")
    return line.split(":", 1)[1].strip()


def machine() -> str:
    cpu = next(
        (
            row.split(":", 1)[1].strip()
            for row in Path("/proc/cpuinfo").read_text().splitlines()
            if row.startswith("model name")
        ),
        "?",
    )
    import aiohttp

    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"aiohttp {aiohttp.__version__}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 16])
    parser.add_argument("--kinds", nargs="+", default=list(REQUESTS))
    parser.add_argument("--no-scrapy", action="store_true")
    args = parser.parse_args()
    site = HERE / "site"
    if not (site / "big.bin").exists():
        subprocess.run([sys.executable, str(HERE / "site.py"), str(site)], check=True)
    contenders = [c for c in CONTENDERS if not (args.no_scrapy and c == "scrapy")]
    # As an installed wheel would be: compiled once, not on every start
    # (PYTHONDONTWRITEBYTECODE may be set, and the package is an editable install).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "crawlrunner")], check=True)
    rows_out: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nginx = start_nginx(site, tmp)
        try:
            server_ceiling = ceiling()
            for kind in args.kinds:
                for concurrency in args.concurrency:
                    results: dict[str, Measure] = {}
                    runs: dict[str, list[Measure]] = {name: [] for name in contenders}
                    # Repetitions interleave the contenders, so a slow patch of
                    # the machine falls on all of them alike.
                    for rep in range(args.reps):
                        for name in contenders:
                            db = tmp / f"{name}-{kind}-{concurrency}-{rep}.db"
                            command, cwd, env = contender_command(name, kind, concurrency, db)
                            runs[name].append(measure(command, cwd, env))
                            got = count_rows(db)
                            if got != ROWS[kind]:
                                raise SystemExit(f"{name} {kind}: {got} rows, expected {ROWS[kind]}")
                    for name in contenders:
                        results[name] = Measure(
                            statistics.median(r.seconds for r in runs[name]),
                            statistics.median(r.cpu for r in runs[name]),
                            median_mb([r.rss_mb for r in runs[name]]),
                        )
                    base, scrapy = results["aiohttp"], results.get("scrapy")
                    for name, m in results.items():
                        rps = REQUESTS[kind] / m.seconds
                        rows_out.append([
                            kind, str(concurrency), name, f"{rps:,.0f}", f"{ROWS[kind] / m.seconds:,.0f}",
                            "?" if math.isnan(m.rss_mb) else f"{m.rss_mb:.0f}", f"{m.cpu:.1f}", f"{base.seconds / m.seconds:.2f}x",
                            f"{scrapy.seconds / m.seconds:.1f}x" if scrapy else "-",
                        ])  # fmt: skip
                        print(" | ".join(rows_out[-1]), flush=True)
        finally:
            nginx.terminate()
            nginx.wait(10)
    header = [
        "site",
        "concurrency",
        "contender",
        "requests/s",
        "records/s",
        "peak RSS MB",
        "CPU s",
        "vs aiohttp",
        "vs scrapy",
    ]
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows_out]
    )
    report = (f"# Benchmark results\n\nMachine: {machine()}.\nnginx ceiling (wrk -t2 -c64, one JSON document): "
              f"{server_ceiling} requests/s.\nMedians of {args.reps} runs, the contenders interleaved; every run's row count checked.\n"
              "Wall time of the whole command, start-up included. `aiohttp` is the hand-written script every ratio is\n"
              "taken against; `aiohttp+uvloop` is the same script on uvloop; `crawlrunner` has the speedups extra\n"
              "installed (uvloop, orjson, aiodns, Brotli); `crawlrunner-plain` runs with CRAWLRUNNER_NO_SPEEDUPS=1.\n"
              f"Reproduce: `bash bench/setup.sh && python bench/run.py`.\n\n{table}\n")  # fmt: skip
    # The hand-written sections (memory, where the time goes) follow the table: kept.
    results_file = HERE / "RESULTS.md"
    previous = results_file.read_text() if results_file.exists() else ""
    kept = previous[previous.index(KEPT_FROM) :] if KEPT_FROM in previous else ""
    results_file.write_text(report + ("\n" + kept if kept else ""))
    print(table)


if __name__ == "__main__":
    main()
