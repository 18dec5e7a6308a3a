"""The SQLite output: opening (and migrating) it, runs, and what runs read back.

Writing outcomes is the sink's job (``writer.py``); this module opens the file (WAL,
synchronous=NORMAL, a busy timeout), brings an older layout up to date,
creates target tables, and answers the questions a run asks of earlier runs
(what to resume, what failed, which ETags are known).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ...errors import OutputPathError, StorageError
from ...expectations import TargetFacts
from ...plan import RequestPlan
from ...results import utc_now
from ...spec.model import Spec, Target
from ..base import StoredBody
from .rows import INSERT as REQUEST_INSERT
from .rows import request_row, restore_plan, select_columns
from .schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    create_target_table,
    key_index,
    quote_identifier,
    target_columns,
)

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000


def _check_is_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise OutputPathError(f"{path}: is a directory, not a database file") from None
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot open: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise OutputPathError(f"{path}: exists and is not an SQLite database; refusing to overwrite it")


class Store:
    """An open output database. Use ``async with Store.open(path) as store``."""

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path) -> AsyncIterator[Store]:
        db_path = Path(path)
        _check_is_sqlite(db_path)
        if db_path.parent and not db_path.parent.exists():
            raise OutputPathError(f"{db_path}: the folder {db_path.parent} does not exist")
        # Shielded: a cancel mid-connect would leave aiosqlite's thread calling
        # back into a closed loop; let the connect finish, then close it.
        connecting = asyncio.ensure_future(aiosqlite.connect(db_path, isolation_level=None))
        try:
            conn = await asyncio.shield(connecting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await (await connecting).close()
            raise
        except sqlite3.Error as exc:
            raise StorageError(f"{db_path}: cannot open: {exc}") from None
        try:
            store = cls(db_path, conn)
            await store._initialise()
            yield store
        finally:
            await conn.close()

    async def _initialise(self) -> None:
        try:
            await self.conn.execute("PRAGMA journal_mode=WAL")
            await self.conn.execute("PRAGMA synchronous=NORMAL")
            await self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await self.conn.execute("PRAGMA foreign_keys=ON")
            async with self.conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path}: made by a newer crawlrunner (schema {version}, this one knows {SCHEMA_VERSION})"
                )
            if version == 0:
                async with self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'") as cursor:
                    row = await cursor.fetchone()
                if row and row[0]:
                    raise OutputPathError(
                        f"{self.path}: an SQLite database crawlrunner did not make; refusing to write into it"
                    )
            await self._migrate(version)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def _migrate(self, version: int) -> None:
        """Bring an older layout up to this release's, one step per transaction."""
        for step in range(version, SCHEMA_VERSION):
            if version:
                log.warning("%s: upgrading the database layout from version %d to %d", self.path, step, step + 1)
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                    await self.conn.execute(statement)
                await self.conn.execute(f"PRAGMA user_version={step + 1}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise

    async def prepare_targets(self, targets: Iterable[Target]) -> None:
        """Create each target's table, adding columns for fields new to the spec."""
        try:
            for target in targets:
                await self._drop_stale_key_index(target)
                for statement in create_target_table(target):
                    await self.conn.execute(statement)
                async with self.conn.execute(f"PRAGMA table_info({quote_identifier(target.name)})") as cursor:
                    existing = {row[1] for row in await cursor.fetchall()}
                for name, declaration in target_columns(target):
                    if name not in existing:
                        log.info("adding column %s to table %s", name, target.name)
                        await self.conn.execute(
                            f"ALTER TABLE {quote_identifier(target.name)} "
                            f"ADD COLUMN {quote_identifier(name)} {declaration}".rstrip()
                        )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot create tables: {exc}") from None

    async def _drop_stale_key_index(self, target: Target) -> None:
        """An upsert key that changed (or a mode that did) leaves an index on the old key."""
        current = key_index(target) if target.mode == "upsert" else None
        prefix = f"_{target.name}_key"
        async with self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (target.name,)
        ) as cursor:
            names = [row[0] for row in await cursor.fetchall()]
        stale = [n for n in names if (n == prefix or n.startswith(prefix + "_")) and n != current]
        for name in stale:
            log.warning("%s: the upsert key changed; replacing index %s", target.name, name)
            await self.conn.execute(f"DROP INDEX {quote_identifier(name)}")

    async def begin_run(self, spec: Spec) -> int:
        try:
            cursor = await self.conn.execute(
                "INSERT INTO runs (spec_name, spec_file, spec_hash, started_at, status) VALUES (?, ?, ?, ?, 'running')",
                (spec.name, spec.source, spec.digest, utc_now()),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot record the run: {exc}") from None
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def finish_run(
        self, run_id: int, status: str, targets: Iterable[Target] = (), *, whole_crawl: bool = True
    ) -> None:
        """Close the run's row (its counts come from the fetch log itself).

        A completed whole crawl also empties its ``replace`` targets of older
        runs' rows, in the same transaction: a failed, interrupted or limited
        run, or a retry of failures, never does.
        """
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            await self.conn.execute(
                """
                UPDATE runs SET status = ?, finished_at = ?,
                    requests = totals.requests, ok = totals.ok, failed = totals.failed,
                    records = totals.records, bytes = totals.bytes, unchanged = totals.unchanged
                FROM (
                    SELECT count(*) AS requests,
                           coalesce(sum(error_kind IS NULL), 0) AS ok,
                           coalesce(sum(error_kind IS NOT NULL), 0) AS failed,
                           coalesce(sum(records), 0) AS records,
                           coalesce(sum(bytes), 0) AS bytes,
                           coalesce(sum(status = 304), 0) AS unchanged
                    FROM fetch_log WHERE run_id = ?
                ) AS totals
                WHERE id = ?
                """,
                (status, utc_now(), run_id, run_id),
            )
            if whole_crawl and status in ("completed", "reextracted"):
                for target in targets:
                    if target.mode == "replace":
                        await self.conn.execute(
                            f"DELETE FROM {quote_identifier(target.name)} WHERE _run_id != ?", (run_id,)
                        )
            await self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("ROLLBACK")
            raise StorageError(f"{self.path}: cannot finish the run: {exc}") from None

    async def unfinished_run(self, spec: Spec) -> tuple[int, str, str] | None:
        """(id, status, spec hash) of the latest run of this spec that did not complete."""
        async with self.conn.execute(
            "SELECT id, status, spec_hash FROM runs WHERE spec_name = ? ORDER BY id DESC LIMIT 1", (spec.name,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None or row[1] not in ("running", "interrupted", "failed", "limited"):
            return None
        return int(row[0]), str(row[1]), str(row[2])

    async def reopen_run(self, run_id: int) -> None:
        await self.conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, resumed = resumed + 1 WHERE id = ?", (run_id,)
        )

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self.conn.execute(sql, params) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def target_facts(self, run_id: int, target: Target) -> TargetFacts:
        """Records, requests, failures and null counts of one target in one run."""
        fields = target.expect.not_null if target.expect else ()
        try:
            async with self.conn.execute(
                "SELECT count(*), coalesce(sum(error_kind IS NOT NULL), 0) FROM fetch_log WHERE run_id = ? AND target = ?",
                (run_id, target.name),
            ) as cursor:
                requests, failed = await cursor.fetchone() or (0, 0)
            records, nulls = 0, {}
            if target.extract is not None:
                null_sums = "".join(f", coalesce(sum({quote_identifier(f)} IS NULL), 0)" for f in fields)
                async with self.conn.execute(
                    f"SELECT count(*){null_sums} FROM {quote_identifier(target.name)} WHERE _run_id = ?", (run_id,)
                ) as cursor:
                    row = await cursor.fetchone() or (0,)
                records, nulls = row[0], dict(zip(fields, row[1:], strict=False))
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot read back the run: {exc}") from None
        return TargetFacts(records=records, requests=requests, failed=failed, nulls=nulls)

    async def next_request_id(self, run_id: int) -> int:
        """The first free request id of a run.

        Each run owns the id range starting at run_id << 32, so runs writing
        to one database at once never collide, and a resume continues its own.
        """
        base = run_id << 32
        ((highest,),) = await self.rows(
            "SELECT max(id) FROM requests WHERE id > ? AND id < ?", (base, base + (1 << 32))
        )
        return int(highest or base) + 1

    async def resume_state(self, spec: Spec, run_id: int) -> ResumeState:
        """What a resumed run needs: which start requests are done, what is pending, what was followed."""
        done = sorted(seq for (seq,) in await self.rows(
            "SELECT seq FROM requests WHERE run_id = ? AND seq IS NOT NULL AND state != 'pending'", (run_id,)
        ))  # fmt: skip
        # Every start request below the low-water mark is done: keep only the
        # few above it, so resuming a million-request run stays small.
        low = 0
        while low < len(done) and done[low] == low:
            low += 1
        pending = await self.rows(
            f"SELECT {select_columns()} FROM requests WHERE run_id = ? AND state = 'pending' ORDER BY id", (run_id,)
        )
        # URLs already requested, for the link-following targets' de-duplication only.
        following = [t.name for t in spec.targets if t.follow is not None]
        marks = ", ".join("?" for _ in following)
        followed = await self.rows(
            f"SELECT target, url FROM requests WHERE run_id = ? AND target IN ({marks})", (run_id, *following)
        ) if following else []  # fmt: skip
        detokenize = spec.redactor.detokenize
        return ResumeState(
            low_water=low,
            done_above=set(done[low:]),
            pending=[plan for row in pending if (plan := restore_plan(spec, row)) is not None],
            followed=[(target, detokenize(url)) for target, url in followed],
        )

    async def save_pending(self, run_id: int, spec: Spec, plans: Iterable[RequestPlan]) -> None:
        """Save requests a run starts with (retried failures) as pending, so it can be resumed."""
        rows = [request_row(plan, run_id, spec.redactor, "pending") for plan in plans]
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            await self.conn.executemany(REQUEST_INSERT, rows)
            await self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def failed_requests(self, spec: Spec, run_id: int) -> list[RequestPlan]:
        """The requests run ``run_id`` failed, back as plans (their targets still in ``spec``)."""
        rows = await self.rows(
            f"SELECT {select_columns()} FROM requests WHERE run_id = ? AND state = 'failed' ORDER BY id", (run_id,)
        )
        return [plan for row in rows if (plan := restore_plan(spec, row)) is not None]

    async def latest_run(self, spec: Spec) -> int | None:
        rows = await self.rows("SELECT max(id) FROM runs WHERE spec_name = ?", (spec.name,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    async def stored_bodies(self, spec: Spec, targets: Iterable[Target]) -> AsyncIterator[StoredBody]:
        """The latest stored body of every (target, URL), with the request that fetched it."""
        names = [t.name for t in targets]
        marks = ", ".join("?" for _ in names)
        sql = (
            "SELECT b.target, b.url, b.final_url, b.status, b.content_type, b.charset, b.fetched_at, b.body,"
            f" {select_columns('r')}"
            " FROM bodies AS b JOIN fetch_log AS f ON f.id = b.fetch_id LEFT JOIN requests AS r ON r.id = f.request_id"
            f" WHERE b.fetch_id IN (SELECT max(fetch_id) FROM bodies WHERE target IN ({marks}) GROUP BY target, url)"
            " ORDER BY b.fetch_id"
        )
        try:
            async with self.conn.execute(sql, tuple(names)) as cursor:
                async for row in cursor:
                    name, url, final_url, status, content_type, charset, fetched_at, body = row[:8]
                    plan = restore_plan(spec, tuple(row[8:])) if row[8] is not None else None
                    yield StoredBody(
                        name, url, final_url, status, content_type, charset, fetched_at, zlib.decompress(body), plan
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def failures_by_target(self, run_id: int) -> dict[str, int]:
        """Failed requests per target in the whole run, every session of it."""
        return dict(await self.rows(
            "SELECT target, count(*) FROM fetch_log WHERE run_id = ? AND error_kind IS NOT NULL GROUP BY target",
            (run_id,),
        ))  # fmt: skip

    async def run_totals(self, run_id: int) -> tuple[int, int]:
        """(requests, records) of the whole run, as ``finish_run`` counted them."""
        ((requests, records),) = await self.rows("SELECT requests, records FROM runs WHERE id = ?", (run_id,))
        return int(requests), int(records)

    async def validators(self, targets: Iterable[Target]) -> dict[tuple[str, str], tuple[str | None, str | None]]:
        """Stored ETag / Last-Modified per (target, tokenized URL) for conditional targets."""
        names = [t.name for t in targets if t.conditional]
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = await self.rows(
            f"SELECT target, url, etag, last_modified FROM validators WHERE target IN ({marks})", tuple(names)
        )
        return {(t, u): (e, m) for t, u, e, m in rows}


@dataclass(frozen=True)
class ResumeState:
    """What earlier sessions of a run committed that its resume needs."""

    low_water: int  # every start request with a smaller seq is done
    done_above: set[int]  # done start requests at or above it
    pending: list[RequestPlan]  # derived (or retried) requests not yet done
    followed: list[tuple[str, str]]  # (target, url) of link-following targets' requests
