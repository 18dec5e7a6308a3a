"""Run-to-run semantics in a real SQLite file: upsert with history, replace,
conditional requests, re-extraction, retries of failures, migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.api import reextract, reextract_async, run_async
from crawlrunner.backends.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from crawlrunner.cli import main
from crawlrunner.errors import ResumeError, StorageError
from crawlrunner.spec import load_spec

from .. import server_app
from ..conftest import query

Spec = Callable[..., Path]

UPSERT = """
name: shop
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/{key}
    mode: {mode}
    {key_line}
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        name: name
        price: {{jmespath: price, type: float}}
"""


async def test_upsert_keeps_one_row_per_key_and_a_history_of_changes_across_three_runs(
    server: str, write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    spec = load_spec(write_spec(UPSERT, base=server, key="upsert", mode="upsert", key_line="key: [id]"))
    server_app.catalogues["upsert"] = {1: ("kettle", 10.0), 2: ("lamp", 20.0)}
    first = await run_async(spec, output=db_path)
    server_app.catalogues["upsert"] = {1: ("kettle", 10.0), 2: ("lamp", 25.0), 3: ("mug", 5.0)}
    second = await run_async(spec, output=db_path)
    server_app.catalogues["upsert"] = {1: ("kettle XL", 12.0), 3: ("mug", 5.0)}
    third = await run_async(spec, output=db_path)

    rows = query(
        db_path,
        "SELECT id, name, price, _first_seen_run, _run_id, _changed_run, _removed_run FROM products ORDER BY id",
    )
    assert rows == [
        (1, "kettle XL", 12.0, first.run_id, third.run_id, third.run_id, None),
        (2, "lamp", 25.0, first.run_id, second.run_id, second.run_id, third.run_id),  # not seen in run 3: kept, marked
        (3, "mug", 5.0, second.run_id, third.run_id, second.run_id, None),
    ]
    history = query(db_path, "SELECT run_id, key, change, old, new FROM _crawlrunner_history_products ORDER BY id")
    assert history == [
        (first.run_id, "[1]", "added", None, '{"name":"kettle","price":10.0}'),
        (first.run_id, "[2]", "added", None, '{"name":"lamp","price":20.0}'),
        (second.run_id, "[3]", "added", None, '{"name":"mug","price":5.0}'),
        (second.run_id, "[2]", "changed", '{"name":"lamp","price":20.0}', '{"name":"lamp","price":25.0}'),
        (third.run_id, "[1]", "changed", '{"name":"kettle","price":10.0}', '{"name":"kettle XL","price":12.0}'),
        (third.run_id, "[2]", "removed", '{"name":"lamp","price":25.0}', None),
    ]
    # "What changed in the last run" is one command.
    result = cli.invoke(main, ["changes", str(db_path), "products", "-f", "csv"])
    assert result.exit_code == 0, result.output
    changed_at, removed_at = (
        at for (at,) in query(db_path, "SELECT at FROM _crawlrunner_history_products WHERE run_id = ?", third.run_id)
    )
    assert result.stdout.splitlines()[1:] == [
        f'{third.run_id},changed,[1],"[""name"",""price""]",'
        f'"{{""name"":""kettle"",""price"":10.0}}","{{""name"":""kettle XL"",""price"":12.0}}",{changed_at}',
        f'{third.run_id},removed,[2],,"{{""name"":""lamp"",""price"":25.0}}",,{removed_at}',
    ]


async def test_replace_keeps_only_the_latest_completed_run(server: str, write_spec: Spec, db_path: Path) -> None:
    spec = load_spec(write_spec(UPSERT, base=server, key="replace", mode="replace", key_line=""))
    server_app.catalogues["replace"] = {1: ("a", 1.0), 2: ("b", 2.0)}
    await run_async(spec, output=db_path)
    server_app.catalogues["replace"] = {3: ("c", 3.0)}
    latest = await run_async(spec, output=db_path)

    assert query(db_path, "SELECT id, _run_id FROM products") == [(3, latest.run_id)]


async def test_append_keeps_every_run(server: str, write_spec: Spec, db_path: Path) -> None:
    spec = load_spec(write_spec(UPSERT, base=server, key="append", mode="append", key_line=""))
    server_app.catalogues["append"] = {1: ("a", 1.0)}
    await run_async(spec, output=db_path)
    await run_async(spec, output=db_path)

    assert query(db_path, "SELECT count(*), count(DISTINCT _run_id) FROM products") == [(2, 2)]


async def test_integers_past_64_bits_are_kept_as_text_or_refused_by_an_int_field(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    # SQLite's INTEGER stops at 64 bits; such a value once failed the whole batch.
    spec = load_spec(write_spec("""
name: big
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/big
    extract:
      records: items
      fields: {{raw: id, typed: {{jmespath: id, type: int}}, name: name}}
