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
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ...coercion import stored_type
from ...errors import OutputPathError, StorageError
from ...incremental import Cursors
from ...plan import RequestPlan
from ...results import utc_now
from ...sitemaps import LastRun, requests_per_url
from ...spec.fingerprints import Fingerprints
from ...spec.model import Spec, Target
from ...stats import TargetStats
from ..base import StoredBody
from ..cursors import COMPLETED, start_points
from ..field_types import field_kinds
from ..recrawl import usable_validators
from ..removals import GAPS, RunGaps, removal_targets, upsert_targets
from ..rows import request_row, restore_plan, select_columns
from ..sitemap_runs import SQLITE_LAST_RUN, as_last_runs, since_last_run
from .layout import BUSY_TIMEOUT_MS, rekey, upgrade
from .query import RUN_TOTALS
from .rows import INSERT as REQUEST_INSERT
from .schema import (
    SAVE_FIELD_KINDS,
    SQLITE_HEADER,
    create_target_table,
    field_names,
    history_table,
    json_object,
    primary_key,
    quote_identifier,
    target_columns,
)

log = logging.getLogger(__name__)

# The requests a run took from a sitemap target's sitemaps: its pages (role
# null) that are neither start requests (its sitemaps are those), nor links
# (depth 1 on), nor next pages (a chain's page 2 on). The frontier's
# max_urls count of a resumed run starts from them.
SITEMAP_PAGES = "role IS NULL AND seq IS NULL AND depth = 0 AND coalesce(chain_pages, 1) = 1"
ITER_CHUNK_SIZE = 64  # rows a cursor fetches per trip to aiosqlite's thread (its default)


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


