"""``crawlrunner run --workers N``: N worker processes of one run on this machine.

This process is the first worker: it opens the run (creating, joining or
resuming it, like any worker), then starts N - 1 more, each the same command
with ``--join RUN``, so that they take part in exactly that run and never
start a new one (a helper that starts after the run completed has nothing to
do). Each is a separate process with its own event loop and connection pool,
which is what spreads the work over the machine's cores.

The helpers run in sessions of their own, so a signal reaches them once,
from this process, which passes on each Ctrl-C or SIGTERM it gets: the
first makes every worker finish its requests in flight and give the rest
back, a second stops them at once. This process waits for all of them
before it reports.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    import click

STOP_WAIT = 60.0  # seconds a helper gets to finish after being asked to stop


class LocalWorkers:
    """The helper processes of one ``run --workers N``."""

    def __init__(self, count: int, arguments: Sequence[str]) -> None:
        self.count = count - 1  # this process is a worker too
        self.arguments = list(arguments)
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> None:
        """Start the helpers before the run is open: they load, then wait on stdin for its id."""
        command = [sys.executable, "-m", "crawlrunner", "run", *self.arguments, "--join", "-"]
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True))

    def start(self, run_id: int) -> None:
        """Tell the helpers the run to join (called once it is open)."""
        for process in self.processes:
            self._tell(process, f"{run_id}\n".encode())

    @staticmethod
    def _tell(process: subprocess.Popen[bytes], message: bytes) -> None:
        """Write ``message`` to a helper's stdin and close it (EOF alone: nothing to join)."""
        if process.stdin is None or process.stdin.closed:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.write(message)
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.close()

    def forward(self, signum: int = signal.SIGINT) -> None:
        """Pass a signal on to the helpers still running."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)

    def wait(self) -> int:
        """Wait for every helper; the highest exit status among them (0 if none failed)."""
        worst = 0
        for process in self.processes:
            self._tell(process, b"")  # a helper still waiting for a run: there is none
            try:
                code = process.wait(timeout=None)
            except KeyboardInterrupt:  # Ctrl-C while this process only waits: pass it on
                self.forward(signal.SIGINT)
                code = _wait_or_kill(process)
            worst = max(worst, code if code >= 0 else 128 - code)
        return worst


def _wait_or_kill(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def check_shared(workers: int, join: str | None, shared: bool) -> None:
    """Many workers need a database they can share: refuse them an SQLite file."""
    if (workers > 1 or join) and not shared:
        raise UsageError("--workers: an SQLite file takes one worker; many workers need a postgresql:// output")


def helper_arguments(ctx: click.Context, output: str) -> list[str]:
    """The command line (after ``run``) of a helper: the first worker's options, less what only it does.

    From ``run``'s parsed options and the verbosity flags (``-v``, ``-q``,
    ``--log-format``, given before or after ``run``). Not passed on:
    ``--resume`` and ``--retry-failed`` (a helper joins the run the first
    worker opened), the progress view and the summary (the first worker's).
    """
    params: Mapping[str, Any] = ctx.params
    flags: Mapping[str, Any] = {**(ctx.find_root().obj or {}), **(ctx.obj or {})}
    arguments = [str(params["spec_file"]), "-o", output, "--no-progress", *["-v"] * flags.get("verbose", 0)]
    arguments += [f"--log-format={flags['log_format']}"] if flags.get("log_format") else []
    arguments += ["--quiet"] if flags.get("quiet") else []
    arguments += [f"--target={name}" for name in params["only"]]
    for option in ("base_url", "concurrency", "max_requests", "max_records"):
        if params[option] is not None:
            arguments.append(f"--{option.replace('_', '-')}={params[option]}")
    return arguments + (["--insecure"] if params["insecure"] else [])


def run_to_join(join: str | None) -> int | None:
    """The run a helper takes part in: from ``--join ID``, or read from stdin for ``--join -``.

    0 when the first worker closed stdin without one (it failed before the
    run opened): nothing to do. The modules a run needs are imported before
    waiting, so the helper starts at once when the id comes.
    """
    if join is None:
        return None
    if join != "-":
        if not join.isdigit():
            raise UsageError(f"--join: expected a run id or '-', got {join!r}")
        return int(join)
    from .. import engine  # noqa: F401 - loaded while waiting
    from ..backends.postgres import backend  # noqa: F401

    line = sys.stdin.readline().strip()
    return int(line) if line.isdigit() else 0
