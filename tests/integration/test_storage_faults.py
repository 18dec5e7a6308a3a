"""The output database failing under a real `crawlrunner run` process: a full
disk (a file-size limit), and a database that cannot be opened at all.

Each case runs the installed entry point in a child process, as a user would,
and checks what reaches stderr: the storage error itself, naming the file,
never a traceback.
"""

from __future__ import annotations

import resource
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..conftest import ENTRY_POINT, query

ITEMS = 5000
SPEC = """
name: full
http: {{base_url: "{base}", limits: {{connections: 8}}, retry: null}}
targets:
  - name: items
    url: /json/item/{{id}}
    vars: {{id: {{from: 1, to: ITEMS}}}}
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}
""".replace("ITEMS", str(ITEMS))


def _file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn: the child may not grow any file past ``limit`` bytes (``ulimit -f``)."""

    def limit_files() -> None:
        # Ignored, a write past the limit fails with EFBIG rather than killing
        # the process (Python ignores SIGXFSZ at start-up anyway).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def _run(
    *args: str, preexec: Callable[[], None] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), "run", *args, "-q"],
        capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
    )  # fmt: skip


@pytest.mark.subprocess
@pytest.mark.timeout(180)
def test_a_full_disk_reports_the_storage_error_and_keeps_what_was_committed(
    server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(SPEC, base=server)
    db = tmp_path / "full.db"

    result = _run(str(spec), "-o", str(db), preexec=_file_size_limit(512 * 1024))

    assert result.returncode == 1, result.stderr
    assert f"crawlrunner: {db}: " in result.stderr
    assert "disk I/O error" in result.stderr or "database or disk is full" in result.stderr, result.stderr
    assert "no transaction is active" not in result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, result.stderr
    # What was committed is whole: every record with its request's done mark and fetch-log row, nothing else.
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    ((records,),) = query(db, "SELECT count(*) FROM items")
    assert 0 < records < ITEMS
    # A done start request is marked by its fetch-log row's seq (it gets no requests row).
    assert query(db, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE seq IS NOT NULL") == [(records,)]
    assert query(db, "SELECT count(*) FROM _crawlrunner_fetch_log") == [(records,)]
    assert query(
        db,
        "SELECT count(*) FROM items WHERE _url NOT IN (SELECT url FROM _crawlrunner_fetch_log WHERE seq IS NOT NULL)",
    ) == [(0,)]
    assert query(db, "SELECT count(*) FROM _crawlrunner_requests WHERE state != 'pending'") == [(0,)]

    # With room again, the run resumes from there: every record exactly once.
    resumed = _run(str(spec), "-o", str(db), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM items") == [(ITEMS, ITEMS)]


def _unopenable(tmp_path: Path) -> dict[str, tuple[Path, int, str]]:
    """Outputs that cannot be opened even by root (which ignores permissions): path → (exit status, message)."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file, not a folder")
    folder = tmp_path / "folder.db"
    folder.mkdir()
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database")
    no_wal = tmp_path / "nowal.db"
    (tmp_path / "nowal.db-wal").mkdir()  # SQLite cannot create the write-ahead log
    gone = tmp_path / "gone.db"
    gone.symlink_to(tmp_path / "unmounted" / "out.db")  # a link into a folder that is not there
    return {
        "a link to nowhere": (gone, 1, "cannot open: unable to open database file"),
        "parent is a file": (not_a_folder / "out.db", 2, "cannot open: Not a directory"),
        "a folder": (folder, 2, "is a directory, not a database file"),
        "not SQLite": (foreign, 2, "exists and is not an SQLite database"),
        "no WAL": (no_wal, 1, "cannot open: disk I/O error"),
    }


@pytest.mark.subprocess
@pytest.mark.timeout(120)
def test_an_output_that_cannot_be_opened_fails_with_its_message_and_never_a_traceback(
    server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(SPEC, base=server)
    cases = _unopenable(tmp_path)
    # The failure was a race (aiosqlite's thread reporting to a closed event
    # loop, about one run in four): each case runs many times, a few at once.
    runs = [name for name in cases for _ in range(20 if name == "a link to nowhere" else 3)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda name: _run(str(spec), "-o", str(cases[name][0]), timeout=30), runs))

    for name, result in zip(runs, results, strict=True):
        path, status, message = cases[name]
        assert result.returncode == status, (name, result.stderr)
        assert result.stderr.startswith(f"crawlrunner: {path}: ") and message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, (name, result.stderr)
