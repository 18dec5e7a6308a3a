"""Property-based fuzzing: mutated specs always end in exit 0 or 2 with a message.

Starting from the shipped specs, hypothesis replaces values, deletes and
renames keys, and adds unknown ones anywhere in the tree; `crawlrunner
validate` must never show a traceback, whatever it is given.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crawlrunner.cli import main

from ..conftest import REPO

SEEDS = [yaml.safe_load(p.read_text()) for p in sorted(REPO.glob("examples/*.yaml"))]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["GET", "json", "html", "{id}", "${env.NOPE}", "a[", "items[", "//a[", "http://x/"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, path + (index,))
    return found


def _mutate(spec: Any, path: tuple[Any, ...], action: str, value: Any, name: str) -> Any:
    spec = copy.deepcopy(spec)
    if not path:
        return value if action == "replace" else spec
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[name or "x"] = parent.pop(last)
    elif action == "add" and isinstance(parent[last], dict):
        parent[last][name or "x"] = value
    return spec


@pytest.mark.fuzz
@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_validate_never_crashes_on_a_mutated_spec(data: st.DataObject, tmp_path: Path) -> None:
    spec = data.draw(st.sampled_from(SEEDS))
    mutated = spec
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(mutated)))
        action = data.draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        mutated = _mutate(mutated, path, action, data.draw(values), data.draw(st.text(max_size=8)))
    text = yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    path = tmp_path / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")

    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", str(path)])

    event(f"exit status {result.exit_code}")
    assert time.monotonic() - started < 5
    assert result.exit_code in (0, 2), (text, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (text, result.exception)
    assert "Traceback" not in result.output
    assert result.output.strip(), text