""", base=server))  # fmt: skip
    server_app.catalogues["big"] = {2**64 + 1: ("huge", 1.0), 7: ("small", 2.0)}
    result = await run_async(spec, output=db_path)

    assert result.status == "completed"
    assert query(db_path, "SELECT raw, typeof(raw), typed FROM products ORDER BY name") == [
        ("18446744073709551617", "text", None),  # every digit kept; an INTEGER column cannot hold it
        ("7", "text", 7),  # so the untyped column is TEXT
    ]
    assert result.stats.totals.field_errors == 1


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
async def test_a_304_keeps_the_stored_rows_and_adds_none(
    mode: str, server: str, write_spec: Spec, db_path: Path
) -> None:
    key = f"etag-{mode}"
    spec = load_spec(
        write_spec(
            f"""
name: cond
http: {{base_url: "{server}"}}
targets:
  - name: page
    url: /versioned/{key}
    conditional: true
    mode: {mode}
    {"key: [id]" if mode == "upsert" else ""}
    extract: {{fields: {{id: {{jmespath: id, type: int}}, title: title}}}}
"""
        )
    )
    await run_async(spec, output=db_path)
    second = await run_async(spec, output=db_path)

    assert second.ok
    assert server_app.hits[f"versioned:{key}"] == 2
    assert query(db_path, "SELECT status, records FROM _crawlrunner_fetch_log ORDER BY id") == [(200, 1), (304, 0)]
    assert query(db_path, "SELECT unchanged FROM _crawlrunner_runs ORDER BY id") == [(0,), (1,)]
    assert query(db_path, "SELECT count(*), max(title) FROM page") == [(1, "stable")]
    if mode != "append":  # the kept row now belongs to the latest run
        assert query(db_path, "SELECT _run_id FROM page") == [(second.run_id,)]


async def test_reextract_rebuilds_a_table_from_stored_bodies_without_a_request(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    text = """
name: bodies
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/bodies
    store_bodies: true
    mode: replace
    extract:
      records: items
      fields: {{{fields}}}
"""
    server_app.catalogues["bodies"] = {1: ("kettle", 10.0), 2: ("lamp", 20.5)}
    await run_async(load_spec(write_spec(text, base=server, fields="id: id")), output=db_path)
    hits = server_app.hits["catalogue:bodies"]

    changed = load_spec(
        write_spec(text, base=server, fields="id: id, label: name, price: {jmespath: price, type: float}")
    )
    result = await reextract_async(changed, output=db_path)

    assert server_app.hits["catalogue:bodies"] == hits  # not a single request
    assert result.status == "reextracted" and result.totals.records == 2
    assert query(db_path, "SELECT id, label, price, _run_id FROM products ORDER BY id") == [
        (1, "kettle", 10.0, result.run_id),
        (2, "lamp", 20.5, result.run_id),
    ]
    assert query(db_path, "SELECT attempts FROM _crawlrunner_fetch_log WHERE run_id = ?", result.run_id) == [(0,)]


def test_a_reextraction_that_cannot_write_fails_with_the_storage_error_not_a_traceback(
    server: str, write_spec: Callable[..., Path], db_path: Path, cli: CliRunner
) -> None:
    spec = write_spec(
        'name: broken\nhttp: {{base_url: "{base}"}}\ntargets:\n'
        "  - name: products\n    url: /catalogue/broken\n    store_bodies: true\n"
        "    extract: {{records: items, fields: {{id: id}}}}\n",
        base=server,
    )
    server_app.catalogues["broken"] = {1: ("kettle", 10.0)}
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 0
    with closing(sqlite3.connect(db_path)) as conn:  # every insert into the table now fails
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON products BEGIN SELECT RAISE(ABORT, 'refused'); END")

    with pytest.raises(StorageError, match="cannot write: refused"):
        reextract(load_spec(spec), output=db_path)
    result = cli.invoke(main, ["reextract", str(spec), "-o", str(db_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot write: refused" in result.stderr
    assert query(db_path, "SELECT status FROM _crawlrunner_runs ORDER BY id") == [
        ("completed",),
        ("failed",),
        ("failed",),
    ]


async def test_retry_failed_fetches_only_what_failed(server: str, write_spec: Spec, db_path: Path) -> None:
    server_app.catalogues["retry-ok"] = {1: ("a", 1.0)}
    text = """
name: retry
http: {{base_url: "{base}", retry: null}}
targets:
  - name: items
    urls: [/catalogue/retry-ok, /catalogue/{missing}]
    extract: {{records: items, fields: {{id: id}}}}
