"""Compiled JMESPath selectors give exactly jmespath's own answers."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlrunner.selectors import JMESPath, KeyPath, compile_selector

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=12,
)
EXPRESSIONS = ["a", "a.b", "a.b.c", "b.a", "_c.a1", "a[0]", "a[*].b", "length(a)", "a.*", "a || b", "a.b[?c]"]


@pytest.mark.parametrize("expression", EXPRESSIONS)
@settings(max_examples=150, deadline=None)
@given(document=json_values)
def test_compiled_selector_agrees_with_jmespath(expression: str, document: Any) -> None:
    query = compile_selector("jmespath", expression).query
    try:
        expected: Any = jmespath.search(expression, document)
    except jmespath.exceptions.JMESPathError as exc:
        with pytest.raises(type(exc)):
            query.search(document)
        return
    assert query.search(document) == expected


@pytest.mark.parametrize(
    ("expression", "kind"),
    [("id", KeyPath), ("a.b_2.c", KeyPath), ('"quoted"', JMESPath), ("a[0]", JMESPath), ("items[*].id", JMESPath)],
)
def test_only_plain_field_paths_take_the_dict_lookup_path(expression: str, kind: type) -> None:
    assert type(compile_selector("jmespath", expression).query) is kind
