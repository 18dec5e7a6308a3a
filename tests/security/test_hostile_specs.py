"""Hostile spec files are refused before validation walks them: exit 2, a message, no traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.cli import main

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "more than 200000 nodes (an alias bomb?)"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ("name: !!python/object/apply:os.system [echo pwned]\ntargets: []\n", "YAML tags are not allowed here"),
        ("name: !!python/name:os.system\ntargets: []\n", "cannot load this value"),
        ("name: x\ntargets: !!python/object:object {}\n", "YAML tags are not allowed here"),
        ("name: x\n" + "# padding\n" * 300_000, "larger than 2000000 bytes"),
        ("name: x\nhttp: {user_agent: no}\ntargets:\n  - {name: t, url: 'http://h/'}\n", 'write "no" to keep it text'),
        (
            "name: x\ntargets:\n  - {name: t, url: 'http://h/', headers: {X-A: \"a\\r\\nX-Injected: 1\"}}\n",
            "must not contain line breaks",
        ),
        (
            'name: x\noutput: "a\\0b.db"\ntargets:\n  - {name: t, url: "http://h/"}\n',
            "must not contain a NUL character",
        ),
    ],
    ids=[
        "alias-bomb",
        "deep-nesting",
        "python-apply-tag",
        "python-name-tag",
        "tag-on-collection",
        "huge-file",
        "yaml-1.1-no",
        "crlf-header",
        "nul-in-output",
    ],
)
def test_hostile_specs_are_refused_quickly(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", str(path)])

    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