"""
    spec = load_spec(write_spec(text, base=server, missing="retry-later"))
    first = await run_async(spec, output=db_path)  # the second URL fails: no such catalogue yet
    assert first.totals.failed == 1
    server_app.catalogues["retry-later"] = {7: ("late", 7.0)}
    ok_hits = server_app.hits["catalogue:retry-ok"]

    retried = await run_async(spec, output=db_path, retry_failed=True)

    assert retried.ok and retried.totals.requests == 1
    assert server_app.hits["catalogue:retry-ok"] == ok_hits  # the one that worked is left alone
    assert query(db_path, "SELECT id FROM items WHERE _run_id = ?", retried.run_id) == [(7,)]


async def test_resume_refuses_a_changed_spec_and_needs_an_unfinished_run(
    server: str, write_spec: Spec, db_path: Path
) -> None:
    server_app.catalogues["resume-guard"] = {1: ("a", 1.0)}
    spec = load_spec(write_spec(UPSERT, base=server, key="resume-guard", mode="append", key_line=""))
    with pytest.raises(ResumeError, match="no unfinished run of 'shop' to resume"):
        await run_async(spec, output=db_path, resume=True)
    await run_async(spec, output=db_path)
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("UPDATE _crawlrunner_runs SET status = 'interrupted'")
    changed = load_spec(
        write_spec(UPSERT.replace("price", "cost"), base=server, key="resume-guard", mode="append", key_line="")
    )
    with pytest.raises(ResumeError, match="the spec \\(or a seed file\\) changed since run 1 started"):
        await run_async(changed, output=db_path, resume=True)


async def test_a_database_made_by_the_first_layout_is_upgraded_in_place(
    server: str, write_spec: Spec, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute(
            "INSERT INTO runs (spec_name, spec_file, spec_hash, started_at, status) VALUES ('old', 'o.yaml', 'h', 't', 'completed')"
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    server_app.catalogues["migrate"] = {1: ("a", 1.0)}

    result = await run_async(
        load_spec(write_spec(UPSERT, base=server, key="migrate", mode="append", key_line="")), output=db_path
    )

    assert result.ok and result.run_id == 2
    assert query(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(db_path, "SELECT spec_name, status, unchanged FROM _crawlrunner_runs ORDER BY id") == [
        ("old", "completed", 0),
        ("shop", "completed", 0),
    ]
    assert "upgrading the database layout from version 1 to 2" in caplog.text


def test_a_locked_database_fails_clearly_and_keeps_what_was_committed(
    server: str, write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    server_app.catalogues["locked"] = {1: ("a", 1.0)}
    spec = write_spec(UPSERT, base=server, key="locked", mode="append", key_line="")
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 0

    with closing(sqlite3.connect(db_path)) as other:
        other.execute("BEGIN EXCLUSIVE")
        result = cli.invoke(main, ["run", str(spec), "-o", str(db_path)])
        other.rollback()

    assert result.exit_code == 1
    assert f"crawlrunner: {db_path}: cannot record the run: database is locked" in result.stderr
    assert "Traceback" not in result.output
    assert query(db_path, "SELECT count(*) FROM products") == [(1,)]
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_a_fresh_run_says_when_an_unfinished_one_exists(
    server: str, write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    server_app.catalogues["unfinished"] = {1: ("a", 1.0)}
    spec = write_spec(UPSERT, base=server, key="unfinished", mode="append", key_line="")
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 0
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("UPDATE _crawlrunner_runs SET status = 'interrupted'")

    result = cli.invoke(main, ["run", str(spec), "-o", str(db_path)])

    assert result.exit_code == 0
    assert "run 1 of 'shop' did not finish (interrupted); `crawlrunner run --resume` continues it" in result.stderr


def test_changes_defaults_to_the_latest_run_and_says_when_nothing_changed(
    server: str, write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    server_app.catalogues["no-change"] = {1: ("a", 1.0)}
    spec = write_spec(UPSERT, base=server, key="no-change", mode="upsert", key_line="key: [id]")
    for _ in range(2):
        assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 0

    result = cli.invoke(main, ["changes", str(db_path), "products"])

    assert result.exit_code == 0
    assert "no changes in products in its latest run" in result.stderr
    assert len(result.stdout.splitlines()) == 2  # the header and its rule only


def test_reextract_needs_an_existing_database_and_stored_bodies(
    server: str, write_spec: Spec, tmp_path: Path, cli: CliRunner
) -> None:
    spec = write_spec(UPSERT, base=server, key="x", mode="append", key_line="")
    result = cli.invoke(main, ["reextract", str(spec), "-o", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no target keeps bodies" in result.stderr

    kept = write_spec(UPSERT.replace("mode: {mode}", "mode: {mode}\n    store_bodies: true"), name="kept.yaml",
                      base=server, key="x", mode="append", key_line="")  # fmt: skip
    missing = tmp_path / "missing.db"
    result = cli.invoke(main, ["reextract", str(kept), "-o", str(missing)])
    assert result.exit_code == 2 and "no such database" in result.stderr
    assert not missing.exists()


async def test_fetched_at_is_when_the_request_was_sent(server: str, write_spec: Spec, db_path: Path) -> None:
    await run_async(
        load_spec(
            write_spec(
                "name: t\nhttp: {{base_url: '{base}', rate_limit: {{per_second: 10}}, limits: {{connections: 4}}}}\n"
                "targets:\n  - {{name: t, url: '/json/item/{{id}}', vars: {{id: {{from: 1, to: 4}}}}}}\n",
                base=server,
            )
        ),
        output=db_path,
    )

    from datetime import datetime

    times = sorted(
        datetime.fromisoformat(str(t)) for (t,) in query(db_path, "SELECT fetched_at FROM _crawlrunner_fetch_log")
    )
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.08, gaps  # paced 0.1 s apart, and recorded so
