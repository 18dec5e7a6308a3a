"""Bringing a PostgreSQL database to this release's layout (``schema.LAYOUT_VERSION``).

``ensure_layout`` runs in the caller's transaction, under ``DDL_LOCK``: a new
database gets ``CREATE`` and every upgrade, one made by an earlier release
the upgrades it lacks, all at once (every worker, and every read command,
finds the layout whole or not yet touched).

Layout 5 is not plain SQL: crawlrunner's own tables, with their indexes and
sequences (``runs_pkey``, ``runs_id_seq``...), take ``schema.PREFIX``, since
relations share one namespace with the target tables; history tables become
``_crawlrunner_history_<target>``; every target table is rebuilt with the
user's fields first, then provenance, and an upsert table's key, until then
a unique index, as its primary key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...errors import OutputPathError, StorageError
from .hosts_sql import HOSTS_DDL
from .schema import (
    CREATE,
    DDL_LOCK,
    LAYOUT_TABLE,
    LAYOUT_VERSION,
    OLD_LAYOUT_TABLE,
    OLD_SEQUENCES,
    OLD_TABLES,
    PREFIX,
    UPGRADES,
    quote_identifier,
)
from .tables import (
    PROVENANCE_COLUMNS,
    UPSERT_COLUMNS,
    column_types,
    history_index,
    history_name,
    key_columns,
    object_name,
    primary_key_name,
    target_indexes,
)

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

# The indexes of the given tables, and the sequences their columns own (bigserial).
_DEPENDENTS = """
SELECT c.relname, c.relkind::text FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY ($1::text[]::regclass[])
UNION ALL
SELECT c.relname, c.relkind::text FROM pg_depend AS d JOIN pg_class AS c ON c.oid = d.objid
WHERE d.classid = 'pg_class'::regclass AND c.relkind = 'S' AND d.refobjid = ANY ($1::text[]::regclass[])
"""

# Target tables: the current schema's tables with provenance columns (not one of crawlrunner's own).
_TARGET_TABLES = """
SELECT c.relname FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND left(c.relname, 1) <> '_'
  AND (SELECT count(*) FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname IN ('_run_id', '_url')) = 2
ORDER BY c.relname
"""


async def layout_version(conn: asyncpg.Connection) -> int | None:
    """The layout of the database (0: empty), or None: another program's database."""
    for table in (LAYOUT_TABLE, OLD_LAYOUT_TABLE):
        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
            return int(await conn.fetchval(f"SELECT coalesce(max(version), 1) FROM {table}"))
    tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
    return 0 if tables == 0 else None


async def upgrade_for_reading(conn: asyncpg.Connection, name: str) -> None:
    """An older layout upgraded before a read command reads it (an empty or another program's database left alone)."""
    version = await layout_version(conn)
    if version and version < LAYOUT_VERSION:
        async with conn.transaction():
            await conn.execute("SET TRANSACTION READ WRITE")  # a reader's sessions are read-only by default
            await ensure_layout(conn, name)


async def ensure_layout(conn: asyncpg.Connection, name: str) -> None:
    """Create crawlrunner's layout in an empty database, or upgrade an older one; refuse another program's.

    In the caller's transaction: the layout changes whole or not at all.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK)
    version = await layout_version(conn)
    if version is None:
        tables = sorted(
            r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        )
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise OutputPathError(
            f"{name}: a database crawlrunner did not make (it has tables: {shown}); refusing to write into it"
        )
    if version > LAYOUT_VERSION:
        raise StorageError(f"{name}: made by a newer crawlrunner (layout {version}, this one knows {LAYOUT_VERSION})")
    if version == LAYOUT_VERSION:
        return
    if version == 0:
        await conn.execute(CREATE)
        version = 1
    else:
        log.warning("%s: upgrading the database layout from version %d to %d", name, version, LAYOUT_VERSION)
    for upgrade in UPGRADES[version - 1 :]:
        await conn.execute(upgrade)
    if version < 5:
        await _layout_5(conn)
    await conn.execute(f"INSERT INTO {LAYOUT_TABLE} (version) VALUES ($1)", LAYOUT_VERSION)


async def _layout_5(conn: asyncpg.Connection) -> None:
    """Own relations under PREFIX, history tables renamed, target tables rebuilt; the hosts' DDL made anew."""
    renamed = []
    for old, new in [(OLD_LAYOUT_TABLE, LAYOUT_TABLE), *((t, PREFIX + t) for t in OLD_TABLES)]:
        if await conn.fetchval("SELECT to_regclass($1)", old) is not None:
            await conn.execute(f"ALTER TABLE {quote_identifier(old)} RENAME TO {quote_identifier(new)}")
            renamed.append(new)
    dependents = [(str(r[0]), str(r[1])) for r in await conn.fetch(_DEPENDENTS, renamed)]
    for relation, kind in [*dependents, *((s, "S") for s in OLD_SEQUENCES)]:
        if not relation.startswith(PREFIX) and await conn.fetchval("SELECT to_regclass($1)", relation) is not None:
            await _rename(conn, relation, PREFIX + relation, kind)
    # Its functions name the tables: made again with the new names.
    await conn.execute(HOSTS_DDL)
    for (table,) in await conn.fetch(_TARGET_TABLES):
        await _rename_history(conn, table)
        await _rebuild(conn, table)


