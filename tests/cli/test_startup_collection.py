"""The garbage collector is off while a command that is the whole process starts up, and on again after."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from click.testing import CliRunner

import crawlrunner.spec
from crawlrunner.cli import common, main
from crawlrunner.spec.model import Spec

SPEC = "name: gc\ntargets:\n  - name: a\n    url: https://example.com/{n}\n    vars: {n: {from: 1, to: 3}}\n"


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the collector was on while each spec was loaded."""
    seen: list[bool] = []
    load = crawlrunner.spec.load_spec

    def watched(*args: object, **kwargs: object) -> Spec:
        seen.append(gc.isenabled())
        return load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(crawlrunner.spec, "load_spec", watched)
    return seen


@pytest.mark.parametrize("text", [SPEC, "name: gc\ntargets: 3\n"])
def test_validate_collects_nothing_while_it_starts_and_everything_after(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_seen: list[bool], text: str
) -> None:
    spec = tmp_path / "gc.yaml"
    spec.write_text(text)
    monkeypatch.setattr(common, "owns_process", True)
    cli.invoke(main, ["validate", str(spec)])
    assert collector_seen == [False]
    assert gc.isenabled()


def test_a_process_that_is_not_the_commands_own_keeps_its_collector(
    cli: CliRunner, tmp_path: Path, collector_seen: list[bool]
) -> None:
    spec = tmp_path / "gc.yaml"
    spec.write_text(SPEC)
    assert cli.invoke(main, ["validate", str(spec)]).exit_code == 0
    assert collector_seen == [True]


def test_a_run_stopped_before_it_starts_turns_the_collector_back_on(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_seen: list[bool]
) -> None:
    spec = tmp_path / "gc.yaml"
    spec.write_text(SPEC)
    monkeypatch.setattr(common, "owns_process", True)
    result = cli.invoke(main, ["run", str(spec), "--dry-run", "-o", str(tmp_path / "gc.db")])
    assert result.exit_code == 0, result.output
    assert collector_seen == [False]
    assert gc.isenabled()
