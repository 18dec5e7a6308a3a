"""Spec data → every schema problem, located and worded for a person.

The JSON Schema in ``schemas/`` is the single source of the grammar; this
module only turns jsonschema's errors into ``file:line:col: path: message``
lines. Validation runs on the data as written, before ``${env.X}`` is
substituted, so no message can ever contain a secret's value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match, relevance

from .._resources import bundled_path
from ..errors import SpecProblem
from .loader import Document, SpecPath

SCHEMA_FILE = "crawlspec.schema.json"

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema (Draft 2020-12), parsed once."""
    with bundled_path("schemas", SCHEMA_FILE).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 4.0 as an integer; a connection count of 4.0 is a typo.
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator() -> Any:
    # The shipped schema is checked against the metaschema by the tests, not
    # on every run: that check alone took longer than loading a spec.
    schema = spec_schema()
    strict = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    return strict(schema)


def check(document: Document) -> list[SpecProblem]:
    """Every schema problem in ``document``, in file order, without duplicates."""
    problems: dict[tuple[int, int, str, str], SpecProblem] = {}
    for error in sorted(_validator().iter_errors(document.data), key=relevance):
        for path, message, at_key in _explain(error):
            written = document.plain_scalars.get(path)
            if written is not None and message.startswith("expected") and "a string" in message:
                # The value at ``path``: an error inside anyOf/oneOf is about a part of error.instance.
                message += _quote_hint(written, _value_at(document.data, path))
            problem = document.problem(path, message, key=at_key)
            problems.setdefault((problem.line, problem.column, problem.path, message), problem)
    return sorted(problems.values(), key=lambda p: (p.line, p.column, p.path))


def _describe(value: Any) -> str:
    """A short, safe rendering of a value for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    for name, python_type in (("object", dict), ("array", list), ("string", str), ("integer", int), ("number", float)):
        if isinstance(value, python_type):
            return _TYPE_NAMES[name]
    return "null" if value is None else type(value).__name__


def _value_at(data: Any, path: SpecPath) -> Any:
    """The value ``path`` leads to in ``data`` (which the schema error was found in, so the path exists)."""
    for part in path:
        data = data[part]
    return data


def _quote_hint(written: str, value: Any) -> str:
    """YAML 1.1 reads unquoted no, on, 1.10 and 017 as booleans and numbers: say so."""
    if isinstance(value, bool):
        kind = f"the boolean {'true' if value else 'false'}"
    elif isinstance(value, (int, float)):
        kind = f"the number {value!r}"
    else:
        return ""
    return f' (YAML reads an unquoted {written} as {kind}: write "{written}" to keep it text)'


def _expected_types(types: str | Iterable[str]) -> str:
    names = [_TYPE_NAMES.get(t, t) for t in ([types] if isinstance(types, str) else types)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _explain(error: ValidationError) -> Iterator[tuple[SpecPath, str, bool]]:
    """(path, message, point-at-key) for one jsonschema error."""
    path: SpecPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    kind = error.validator
    expected: Any = error.validator_value

    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties", {}))
        for key in (k for k in value if k not in known):
            import difflib  # only for a misspelt key: not loaded for a good spec

            hint = difflib.get_close_matches(key, known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else f"; expected one of: {', '.join(known)}"
            yield path + (key,), f"unknown key {key!r}{suggestion}", True
        return
    if kind == "required":
        for key in expected:
            if isinstance(value, dict) and key not in value:
                yield path, f"missing required key {key!r}", False
        return
    if kind == "type":
        yield path, f"expected {_expected_types(expected)}, got {_type_of(value)}", False
        return
    if kind == "enum":
        options = ", ".join(str(o) for o in expected)
        yield path, f"expected one of {options}; got {_describe(value)}", False
        return
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[kind]
        noun = "an integer" if schema.get("type") == "integer" else "a number"
        allowed = f"{sign} {expected}"
        if "minimum" in schema and "maximum" in schema:
            # Whichever end was crossed, the message gives the whole allowed range.
            allowed = f"from {schema['minimum']} to {schema['maximum']}"
        yield path, f"expected {noun} {allowed}, got {_describe(value)}", False
        return
    if kind == "minLength" and expected == 1:
        yield path, "must not be empty", False
        return
    if kind == "minItems":
        yield path, f"expected at least {expected} item(s)", False
        return
    if kind == "minProperties":
        yield path, f"expected at least {expected} key(s)", False
        return
    if kind == "maxProperties" and isinstance(value, dict):
        yield path, f"give only one of {', '.join(sorted(value))}", False
        return
    if kind in ("oneOf", "anyOf"):
        yield from _explain_alternatives(error, path)
        return
    if "propertyNames" in error.schema_path and isinstance(value, str):
        # jsonschema reports a bad key at its mapping; point at the key itself.
        what = schema.get("description") or f"it must match {expected}"
        yield path + (value,), f"{_describe(value)} is not a valid name: {what}", True
        return
    if kind == "pattern" and isinstance(value, str):
        what = schema.get("description") or f"it must match {expected}"
        yield path, f"{_describe(value)} is not valid: {what}", False
        return
    if kind == "not":
        if set(expected) == {"pattern"} and not isinstance(value, str):
            # A pattern holds for anything but a string, so "not pattern" fails on
            # every non-string: the type check next to it already says what is wrong.
            return
        what = schema.get("description") or "the name is reserved"
        yield path, f"{_describe(value)} is not allowed: {what}", False
        return
    yield path, error.message, False


def _explain_alternatives(error: ValidationError, path: SpecPath) -> Iterator[tuple[SpecPath, str, bool]]:
    """oneOf/anyOf: say what the alternatives were, or follow the most relevant one."""
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    value = error.instance
    required_sets = [b.get("required") for b in branches if isinstance(b, dict)]
    if required_sets and all(required_sets) and isinstance(value, dict):
        keys = sorted({k for keys in required_sets if keys for k in keys})
        present = [k for k in keys if k in value]
        listed = " or ".join(repr(k) for k in keys)
        if present:
            yield path, f"give either {listed}, not both", False
        else:
            yield path, f"missing {listed}: give exactly one", False
        return
    context = list(error.context or [])
    shallow_type_errors = [e for e in context if e.validator == "type" and not e.relative_path]
    if context and len(shallow_type_errors) == len(context):
        types: list[str] = []
        for e in shallow_type_errors:
            t: Any = e.validator_value
            types.extend([t] if isinstance(t, str) else t)
        yield path, f"expected {_expected_types(dict.fromkeys(types))}, got {_type_of(value)}", False
        return
    # Follow the branch whose type fits the value; report all of its errors.
    fitting = [e for e in context if not (e.validator == "type" and not e.relative_path)]
    best = best_match(fitting) if fitting else None
    if best is None:
        yield path, error.message, False
        return
    branch = best.schema_path[0] if best.schema_path else None
    for sub in fitting:
        if sub.schema_path and sub.schema_path[0] == branch:
            yield from _explain(sub)
