"""Target tables on PostgreSQL: their DDL, their preparation, and record values as asyncpg sends them.

Each target's table, indexes and ``_crawlrunner_history_<target>`` table have
the SQLite layout's names and columns (see ``backends/sqlite/schema.py``):
the fields first, then provenance, then an upsert table's columns, its key
the primary key. With PostgreSQL's types, by ``coercion.stored_type``: a
``type: int`` field is a ``bigint`` column, a ``type: date`` one a ``date``,
``many: true`` and ``type: json`` are ``jsonb``, a CSS field ``text``. Every
identifier from a spec goes through ``quote_identifier``.

A name PostgreSQL would cut short (it keeps 63 bytes of an identifier) is
shortened here instead, with a digest of the whole name at its end: two
indexes of a target with a long name would otherwise end up with one name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ...coercion import stored_type
from ...errors import StorageError
from ...runtime import SPEEDUPS
from ...secrets import Redactor
from ...spec.model import Field, FieldType, Target
from .schema import DDL_LOCK, OWN_TABLES, PREFIX, quote_identifier

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

# Column types by ``stored_type``. None (a JMESPath or parent value taken as it
# is) is text, as PostgreSQL always stored it: a value that is not a string is
# its JSON text (declare a ``type:`` to get a typed column). SQLite reads a
# type off the first values instead; a PostgreSQL column cannot change type
# that cheaply, nor hold mixed values.
PG_TYPES: dict[FieldType | None, str] = {
    "str": "text",
    "int": "bigint",
    "float": "double precision",
    "number": "double precision",
    "bool": "boolean",
    "json": "jsonb",
    "date": "date",
    "datetime": "timestamptz",
    None: "text",
}

# Columns every target table carries besides its fields (field names start
# with a letter, so these never collide).
PROVENANCE_COLUMNS = (
    ("_run_id", "bigint NOT NULL REFERENCES _crawlrunner_runs(id)"),
    ("_url", "text NOT NULL"),
    ("_fetched_at", "timestamptz NOT NULL"),
)
# Upsert tables also say when each key was first and last seen and last changed,
# and which completed crawl found it gone (NULL while it is not).
UPSERT_COLUMNS = (
    ("_first_seen_run", "bigint"),
    ("_first_seen_at", "timestamptz"),
    ("_changed_run", "bigint"),
    ("_changed_at", "timestamptz"),
    ("_removed_run", "bigint"),
)

# What pg_catalog's format_type() calls the types this module declares.
_CATALOG_NAMES = {"timestamptz": "timestamp with time zone"}

_UNIQUE_VIOLATION, _NOT_NULL_VIOLATION = "23505", "23502"  # SQLSTATE

MAX_IDENTIFIER = 63  # bytes PostgreSQL keeps of a name (NAMEDATALEN - 1)
_DIGEST = 8


def object_name(name: str) -> str:
    """``name``, or when PostgreSQL would cut it short, its start and a digest of the whole.

    Spec identifiers are ASCII, so characters are bytes here.
    """
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST]
    return f"{name.encode()[: MAX_IDENTIFIER - _DIGEST - 1].decode(errors='ignore')}_{digest}"


def history_name(target_name: str) -> str:
    """The history table of the target named ``target_name`` (``_crawlrunner_history_<target>``)."""
    return object_name(f"{PREFIX}history_{target_name}")


def history_index(target_name: str) -> str:
    """The statement that creates the history table's index on ``run_id``."""
    history = history_name(target_name)
    return (
        f"CREATE INDEX IF NOT EXISTS {quote_identifier(object_name(history + '_run'))}"
        f" ON {quote_identifier(history)} (run_id)"
    )


def primary_key_name(table: str) -> str:
    """The primary key constraint (and its index) of an upsert target's table."""
    return object_name(f"_{table}_pkey")


def history_table(target: Target) -> str:
    return history_name(target.name)


def _own_indexes(name: str) -> tuple[str, str]:
    """The ``_run_id`` and ``_url`` indexes of the target table ``name``."""
    return object_name(f"_{name}_run_id"), object_name(f"_{name}_url")