async def _rename(conn: asyncpg.Connection, relation: str, new: str, kind: str) -> None:
    what = {"i": "INDEX", "S": "SEQUENCE"}.get(kind, "TABLE")
    await conn.execute(f"ALTER {what} {quote_identifier(relation)} RENAME TO {quote_identifier(object_name(new))}")


async def _rename_history(conn: asyncpg.Connection, target: str) -> None:
    """``_<target>_history`` (and its index, sequence and primary key) as ``_crawlrunner_history_<target>``."""
    old, new = object_name(f"_{target}_history"), history_name(target)
    if await conn.fetchval("SELECT to_regclass($1)", quote_identifier(old)) is None:
        return
    await conn.execute(f"DROP INDEX IF EXISTS {quote_identifier(object_name(f'_{target}_history_run'))}")
    await conn.execute(f"ALTER TABLE {quote_identifier(old)} RENAME TO {quote_identifier(new)}")
    for relation, kind in [(str(r[0]), str(r[1])) for r in await conn.fetch(_DEPENDENTS, [quote_identifier(new)])]:
        suffix = "_id_seq" if kind == "S" else "_pkey"
        await _rename(conn, relation, new + suffix, kind)
    await conn.execute(history_index(target))


_REBUILD_CONSTRAINTS = "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND starts_with(conname, $2)"

# Whether a view (a rule of another relation) reads the table: it could not be dropped and made again.
_VIEWS_ON = (
    "SELECT EXISTS (SELECT FROM pg_depend AS d JOIN pg_rewrite AS r ON r.oid = d.objid"
    " WHERE d.refobjid = to_regclass($1) AND r.ev_class <> d.refobjid)"
)

# The declarations of the columns every target table has, in the order they take.
_SYSTEM_COLUMNS = dict(PROVENANCE_COLUMNS + UPSERT_COLUMNS)


async def _rebuild(conn: asyncpg.Connection, table: str) -> None:
    """The target table rebuilt: fields first (in their order), then the system columns; its key the primary key.

    A key with NULL parts stored (layouts 1 to 4 allowed them, and key fields
    are required only since) cannot be a primary key: the unique index stays.
    """
    existing = await column_types(conn, table)
    fields = [(n, t) for n, t in existing.items() if not n.startswith("_")]
    system = [(n, d) for n, d in _SYSTEM_COLUMNS.items() if n in existing]
    others = [(n, t) for n, t in existing.items() if n.startswith("_") and n not in _SYSTEM_COLUMNS]
    columns = fields + system + others
    key, key_index, _ = await key_columns(conn, table)
    quoted = quote_identifier(table)
    nulls = key and await conn.fetchval(
        f"SELECT EXISTS (SELECT FROM {quoted} WHERE {' OR '.join(f'{quote_identifier(k)} IS NULL' for k in key)})"
    )
    if await conn.fetchval(_VIEWS_ON, quoted):
        # A view of the user's on it: DROP TABLE would fail the whole upgrade (and CASCADE drop the view).
        log.warning("%s: a view depends on it; its columns keep their order (fields are not moved first)", table)
        if key and not nulls:
            keys = ", ".join(quote_identifier(k) for k in key)
            await conn.execute(
                f"ALTER TABLE {quoted} ADD CONSTRAINT {quote_identifier(primary_key_name(table))} PRIMARY KEY ({keys})"
            )
            await conn.execute(f"DROP INDEX {quote_identifier(str(key_index))}")
        return
    lines = [f"{quote_identifier(n)} {d}" for n, d in columns]
    if key and not nulls:
        keys = ", ".join(quote_identifier(k) for k in key)
        lines.append(f"CONSTRAINT {quote_identifier(primary_key_name(table))} PRIMARY KEY ({keys})")
    elif nulls:
        log.warning("%s: rows with a NULL key part are stored; its key stays a unique index", table)
    names = ", ".join(quote_identifier(n) for n, _ in columns)
    rebuilt = quote_identifier(PREFIX + "rebuild")
    await conn.execute(f"CREATE TABLE {rebuilt} (\n    " + ",\n    ".join(lines) + "\n)")
    await conn.execute(f"INSERT INTO {rebuilt} ({names}) SELECT {names} FROM {quoted}")
    # Kept as it was (its definition read before its table goes).
    index_sql = nulls and await conn.fetchval(
        "SELECT pg_get_indexdef(to_regclass($1))", quote_identifier(str(key_index))
    )
    await conn.execute(f"DROP TABLE {quoted}")
    await conn.execute(f"ALTER TABLE {rebuilt} RENAME TO {quoted}")
    # Named after the table they were made in: named as a new table's are.
    for (constraint,) in await conn.fetch(_REBUILD_CONSTRAINTS, quoted, PREFIX + "rebuild"):
        renamed = object_name(table + constraint.removeprefix(PREFIX + "rebuild"))
        await conn.execute(
            f"ALTER TABLE {quoted} RENAME CONSTRAINT {quote_identifier(constraint)} TO {quote_identifier(renamed)}"
        )
    for statement in target_indexes(table):
        await conn.execute(statement)
    if index_sql:
        await conn.execute(index_sql)
