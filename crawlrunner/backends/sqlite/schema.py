"""The database schema: crawlrunner's own tables and one table per target.

Documented for users in docs/database.md; a test keeps the two in step.
Every identifier that comes from a spec goes through ``quote_identifier``.

The layout is versioned with ``PRAGMA user_version``. ``MIGRATIONS[n]``
takes a database from version n to n + 1, so a file made by any earlier
release opens in this one; a new file is made at the current layout at once
(``CURRENT_LAYOUT``, which a test keeps equal to what the migrations build).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...coercion import SQL_TYPES, stored_type
from ...spec.model import Target

# crawlrunner's own tables (and their indexes, and each upsert target's
# history) are named with this prefix, so that in Datasette, sqlite-utils or a
# notebook a user's tables stand alone; target names start with a letter and
# cannot start with "crawlrunner_", so no target's table or index can take one.
PREFIX = "_crawlrunner_"

# Columns every target table carries after its fields. Field names cannot
# start with "_" (the spec's identifier pattern), so these never collide.
PROVENANCE_COLUMNS = (
    ("_run_id", "INTEGER NOT NULL REFERENCES _crawlrunner_runs(id)"),
    ("_url", "TEXT NOT NULL"),
    ("_fetched_at", "TEXT NOT NULL"),
)
# Upsert tables also say when each key was first and last seen and last changed,
# and which completed crawl found it gone (NULL while it is not).
UPSERT_COLUMNS = (
    ("_first_seen_run", "INTEGER"),
    ("_first_seen_at", "TEXT"),
    ("_changed_run", "INTEGER"),
    ("_changed_at", "TEXT"),
    ("_removed_run", "INTEGER"),
)

_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    spec_name TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    ok INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fetch_log (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    bytes INTEGER NOT NULL,
    body_path TEXT,
    elapsed_ms REAL NOT NULL,
    attempts INTEGER NOT NULL,
    records INTEGER NOT NULL,
    error_kind TEXT,
    error TEXT,
    fetched_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fetch_log_run_target ON fetch_log (run_id, target);
CREATE INDEX IF NOT EXISTS fetch_log_error_kind ON fetch_log (error_kind) WHERE error_kind IS NOT NULL;
"""

_V2 = """
ALTER TABLE runs ADD COLUMN unchanged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fetch_log ADD COLUMN etag TEXT;
ALTER TABLE fetch_log ADD COLUMN last_modified TEXT;
ALTER TABLE fetch_log ADD COLUMN request_id INTEGER;
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    seq INTEGER,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT,
    body TEXT,
    depth INTEGER NOT NULL DEFAULT 0,
    page INTEGER NOT NULL DEFAULT 0,
    chain_pages INTEGER,
    chain_items INTEGER,
    parent TEXT
);
CREATE INDEX requests_run_state ON requests (run_id, state);
CREATE UNIQUE INDEX requests_run_seq ON requests (run_id, seq) WHERE seq IS NOT NULL;
CREATE TABLE validators (
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    run_id INTEGER NOT NULL,
    PRIMARY KEY (target, url)
);
CREATE TABLE bodies (
    fetch_id INTEGER PRIMARY KEY REFERENCES fetch_log(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    charset TEXT,
    fetched_at TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX bodies_target_url ON bodies (target, url);
"""

