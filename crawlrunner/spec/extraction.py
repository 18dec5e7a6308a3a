"""``extract``, ``follow`` and ``expect``: fields, selectors and regexes, compiled once.

A broken selector, regex or record schema is a located problem here, never
a failure halfway through a crawl. A field has exactly one source (one of
``model.FIELD_SOURCES``); ``extract.sources`` reads each at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..coercion import coerce
from ..errors import CoercionError, SelectorSyntaxError
from ..selectors import LANGUAGES, Language, Selector, compile_selector
from .env import Context
from .layering import given
from .loader import SpecPath
from .model import (
    DEFAULT_FORMAT,
    DEFAULT_LINKS,
    FIELD_SOURCES,
    Change,
    Drift,
    Expectations,
    Extraction,
    Field,
    Follow,
    Format,
)

_SOURCE_LIST = f"{', '.join(FIELD_SOURCES[:-1])} or {FIELD_SOURCES[-1]}"
# Field options passed through as written; the others keep Field's defaults.
_FIELD_OPTIONS = ("const", "meta", "parent", "date_format", "decimal", "many", "join", "default", "required")


def extraction(ctx: Context, raw: dict[str, Any], path: SpecPath, parent: str | None) -> Extraction:
    fmt: Format = raw.get("format", DEFAULT_FORMAT)
    records = selector(ctx, raw["records"], fmt, path + ("records",)) if "records" in raw else None
    fields: list[Field] = []
    columns: dict[str, str] = {}
    for name, spec in raw["fields"].items():
        if name.lower() in columns:
            ctx.problem(
                path + ("fields", name),
                f"duplicate column {name!r} (also {columns[name.lower()]!r}: column names ignore case)",
                key=True,
            )
            continue
        columns[name.lower()] = name
        built = field(ctx, name, spec, fmt, path + ("fields", name), parent)
        if built is not None:
            fields.append(built)
    validator = record_validator(ctx, raw["schema"], path + ("schema",)) if "schema" in raw else None
    return Extraction(format=fmt, fields=tuple(fields), records=records, record_validator=validator)


def record_validator(ctx: Context, raw: str | dict[str, Any], path: SpecPath) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if isinstance(raw, str):
        try:
            schema = json.loads((ctx.spec_dir / raw).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            ctx.problem(path, f"cannot read the record schema {raw!r}: {exc}")
            return None
    else:
        schema = raw
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        ctx.problem(path, f"not a valid JSON Schema: {exc.message}")
        return None
    return Draft202012Validator(schema)


def field(
    ctx: Context, name: str, spec: str | dict[str, Any], fmt: Format, path: SpecPath, parent: str | None
) -> Field | None:
    if isinstance(spec, str):
        compiled = selector(ctx, spec, fmt, path)
        return Field(name, selector=compiled, type="str" if fmt == "html" else None) if compiled else None
    sources = [k for k in FIELD_SOURCES if k in spec and not (k == "regex" and _has_selector(spec))]
    if len(sources) != 1:
        found = " and ".join(sources) if sources else "none"
        ctx.problem(path, f"give exactly one source: {_SOURCE_LIST} (found {found})")
        return None
    source = sources[0]
    compiled = None
    if source in LANGUAGES:
        compiled = selector(ctx, {source: spec[source]}, fmt, path)
        if compiled is None:
            return None
    if source == "parent" and parent is None:
        ctx.problem(path + ("parent",), "only a child target (one with 'parent') has parent fields")
    pattern = regex(ctx, spec["regex"], path + ("regex",)) if "regex" in spec else None
    group: int | str = spec.get("group", 1 if pattern is not None and pattern.groups else 0)
    _check_group(ctx, pattern, group, path)
    field_type = spec.get("type", "str" if fmt == "html" and source in ("css", "xpath", "regex") else None)
    _check_options(ctx, spec, field_type, path)
    return Field(
        name=name,
        selector=compiled,
        regex=pattern,
        group=group,
        has_const=source == "const",
        type=field_type,
        **given(spec, _FIELD_OPTIONS),
    )


def _check_group(ctx: Context, pattern: re.Pattern[str] | None, group: int | str, path: SpecPath) -> None:
    if pattern is not None and isinstance(group, int) and group > pattern.groups:
        ctx.problem(path + ("group",), f"the pattern has {pattern.groups} group(s), not {group}")
    if pattern is not None and isinstance(group, str) and group not in pattern.groupindex:
        ctx.problem(path + ("group",), f"the pattern has no group named {group!r}")


def _check_options(ctx: Context, spec: Mapping[str, Any], field_type: Any, path: SpecPath) -> None:
    if "date_format" in spec and field_type not in ("date", "datetime"):
        ctx.problem(path + ("date_format",), "date_format needs type: date or datetime")
    if "decimal" in spec and field_type != "number":
        ctx.problem(path + ("decimal",), "decimal needs type: number")
    if spec.get("many") and "join" in spec:
        ctx.problem(path + ("join",), "give many or join, not both")
    default = spec.get("default")
    if default is not None and field_type is not None:
        try:
            coerce(default, field_type, spec.get("date_format"), spec.get("decimal"))
        except CoercionError as exc:
            ctx.problem(path + ("default",), f"the default does not fit type {field_type}: {exc}")


def _has_selector(spec: Mapping[str, Any]) -> bool:
    """Whether a source other than ``regex`` is given (a regex then refines its value)."""
    return any(k in spec for k in FIELD_SOURCES if k != "regex" and k != "const")


def regex(ctx: Context, pattern: str, path: SpecPath) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error as exc:
        ctx.problem(path, f"invalid regular expression {pattern!r}: {exc}")
        return None


def selector(ctx: Context, raw: str | dict[str, Any], fmt: Format, path: SpecPath) -> Selector | None:
    """A selector string (JMESPath for JSON, CSS for HTML) or ``{language: expression}``, compiled."""
    language: Language
    if isinstance(raw, str):
        language = "jmespath" if fmt == "json" else "css"
        source, where = raw, path
    else:
        languages = [lang for lang in LANGUAGES if lang in raw]
        if len(languages) != 1:
            found = " and ".join(languages) if languages else "none"
            ctx.problem(path, f"give exactly one of {', '.join(LANGUAGES)} (found {found})")
            return None
        language = languages[0]
        source, where = raw[language], path + (language,)
    if fmt == "json" and language in ("css", "xpath"):
        ctx.problem(where, f"a json target selects with jmespath, not {language} (or set extract.format: html)")
        return None
    if fmt == "html" and language == "jmespath":
        ctx.problem(where, "an html target selects with css or xpath, not jmespath")
        return None
    try:
        return compile_selector(language, source)
    except SelectorSyntaxError as exc:
        ctx.problem(where, str(exc))
        return None


def follow(ctx: Context, raw: dict[str, Any], path: SpecPath, fmt: Format, extract: Extraction | None) -> Follow | None:
    if extract is not None and fmt == "json" and "links" not in raw:
        ctx.problem(path, "following links in JSON needs 'links': a JMESPath to the URLs")
        return None
    links = selector(ctx, raw.get("links", DEFAULT_LINKS), "html" if extract is None else fmt, path + ("links",))
    if links is None:
        return None
    patterns = {}
    for key in ("allow", "deny"):
        compiled = [regex(ctx, p, path + (key, i)) for i, p in enumerate(raw.get(key, ()))]
        patterns[key] = tuple(p for p in compiled if p is not None)
    return Follow(
        links=links,
        allow=patterns["allow"],
        deny=patterns["deny"],
        domains=tuple(d.lower().lstrip(".") for d in raw.get("domains", ())),
        **given(raw, ("max_depth", "max_pages", "robots")),
    )


def expectations(ctx: Context, raw: dict[str, Any], path: SpecPath, extract: Extraction | None) -> Expectations:
    known = {f.name for f in extract.fields} if extract else set()
    for key in ("not_null", "allow_empty"):
        for i, name in enumerate(raw.get(key, ())):
            if name not in known:
                ctx.problem(path + (key, i), f"no field named {name!r} in this target")
    drift = None
    if "drift" in raw:
        empty = raw["drift"].get("empty", {})
        for name in empty:
            if name not in known:
                ctx.problem(path + ("drift", "empty", name), f"no field named {name!r} in this target")
        records = raw["drift"].get("records")
        drift = Drift(
            records=_change(records) if records is not None else None,
            empty={name: _change(text) for name, text in empty.items()},
        )
    return Expectations(
        min_records=raw.get("min_records"),
        not_null=tuple(raw.get("not_null", ())),
        max_failed_ratio=raw.get("max_failed_ratio"),
        truncated_chains=raw.get("truncated_chains"),
        drift=drift,
        allow_empty=tuple(raw.get("allow_empty", ())),
        health=raw.get("health", True),
    )


def _change(text: str) -> Change:
    """'-20%' → a fall of 20 at most; '+10%' → a rise; '20%' → either way (the schema checked the form)."""
    direction = {"-": -1, "+": 1}.get(text[0], 0)
    return Change(float(text.lstrip("+-").rstrip("%")), direction)
