"""What a run's fingerprints are of: the validated data, without what changes nothing fetched or stored."""

from __future__ import annotations

import json

import pytest

from crawlrunner.spec import load_spec_text
from crawlrunner.spec.fingerprints import Fingerprints

SPEC = """\
name: t  # c
http: {base_url: "http://x.test", headers: {A: "${env.HOME}"}}
targets:
  - name: a
    url: /x/{id}
    vars: {id: {from: 1, to: 2}}
    expect: {min_records: 1}
    extract: {fields: {id: {jmespath: id}}}
"""
ENV = {"HOME": "/home/someone"}


def _prints(text: str, environ: dict[str, str] = ENV) -> Fingerprints:
    return load_spec_text(text, environ=environ).fingerprints


def test_the_earlier_rule_gives_what_the_release_before_it_stored() -> None:
    earlier = _prints(SPEC).earlier

    # Digests written by the release before this rule, for this very spec: runs it stored must still resume.
    assert earlier == Fingerprints(
        "e08059b599c834f631e899aa64de4da5954a3620a7323599a42e1dbf5ef0a906",
        {"a": "c940116f13e9c4fe53fb5620f8af7ba5257d21d73cbb4e5e3d2867075a0b67d8"},
        version=1,
    )
    assert earlier is not None
    stored = Fingerprints.from_json(json.dumps({"spec": earlier.spec, "targets": {"a": earlier.targets["a"]}}))
    assert _prints(SPEC).added_since(stored) == []
    assert _prints(SPEC.replace("min_records: 1", "min_records: 2")).added_since(stored) is None


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(SPEC.replace("  # c", ""), id="a comment"),
        pytest.param(SPEC.replace("min_records: 1", "min_records: 5"), id="expect"),
        pytest.param(SPEC.replace("    expect: {min_records: 1}\n", ""), id="expect removed"),
        pytest.param("output: other.db\n$schema: ./crawlspec.schema.json\n" + SPEC, id="output and $schema"),
    ],
)
def test_edits_that_change_nothing_fetched_or_stored_keep_the_fingerprints(edited: str) -> None:
    assert _prints(edited) == _prints(SPEC)


def test_expect_in_defaults_is_left_out_too() -> None:
    plain = SPEC.replace("name: t  # c\n", "name: t\ndefaults: {method: GET}\n")
    expecting = plain.replace("{method: GET}", "{method: GET, expect: {min_records: 3}}")
    assert _prints(expecting) == _prints(plain) != _prints(SPEC)


def test_an_environment_value_is_not_in_the_fingerprints_its_reference_is() -> None:
    assert _prints(SPEC, {"HOME": "/elsewhere"}) == _prints(SPEC)
    assert _prints(SPEC.replace("env.HOME", "env.USER"), {"USER": "/home/someone"}) != _prints(SPEC)


def test_a_stored_form_of_another_version_is_compared_by_its_own_rule_only() -> None:
    stored = Fingerprints.from_json(_prints(SPEC).to_json())
    assert stored.version == 2 and _prints(SPEC).added_since(stored) == []
    assert _prints(SPEC).added_since(Fingerprints(stored.spec, stored.targets, version=3)) is None