# Start requests are numbered within their target (seq), so adding a target
# to a spec leaves every other target's numbers as they were: a resume after
# adding one skips exactly what was done. ``runs.fingerprints`` holds what a
# resume compares (the spec outside its targets, and each target). Requests
# a run decided not to send (robots.txt) are 'skipped', with the reason.
# ``runs.retry_of`` marks a --retry-failed run, which a resume must not turn
# into a crawl of the whole spec.
# A run of an earlier layout whose saved requests have no start-request number
# was a --retry-failed of the spec's run before it: it gets its retry_of.
# Runs made before this version keep their spec-wide numbers until resumed:
# renumbering needs the spec (see opening.py), which a migration does not have.
_V3 = """
ALTER TABLE runs ADD COLUMN fingerprints TEXT;
ALTER TABLE runs ADD COLUMN retry_of INTEGER REFERENCES runs(id);
ALTER TABLE requests ADD COLUMN reason TEXT;
DROP INDEX requests_run_seq;
CREATE UNIQUE INDEX requests_run_target_seq ON requests (run_id, target, seq) WHERE seq IS NOT NULL;
UPDATE runs SET retry_of = (
    SELECT max(earlier.id) FROM runs AS earlier WHERE earlier.spec_name = runs.spec_name AND earlier.id < runs.id
) WHERE EXISTS (SELECT 1 FROM requests WHERE requests.run_id = runs.id)
    AND NOT EXISTS (SELECT 1 FROM requests WHERE requests.run_id = runs.id AND requests.seq IS NOT NULL);
"""

# What a run can be trusted for. ``fetch_log.items``: the records a page's
# records selector found, before any was dropped (null where nothing was
# extracted). ``chain_ends``: one row per pagination chain, on the page where
# it ended, with why. ``extraction_health``: per run, target and field, how
# many of the run's records left the field empty (kept when the run finishes;
# for a --retry-failed run, counted over the run it retries too).
_V4 = """
ALTER TABLE fetch_log ADD COLUMN items INTEGER;
CREATE TABLE chain_ends (
    fetch_id INTEGER PRIMARY KEY REFERENCES fetch_log(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    pages INTEGER NOT NULL,
    items INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX chain_ends_run_target ON chain_ends (run_id, target);
CREATE TABLE extraction_health (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    field TEXT NOT NULL,
    records INTEGER NOT NULL,
    empty INTEGER NOT NULL,
    PRIMARY KEY (run_id, target, field)
);
"""

# Incremental and polite. ``cursors``: per run, target and scope (a child
# target's parent key as JSON; '' for a target's own requests), the largest
# value of the target's ``incremental.cursor`` field the run stored; the next
# run's cursor comes from completed runs only. ``validators.led_to``: what a
# conditional page led to (its next page, links, child requests: request rows
# as JSON), so that a 304 continues the crawl; ``led_to_spec``, a digest of
# the settings that derived it. ``requests.role``: null for a
# page, 'sitemap' for a sitemap document (``seeds.sitemap``). ``host_stats``:
# per run and origin, how polite the run had to be.
_V5 = """
CREATE TABLE cursors (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, target, scope)
);
ALTER TABLE validators ADD COLUMN led_to TEXT;
ALTER TABLE validators ADD COLUMN led_to_spec TEXT;
ALTER TABLE requests ADD COLUMN role TEXT;
CREATE TABLE host_stats (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    origin TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    unavailable INTEGER NOT NULL DEFAULT 0,
    cooldowns INTEGER NOT NULL DEFAULT 0,
    cooldown_seconds REAL NOT NULL DEFAULT 0,
    crawl_delay REAL,
    PRIMARY KEY (run_id, origin)
);
"""

# Where link following stopped short. ``fetch_log.unfollowed``: the new links
# on the page (on the target's hosts, not requested before) that
# ``follow.max_pages`` left out, written with the page's row; a run with any
# keeps removals from being recorded, and the summary says how many.
_V6 = """
ALTER TABLE fetch_log ADD COLUMN unfollowed INTEGER NOT NULL DEFAULT 0;
"""

# What each target's fields hold (``backends/field_types.py``), so that
# ``export`` and ``changes`` read a JSON field back as JSON and a bool as a
# boolean: SQLite's column types cannot say it. ``kind`` is 'json' (``type:
# json`` or ``many: true``), 'bool', or null; written when a run prepares the
# target's table, so a field dropped from the spec keeps its last kind.
_V7 = """
CREATE TABLE field_types (
    target TEXT NOT NULL,
    field TEXT NOT NULL,
    kind TEXT,
    PRIMARY KEY (target, field)
);
"""

