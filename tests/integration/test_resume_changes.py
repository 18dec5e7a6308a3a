"""`--resume` is idempotent, and survives targets added to the spec.

A run that completed resumes to nothing (exit 0); targets added anywhere in
the list join the run and only their requests are fetched; any other change
is refused; a run written by the layout before start requests were numbered
per target resumes without fetching anything twice.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.backends.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from crawlrunner.cli import main
from crawlrunner.errors import ResumeError, StorageError
from crawlrunner.spec import load_spec

from ..conftest import query

# The start requests a run has done: a done one is known by its fetch-log row (seq), a
# failed or skipped one, or one stored by an earlier layout, by its requests row.
DONE_STARTS = (
    "SELECT target, seq FROM _crawlrunner_requests WHERE seq IS NOT NULL"
    " UNION SELECT target, seq FROM _crawlrunner_fetch_log WHERE seq IS NOT NULL"
)

Spec = Callable[..., Path]

HEAD = """
name: grow
http: {{base_url: "{base}", retry: null, limits: {{connections: 2}}}}
targets:
"""


def _target(name: str, first: int, extra: str = "") -> str:
    """A target of four item pages, ``first`` to ``first + 3``."""
    return (
        f"  - name: {name}\n    url: /json/item/{{{{id}}}}\n    vars: {{{{id: {{{{from: {first}, to: {first + 3}}}}}}}}}\n"
        f"    extract: {{{{fields: {{{{id: {{{{jmespath: id, type: int}}}}}}}}}}}}\n{extra}"
    )


A, B, C, D = _target("a", 1), _target("b", 101), _target("c", 201), _target("d", 301)


def _fetched_once_each(db: Path, count: int) -> None:
    assert query(db, "SELECT count(*), count(DISTINCT url) FROM _crawlrunner_fetch_log") == [(count, count)]


def test_resume_of_a_completed_run_does_nothing_says_so_and_exits_0(
    server: str, write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    spec = write_spec(HEAD + A + "  - {{name: broken, url: /status/404}}\n", base=server)
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 1  # one request failed
    before = query(db_path, "SELECT * FROM _crawlrunner_runs")

    for _ in range(2):
        result = cli.invoke(main, ["run", str(spec), "-o", str(db_path), "--resume"])

        assert result.exit_code == 0, result.output
        assert "run 1 already completed; nothing to resume (1 failed: --retry-failed fetches them again)" in (
            result.stderr
        )
        assert query(db_path, "SELECT * FROM _crawlrunner_runs") == before  # not even finished again
        _fetched_once_each(db_path, 5)


async def test_targets_added_to_a_completed_run_are_all_a_resume_fetches(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    first = await run_async(load_spec(write_spec(HEAD + A + C, base=server)), output=db_path)
    assert first.ok

    grown = load_spec(write_spec(HEAD + B + A + D + C, base=server))  # one first, one in the middle
    resumed = await run_async(grown, output=db_path, resume=True)

    assert resumed.ok and resumed.run_id == first.run_id and not resumed.already_completed
    assert query(db_path, "SELECT target, count(*) FROM _crawlrunner_fetch_log WHERE id > 8 GROUP BY target") == [
        ("b", 4),
        ("d", 4),
    ]
    _fetched_once_each(db_path, 16)
    assert query(db_path, "SELECT status, resumed FROM _crawlrunner_runs") == [("completed", 1)]
    assert query(db_path, "SELECT count(*) FROM b WHERE _run_id = ?", first.run_id) == [(4,)]
    # And the grown spec is now the run's: resuming it again does nothing.
    assert (await run_async(grown, output=db_path, resume=True)).already_completed


async def test_a_target_added_in_the_middle_of_an_unfinished_run_shifts_no_other_targets_numbers(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    cut = await run_async(load_spec(write_spec(HEAD + A + C, base=server)), output=db_path, max_requests=6)
    assert cut.status == "limited"
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log WHERE target = 'c'") == [
        (2,)
    ]  # a's four, then c's two

    resumed = await run_async(load_spec(write_spec(HEAD + A + B + C, base=server)), output=db_path, resume=True)

    assert resumed.ok and resumed.run_id == cut.run_id
    _fetched_once_each(db_path, 12)  # spec-wide numbers would have skipped b's first two and fetched c's again
    assert query(db_path, "SELECT count(*), count(DISTINCT id) FROM c") == [(4, 4)]
    assert query(
        db_path, f"SELECT target, min(seq), max(seq) FROM ({DONE_STARTS}) GROUP BY target ORDER BY target"
    ) == [
        ("a", 0, 3),
        ("b", 0, 3),
        ("c", 0, 3),
    ]


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(HEAD + A.replace("to: 4", "to: 5") + C, id="a target changed"),
        pytest.param(HEAD + A.replace("to: 4", "to: 5") + B + C, id="a target changed and one added"),
        pytest.param(HEAD + C, id="a target removed"),
        pytest.param(HEAD.replace("retry: null", "retry: {{attempts: 1}}") + A + C + B, id="http changed"),
        pytest.param(
            HEAD + A + C + "  - {{name: child, parent: a, url: '/json/item/{{id}}'}}\n", id="a child added to a target"
        ),
    ],
)
async def test_resume_refuses_every_other_change_of_the_spec(
    changed: str, server: str, write_spec: Spec, db_path: Path
) -> None:
    cut = await run_async(load_spec(write_spec(HEAD + A + C, base=server)), output=db_path, max_requests=2)
    assert cut.status == "limited"

    with pytest.raises(ResumeError, match="the spec \\(or a seed file\\) changed since run 1 started"):
        await run_async(load_spec(write_spec(changed, base=server)), output=db_path, resume=True)


async def test_a_run_numbered_across_the_spec_by_the_previous_layout_resumes_without_fetching_twice(
    server: str, write_spec: Spec, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = load_spec(write_spec(HEAD + A + C, base=server))
    with closing(sqlite3.connect(db_path)) as conn, conn:
        for migration in MIGRATIONS[:2]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(  # layout 2's names: the upgrade renames them
            "INSERT INTO runs (id, spec_name, spec_file, spec_hash, started_at, status)"
            " VALUES (1, 'grow', ?, ?, '2026-01-01T00:00:00+00:00', 'interrupted')",
            (spec.source, spec.digest),
        )
        # Version 2 numbered start requests across the spec: a's are 0-3, c's 4-7.
        # Done before the interruption: a's items 1 and 3, c's items 201 and 203.
        done = [("a", 0, 1), ("a", 2, 3), ("c", 4, 201), ("c", 6, 203)]
        conn.executemany(
            "INSERT INTO requests (id, run_id, target, state, seq, method, url, headers)"
            " VALUES (?, 1, ?, 'done', ?, 'GET', ?, '{}')",
            [
                ((1 << 32) + n, target, seq, f"{server}/json/item/{item}")
                for n, (target, seq, item) in enumerate(done, 1)
            ],
        )

    with caplog.at_level(logging.INFO, logger="crawlrunner"):
        resumed = await run_async(spec, output=db_path, resume=True)

    assert resumed.ok and resumed.run_id == 1
    assert "upgrading the database layout from version 2 to 3" in caplog.text
    assert query(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    fetched = query(db_path, "SELECT url FROM _crawlrunner_fetch_log ORDER BY url")
    assert fetched == [(f"{server}/json/item/{n}",) for n in ("2", "202", "204", "4")]
    assert query(db_path, f"{DONE_STARTS} ORDER BY target, seq") == [
        ("a", 0), ("a", 1), ("a", 2), ("a", 3), ("c", 0), ("c", 1), ("c", 2), ("c", 3),
    ]  # fmt: skip
    ((fingerprints,),) = query(db_path, "SELECT fingerprints FROM _crawlrunner_runs")
    assert fingerprints is not None
    # Renumbered once: resuming again (now under per-target numbers) fetches nothing more.
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("UPDATE _crawlrunner_runs SET status = 'interrupted'")
    assert (await run_async(spec, output=db_path, resume=True)).ok
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_fetch_log") == [(4,)]


async def test_an_added_target_left_out_of_a_resume_with_only_is_fetched_by_the_next_resume(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    first = await run_async(load_spec(write_spec(HEAD + A, base=server)), output=db_path)
    grown = load_spec(write_spec(HEAD + A + B + D, base=server))

    assert (await run_async(grown, output=db_path, resume=True, only=["b"])).ok
    assert query(db_path, "SELECT DISTINCT target FROM _crawlrunner_fetch_log WHERE id > 4") == [("b",)]
    last = await run_async(grown, output=db_path, resume=True)
    assert last.ok and not last.already_completed and last.run_id == first.run_id
    assert query(db_path, "SELECT DISTINCT target FROM _crawlrunner_fetch_log WHERE id > 8") == [("d",)]
    assert (await run_async(grown, output=db_path, resume=True)).already_completed
    _fetched_once_each(db_path, 12)


async def test_resuming_an_interrupted_retry_of_failures_fetches_only_the_failures(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    spec = load_spec(write_spec(HEAD + A + "    mode: replace\n  - {{name: broken, url: /status/500}}\n", base=server))
    first = await run_async(spec, output=db_path)
    assert first.totals.failed == 1
    retry = await run_async(spec, output=db_path, retry_failed=True, max_requests=1)
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("UPDATE _crawlrunner_runs SET status = 'interrupted' WHERE id = ?", (retry.run_id,))
        conn.execute(
            "UPDATE _crawlrunner_requests SET state = 'pending' WHERE run_id = ?", (retry.run_id,)
        )  # not reached yet

    resumed = await run_async(spec, output=db_path, resume=True)

    assert resumed.run_id == retry.run_id
    # Not a crawl of the whole spec: only the failed request, again; a's rows stay the first run's.
    assert query(
        db_path, "SELECT target, count(*) FROM _crawlrunner_fetch_log WHERE run_id = ? GROUP BY target", retry.run_id
    ) == [("broken", 2)]
    assert query(db_path, "SELECT count(*) FROM a WHERE _run_id = ?", first.run_id) == [(4,)]
    assert query(db_path, "SELECT retry_of FROM _crawlrunner_runs ORDER BY id") == [(None,), (first.run_id,)]


async def test_a_retry_of_failures_made_by_the_previous_layout_resumes_as_a_retry(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    spec = load_spec(write_spec(HEAD + A, base=server))
    with closing(sqlite3.connect(db_path)) as conn, conn:
        for migration in MIGRATIONS[:2]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 2")
        runs = [(1, "completed"), (2, "interrupted")]  # 2 retried 1's one failure, and was interrupted
        conn.executemany(  # layout 2's names: the upgrade renames them
            "INSERT INTO runs (id, spec_name, spec_file, spec_hash, started_at, status)"
            " VALUES (?, 'grow', ?, ?, '2026-01-01T00:00:00+00:00', ?)",
            [(run_id, spec.source, spec.digest, status) for run_id, status in runs],
        )
        conn.executemany(
            "INSERT INTO requests (id, run_id, target, state, seq, method, url, headers) VALUES (?, ?, 'a', ?, ?, 'GET', ?, '{}')",
            [
                *(
                    ((1 << 32) + n, 1, "done" if n != 3 else "failed", n - 1, f"{server}/json/item/{n}")
                    for n in (1, 2, 3, 4)
                ),
                ((2 << 32) + 1, 2, "pending", None, f"{server}/json/item/3"),
            ],
        )

    resumed = await run_async(spec, output=db_path, resume=True)

    assert resumed.ok and resumed.run_id == 2
    assert query(db_path, "SELECT id, retry_of FROM _crawlrunner_runs ORDER BY id") == [(1, None), (2, 1)]
    assert query(db_path, "SELECT url FROM _crawlrunner_fetch_log") == [
        (f"{server}/json/item/3",)
    ]  # not the whole spec again


async def test_a_retry_run_is_recorded_with_its_requests_or_not_at_all(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    spec = load_spec(write_spec(HEAD + A + "  - {{name: broken, url: /status/500}}\n", base=server))
    assert (await run_async(spec, output=db_path)).totals.failed == 1
    with closing(sqlite3.connect(db_path)) as conn, conn:  # saving the requests to retry fails
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON _crawlrunner_requests WHEN NEW.state = 'pending'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )

    with pytest.raises(StorageError, match="cannot save the requests to retry: refused"):
        await run_async(spec, output=db_path, retry_failed=True)

    # No retry run left behind with nothing to retry: the next --retry-failed still finds the failures.
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_runs") == [(1,)]


async def test_targets_added_since_a_retry_are_not_silently_left_out_of_its_resume(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    spec = load_spec(write_spec(HEAD + A + "  - {{name: broken, url: /status/500}}\n", base=server))
    await run_async(spec, output=db_path)
    retry = await run_async(spec, output=db_path, retry_failed=True)
    grown = load_spec(write_spec(HEAD + A + B + "  - {{name: broken, url: /status/500}}\n", base=server))

    with pytest.raises(ResumeError, match=f"run {retry.run_id} retries the failures of run 1; the targets added"):
        await run_async(grown, output=db_path, resume=True)