def target_indexes(name: str) -> list[str]:
    """The statements that create the indexes every target table has."""
    table = quote_identifier(name)
    run_index, url_index = _own_indexes(name)
    return [
        f"CREATE INDEX IF NOT EXISTS {quote_identifier(run_index)} ON {table} (_run_id)",
        f"CREATE INDEX IF NOT EXISTS {quote_identifier(url_index)} ON {table} (_url)",
    ]


def column_type(field: Field) -> str:
    """The column type of a field, by the type it is stored with (``jsonb`` for ``many``)."""
    return PG_TYPES[stored_type(field)]


def catalog_type(declared: str) -> str:
    """A type as this module declares it, as ``format_type()`` names it."""
    return _CATALOG_NAMES.get(declared, declared)


def field_names(target: Target) -> list[str]:
    return [f.name for f in target.extract.fields] if target.extract else []


def target_columns(target: Target) -> list[tuple[str, str]]:
    """(name, declaration) of every column of the target's table: its fields, then provenance, then upsert's."""
    columns = [(f.name, column_type(f)) for f in target.extract.fields] if target.extract is not None else []
    columns += PROVENANCE_COLUMNS
    if target.mode == "upsert":
        columns += UPSERT_COLUMNS
    return columns


def create_target_table(target: Target) -> list[str]:
    """Statements that create the target's table, indexes and history table, if missing (the table first).

    An upsert key is the primary key: its fields are required, so every
    record stored has the whole key (and the writer's ON CONFLICT finds it).
    """
    lines = [f"{quote_identifier(n)} {decl}" for n, decl in target_columns(target)]
    if target.mode == "upsert":
        lines.append(_primary_key(target))
    statements = [
        f"CREATE TABLE IF NOT EXISTS {quote_identifier(target.name)} (\n    " + ",\n    ".join(lines) + "\n)",
        *target_indexes(target.name),
    ]
    if target.mode == "upsert":
        history = quote_identifier(history_table(target))
        statements += [
            f"CREATE TABLE IF NOT EXISTS {history} (\n"
            "    id bigserial PRIMARY KEY,\n    run_id bigint NOT NULL REFERENCES _crawlrunner_runs(id),\n"
            "    key text NOT NULL,\n    change text NOT NULL,\n    old jsonb,\n    new jsonb,\n"
            "    at timestamptz NOT NULL\n)",
            history_index(target.name),
        ]
    return statements


def _primary_key(target: Target) -> str:
    keys = ", ".join(quote_identifier(k) for k in target.key)
    return f"CONSTRAINT {quote_identifier(primary_key_name(target.name))} PRIMARY KEY ({keys})"


# Column types that take a field's values as they are, beyond the field's own
# type: text and jsonb take anything, a float column integers, a timestamp dates.
_TAKES: dict[str, frozenset[str]] = {
    "double precision": frozenset({"bigint"}),
    "timestamp with time zone": frozenset({"date"}),
}
# A column that cannot take the field's new type is changed to one that can.
_WIDENED: dict[tuple[str, str], str] = {("bigint", "double precision"): "double precision"}


_DECLARED = frozenset(catalog_type(t) for t in PG_TYPES.values())


def _takes(existing: str, wanted: str) -> bool:
    return existing in ("text", "jsonb") or existing == wanted or wanted in _TAKES.get(existing, frozenset())


async def column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    """name → type (as ``format_type()`` writes it) of every column of ``table``; empty if there is no such table."""
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        quote_identifier(table),
    )
    return {str(name): str(type_) for name, type_ in rows}