# Every own table and index under one prefix (``PREFIX``); what the renamed
# tables reference follows them (SQLite rewrites foreign keys on a rename).
# Target tables are rebuilt by ``layout.upgrade_target_tables`` in the same
# step: fields first, a declared type for every column, an upsert key as the
# primary key, history tables under the prefix. ``fetch_log.seq``: a start
# request's number, so that a done one needs no ``requests`` row (see writer.py).
_V8_TABLES = (
    "runs", "fetch_log", "requests", "validators", "bodies", "chain_ends", "extraction_health", "cursors", "host_stats",
    "field_types",
)  # fmt: skip
_V8 = (
    "".join(f"ALTER TABLE {name} RENAME TO {PREFIX}{name};\n" for name in _V8_TABLES)
    + f"""
DROP INDEX fetch_log_run_target;
DROP INDEX fetch_log_error_kind;
DROP INDEX requests_run_state;
DROP INDEX requests_run_target_seq;
DROP INDEX bodies_target_url;
DROP INDEX chain_ends_run_target;
CREATE INDEX {PREFIX}fetch_log_run_target ON {PREFIX}fetch_log (run_id, target);
CREATE INDEX {PREFIX}fetch_log_error_kind ON {PREFIX}fetch_log (error_kind) WHERE error_kind IS NOT NULL;
CREATE INDEX {PREFIX}requests_run_state ON {PREFIX}requests (run_id, state);
CREATE UNIQUE INDEX {PREFIX}requests_run_target_seq ON {PREFIX}requests (run_id, target, seq) WHERE seq IS NOT NULL;
CREATE INDEX {PREFIX}bodies_target_url ON {PREFIX}bodies (target, url);
CREATE INDEX {PREFIX}chain_ends_run_target ON {PREFIX}chain_ends (run_id, target);
ALTER TABLE {PREFIX}fetch_log ADD COLUMN seq INTEGER;
"""
)

# A new file is given this layout at once, in one transaction: the same
# tables, columns (in the same order), keys and indexes as MIGRATIONS build
# one step at a time (a test compares the two), in a fraction of the time:
# eight transactions of ALTER TABLE and renames were a tenth of a short run's start-up.
CURRENT_LAYOUT = f"""
CREATE TABLE {PREFIX}runs (
    id INTEGER PRIMARY KEY,
    spec_name TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    ok INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    resumed INTEGER NOT NULL DEFAULT 0,
    fingerprints TEXT,
    retry_of INTEGER REFERENCES {PREFIX}runs(id)
);
CREATE TABLE {PREFIX}fetch_log (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    bytes INTEGER NOT NULL,
    body_path TEXT,
    elapsed_ms REAL NOT NULL,
    attempts INTEGER NOT NULL,
    records INTEGER NOT NULL,
    error_kind TEXT,
    error TEXT,
    fetched_at TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    request_id INTEGER,
    items INTEGER,
    unfollowed INTEGER NOT NULL DEFAULT 0,
    seq INTEGER
);
CREATE TABLE {PREFIX}requests (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    seq INTEGER,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT,
    body TEXT,
    depth INTEGER NOT NULL DEFAULT 0,
    page INTEGER NOT NULL DEFAULT 0,
    chain_pages INTEGER,
    chain_items INTEGER,
    parent TEXT,
    reason TEXT,
    role TEXT
);
CREATE TABLE {PREFIX}validators (
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    run_id INTEGER NOT NULL,
    led_to TEXT,
    led_to_spec TEXT,
    PRIMARY KEY (target, url)
);
CREATE TABLE {PREFIX}bodies (
    fetch_id INTEGER PRIMARY KEY REFERENCES {PREFIX}fetch_log(id),
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    charset TEXT,
    fetched_at TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE {PREFIX}chain_ends (
    fetch_id INTEGER PRIMARY KEY REFERENCES {PREFIX}fetch_log(id),
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    url TEXT NOT NULL,
    pages INTEGER NOT NULL,
    items INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE {PREFIX}extraction_health (
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    field TEXT NOT NULL,
    records INTEGER NOT NULL,
    empty INTEGER NOT NULL,
    PRIMARY KEY (run_id, target, field)
);
CREATE TABLE {PREFIX}cursors (
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    target TEXT NOT NULL,
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, target, scope)
);
CREATE TABLE {PREFIX}host_stats (
    run_id INTEGER NOT NULL REFERENCES {PREFIX}runs(id),
    origin TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    unavailable INTEGER NOT NULL DEFAULT 0,
    cooldowns INTEGER NOT NULL DEFAULT 0,
    cooldown_seconds REAL NOT NULL DEFAULT 0,
    crawl_delay REAL,
    PRIMARY KEY (run_id, origin)
);
CREATE TABLE {PREFIX}field_types (
    target TEXT NOT NULL,
    field TEXT NOT NULL,
    kind TEXT,
    PRIMARY KEY (target, field)
);
CREATE INDEX {PREFIX}fetch_log_run_target ON {PREFIX}fetch_log (run_id, target);
CREATE INDEX {PREFIX}fetch_log_error_kind ON {PREFIX}fetch_log (error_kind) WHERE error_kind IS NOT NULL;
CREATE INDEX {PREFIX}requests_run_state ON {PREFIX}requests (run_id, state);
CREATE UNIQUE INDEX {PREFIX}requests_run_target_seq ON {PREFIX}requests (run_id, target, seq) WHERE seq IS NOT NULL;
CREATE INDEX {PREFIX}bodies_target_url ON {PREFIX}bodies (target, url);
CREATE INDEX {PREFIX}chain_ends_run_target ON {PREFIX}chain_ends (run_id, target);
"""

