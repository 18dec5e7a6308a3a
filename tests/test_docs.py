"""The spec reference (docs/spec.md) keeps step with the JSON Schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from crawlrunner.spec import spec_schema

from .conftest import REPO


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key
            yield from _keys(value)
        for name in ("additionalProperties", "items", "anyOf", "oneOf", "allOf"):
            child = node.get(name)
            for sub in child if isinstance(child, list) else [child]:
                yield from _keys(sub)
        for sub in node.get("$defs", {}).values():
            yield from _keys(sub)


def _enum_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.get("enum", []):
            yield str(value)
        for value in node.values():
            yield from _enum_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enum_values(value)


def test_every_schema_key_and_choice_is_documented() -> None:
    doc = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([^`\s]+)`", doc))
    schema = spec_schema()
    missing_keys = sorted(set(_keys(schema)) - documented)
    missing_values = sorted(set(_enum_values(schema)) - documented - {"runs", "fetch_log"})
    assert missing_keys == []
    assert missing_values == []