async def prepare_targets(conn: asyncpg.Connection, targets: Iterable[Target]) -> None:
    """Create each target's table, adding columns for fields new to the spec; one transaction.

    Workers starting together race on this: the transaction holds
    ``DDL_LOCK`` (``pg_advisory_xact_lock``), so one does the work and the
    others find it done. A changed upsert key (or mode) gets its primary
    key replaced. A field new to the spec is a column added at the end (after
    provenance: PostgreSQL adds no column elsewhere without a rebuild). A
    field whose type changed keeps its column when the column can hold the
    new values (text and jsonb hold anything, a float column integers);
    otherwise the column becomes ``double precision`` (integers that became
    floats) or ``text``, which holds every value.
    """
    targets = list(targets)
    for target in targets:
        if target.name in OWN_TABLES:
            raise StorageError(
                f"target {target.name!r}: crawlrunner's own table on PostgreSQL has that name; rename the target"
            )
    if any(t.mode == "upsert" for t in targets) and conn.get_server_version().major < 15:
        raise StorageError("mode: upsert on PostgreSQL needs version 15 or later (UNIQUE NULLS NOT DISTINCT)")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", DDL_LOCK)
        for target in targets:
            await _prepare(conn, target)


async def _prepare(conn: asyncpg.Connection, target: Target) -> None:
    table = quote_identifier(target.name)
    create, *indexes = create_target_table(target)
    kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", table)
    if kind is not None and kind not in ("r", "p"):  # an index, a sequence, a view of that name
        raise StorageError(f"target {target.name!r}: the database holds something else of that name; rename the target")
    await conn.execute(create)
    existing = await column_types(conn, target.name)
    if "_run_id" not in existing or "_url" not in existing:
        raise StorageError(f"target {target.name!r}: a table of that name is not a target's table; rename the target")
    for name, declaration in target_columns(target):
        column = quote_identifier(name)
        if name not in existing:
            log.info("adding column %s to table %s", name, target.name)
            await conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            continue
        if name.startswith("_"):  # provenance and upsert columns: always of their type
            continue
        wanted = catalog_type(declaration)
        # A type crawlrunner does not declare was someone's choice: kept (values are cast to it).
        if _takes(existing[name], wanted) or existing[name] not in _DECLARED:
            continue
        widened = _WIDENED.get((existing[name], wanted), "text")
        log.warning(
            "%s: field %s is now %s, its column %s: changing the column to %s",
            target.name, name, wanted, existing[name], widened,
        )  # fmt: skip
        await conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {widened} USING {column}::{widened}")
    # After the columns: a key on a field new to the spec needs its column first.
    for statement in indexes:
        await conn.execute(statement)
    await _replace_changed_key(conn, target)


# The unique indexes of a table: name, whether the primary key's, columns in key order.
_UNIQUE_INDEXES = """
SELECT c.relname, i.indisprimary, array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[]
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass($1) AND i.indisunique ORDER BY i.indisprimary DESC, c.relname
"""


async def key_columns(conn: asyncpg.Connection, table: str) -> tuple[tuple[str, ...], str | None, bool]:
    """(columns, index, is the primary key) of a target table's upsert key; ((), None, False) for none.

    Its primary key; or a unique index ``_<table>_key…``, as layouts 1 to 4
    made them, and as the upgrade keeps one whose key has NULL parts stored.
    """
    prefix = f"_{table}_key"
    shortened = (prefix + "_")[: MAX_IDENTIFIER - _DIGEST - 1]  # how a long key index's name starts
    for name, primary, columns in await conn.fetch(_UNIQUE_INDEXES, quote_identifier(table)):
        if primary or name == prefix or name.startswith(prefix + "_") or name.startswith(shortened):
            return tuple(columns), str(name), bool(primary)
    return (), None, False


