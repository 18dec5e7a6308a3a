"""libyaml reads specs where PyYAML has it: the same data and positions, PyYAML's own words for every problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crawlrunner.errors import SpecError
from crawlrunner.spec import loader
from crawlrunner.spec.loader import load_text

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted([*REPO.glob("examples/*.yaml"), *REPO.glob("specs/*.yaml"), *REPO.glob("tests/specs/**/*.yaml")])

pytestmark = pytest.mark.skipif(loader._FAST_LOADER is None, reason="PyYAML built without libyaml")

# Texts where the two parsers could part ways: line breaks, wide characters, block scalars, tags, anchors.
TRICKY = [
    "a: 1\r\nb: [x, y]\r\nc: {d: 2}\r\n",
    "a: 1\x85b: 2\u2028c: 3\n",
    "a: '😀😀'\nb: 😀 x\nc: [1, 2,\n  3]\n",
    "key: |\n  line1\n  line2\nother: >-\n  folded\n  text\n",
    "a: 2024-01-02\nb: 0o17\nc: 0x1F\nd: 1_000\ne: ~\nf: yes\ng: '3'\nh: \"4\"\n",
    "a: &x [1]\nb: *x\n",
    "\ufeffa: 1\n",
]
# Texts libyaml refuses, or that have a problem: reported as PyYAML reports them.
BROKEN = {
    "a:\n\t- 1\n": "s.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token",
    "a: [1, 2\nb: 3\n": "s.yaml:2:2: YAML syntax error: expected ',' or ']', but got ':'",
    "a: *y\n": "s.yaml:1:4: YAML syntax error: found undefined alias 'y'",
    "a: {b: 1, b: 2}\n": "s.yaml:1:11: a.b: duplicate key 'b' (first defined on line 1)",
}


def _read(text: str, parser: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> tuple[object, ...]:
    document = loader._load(text, "s.yaml", parser)
    return document.data, document.value_positions, document.key_positions, document.plain_scalars


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_spec_in_the_repository_reads_the_same_with_libyaml(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    try:
        expected = _read(text, yaml.SafeLoader)
    except SpecError:
        pytest.skip("a spec with a problem is always read by PyYAML's parser")
    assert _read(text, yaml.CSafeLoader) == expected


@pytest.mark.parametrize("text", TRICKY)
def test_libyaml_gives_the_same_data_positions_and_plain_scalars(text: str) -> None:
    # Plain scalars are what the "quote it" hints rest on: libyaml marks them with style "", PyYAML with None.
    assert _read(text, yaml.CSafeLoader) == _read(text, yaml.SafeLoader)
    assert load_text(text, "s.yaml").plain_scalars == _read(text, yaml.SafeLoader)[3]


@pytest.mark.parametrize(("text", "message"), BROKEN.items())
def test_problems_are_told_in_pyyaml_s_words(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(text, "s.yaml")
    assert str(info.value.problems[0]).startswith(message)


def test_a_lone_surrogate_is_a_spec_problem_not_a_crash() -> None:
    # Text from the API can hold one; libyaml fails on it with a UnicodeEncodeError, not a YAML error.
    text = "a: b\ud800c\n"
    with pytest.raises(UnicodeEncodeError):
        yaml.CSafeLoader(text).get_single_node()
    with pytest.raises(SpecError) as info:
        load_text(text, "s.yaml")
    assert info.value.problems[0].message.startswith("YAML error: unacceptable character #xd800")
