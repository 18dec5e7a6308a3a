"""``incremental``: a target's cursor field, its initial value and its lag, checked against the field.

Whether ``{incremental}`` is used where it can be filled is ``checks.check_sources``'s job.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..coercion import coerce
from ..errors import CoercionError
from ..incremental import CURSOR_TYPES, VARIABLE, Incremental
from .env import Context
from .layering import given
from .loader import SpecPath
from .model import Extraction, Field, RequestTemplate

_TYPES = f"{', '.join(CURSOR_TYPES[:-1])} or {CURSOR_TYPES[-1]}"


def settings(
    ctx: Context, own: dict[str, Any], target_path: SpecPath, extract: Extraction | None, request: RequestTemplate
) -> Incremental | None:
    """The ``incremental`` settings of a target (``own``, as written); None, with the problems, if they do not fit."""
    raw, path = own["incremental"], target_path + ("incremental",)
    cursor = _cursor_field(ctx, raw["cursor"], path + ("cursor",), extract)
    if cursor is None or cursor.type is None:
        return None
    initial = _initial(ctx, raw["initial"], path + ("initial",), cursor)
    if cursor.type == "int" and "lag" in raw and raw["lag"] != int(raw["lag"]):
        ctx.problem(path + ("lag",), f"an int cursor moves back by whole units: {raw['lag']} is not a whole number")
    if initial is None:
        return None
    child = own.get("parent") is not None
    return Incremental(
        cursor=cursor.name,
        type=cursor.type,
        initial=initial,
        date_format=cursor.date_format,
        # The parent values the child's request uses tell one parent's cursor from another's.
        scope_names=tuple(sorted(request.names - {VARIABLE})) if child else (),
        url_field=own.get("url_field") if child else None,
        **given(raw, ("lag",)),
    )


def _cursor_field(ctx: Context, name: str, path: SpecPath, extract: Extraction | None) -> Field | None:
    fields = {f.name: f for f in extract.fields} if extract is not None else {}
    cursor = fields.get(name)
    if cursor is None:
        known = ", ".join(fields) or "none: add extract.fields"
        ctx.problem(path, f"no field named {name!r} in this target's extract (fields: {known})")
        return None
    if cursor.type not in CURSOR_TYPES:
        has = f"type {cursor.type}" if cursor.type is not None else "no type"
        ctx.problem(
            path, f"the cursor field {name!r} has {has}: a cursor needs type {_TYPES}, whose values have an order"
        )
        return None
    if cursor.many or cursor.join is not None:
        ctx.problem(path, f"the cursor field {name!r} must hold one value per record, not a list (many or join)")
        return None
    return cursor


def _initial(ctx: Context, value: Any, path: SpecPath, cursor: Field) -> Any:
    """``initial`` as sent: a number as its type makes it, a date or date-time as written."""
    if isinstance(value, date):  # YAML reads an unquoted 2024-01-01 as a date: the text is what is sent
        value = ctx.document.plain_scalars.get(path, value.isoformat())
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        got = {list: "a list", dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)
        ctx.problem(path, f"expected a number, or a date or date-time written as text; got {got}")
        return None
    try:
        converted = coerce(value, cursor.type, cursor.date_format, cursor.decimal)
    except CoercionError as exc:
        ctx.problem(path, f"the initial value does not fit the cursor field's type {cursor.type}: {exc}")
        return None
    return value if cursor.type in ("date", "datetime") else converted
