"""Every spec in tests/specs/invalid/ fails with exactly the messages it declares.

Each file starts with comment lines::

    # expect: {file}:4:11: targets[0].name: 'runs' is not allowed: ...
    # xfail: why the current output is wrong          (optional)

``{file}`` stands for the path the spec was loaded from. The set of
``str(problem)`` lines must equal the set of ``# expect:`` lines exactly.

A file with ``# xfail:`` documents a known defect: its ``# expect:`` lines
say what a correct implementation should report (the wording is a proposal).
For those, only each problem's line and path are compared, so that a fix at
the right place turns the case into a strict XPASS failure, which is the cue
to delete the ``# xfail:`` line and make the expectation exact.

To see what the code says today: ``python -m tests.unit.test_invalid_specs``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawlrunner.errors import SpecError
from crawlrunner.spec import load_spec

INVALID = Path(__file__).resolve().parent.parent / "specs" / "invalid"

_EXPECT = "# expect: "
_XFAIL = "# xfail: "
# "{file}:12:3: some.path[0]: message" or "{file}:12:3: message" or "{file}: message"
_WHERE = re.compile(r"^\{file\}(?::(?P<line>\d+):(?P<column>\d+))?: (?:(?P<path>[^\s:]+): )?")


@dataclass(frozen=True)
class Case:
    path: Path
    expected: frozenset[str]
    xfail: str | None


def read_case(path: Path) -> Case:
    expected: list[str] = []
    reasons: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(_EXPECT):
            expected.append(line[len(_EXPECT) :])
        elif line.startswith(_XFAIL):
            reasons.append(line[len(_XFAIL) :])
        elif not line.startswith("#"):
            break
    return Case(path, frozenset(expected), " ".join(reasons) or None)


def actual_lines(path: Path) -> list[str] | None:
    """The problems load_spec reports for ``path``, with ``{file}`` put back; None if it loads."""
    try:
        load_spec(path, environ={})
    except SpecError as error:
        return [str(problem).replace(str(path), "{file}", 1) for problem in error.problems]
    return None


def _where(line: str) -> tuple[int, str]:
    match = _WHERE.match(line)
    assert match, f"not a '{{file}}:line:col: path: message' line: {line!r}"
    return int(match["line"] or 0), match["path"] or ""


CASES = [read_case(path) for path in sorted(INVALID.glob("*.yaml"))]


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.path.stem, marks=marks)


def test_the_table_is_not_empty() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert case.expected, f"{case.path.name} has no '# expect:' line"
        for line in case.expected:
            _where(line)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_invalid_spec(case: Case) -> None:
    actual = actual_lines(case.path)
    assert actual is not None, f"{case.path.name} loaded without any problem"
    if case.xfail:
        assert sorted(map(_where, actual)) == sorted(map(_where, case.expected))
    else:
        assert set(actual) == case.expected
    assert len(actual) == len(set(actual)), "the same problem is reported twice"


def test_problems_are_in_file_order() -> None:
    for case in CASES:
        if case.xfail:
            continue
        actual = actual_lines(case.path) or []
        lines = [_where(line)[0] for line in actual]
        assert lines == sorted(lines), case.path.name


if __name__ == "__main__":  # pragma: no cover - a maintainer's aid
    for case in CASES if len(sys.argv) < 2 else [read_case(Path(arg)) for arg in sys.argv[1:]]:
        print(f"== {case.path.name}" + (" (xfail)" if case.xfail else ""))
        for line in actual_lines(case.path) or ["(loads without problems)"]:
            mark = " " if line in case.expected else "+"
            print(f"{mark} {line}")
        for line in sorted(case.expected - set(actual_lines(case.path) or [])):
            print(f"- {line}")
