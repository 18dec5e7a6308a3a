"""load_spec takes a file, YAML text or a mapping, with the same located problems for each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import crawlrunner
from crawlrunner.errors import SpecError, SpecProblem
from crawlrunner.spec import load_spec, load_spec_text

TEXT = """\
name: forms
http: {base_url: "https://example.com"}
targets:
  - name: items
    urls: [/a, /b]
    extract: {records: items, fields: {id: {jmespath: id, type: int}}}
"""
DATA: dict[str, Any] = {
    "name": "forms",
    "http": {"base_url": "https://example.com"},
    "targets": [
        {"name": "items", "urls": ("/a", "/b"), "extract": {"records": "items", "fields": {"id": {"jmespath": "id", "type": "int"}}}},
    ],
}  # fmt: skip


def problems(source: Any) -> list[SpecProblem]:
    with pytest.raises(SpecError) as info:
        load_spec(source)
    return info.value.problems


def test_a_path_a_file_name_yaml_text_and_a_mapping_give_the_same_spec(tmp_path: Path) -> None:
    path = tmp_path / "forms.yaml"
    path.write_text(TEXT, encoding="utf-8")

    specs = [load_spec(path), load_spec(str(path)), load_spec(TEXT), load_spec(DATA), crawlrunner.load_spec(DATA)]

    assert {s.name for s in specs} == {"forms"}
    assert all(s.fingerprints == specs[0].fingerprints for s in specs)  # the same requests and tables
    assert [s.source for s in specs] == [str(path), str(path), "<spec>", "<mapping>", "<mapping>"]
    assert load_spec(TEXT).digest == load_spec_text(TEXT).digest


def test_a_one_line_string_is_a_file_name_never_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("name: forms").write_text(TEXT, encoding="utf-8")  # a file whose name looks like YAML

    assert load_spec("name: forms").source == "name: forms"
    assert [str(p) for p in problems("{name: x, targets: []}")] == ["{name: x, targets: []}: no such file"]


def test_yaml_text_problems_have_lines_and_columns() -> None:
    text = TEXT.replace("type: int", "type: integer")

    assert [str(p) for p in problems(text)][0].startswith("<spec>:6:")


def test_mapping_problems_name_the_path_without_a_line() -> None:
    data = {**DATA, "targets": [{**DATA["targets"][0], "methd": "GET", "urls": "/a"}]}

    found = [str(p) for p in problems(data)]

    assert "<mapping>: targets[0].methd: unknown key 'methd' (did you mean 'method'?)" in found
    assert all(p.startswith("<mapping>: ") for p in found), found


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**DATA, 1: "x"}, "<mapping>: keys must be strings, got 1"),
        ({**DATA, "output": Path("x.db")}, "<mapping>: output: expected a mapping, list, string, number, boolean or None, got a PosixPath"),
        ({**DATA, "http": {"timeout": float("nan")}}, "<mapping>: http.timeout: expected a finite number, got nan"),
        ({}, "<mapping>: missing required key 'name'"),
    ],
)  # fmt: skip
def test_what_yaml_could_not_hold_is_a_located_problem(data: dict[Any, Any], message: str) -> None:
    if os.name != "posix" and "PosixPath" in message:
        pytest.skip("the path's class is named for the platform")
    assert message in [str(p) for p in problems(data)]


def test_a_mapping_that_contains_itself_is_a_problem_not_a_recursion_error() -> None:
    data: dict[str, Any] = dict(DATA)
    data["vars"] = data

    assert any("nested deeper than" in str(p) for p in problems(data))