async def _replace_changed_key(conn: asyncpg.Connection, target: Target) -> None:
    """A changed upsert key (or mode) replaces the table's primary key, in place: no rebuild in PostgreSQL."""
    wanted = tuple(target.key) if target.mode == "upsert" else ()
    current, index, primary = await key_columns(conn, target.name)
    if current == wanted:
        return
    table = quote_identifier(target.name)
    if index is not None:
        log.warning("%s: the upsert key changed; replacing %s", target.name, index)
        drop = f"ALTER TABLE {table} DROP CONSTRAINT" if primary else "DROP INDEX"
        await conn.execute(f"{drop} {quote_identifier(index)}")
    if not wanted:
        return
    try:
        await conn.execute(f"ALTER TABLE {table} ADD {_primary_key(target)}")
    except Exception as exc:
        if getattr(exc, "sqlstate", None) not in (_UNIQUE_VIOLATION, _NOT_NULL_VIOLATION):
            raise
        # Rows stored under the old key share a value of the new one, or lack
        # one (a field new to the spec is NULL in all of them).
        raise StorageError(
            f"target {target.name!r}: cannot make ({', '.join(target.key)}) its upsert key: rows already"
            f" stored share a value of it or have none ({exc}); delete them, or rename the target"
        ) from None


# Record values → what asyncpg's codecs take, one column at a time. Each
# converter keeps the common case inline (a comprehension, no call per
# value) and hands the rest to a function. Secrets are masked in strings,
# JSON texts and integers past 64 bits: where the SQLite writer masks them
# (it masks every value it stores as text). Coercion gives a typed field's
# values their type, so the rest is rare: a column whose type someone
# changed, or an older one kept (see ``prepare_targets``). A value that a
# typed column cannot hold is stored as NULL, never fails the batch.

Converter = Callable[[Sequence[Any]], list[Any]]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NUL = "\x00"
# PostgreSQL's text cannot hold NUL (SQLite's can): it is replaced.
NUL_REPLACEMENT = "\ufffd"
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def converter(pg_type: str, redact: Redactor | None = None) -> Converter:
    """The conversion of a column's values (``pg_type`` as ``format_type()`` names it) to what asyncpg sends.

    ``redact`` (given when the spec has secrets) masks them in the strings.
    A type this module does not declare (a column someone altered) gets
    text, which the statement casts (see ``array_type``).
    """
    if pg_type == "bigint":
        return _bigint_values
    if pg_type == "double precision":
        return _float_values
    if pg_type == "boolean":
        return _bool_values
    if pg_type == "date":
        return _date_values
    if pg_type == "timestamp with time zone":
        return _timestamp_values
    if pg_type == "jsonb":
        return lambda values: [None if v is None else json_text(v, redact, strict=True) for v in values]
    if redact is None:
        return lambda values: [
            v if v is None or (type(v) is str and _NUL not in v) else as_text(v, None) for v in values
        ]
    return lambda values: [
        redact(v) if type(v) is str and _NUL not in v else None if v is None else as_text(v, redact) for v in values
    ]


def array_type(pg_type: str) -> str:
    """The type of the array parameter a column's values travel in (a cast to the column's type after it)."""
    if pg_type in ("bigint", "double precision", "boolean", "date", "timestamp with time zone", "jsonb", "text"):
        return f"{pg_type}[]"
    return f"text[]::{pg_type}[]"


def as_text(value: Any, redact: Redactor | None) -> str | None:
    """A value for a text column: strings as they are, anything else as its JSON text (non-finite floats: NULL)."""
    if isinstance(value, str):
        text = value.replace(_NUL, NUL_REPLACEMENT)
        return redact(text) if redact is not None else text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX or redact is None:
            return str(value)
        return redact(str(value))  # SQLite stores it as text, so masks it
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return json_text(value, redact, strict=False)


# JSON text as the SQLite layout stores it (``coercion.sql_value``), for text columns.
_as_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
# For jsonb, which keeps no text: only valid JSON (no NaN), as fast as there is.
_as_strict_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False, default=str).encode


def _fast_dumps() -> Callable[[Any], str] | None:
    """orjson's encoder (keys sorted) when the speed-ups are installed and allowed: about ten times faster."""
    if not SPEEDUPS:
        return None
    try:
        import orjson
    except ImportError:
        return None
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS

    def encode(value: Any) -> str:
        # It refuses what json does not (integers past 64 bits, keys that are not strings): then json does it.
        return dumps(value, option=sort_keys).decode()

    return encode


_orjson_dumps = _fast_dumps()


