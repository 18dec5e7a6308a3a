"""Start-up time of the ``crawlrunner`` command: validate, --version, and process start to the first request.

    python bench/startup.py                       # this checkout, 15 runs of each command
    python bench/startup.py --trees /tmp/before . # an A/B: another checkout against this one

Every command is the installed console script (as a user runs it) with the
tree's package first on PYTHONPATH, byte-compiled first as an installed wheel
would be (this machine sets PYTHONDONTWRITEBYTECODE). Runs interleave the
commands and trees, reversing the order every other round, and the table
shows medians of wall time. *first request*: from just before the process is
started to the moment the first request of a small crawl (5 JSON documents)
reaches a local aiohttp server running in this process (both read the
system-wide monotonic clock); *run*: that crawl's whole command. The floors
are a bare interpreter and one that only imports aiohttp, which any crawl pays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

import run as bench  # noqa: E402
from workers import interleaved, markdown  # noqa: E402

DOCUMENTS = 5
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


class FirstRequests:
    """A local aiohttp server that notes when the first request under each /<run>/ prefix arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def serving(self) -> Iterator[FirstRequests]:
        thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        thread.start()
        self._ready.wait(10)
        try:
            yield self
        finally:
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            thread.join(10)

    async def _serve(self) -> None:
        from aiohttp import web

        async def item(request: web.Request) -> web.Response:
            self.arrived.setdefault(request.match_info["run"], time.monotonic())
            return web.json_response({"id": int(request.match_info["n"]), "name": "item"})

        app = web.Application()
        app.router.add_get("/{run}/item/{n}", item)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def measures(tree: Path, server: FirstRequests, tmp: Path) -> dict[str, Callable[[], float]]:
    """Each measure of one tree: a function that runs its command once and returns seconds."""
    crawlrunner, env = str(bench.BIN / "crawlrunner"), environment(tree)
    spec = tmp / "startup.yaml"
    spec.write_text(SPEC)
    runs = iter(range(1_000_000))

    def crawl(first: bool) -> float:
        run = f"r{next(runs)}-{tree.name}"
        command = [crawlrunner, "run", str(spec), "-q", "-o", str(tmp / f"{run}.db")]
        command += ["--base-url", f"http://127.0.0.1:{server.port}/{run}/"]
        started = time.monotonic()
        took = wall(command, tree, env)
        return server.arrived[run] - started if first else took

    return {
        "validate examples/demo.yaml": lambda: wall([crawlrunner, "validate", "examples/demo.yaml"], tree, env),
        "--version": lambda: wall([crawlrunner, "--version"], tree, env),
        "start → first request": lambda: crawl(first=True),
        f"run, {DOCUMENTS} documents": lambda: crawl(first=False),
    }


def floors() -> dict[str, Callable[[], float]]:
    env = dict(os.environ)
    return {
        "python -c pass": lambda: wall([sys.executable, "-c", "pass"], HERE, env),
        "python -c 'import aiohttp'": lambda: wall([sys.executable, "-c", "import aiohttp"], HERE, env),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--trees", type=Path, nargs="+", default=[bench.REPO], help="checkouts to compare")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    if len({tree.name for tree in trees}) != len(trees):  # a tree's column is named after its folder
        parser.error("--trees: give checkouts in folders of different names")
    for tree in trees:  # as an installed wheel would be: compiled once, not on every start
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "crawlrunner")], check=True)
    with tempfile.TemporaryDirectory() as tmp_name, FirstRequests().serving() as server:
        tmp = Path(tmp_name)
        runs = {(tree.name, name): run for tree in trees for name, run in measures(tree, server, tmp).items()}
        runs.update({("floor", name): run for name, run in floors().items()})
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
        for _, key in interleaved(args.reps, list(runs)):
            times[key].append(runs[key]())
    names = list(dict.fromkeys(name for _, name in runs))
    columns = [tree.name for tree in trees]
    rows = []
    for name in names:
        cells = [times.get((column, name)) for column in columns + ["floor"]]
        rows.append([name] + [f"{statistics.median(c):.3f}" if c else "" for c in cells])
    print(f"{bench.machine()}; medians of {args.reps} interleaved runs, wall seconds\n")
    print(markdown(["command"] + [f"{tree.name} ({tree})" for tree in trees] + ["floor"], rows))


if __name__ == "__main__":
    main()
