"""The live progress display on a real terminal: log lines above it, and nothing of it left under the summary.

The CLI runs in a pseudo-terminal (its stdout and stderr both the pty, as
in a person's terminal), is interrupted with Ctrl-C while the display is
up (which logs two lines: the command's own and the engine's), and every
byte it writes is replayed on ``Screen``, a small terminal that knows the
control sequences rich uses to draw in place. The tests read that screen
as a person would see it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.live import Live

from crawlrunner.progress import logs_above

SPEC = """
name: live
http: {{base_url: "{base}", limits: {{connections: 2}}}}
targets:
  - name: items
    url: "/slow/live-view/1?n={{n}}"
    vars: {{n: {{from: 1, to: 8}}}}
    extract: {{fields: {{key: key}}}}
"""
ROWS, COLUMNS = 40, 120
DEADLINE = 30.0  # seconds the run may take in all: it takes about three

CSI = re.compile(r"\x1b\[([?\d;]*)([A-Za-z])")
# The table's rows as a frame shows them (after the first Ctrl-C).
TITLE = re.compile(r"stopping: \d in flight, finishing… \(\w+ elapsed\)")
COLUMN_NAMES = re.compile(r"target +done +total +req/s +failed +records +ETA")
ITEMS_ROW = re.compile(r"items +\d +8 +[\d.]+ +0 +\d( +\w+)?")
OVERALL = re.compile(r"overall: \d/8 requests \(\d+%\), [\d.]+/s(, ETA \w+)?")
CLI_LINE = "crawlrunner: stopping; finishing requests in flight (Ctrl-C again to stop at once)"
ENGINE_LINE = re.compile(r"\d{4}-\d\d-\d\d [\d:.]+ W crawlrunner\.engine: stopping: no new requests; .*")


class Screen:
    """A terminal's rows, as bytes written to it leave them (cursor moves, line erases; colours ignored)."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.row = self.col = 0

    def feed(self, text: str) -> None:
        position = 0
        for match in CSI.finditer(text):
            self._write(text[position : match.start()])
            self._control(match[1], match[2])
            position = match.end()
        self._write(text[position:])

    def lines(self) -> list[str]:
        """The rows, right-trimmed, without the blank ones at the bottom."""
        lines = ["".join(row).rstrip() for row in self.rows]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def _control(self, params: str, command: str) -> None:
        count = int(params) if params.isdigit() else 1
        if command == "A":
            self.row = max(0, self.row - count)
        elif command == "B":
            self._go_down(count)
        elif command == "K":  # 2: the whole row; none or 0: from the cursor on
            row = self.rows[self.row]
            row[:] = [] if params == "2" else row[: self.col]
        elif command == "G":
            self.col = count - 1
        # m (colours), h/l (the cursor shown or hidden): nothing moves

    def _write(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._go_down(1)
                self.col = 0
            elif char >= " ":
                row = self.rows[self.row]
                row.extend(" " * (self.col + 1 - len(row)))
                row[self.col] = char
                self.col += 1

    def _go_down(self, count: int) -> None:
        self.row += count
        self.rows.extend([] for _ in range(self.row + 1 - len(self.rows)))


def run_in_terminal(arguments: list[str], cwd: Path, interrupt_after: re.Pattern[bytes]) -> tuple[int, bytes]:
    """Run the CLI on a pseudo-terminal; Ctrl-C (SIGINT) once ``interrupt_after`` was shown; (status, bytes)."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env |= {"TERM": "xterm-256color", "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "crawlrunner", *arguments],
        stdin=terminal, stdout=terminal, stderr=terminal, cwd=cwd, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    output, interrupted, deadline = b"", False, time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 0.1)[0]:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not chunk:
                    break
                output += chunk
            if not interrupted and interrupt_after.search(output):
                process.send_signal(signal.SIGINT)
                interrupted = True
        return process.wait(timeout=5), output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


@pytest.fixture(scope="module")
def interrupted_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    """(exit status, everything written) of a run interrupted while its live display was up."""
    where = tmp_path_factory.mktemp("live-view")
    (where / "spec.yaml").write_text(SPEC.format(base=server), encoding="utf-8")
    # Interrupted once a frame shows some requests done and some not: the display has been up a while.
    shown_some_done = re.compile(rb"\nitems +[1-7] ")
    status, output = run_in_terminal(["run", "spec.yaml", "-o", "out.db"], where, interrupt_after=shown_some_done)
    return status, output.decode()


def frames(output: str) -> Iterator[list[str]]:
    """The screen each time the live display is about to be erased: every full frame it drew, as shown."""
    screen = Screen()
    position = 0
    # rich erases its region from the bottom row up: a return, then "erase the row", "up one", ...
    for match in re.finditer(r"\r\x1b\[2K", output):
        screen.feed(output[position : match.start()])
        position = match.start()
        yield screen.lines()
    screen.feed(output[position:])


def test_log_lines_during_the_live_view_are_printed_above_it_and_its_frame_stays_whole(
    interrupted_run: tuple[int, str],
) -> None:
    status, output = interrupted_run
    assert status == 130, output
    shown = [lines for lines in frames(output) if lines and OVERALL.fullmatch(lines[-1])]
    last = shown[-1]  # the display's last frame, just before it is cleared
    # The two log lines on rows of their own, above a whole frame (title, column names, a row, the overall line).
    assert last[-6] == CLI_LINE, last
    assert ENGINE_LINE.fullmatch(last[-5]), last
    assert TITLE.fullmatch(last[-4]), last
    assert COLUMN_NAMES.fullmatch(last[-3]), last
    assert ITEMS_ROW.fullmatch(last[-2]), last
    # Nothing of an earlier frame left behind among them (a stale title row, a caption with a log line on it).
    assert not any("elapsed" in line or "overall:" in line for line in last[:-4]), last


def test_the_live_view_is_cleared_before_the_summary(interrupted_run: tuple[int, str]) -> None:
    """Cleared: the summary is drawn where the display was, and the screen keeps no row of it.

    In the bytes: no frame of the display comes after the summary's first
    line; on the screen they leave: the log lines, then the summary's table
    on the very next row, and no row of the display anywhere.
    """
    status, output = interrupted_run
    summary_at = output.index("target  requests")
    assert "overall:" in output[:summary_at]
    assert "overall:" not in output[summary_at:] and "elapsed" not in output[summary_at:]

    screen = Screen()
    screen.feed(output)
    lines = screen.lines()
    assert not any("overall:" in line or "elapsed" in line or "req/s" in line for line in lines), lines
    header = lines.index(next(line for line in lines if line.startswith("target  requests")))
    assert ENGINE_LINE.fullmatch(lines[header - 1]), lines  # right under the log lines: no blank, no leftover
    assert lines[header - 2] == CLI_LINE, lines
    assert re.match(r"items +\d ", lines[header + 2]), lines
    assert "run 1 interrupted in " in "\n".join(lines[header:]), lines


def test_a_long_log_line_is_printed_above_the_display_whole_not_wrapped_at_its_width(tmp_path: Path) -> None:
    """rich's terminal console writing to a file: a log line longer than the terminal stays one line (JSON logs)."""
    with open(tmp_path / "terminal", "w+", encoding="utf-8", newline="") as terminal:
        console = Console(file=terminal, force_terminal=True, force_interactive=True, width=40, color_system=None)
        handler = logging.StreamHandler(terminal)
        logger = logging.getLogger("crawlrunner")
        logger.addHandler(handler)
        try:
            with Live("the display", console=console, auto_refresh=False) as live, logs_above(console):
                logging.getLogger("crawlrunner.engine").warning('{"message": "%s"}', "x" * 60)
                live.update("the display, drawn again", refresh=True)
            assert handler.stream is terminal  # given back
        finally:
            logger.removeHandler(handler)
        terminal.seek(0)
        screen = Screen()
        screen.feed(terminal.read())

    # One row of the file (the terminal would wrap it), above the display's last frame.
    assert screen.lines() == ['{"message": "' + "x" * 60 + '"}', "the display, drawn again"]