def json_text(value: Any, redact: Redactor | None, *, strict: bool) -> str:
    """``value`` as JSON text (keys sorted, as the SQLite layout stores it), secrets masked.

    ``strict``: for a jsonb column, which takes only valid JSON without NUL
    characters: non-finite floats become null, and masking that broke the
    JSON (a secret inside a number) is done value by value instead.
    """
    text = None
    if strict and _orjson_dumps is not None:
        try:
            text = _orjson_dumps(value)
        except TypeError:
            pass
    if text is None:
        try:
            text = _as_strict_json(value) if strict else _as_json(value)
        except ValueError:  # NaN or an infinity, in strict mode
            text = _as_json(_clean(value))
    if strict and "\\u0000" in text:  # jsonb refuses it; a text column keeps it as SQLite does
        text = _as_strict_json(_clean(value))
    if redact is None:
        return text
    masked = redact(text)
    if strict and masked != text:
        try:
            json.loads(masked)
        except ValueError:
            return _as_json(_masked(_clean(value), redact))
    return masked


def _clean(value: Any) -> Any:
    """``value`` without what jsonb refuses: NUL characters, non-finite floats."""
    if isinstance(value, str):
        return value.replace(_NUL, NUL_REPLACEMENT)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _masked(value: Any, redact: Redactor) -> Any:
    """``value`` with secrets masked in each string, key and number (a number holding one becomes a string)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _masked(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, redact) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = json.dumps(value)
        return value if redact(text) == text else redact(text)
    return value


def _bigint_values(values: Sequence[Any]) -> list[Any]:
    # Coercion keeps a type: int field's values within 64 bits (or counts a field error).
    return [v if v is None or (type(v) is int and _INT64_MIN <= v <= _INT64_MAX) else _as_bigint(v) for v in values]


def _as_bigint(value: Any) -> int | None:
    """A value that is not a 64-bit integer, for a bigint column: the integer it spells, else NULL."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    return None


def _float_values(values: Sequence[Any]) -> list[Any]:
    return [v if v is None or (type(v) is float and math.isfinite(v)) else _as_float(v) for v in values]


def _as_float(value: Any) -> float | None:
    """For a double precision column: numbers (and numeric strings) as floats; NaN, infinities and the rest NULL."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _bool_values(values: Sequence[Any]) -> list[Any]:
    return [v if v is None or type(v) is bool else _as_bool(v) for v in values]


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    return None


_date_from_iso = date.fromisoformat
_datetime_from_iso = datetime.fromisoformat


def _date_values(values: Sequence[Any]) -> list[Any]:
    # Coercion makes a type: date field's values "YYYY-MM-DD".
    try:
        return [None if v is None else _date_from_iso(v) for v in values]
    except (TypeError, ValueError):
        return [_as_date(v) for v in values]


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    stamp = _as_timestamp(value)
    return stamp.date() if stamp is not None else None


def _timestamp_values(values: Sequence[Any]) -> list[Any]:
    # Coercion makes a type: datetime field's values ISO 8601; one without an offset is UTC.
    try:
        return [
            None if v is None else d if (d := _datetime_from_iso(v)).tzinfo is not None else d.replace(tzinfo=UTC)
            for v in values
        ]
    except (TypeError, ValueError):
        return [_as_timestamp(v) for v in values]


def _as_timestamp(value: Any) -> datetime | None:
    """For a timestamptz column: an ISO 8601 string (or a date, a datetime) as an aware datetime; else NULL."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = _datetime_from_iso(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def sql_key(value: Any, redact: Redactor | None) -> Any:
    """A key value as the SQLite layout stores it, for the history's JSON key (``[1,"a"]``, as ``json_array``)."""
    if isinstance(value, str):
        text = value.replace(_NUL, NUL_REPLACEMENT)
        return redact(text) if redact is not None else text
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return redact(str(value)) if redact is not None else str(value)
    if isinstance(value, (dict, list)):
        return json_text(value, redact, strict=False)
    return value
