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
from typing import Any

STOP_WAIT = 60.0  # seconds a helper gets to finish after being asked to stop


class LocalWorkers:
    """The helper processes of one ``run --workers N``."""

    def __init__(self, count: int, arguments: Sequence[str]) -> None:
        self.count = count - 1  # this process is a worker too
        self.arguments = list(arguments)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, run_id: int) -> None:
        """Start the helpers for run ``run_id`` (called once the run is open)."""
        command = [sys.executable, "-m", "crawlrunner", "run", *self.arguments, "--join", str(run_id)]
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True))

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


def helper_arguments(params: Mapping[str, Any], flags: Mapping[str, Any], output: str) -> list[str]:
    """The command line (after ``run``) of a helper: the first worker's options, less what only it does.

    ``params`` are ``run``'s parsed options; ``flags`` the verbosity ones
    (``verbose``, ``quiet``, ``log_format``). Not passed on: ``--resume`` and
    ``--retry-failed`` (a helper joins the run the first worker opened), the
    progress view and the summary (the first worker's).
    """
    arguments = [str(params["spec_file"]), "-o", output, "--no-progress", *["-v"] * flags.get("verbose", 0)]
    arguments += [f"--log-format={flags['log_format']}"] if flags.get("log_format") else []
    arguments += ["--quiet"] if flags.get("quiet") else []
    arguments += [f"--target={name}" for name in params["only"]]
    for option in ("base_url", "concurrency", "max_requests", "max_records"):
        if params[option] is not None:
            arguments.append(f"--{option.replace('_', '-')}={params[option]}")
    return arguments + (["--insecure"] if params["insecure"] else [])
