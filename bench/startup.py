"""Start-up time of the ``crawlrunner`` command: validate, --version, and process start to the first request.

    python bench/startup.py                       # this checkout, 15 runs of each command
    python bench/startup.py --trees /tmp/before . # an A/B: another checkout against this one

Every command is the installed console script (as a user runs it) with the
tree's package first on PYTHONPATH, byte-compiled first as an installed wheel
would be (this machine sets PYTHONDONTWRITEBYTECODE). Runs interleave the
commands and trees, reversing the order every other round, and the table
shows medians of wall time. *first request*: from just before the process is
started to the moment the first request of a small crawl (5 JSON documents)
reaches a local aiohttp server in a process of its own (both read the
system-wide monotonic clock); *run*: the same crawl's whole command. The
floors are a bare interpreter and one that only imports aiohttp, which any
crawl pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

import run as bench  # noqa: E402
from workers import interleaved, markdown  # noqa: E402

DOCUMENTS = 5
FIRST_REQUEST = "start → first request"
SPEC = f"""\
name: bench-startup
http: {{retry: null}}
targets:
  - name: rows
    url: item/{{n}}
    vars: {{n: {{from: 1, to: {DOCUMENTS}}}}}
    extract:
      fields: {{id: id, name: name}}
"""

Measure = Callable[[], dict[str, float]]  # runs a command once: its measures, in seconds


def serve() -> None:
    """The server (``startup.py --serve``, in a process of its own): notes when each run's first request arrives.

    A run's requests come under /<run>/; /arrived/<run> answers when the first
    of them came, on the system-wide monotonic clock. Its port goes to stdout.
    """
    from aiohttp import web

    arrived: dict[str, float] = {}

    async def item(request: web.Request) -> web.Response:
        arrived.setdefault(request.match_info["run"], time.monotonic())
        return web.json_response({"id": int(request.match_info["n"]), "name": "item"})

    async def first(request: web.Request) -> web.Response:
        return web.json_response(arrived[request.match_info["run"]])

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/arrived/{run}", first)
        app.router.add_get("/{run}/item/{n}", item)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def first_requests() -> Iterator[str]:
    """The server's base URL, while it runs."""
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}"
    finally:
        server.terminate()
        server.wait(10)


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def measures(tree: Path, server: str, tmp: Path) -> dict[str, Measure]:
    """The commands of one tree."""
    crawlrunner, env = str(bench.BIN / "crawlrunner"), {**os.environ, "PYTHONPATH": str(tree)}
    spec = tmp / "startup.yaml"
    spec.write_text(SPEC)
    runs = iter(range(1_000_000))

    def crawl() -> dict[str, float]:
        run = f"r{next(runs)}-{tree.name}"
        command = [crawlrunner, "run", str(spec), "-q", "-o", str(tmp / f"{run}.db"), "--base-url", f"{server}/{run}/"]
        started = time.monotonic()
        took = wall(command, tree, env)
        with urllib.request.urlopen(f"{server}/arrived/{run}", timeout=10) as answer:
            first = float(json.load(answer))
        return {FIRST_REQUEST: first - started, f"run, {DOCUMENTS} documents": took}

    def command(*arguments: str) -> Measure:
        return lambda: {" ".join(arguments): wall([crawlrunner, *arguments], tree, env)}

    return {"validate": command("validate", "examples/demo.yaml"), "version": command("--version"), "run": crawl}


def floors() -> dict[str, Measure]:
    env = dict(os.environ)

    def floor(name: str, code: str) -> Measure:
        return lambda: {name: wall([sys.executable, "-c", code], HERE, env)}

    return {
        name: floor(name, code)
        for name, code in (("python -c pass", "pass"), ("python -c 'import aiohttp'", "import aiohttp"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--trees", type=Path, nargs="+", default=[bench.REPO], help="checkouts to compare")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server's own process
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    trees = [tree.resolve() for tree in args.trees]
    if len({tree.name for tree in trees}) != len(trees):  # a tree's column is named after its folder
        parser.error("--trees: give checkouts in folders of different names")
    for tree in trees:  # as an installed wheel would be: compiled once, not on every start
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "crawlrunner")], check=True)
    with tempfile.TemporaryDirectory() as tmp_name, first_requests() as server:
        tmp = Path(tmp_name)
        runs = {(tree.name, name): run for tree in trees for name, run in measures(tree, server, tmp).items()}
        runs.update({("floor", name): run for name, run in floors().items()})
        times: dict[tuple[str, str], list[float]] = {}
        for _, (column, command) in interleaved(args.reps, list(runs)):
            for name, seconds in runs[column, command]().items():
                times.setdefault((column, name), []).append(seconds)
    columns = [tree.name for tree in trees] + ["floor"]
    rows = []
    for name in dict.fromkeys(name for _, name in times):
        cells = [times.get((column, name)) for column in columns]
        rows.append([name] + [f"{statistics.median(c):.3f}" if c else "" for c in cells])
    print(f"{bench.machine()}; medians of {args.reps} interleaved runs, wall seconds\n")
    print(markdown(["command"] + [f"{tree.name} ({tree})" for tree in trees] + ["floor"], rows))


if __name__ == "__main__":
    main()