# The first bytes of every SQLite file.
SQLITE_HEADER = b"SQLite format 3\x00"

# crawlrunner's own tables; every other table is a target's.
OWN_TABLES = tuple(PREFIX + name for name in _V8_TABLES)

# MIGRATIONS[n] takes the layout from version n to n + 1 (with ``layout.MIGRATION_STEPS``
# for what plain SQL cannot do).
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8)
SCHEMA_VERSION = len(MIGRATIONS)


def quote_identifier(name: str) -> str:
    """``name`` as a safely quoted SQLite identifier."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def history_table(target: Target | str) -> str:
    """The history table of an upsert target (or of the target of that name)."""
    return f"{PREFIX}history_{target if isinstance(target, str) else target.name}"


def target_columns(target: Target) -> list[tuple[str, str]]:
    """(name, declaration) of every column of the target's table: its fields, then provenance."""
    columns = [(f.name, SQL_TYPES[stored_type(f)]) for f in target.extract.fields] if target.extract else []
    columns += PROVENANCE_COLUMNS
    if target.mode == "upsert":
        columns += UPSERT_COLUMNS
    return columns


def primary_key(target: Target) -> tuple[str, ...]:
    """The primary key of the target's table: an upsert target's key (other tables have none but the rowid)."""
    return tuple(target.key) if target.mode == "upsert" else ()


def create_table(name: str, columns: list[tuple[str, str]], key: tuple[str, ...]) -> str:
    """The CREATE TABLE statement of a target's table (named ``name``)."""
    if len(key) == 1:
        # A lone INTEGER primary key would be the rowid itself, which takes no
        # NULL and no text (a number past 64 bits is stored as text): INT
        # has the same affinity without that.
        columns = [(n, "INT" if n == key[0] and decl == "INTEGER" else decl) for n, decl in columns]
    lines = [f"{quote_identifier(n)} {decl}".rstrip() for n, decl in columns]
    if key:
        lines.append(f"PRIMARY KEY ({', '.join(quote_identifier(k) for k in key)})")
    return f"CREATE TABLE IF NOT EXISTS {quote_identifier(name)} (\n    " + ",\n    ".join(lines) + "\n)"