async def _connect(path: Path) -> aiosqlite.Connection:
    """An aiosqlite connection to ``path``; on failure, no thread is left behind.

    sqlite3 opens the file first, in a worker thread. When aiosqlite's own
    connect fails, it leaves its thread to report the shutdown to the event
    loop, which may be closed by then ("Exception in thread ... Event loop is
    closed" after the error message). Handed an open connection, it cannot fail.
    """
    # aiosqlite uses the connection from its one thread only, not this one.
    raw = await asyncio.to_thread(sqlite3.connect, path, isolation_level=None, check_same_thread=False)
    try:
        return await aiosqlite.Connection(lambda: raw, ITER_CHUNK_SIZE)
    except BaseException:  # cancelled while aiosqlite starts its thread: nobody else will close it
        raw.close()
        raise


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
        connecting = asyncio.ensure_future(_connect(db_path))
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

    async def rollback(self) -> None:
        """Roll back the open transaction, if there still is one; never raise.

        Called while an error is on its way out: SQLite has often rolled back
        by itself already (a full disk, an I/O error), and a failing ROLLBACK
        must not replace the error that is worth reporting.
        """
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await self.conn.execute("ROLLBACK")

    async def _initialise(self) -> None:
        # On a connection of its own, before this one touches the file: one
        # implementation of the migrations for runs and read commands alike.
        await asyncio.to_thread(upgrade, self.path)
        try:
            await self.conn.execute("PRAGMA journal_mode=WAL")
            await self.conn.execute("PRAGMA synchronous=NORMAL")
            await self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot open: {exc}") from None

    async def prepare_targets(self, targets: Iterable[Target]) -> None:
        """Create each target's table; add columns for fields new to the spec, and follow a changed key."""
        try:
            for target in targets:
                await self._prepare_target(target)
                await self._save_field_kinds(target)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot create tables: {exc}") from None

    async def _prepare_target(self, target: Target) -> None:
        table = quote_identifier(target.name)
        async with self.conn.execute(f"PRAGMA table_info({table})") as cursor:
            existing = {row[1]: row[5] for row in await cursor.fetchall()}  # column -> its place in the primary key
        key = primary_key(target)
        if existing and tuple(sorted((n for n in existing if existing[n]), key=existing.__getitem__)) != key:
            # A key (or a mode) that changed: the table is rebuilt around the new one, in one transaction.
            await self._rebuild(target)
            shape = f"primary key ({', '.join(key)})" if key else "no primary key"
            log.warning("%s: the key changed: its table was rebuilt with %s", target.name, shape)
            return
        for statement in create_target_table(target):
            await self.conn.execute(statement)
        for name, declaration in target_columns(target):
            if existing and name not in existing:
                log.info("adding column %s to table %s", name, target.name)
                await self.conn.execute(
                    f"ALTER TABLE {table} ADD COLUMN {quote_identifier(name)} {declaration}".rstrip()
                )

    async def _rebuild(self, target: Target) -> None:
        columns, key = target_columns(target), primary_key(target)
        try:  # on a connection of its own, as the migrations: this one holds no transaction now
            await asyncio.to_thread(rekey, self.path, target.name, columns, key)
        except sqlite3.IntegrityError as exc:
            why = str(exc) if "empty" in str(exc) else "rows stored under the old key share a value of the new one"
            raise StorageError(
                f"{self.path}: cannot change the key of {target.name!r} to ({', '.join(key)}): {why}"
                " (keep the old key, delete those rows, or write to a new database)"
            ) from None
        for statement in create_target_table(target):  # the history table, for a target new to upsert
            await self.conn.execute(statement)

    async def _save_field_kinds(self, target: Target) -> None:
        """Keep what the target's fields hold for the readers (``field_types``); written only when it changed."""
        async with self.conn.execute(
            "SELECT field, kind FROM _crawlrunner_field_types WHERE target = ?", (target.name,)
        ) as cursor:
            kept = {(field, kind) for field, kind in await cursor.fetchall()}
        # A field stored as its JSON values has the kind its first value gave it (``inference``).
        inferred = {f.name for f in target.extract.fields if stored_type(f) is None} if target.extract else set()
        new = [
            (target.name, name, kind)
            for name, kind in field_kinds(target)
            if (name, kind) not in kept and name not in inferred
        ]
        if new:  # a run of an unchanged spec takes no write lock here
            await self.conn.executemany(SAVE_FIELD_KINDS, new)

    async def begin_run(self, spec: Spec, *, retry_of: int | None = None) -> int:
        """A new run of ``spec``; ``retry_of``: the run whose failures it fetches again (--retry-failed)."""
        try:
            cursor = await self.conn.execute(
                "INSERT INTO _crawlrunner_runs (spec_name, spec_file, spec_hash, fingerprints, retry_of, started_at, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (spec.name, spec.source, spec.digest, spec.fingerprints.to_json(), retry_of, utc_now()),
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
        runs' rows, and records the keys of its ``upsert`` targets it no
        longer saw as removed (``_record_removals``), in the same transaction:
        a failed, interrupted or limited run, or a retry of failures, never
        does. A re-extraction counts as a whole crawl (it reads the stored
        body of every URL again).
        """
        finished_at = utc_now()
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            await self.conn.execute(
                f"""
                UPDATE _crawlrunner_runs SET status = ?, finished_at = ?,
                    requests = totals.requests, ok = totals.ok, failed = totals.failed,
                    records = totals.records, bytes = totals.bytes, unchanged = totals.unchanged
                FROM (SELECT {RUN_TOTALS} FROM _crawlrunner_fetch_log WHERE run_id = ?) AS totals
                WHERE id = ?
                """,
                (status, finished_at, run_id, run_id),
            )
            if whole_crawl and status in ("completed", "reextracted"):
                targets = list(targets)
                for target in targets:
                    if target.mode == "replace":
                        await self.conn.execute(
                            f"DELETE FROM {quote_identifier(target.name)} WHERE _run_id != ?", (run_id,)
                        )
                await self._record_removals(run_id, targets, finished_at, reread=status == "reextracted")
            await self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await self.rollback()
            raise StorageError(f"{self.path}: cannot finish the run: {exc}") from None
        except BaseException:
            await self.rollback()
            raise

    async def _record_removals(self, run_id: int, targets: list[Target], at: str, *, reread: bool) -> None:
        """Mark the keys of upsert targets that this completed crawl no longer saw as removed.

        Inside ``finish_run``'s transaction. Only for targets the run saw
        whole (``removals.may_record_removals``); a key stored by an earlier
        run (``_run_id`` below this one) and not marked yet gets a 'removed'
        history row (its values as ``old``) and ``_removed_run``. ``reread``
        (a re-extraction): only keys whose page it extracted again, since a
        page stored before its target kept bodies is not re-read.
        """
        upserts = upsert_targets(targets)
        if not upserts:
            return
        async with self.conn.execute(GAPS.format(run="?1"), (run_id,)) as cursor:
            gaps = [(str(target), str(what)) for target, what in await cursor.fetchall()]
        empty = []
        for target in upserts:
            sql = f"SELECT EXISTS (SELECT 1 FROM {quote_identifier(target.name)} WHERE _run_id = ?)"
            async with self.conn.execute(sql, (run_id,)) as cursor:
                row = await cursor.fetchone()
            if not (row and row[0]):
                empty.append(target.name)
        for target in removal_targets(targets, RunGaps.of(gaps, empty)):
            table, history = quote_identifier(target.name), quote_identifier(history_table(target))
            gone = "t._run_id < :run AND t._removed_run IS NULL"
            if reread:
                gone += (
                    " AND t._url IN (SELECT url FROM _crawlrunner_fetch_log WHERE run_id = :run AND target = :target)"
                )
            key = "json_array(" + ", ".join(f"t.{quote_identifier(k)}" for k in target.key) + ")"
            others = [n for n in field_names(target) if n not in target.key]
            params = {"run": run_id, "at": at, "target": target.name}
            await self.conn.execute(
                f"INSERT INTO {history} (run_id, key, change, old, new, at)"
                f" SELECT :run, {key}, 'removed', {json_object('t', others)}, NULL, :at"
                f" FROM {table} AS t WHERE {gone} ORDER BY t.rowid",
                params,
            )
            await self.conn.execute(f"UPDATE {table} AS t SET _removed_run = :run WHERE {gone}", params)

    async def last_run(self, spec: Spec) -> RunRow | None:
        """The latest run of this spec, whatever its status."""
        rows = await self.rows(
            "SELECT id, status, spec_hash, fingerprints, retry_of FROM _crawlrunner_runs WHERE spec_name = ?"
            " ORDER BY id DESC LIMIT 1",
            (spec.name,),
        )
        if not rows:
            return None
        run_id, status, digest, fingerprints, retry_of = rows[0]
        stored = Fingerprints.from_json(fingerprints) if fingerprints else None
        return RunRow(int(run_id), str(status), str(digest), stored, retry_of)

    async def last_runs(self, spec: Spec, run_id: int) -> dict[str, LastRun]:
        """What ``since: last_run`` stands for in run ``run_id``, per target that has it (``sitemap_runs``)."""
        found = []
        for name in since_last_run(spec):
            rows = await self.rows(SQLITE_LAST_RUN, (run_id, spec.name, name))
            found.append((name, rows[0] if rows else None))
        return as_last_runs(found)

    async def reopen_run(self, run_id: int, spec: Spec, fingerprints: Fingerprints) -> None:
        """Mark the run running again, under ``spec``: ``fingerprints`` are of the targets it now has."""
        await self.rows(
            "UPDATE _crawlrunner_runs SET status = 'running', finished_at = NULL, resumed = resumed + 1,"
            " spec_hash = ?, fingerprints = ? WHERE id = ?",
            (spec.digest, fingerprints.to_json(), run_id),
        )

    async def renumber_start_requests(self, run_id: int, offsets: Mapping[str, int], spec: Spec) -> None:
        """Number a run's start requests within their targets, as this release does; one transaction.

        For runs made before layout version 3, whose numbers ran across the
        whole spec: ``offsets`` is each target's first number there. The
        run's fingerprints are stored in the same transaction, which is what
        says it was done: never twice.
        """
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                where = "WHERE run_id = ? AND target = ? AND seq IS NOT NULL"
                for target, offset in offsets.items():
                    # Through negative numbers: shifting in place could meet a row
                    # not yet shifted, in the unique (run_id, target, seq) index.
                    await self.conn.execute(
                        f"UPDATE _crawlrunner_requests SET seq = -(seq - ?) - 1 {where}", (offset, run_id, target)
                    )
                    await self.conn.execute(
                        f"UPDATE _crawlrunner_requests SET seq = -seq - 1 {where}", (run_id, target)
                    )
                await self.conn.execute(
                    "UPDATE _crawlrunner_runs SET fingerprints = ? WHERE id = ?", (spec.fingerprints.to_json(), run_id)
                )
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.rollback()
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot renumber run {run_id}'s requests: {exc}") from None

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self.conn.execute(sql, params) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    async def next_request_id(self, run_id: int) -> int:
        """The first free request id of a run.

        Each run owns the id range starting at run_id << 32, so runs writing
        to one database at once never collide, and a resume continues its own.
        """
        base = run_id << 32
        ((highest,),) = await self.rows(  # a done start request may have its id in the fetch log only
            "SELECT max(coalesce((SELECT max(id) FROM _crawlrunner_requests WHERE id > ?1 AND id < ?2), 0),"
            " coalesce((SELECT max(request_id) FROM _crawlrunner_fetch_log WHERE run_id = ?3), 0))",
            (base, base + (1 << 32), run_id),
        )
        return max(int(highest), base) + 1

    async def resume_state(self, spec: Spec, run_id: int) -> ResumeState:
        """What a resumed run needs: which start requests are done, what is pending, what was followed."""
        finished: dict[str, list[int]] = {}
        for target, seq in await self.rows(  # a done one in the fetch log alone (see writer.py), the others here
            "SELECT target, seq FROM _crawlrunner_requests WHERE run_id = ?1 AND seq IS NOT NULL AND state != 'pending'"
            " UNION SELECT target, seq FROM _crawlrunner_fetch_log WHERE run_id = ?1 AND seq IS NOT NULL"
            " ORDER BY target, seq",
            (run_id,),
        ):
            finished.setdefault(target, []).append(seq)
        pending = await self.rows(
            f"SELECT {select_columns()} FROM _crawlrunner_requests WHERE run_id = ? AND state = 'pending' ORDER BY id",
            (run_id,),
        )
        # Pages already requested, for the link-following targets' de-duplication and max_pages only.
        following = [t.name for t in spec.targets if t.follow is not None]
        marks = ", ".join("?" for _ in following)
        followed = await self.rows(
            f"SELECT target, url FROM _crawlrunner_requests WHERE run_id = ? AND target IN ({marks}) AND role IS NULL",
            (run_id, *following),
        ) if following else []  # fmt: skip
        detokenize = spec.redactor.detokenize
        documents, taken = await self._sitemap_state(spec, run_id)
        return ResumeState(
            done={target: DoneStarts.of(seqs) for target, seqs in finished.items()},
            pending=[plan for row in pending if (plan := restore_plan(spec, row)) is not None],
            followed=[(target, detokenize(url)) for target, url in followed],
            sitemap_documents=[(target, detokenize(url)) for target, url in documents],
            sitemap_urls=taken,
        )

    async def _sitemap_state(self, spec: Spec, run_id: int) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
        """The sitemaps a run requested, and the page URLs it took from them, per sitemap target."""
        targets = {t.name: t for t in spec.targets if t.sitemap is not None}
        if not targets:
            return [], {}
        marks = ", ".join("?" for _ in targets)
        documents = await self.rows(
            f"SELECT target, url FROM _crawlrunner_requests WHERE run_id = ? AND role = 'sitemap' AND target IN ({marks})",
            (run_id, *targets),
        )
        counts = await self.rows(
            f"SELECT target, count(*) FROM _crawlrunner_requests WHERE run_id = ? AND {SITEMAP_PAGES} AND target IN ({marks})"
            " GROUP BY target",
            (run_id, *targets),
        )
        return documents, {name: int(count) // requests_per_url(targets[name]) for name, count in counts}

    @asynccontextmanager
    async def transaction(self, doing: str) -> AsyncIterator[None]:
        """One write transaction around the block; ``doing`` names it in a ``StorageError``."""
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            yield
            await self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await self.rollback()  # else the connection stays in the transaction, and every later BEGIN fails
            raise StorageError(f"{self.path}: cannot {doing}: {exc}") from None
        except BaseException:
            await self.rollback()
            raise

    async def save_pending(self, run_id: int, spec: Spec, plans: Iterable[RequestPlan]) -> None:
        """Save requests a run starts with (retried failures) as pending, so it can be resumed.

        Inside the caller's transaction: with the run's own row, or a run
        killed in between would be a retry with nothing left to retry.
        """
        rows = [request_row(plan, run_id, spec.redactor, "pending") for plan in plans]
        try:
            await self.conn.executemany(REQUEST_INSERT, rows)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot save the requests to retry: {exc}") from None

    async def failed_requests(self, spec: Spec, run_id: int) -> list[RequestPlan]:
        """The requests run ``run_id`` failed, back as plans (their targets still in ``spec``)."""
        rows = await self.rows(
            f"SELECT {select_columns()} FROM _crawlrunner_requests WHERE run_id = ? AND state = 'failed' ORDER BY id",
            (run_id,),
        )
        return [plan for row in rows if (plan := restore_plan(spec, row)) is not None]

    async def stored_bodies(self, spec: Spec, targets: Iterable[Target]) -> AsyncIterator[StoredBody]:
        """The latest stored body of every (target, URL, request body), with the request that fetched it.

        The request body counts: the pages of a chain paginated in the body share their URL.
        """
        names = [t.name for t in targets]
        marks = ", ".join("?" for _ in names)
        joined = "_crawlrunner_bodies AS b JOIN _crawlrunner_fetch_log AS f ON f.id = b.fetch_id LEFT JOIN _crawlrunner_requests AS r ON r.id = f.request_id"
        sql = (
            "SELECT b.target, b.url, b.final_url, b.status, b.content_type, b.charset, b.fetched_at, b.body,"
            f" {select_columns('r')} FROM {joined}"
            f" WHERE b.fetch_id IN (SELECT max(b.fetch_id) FROM {joined} WHERE b.target IN ({marks})"
            " GROUP BY b.target, b.url, r.body)"
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
            "SELECT target, count(*) FROM _crawlrunner_fetch_log WHERE run_id = ? AND error_kind IS NOT NULL GROUP BY target",
            (run_id,),
        ))  # fmt: skip

    async def counts_by_target(self, run_id: int) -> dict[str, TargetStats]:
        """What the sessions of run ``run_id`` so far fetched, per target: where a resumed run's progress starts."""
        rows = await self.rows(
            "SELECT target, count(*), count(error_kind), coalesce(sum(records), 0) FROM _crawlrunner_fetch_log"
            " WHERE run_id = ? GROUP BY target",
            (run_id,),
        )
        return {
            name: TargetStats(requests=requests, ok=requests - failed, failed=failed, records=records)
            for name, requests, failed, records in rows
        }

    async def run_totals(self, run_id: int) -> tuple[int, int]:
        """(requests, records) of the whole run, as ``finish_run`` counted them."""
        ((requests, records),) = await self.rows(
            "SELECT requests, records FROM _crawlrunner_runs WHERE id = ?", (run_id,)
        )
        return int(requests), int(records)

    async def cursors(self, spec: Spec, run_id: int) -> Cursors:
        """Where run ``run_id``'s incremental targets start: what the spec's completed runs before it reached."""
        if not any(t.incremental is not None for t in spec.targets):
            return Cursors()
        rows = await self.rows(COMPLETED.format(spec="?", run="?"), (spec.name, run_id))
        return start_points(rows, spec)

    async def validators(
        self, targets: Iterable[Target], keys: Mapping[str, str] | None = None
    ) -> dict[tuple[str, str], tuple[str | None, str | None]]:
        """Stored ETag / Last-Modified per (target, tokenized URL) for conditional targets.

        ``keys``: the ``led_to_spec`` a page of a target whose pages lead
        somewhere must have (``recrawl.expected_keys``); the others are left out.
        """
        names = [t.name for t in targets if t.conditional]
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = await self.rows(
            f"SELECT target, url, etag, last_modified, led_to_spec FROM _crawlrunner_validators WHERE target IN ({marks})",
            tuple(names),
        )
        return usable_validators(rows, keys or {})

    async def led_to(self, target: str, url: str) -> str | None:
        """What the page (target, tokenized URL) led to when it was last fetched whole (``validators.led_to``)."""
        rows = await self.rows("SELECT led_to FROM _crawlrunner_validators WHERE target = ? AND url = ?", (target, url))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None


@dataclass(frozen=True)
class RunRow:
    """A run as ``--resume`` looks at it."""

    id: int
    status: str
    spec_hash: str
    fingerprints: Fingerprints | None  # None: made before layout version 3, not resumed since
    retry_of: int | None  # a --retry-failed run: the run whose failures it fetches again


@dataclass(frozen=True)
class DoneStarts:
    """One target's start requests (by ``seq``) that earlier sessions of a run finished."""

    low_water: int = 0  # every one with a smaller seq
    above: frozenset[int] = frozenset()  # the few done at or above it

    @classmethod
    def of(cls, done: list[int]) -> DoneStarts:
        """From the sorted numbers done: a low-water mark keeps a million-request run's resume small."""
        low = 0
        while low < len(done) and done[low] == low:
            low += 1
        return cls(low, frozenset(done[low:]))

    def __len__(self) -> int:
        return self.low_water + len(self.above)


@dataclass(frozen=True)
class ResumeState:
    """What earlier sessions of a run committed that its resume needs."""

    done: dict[str, DoneStarts]  # per target, start requests done
    pending: list[RequestPlan]  # derived (or retried) requests not yet done
    followed: list[tuple[str, str]]  # (target, url) of link-following targets' requests
    sitemap_documents: list[tuple[str, str]]  # (target, url) of the sitemaps requested
    sitemap_urls: dict[str, int]  # per sitemap target, the page URLs taken from its sitemaps
