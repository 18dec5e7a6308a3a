"""YAML text → located data: positions, duplicates, refused YAML features, limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from crawlrunner.errors import SpecError, SpecProblem
from crawlrunner.spec import format_path, load_spec, load_spec_text
from crawlrunner.spec.loader import MAX_DEPTH, MAX_NODES, Document, load_file, load_text

SPEC = """\
name: positions
http:
  base_url: https://example.com
targets:
  - name: items
    urls:
      - /a
      - /b
    extract: {records: items, fields: {id: id}}
"""


def problems_of(text: str, file: str = "s.yaml") -> list[SpecProblem]:
    with pytest.raises(SpecError) as info:
        load_text(text, file)
    return info.value.problems


def only_problem(text: str, file: str = "s.yaml") -> SpecProblem:
    problems = problems_of(text, file)
    assert len(problems) == 1, problems
    return problems[0]


# --- positions ----------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> Document:
    return load_text(SPEC, "s.yaml")


def test_data_is_plain_python(document: Document) -> None:
    assert document.data == {
        "name": "positions",
        "http": {"base_url": "https://example.com"},
        "targets": [{"name": "items", "urls": ["/a", "/b"], "extract": {"records": "items", "fields": {"id": "id"}}}],
    }
    assert document.file == "s.yaml"
    assert document.text == SPEC


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("name",), False, (1, 7)),
        (("name",), True, (1, 1)),
        (("http", "base_url"), False, (3, 13)),
        (("http", "base_url"), True, (3, 3)),
        (("targets",), False, (5, 3)),  # a block sequence starts at its first dash
        (("targets",), True, (4, 1)),
        (("targets", 0), False, (5, 5)),
        (("targets", 0, "name"), False, (5, 11)),
        (("targets", 0, "urls", 1), False, (8, 9)),
        (("targets", 0, "extract"), False, (9, 14)),
        (("targets", 0, "extract", "records"), False, (9, 24)),  # flow mappings are located too
        (("targets", 0, "extract", "fields", "id"), True, (9, 40)),
        (("targets", 0, "extract", "fields", "id"), False, (9, 44)),
    ],
)
def test_locate(document: Document, path: tuple[str | int, ...], key: bool, expected: tuple[int, int]) -> None:
    assert document.locate(path, key=key) == expected


def test_locate_key_falls_back_to_the_value_where_there_is_no_key(document: Document) -> None:
    # A list item has no key: key=True gives the item's own position.
    assert document.locate(("targets", 0, "urls", 0), key=True) == (7, 9)
    # The root has neither: the start of the file.
    assert document.locate((), key=True) == (1, 1)


def test_locate_unknown_path_uses_the_nearest_located_ancestor(document: Document) -> None:
    assert document.locate(("targets", 0, "timeout", "total")) == (5, 5)
    assert document.locate(("targets", 7)) == (5, 3)
    assert document.locate(("nope", "deeper")) == (1, 1)


def test_problem_carries_file_location_and_user_notation_path(document: Document) -> None:
    problem = document.problem(("targets", 0, "urls", 1), "bad url")
    assert problem == SpecProblem("s.yaml", 8, 9, "targets[0].urls[1]", "bad url")
    assert str(problem) == "s.yaml:8:9: targets[0].urls[1]: bad url"
    assert str(document.problem(("http", "base_url"), "x", key=True)) == "s.yaml:3:3: http.base_url: x"


def test_problem_at_the_root_has_no_path(document: Document) -> None:
    assert str(document.problem((), "a spec is a mapping")) == "s.yaml:1:1: a spec is a mapping"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("name",), "name"),
        (("targets", 2, "timeout"), "targets[2].timeout"),
        (("targets", 0, "urls", 1), "targets[0].urls[1]"),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_problem_without_a_line_prints_only_the_file() -> None:
    assert str(SpecProblem("s.yaml", 0, 0, "", "no such file")) == "s.yaml: no such file"
    assert str(SpecProblem("s.yaml", 0, 0, "name", "m")) == "s.yaml: name: m"


def test_spec_error_message_lists_every_problem() -> None:
    error = SpecError([SpecProblem("a.yaml", 1, 2, "x", "one"), SpecProblem("a.yaml", 3, 4, "", "two")])
    assert str(error) == "a.yaml:1:2: x: one\na.yaml:3:4: two"
    assert isinstance(error, ValueError)


def test_bom_does_not_shift_columns(tmp_path: Path) -> None:
    spec = tmp_path / "bom.yaml"
    spec.write_bytes(b"\xef\xbb\xbfname: x\n")
    document = load_file(spec)
    assert document.data == {"name": "x"}
    assert document.locate(("name",)) == (1, 7)


def test_crlf_line_endings_locate_like_lf() -> None:
    document = load_text("name: x\r\ntargets:\r\n  - name: a\r\n", "s.yaml")
    assert document.locate(("targets", 0, "name")) == (3, 11)


# --- duplicate keys -----------------------------------------------------------


def test_duplicate_key_names_both_lines() -> None:
    problem = only_problem("name: a\ntargets: []\nname: b\n")
    assert str(problem) == "s.yaml:3:1: name: duplicate key 'name' (first defined on line 1)"


def test_duplicate_key_nested_and_in_flow_style() -> None:
    problems = problems_of("name: a\ntargets:\n  - name: t\n    url: /x\n    json: {k: 1, k: 2}\n    url: /y\n")
    assert [str(p) for p in problems] == [
        "s.yaml:5:18: targets[0].json.k: duplicate key 'k' (first defined on line 5)",
        "s.yaml:6:5: targets[0].url: duplicate key 'url' (first defined on line 4)",
    ]


def test_same_key_in_different_mappings_is_not_a_duplicate() -> None:
    document = load_text("a: {name: 1}\nb: {name: 2}\n")
    assert document.data == {"a": {"name": 1}, "b": {"name": 2}}


def test_duplicate_key_keeps_looking_for_more_problems() -> None:
    problems = problems_of("a: 1\na: 2\nb: 1\nb: 2\n")
    assert [(p.line, p.path) for p in problems] == [(2, "a"), (4, "b")]


# --- YAML syntax errors -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\ntargets:\n  - name: a\n\turl: /x\n",
            "s.yaml:4:1: YAML syntax error: found character '\\t' that cannot start any token",
        ),
        ("name: x\n  targets: 1\n", "s.yaml:2:10: YAML syntax error: mapping values are not allowed here"),
    ],
)
def test_syntax_errors_are_located(text: str, expected: str) -> None:
    assert str(only_problem(text)) == expected


def test_unterminated_quote_is_a_located_syntax_error() -> None:
    problem = only_problem("name: 'x\ntargets: []\n")
    assert (problem.line, problem.column) == (1, 7)
    assert problem.message.startswith("YAML syntax error: ")


def test_unterminated_quote_is_located_where_the_string_starts_not_at_the_end() -> None:
    # The scanner gives up at the end of the file; the quote opened at 2:10.
    problem = only_problem('targets:\n  - url: "http://h/ok/1\n    name: a')
    assert str(problem) == (
        "s.yaml:2:10: YAML syntax error: found unexpected end of stream"
        " (while scanning a quoted scalar that starts here)"
    )


def test_misindented_key_is_located_at_the_key() -> None:
    # PyYAML's own wording ("expected <block end>, but found ...") is not
    # friendly, but the position points at the offending key.
    problem = only_problem("name: x\ntargets:\n  - name: a\n   url: /x\n")
    assert (problem.line, problem.column, problem.path) == (4, 4, "")
    assert problem.message.startswith("YAML syntax error: ")


def test_more_than_one_document_is_refused() -> None:
    problem = only_problem("name: a\n---\nname: b\n")
    assert problem.message.startswith("YAML syntax error: ")
    assert (problem.line, problem.column) == (2, 1)


# --- keys that are not strings ------------------------------------------------


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "true", "False", "ON"])
def test_boolean_key_gets_a_hint_to_quote_it(word: str) -> None:
    # The message repeats what was written, not the boolean YAML made of it.
    problem = only_problem(f"name: x\nparams:\n  {word}: 1\n")
    assert str(problem) == (
        f"s.yaml:3:3: params: keys must be strings, got {word} "
        f'(YAML reads an unquoted {word} as a boolean: quote it, e.g. "{word}")'
    )


def test_unquoted_on_key_exact_message() -> None:
    problem = only_problem("name: x\nparams:\n  on: today\n")
    assert str(problem) == (
        's.yaml:3:3: params: keys must be strings, got on (YAML reads an unquoted on as a boolean: quote it, e.g. "on")'
    )


def test_number_key_is_refused_without_the_boolean_hint() -> None:
    problem = only_problem("name: x\nfields:\n  3: id\n")
    assert str(problem) == "s.yaml:3:3: fields: keys must be strings, got 3"


def test_quoted_on_key_is_fine() -> None:
    assert load_text('params:\n  "on": today\n').data == {"params": {"on": "today"}}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("[a, b]: 1", "s.yaml:3:3: params: keys must be plain names, got a list"),
        ("{a: 1}: 1", "s.yaml:3:3: params: keys must be plain names, got a mapping"),
        ("? [a]\n  : 1", "s.yaml:3:5: params: keys must be plain names, got a list"),
    ],
    ids=["flow-list", "flow-mapping", "complex-key"],
)
def test_collection_key_is_described_as_what_it_is(key: str, expected: str) -> None:
    assert str(only_problem(f"name: x\nparams:\n  {key}\n")) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("null: 1", "s.yaml:3:3: params: keys must be strings, got null"),
        ("2024-01-01: 1", "s.yaml:3:3: params: keys must be strings, got 2024-01-01"),
        ("1.5: 1", "s.yaml:3:3: params: keys must be strings, got 1.5"),
        ("? \n  : 1", "s.yaml:3:4: params: keys must be strings, got an empty key"),
    ],
    ids=["null", "date", "float", "empty"],
)
def test_other_scalar_keys_say_what_was_written(key: str, expected: str) -> None:
    assert str(only_problem(f"name: x\nparams:\n  {key}\n")) == expected


# --- tags, merge keys ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object:os.system x",
        "!!python/name:os.system",
        "!!python/object/apply:os.system x",
        "!custom x",
    ],
)
def test_unsafe_or_unknown_tags_on_scalars_are_refused_with_a_location(value: str) -> None:
    problem = only_problem(f"name: x\njson: {value}\n")
    assert (problem.line, problem.column, problem.path) == (2, 7, "json")
    assert problem.message.startswith("cannot load this value: could not determine a constructor for the tag")


def test_python_object_tag_exact_message() -> None:
    problem = only_problem("name: !!python/object:os.system x\n")
    assert str(problem) == (
        "s.yaml:1:7: name: cannot load this value: "
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'"
    )


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object:os.system {cmd: ls}", "tag:yaml.org,2002:python/object:os.system"),
        ("!!python/object/apply:os.system [ls]", "tag:yaml.org,2002:python/object/apply:os.system"),
        ("!custom {a: 1}", "!custom"),
        ("!!set {a, b}", "tag:yaml.org,2002:set"),
        ("!!omap [a: 1]", "tag:yaml.org,2002:omap"),
    ],
)
def test_tags_on_collections_are_refused_with_a_location(value: str, tag: str) -> None:
    problem = only_problem(f"name: x\njson: {value}\n")
    assert str(problem) == f"s.yaml:2:7: json: YAML tags are not allowed here ({tag})"


def test_nested_tag_on_a_collection_is_located_where_it_is() -> None:
    problem = only_problem("name: x\njson:\n  a: [1, !!python/object:x {k: v}]\n")
    assert (problem.line, problem.column, problem.path) == (3, 10, "json.a[1]")


def test_standard_tags_are_allowed() -> None:
    document = load_text("a: !!str 123\nb: !!int '7'\nc: !!map {k: v}\nd: !!seq [1]\n")
    assert document.data == {"a": "123", "b": 7, "c": {"k": "v"}, "d": [1]}


@pytest.mark.parametrize(
    ("written", "shown"), [(".nan", "nan"), (".inf", "inf"), ("-.Inf", "-inf"), ("!!float .NaN", "nan")]
)
def test_non_finite_numbers_are_refused_with_a_location(written: str, shown: str) -> None:
    problem = only_problem(f"name: x\nhttp:\n  timeout: {{total: {written}}}\n")
    assert str(problem) == f"s.yaml:3:20: http.timeout.total: expected a finite number, got {shown}"


def test_finite_floats_load() -> None:
    assert load_text("a: 1.5e+3\nb: -0.25\n").data == {"a": 1500.0, "b": -0.25}


def test_merge_key_is_refused_with_a_location() -> None:
    text = "base: &b {url: /x}\ntargets:\n  - <<: *b\n    name: a\n"
    assert [str(p) for p in problems_of(text)] == [
        "s.yaml:3:5: targets[0]: merge keys (<<) are not supported; write the keys out"
    ]


def test_plain_anchors_and_aliases_are_allowed() -> None:
    document = load_text("a: &x [1, 2]\nb: *x\n")
    assert document.data == {"a": [1, 2], "b": [1, 2]}
    assert document.locate(("b", 1)) == (1, 11)  # an alias is located at its anchor


# --- pathological documents ---------------------------------------------------


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_stopped_by_the_node_cap_quickly() -> None:
    text = _alias_bomb()  # 9**9 ≈ 387 million nodes once expanded, 600 bytes written
    started = time.perf_counter()
    problem = only_problem(text)
    elapsed = time.perf_counter() - started
    assert problem.message == f"the document has more than {MAX_NODES} nodes (an alias bomb?)"
    assert problem.line >= 1 and problem.column >= 1
    assert problem.path == ""
    assert elapsed < 5


def test_self_referencing_alias_is_stopped_by_the_depth_cap() -> None:
    problem = only_problem("a: &x [*x]\n")
    assert str(problem) == f"s.yaml:1:4: the document is nested deeper than {MAX_DEPTH} levels"


def test_nesting_just_under_the_depth_cap_loads() -> None:
    depth = MAX_DEPTH - 1  # the value of "a" is one level, plus depth nested lists
    text = "a: " + "[" * depth + "]" * depth + "\n"
    load_text(text)


def test_nesting_over_the_depth_cap_is_refused_at_the_first_level_too_deep() -> None:
    depth = MAX_DEPTH + 5
    problem = only_problem("a: " + "[" * depth + "]" * depth + "\n")
    # Two checks share the cap (the event scan and the walker) and word it
    # slightly differently; both end the same way.
    assert problem.message.endswith(f"nested deeper than {MAX_DEPTH} levels")
    assert (problem.line, problem.column) == (1, 3 + MAX_DEPTH)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
        "a: " + "[" * 3000 + "]" * 3000 + "\n",
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
    ],
    ids=["flow-mappings", "flow-lists", "block-lists"],
)
def test_absurd_nesting_is_a_spec_error_not_a_crash(text: str) -> None:
    started = time.perf_counter()
    problem = only_problem(text)
    assert problem.message.endswith(f"nested deeper than {MAX_DEPTH} levels")
    assert time.perf_counter() - started < 5


def test_oversized_text_is_refused_before_parsing() -> None:
    problem = only_problem("#" * 2_000_001)
    assert str(problem) == "s.yaml:1:1: the spec is larger than 2000000 bytes"


# --- files --------------------------------------------------------------------


def _file_problem(path: Path | str) -> SpecProblem:
    with pytest.raises(SpecError) as info:
        load_file(path)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert str(_file_problem(path)) == f"{path}: no such file"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    assert str(_file_problem(tmp_path)) == f"{tmp_path}: is a directory, not a spec file"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("name: café\n".encode("latin-1"), "1:10: not UTF-8 text (bad byte 0xe9 at offset 9)"),
        # The column counts characters (é is one), the offset bytes.
        ("name: é\ntargets: [naïve]\n".encode() + b"# caf\xe9\n", "3:6: not UTF-8 text (bad byte 0xe9 at offset 32)"),
        # A byte-order mark is in the file, so in the offset, but not a character of the line.
        (b"\xef\xbb\xbfname: caf\xe9\n", "1:10: not UTF-8 text (bad byte 0xe9 at offset 12)"),
    ],
)
def test_not_utf8_points_at_the_first_bad_byte(tmp_path: Path, content: bytes, where: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(content)
    assert str(_file_problem(path)) == f"{path}:{where}"


def test_problems_outside_the_file_have_no_position(tmp_path: Path) -> None:
    # Nothing to point into: the file is missing, a folder, or unreadable.
    unreadable = tmp_path / "secret.yaml"
    unreadable.write_text("name: x\n")
    unreadable.chmod(0)
    problems = [_file_problem(tmp_path / "nope.yaml"), _file_problem(tmp_path)]
    if not os.access(unreadable, os.R_OK):  # root reads anything
        problems.append(_file_problem(unreadable))
    assert all((p.line, p.column, p.path) == (0, 0, "") for p in problems)
    assert [str(p).removeprefix(p.file) for p in problems][:2] == [
        ": no such file",
        ": is a directory, not a spec file",
    ]
    assert all(str(p).startswith(f"{p.file}: ") for p in problems)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"# just a comment\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(content)
    assert str(_file_problem(path)) == f"{path}:1:1: the spec is empty"


@pytest.mark.parametrize("text", ["---\n", "---\n...\n", "--- \n# nothing else\n", "--- ~\n", "null\n"])
def test_a_document_with_no_content_is_an_empty_spec(text: str) -> None:
    # The loader gives None; load_spec_text says what that means for a spec.
    assert load_text(text, "s.yaml").data is None
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml")
    assert [(p.path, p.message) for p in info.value.problems] == [("", "the spec is empty")]


def test_a_file_that_is_only_a_document_marker_is_an_empty_spec(tmp_path: Path) -> None:
    path = tmp_path / "marker.yaml"
    path.write_text("---\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [(p.file, p.path, p.message) for p in info.value.problems] == [(str(path), "", "the spec is empty")]


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 2_000_001)
    assert str(_file_problem(path)) == f"{path}:1:1: the spec is larger than 2000000 bytes"


def test_file_problems_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    assert str(_file_problem(str(path))) == f"{path}:2:1: a: duplicate key 'a' (first defined on line 1)"