def target_indexes(target: Target) -> list[str]:
    """The indexes of a target's table (named after it, so never one of crawlrunner's own).

    ``_run_id`` always (replace mode, removals, health, ``export --run``).
    ``_url`` only where a feature looks rows up by it: a 304 keeping a page's
    rows (``conditional``) and ``reextract`` (stored bodies). Each index is
    another page every commit writes; a query of yours by ``_url`` can add it.
    """
    table = quote_identifier(target.name)
    indexes = [f"CREATE INDEX IF NOT EXISTS {quote_identifier('_' + target.name + '_run_id')} ON {table} (_run_id)"]
    if target.conditional or target.store_bodies:
        indexes.append(f"CREATE INDEX IF NOT EXISTS {quote_identifier('_' + target.name + '_url')} ON {table} (_url)")
    return indexes


def create_history_table(target: str) -> list[str]:
    """Statements that create an upsert target's history table and its index, if missing."""
    history = history_table(target)
    return [
        f"CREATE TABLE IF NOT EXISTS {quote_identifier(history)} (\n"
        "    id INTEGER PRIMARY KEY,\n    run_id INTEGER NOT NULL REFERENCES _crawlrunner_runs(id),\n"
        "    key TEXT NOT NULL,\n    change TEXT NOT NULL,\n    old TEXT,\n    new TEXT,\n    at TEXT NOT NULL\n)",
        f"CREATE INDEX IF NOT EXISTS {quote_identifier(history + '_run')} ON {quote_identifier(history)} (run_id)",
    ]


def create_target_table(target: Target) -> list[str]:
    """Statements that create the target's table, indexes and history table, if missing."""
    statements = [create_table(target.name, target_columns(target), primary_key(target)), *target_indexes(target)]
    if target.mode == "upsert":
        statements += create_history_table(target.name)
    return statements


def field_names(target: Target) -> list[str]:
    return [f.name for f in target.extract.fields] if target.extract else []


def json_object(alias: str, names: list[str]) -> str:
    """A JSON object of ``alias``'s columns ``names``, keyed by name: a history row's ``old`` and ``new``."""
    pairs = ", ".join(f"'{n}', {alias}.{quote_identifier(n)}" for n in names)
    return f"json_object({pairs})"


# Kept for every field, so an export knows what each column holds.
SAVE_FIELD_KINDS = (
    "INSERT INTO _crawlrunner_field_types (target, field, kind) VALUES (?, ?, ?)"
    " ON CONFLICT (target, field) DO UPDATE SET kind = excluded.kind"
)


def insert_statement(table: str, columns: Sequence[str]) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)``: names as they are given, quoted already where they need it."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def insert_record(target: Target) -> str:
    """The statement that stores one record (an upsert for mode: upsert)."""
    names = [n for n, _ in PROVENANCE_COLUMNS] + field_names(target)
    table, columns = quote_identifier(target.name), [quote_identifier(n) for n in names]
    if target.mode != "upsert":
        return insert_statement(table, columns)
    keys = ", ".join(quote_identifier(k) for k in target.key)
    updates = [f"{quote_identifier(n)} = excluded.{quote_identifier(n)}" for n in names if n not in target.key]
    changed = (
        " OR ".join(
            f"{table}.{quote_identifier(n)} IS NOT excluded.{quote_identifier(n)}"
            for n in field_names(target)
            if n not in target.key
        )
        or "0"
    )
    updates += [
        f"_changed_run = CASE WHEN {changed} THEN excluded._run_id ELSE {table}._changed_run END",
        f"_changed_at = CASE WHEN {changed} THEN excluded._fetched_at ELSE {table}._changed_at END",
        "_removed_run = NULL",  # seen again: back from removal, if it was removed
    ]
    first_seen = ["_first_seen_run", "_first_seen_at", "_changed_run", "_changed_at"]
    return f"{insert_statement(table, columns + first_seen)} ON CONFLICT ({keys}) DO UPDATE SET {', '.join(updates)}"
