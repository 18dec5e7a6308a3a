"""Command-line conventions: --version, a spec on stdin, init --force, completion, help without repository paths."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from crawlrunner import __version__
from crawlrunner.cli import main

from .. import server_app
from ..conftest import query

REPOSITORY = Path(__file__).resolve().parents[2]

SPEC = """\
name: piped
http: {{base_url: "{base}"}}
targets:
  - name: items
    url: /json/item/{{id}}
    vars: {{id: {{from: 1, to: 8}}}}
    extract: {{fields: {{id: {{jmespath: id, type: int}}}}}}
"""


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags_print_the_version(flag: str, cli: CliRunner) -> None:
    result = cli.invoke(main, [flag])

    assert result.exit_code == 0
    assert result.stdout == f"crawlrunner, version {__version__}\n"


def test_validate_and_plan_read_a_spec_from_stdin(cli: CliRunner, server: str) -> None:
    spec = SPEC.format(base=server)

    validated = cli.invoke(main, ["validate", "-"], input=spec)
    planned = cli.invoke(main, ["plan", "-", "-n", "2"], input=spec)

    assert validated.exit_code == 0, validated.output
    assert validated.stdout == "<stdin>: ok (1 target, 8 start requests)\n"
    assert planned.exit_code == 0, planned.output
    lines = planned.stdout.splitlines()
    assert lines[0] == "items: 8 start requests"
    assert [line for line in lines if line.startswith("  GET")] == [f"  GET {server}/json/item/{n}" for n in (1, 2)]


def test_run_reads_a_spec_from_stdin(cli: CliRunner, server: str, db_path: Path) -> None:
    result = cli.invoke(main, ["run", "-", "-o", str(db_path), "-q"], input=SPEC.format(base=server))

    assert result.exit_code == 0, result.output
    assert query(db_path, "SELECT count(*) FROM items") == [(8,)]


def test_problems_of_a_spec_on_stdin_are_located_in_stdin(cli: CliRunner) -> None:
    result = cli.invoke(main, ["validate", "-"], input="name: piped\ntargets:\n  - name: items\n    url: 12\n")

    assert result.exit_code == 2
    assert result.stderr.startswith("<stdin>:4:10: targets[0].url: ")


def test_seed_files_of_a_spec_on_stdin_are_relative_to_the_current_directory(
    cli: CliRunner, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "urls.txt").write_text(f"{server}/json/item/3\n{server}/json/item/5\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spec = "name: seeded\ntargets:\n  - name: items\n    seeds: {file: urls.txt, format: text}\n"

    result = cli.invoke(main, ["plan", "-"], input=spec)

    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if line.startswith("  GET")] == [
        f"  GET {server}/json/item/{n}" for n in (3, 5)
    ]


def test_workers_refuse_a_spec_on_stdin(cli: CliRunner, server: str, pg_url: str) -> None:
    result = cli.invoke(main, ["run", "-", "-o", pg_url, "--workers", "2"], input=SPEC.format(base=server))

    assert result.exit_code == 2
    assert "--workers needs the spec in a file, not on stdin" in result.stderr


def test_run_dry_run_shows_as_many_requests_as_plan(
    cli: CliRunner, server: str, write_spec: Callable[..., Path]
) -> None:
    spec = str(write_spec(SPEC, base=server))

    dry = cli.invoke(main, ["run", spec, "--dry-run", "-n", "7"])
    planned = cli.invoke(main, ["plan", spec, "-n", "7"])

    assert dry.exit_code == planned.exit_code == 0, dry.output
    assert dry.stdout == planned.stdout
    assert f"  GET {server}/json/item/7" in dry.stdout.splitlines()


def test_first_without_dry_run_is_a_usage_error(cli: CliRunner, server: str, write_spec: Callable[..., Path]) -> None:
    result = cli.invoke(main, ["run", str(write_spec(SPEC, base=server)), "-n", "3"])

    assert result.exit_code == 2
    assert "-n/--first only goes with --dry-run" in result.stderr


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("API_TOKEN", raising=False)
    yield tmp_path


def test_init_refuses_to_overwrite_and_says_force_does(cli: CliRunner, in_tmp: Path) -> None:
    (in_tmp / "mine.yaml").write_text("# mine\n", encoding="utf-8")

    refused = cli.invoke(main, ["init", "mine.yaml"])

    assert refused.exit_code == 2
    assert "mine.yaml exists; not overwriting it (choose another name, or --force)" in refused.stderr
    assert (in_tmp / "mine.yaml").read_text() == "# mine\n"


def test_init_force_overwrites_the_spec_but_not_a_schema_file(cli: CliRunner, in_tmp: Path) -> None:
    (in_tmp / "mine.yaml").write_text("# mine\n", encoding="utf-8")
    (in_tmp / "crawlspec.schema.json").write_text("{}", encoding="utf-8")

    result = cli.invoke(main, ["init", "mine.yaml", "--force", "--kind", "html"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote mine.yaml (html); next: crawlrunner validate mine.yaml\n"
    assert (in_tmp / "mine.yaml").read_text().startswith("# yaml-language-server: $schema=./crawlspec.schema.json\n")
    assert (in_tmp / "crawlspec.schema.json").read_text() == "{}"
    assert cli.invoke(main, ["validate", "mine.yaml"]).exit_code == 0


def test_init_writes_the_schema_next_to_the_spec_and_names_it_relatively(cli: CliRunner, in_tmp: Path) -> None:
    (in_tmp / "crawls").mkdir()

    result = cli.invoke(main, ["init", "crawls/shop.yaml"])
    schema = cli.invoke(main, ["schema"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote crawls/shop.yaml and crawls/crawlspec.schema.json (json-api)")
    first_line = (in_tmp / "crawls" / "shop.yaml").read_text().splitlines()[0]
    # Relative to the spec, as the YAML language server resolves it: the same in every checkout.
    assert first_line == "# yaml-language-server: $schema=./crawlspec.schema.json"
    assert (in_tmp / "crawls" / "crawlspec.schema.json").read_text() == schema.stdout


@pytest.mark.subprocess
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_shell_completion_script_is_produced(shell: str) -> None:
    # The documented way, through the installed entry point, as a shell's start-up file runs it.
    done = subprocess.run(
        [str(Path(sys.executable).with_name("crawlrunner"))],
        env={"_CRAWLRUNNER_COMPLETE": f"{shell}_source", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "_CRAWLRUNNER_COMPLETE" in done.stdout and f"{shell}_complete" in done.stdout


def test_the_readme_documents_shell_completion() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")

    for shell in ("bash", "zsh", "fish"):
        assert f"_CRAWLRUNNER_COMPLETE={shell}_source crawlrunner" in readme


def _help_texts() -> Iterator[tuple[str, str]]:
    """Every command's --help, as a user of the installed package reads it."""
    with click.Context(main, info_name="crawlrunner") as ctx:
        yield "crawlrunner", main.get_help(ctx)
        for name, command in main.commands.items():
            with click.Context(command, info_name=name, parent=ctx) as sub:
                yield name, command.get_help(sub)


def test_no_help_text_names_a_repository_path_the_wheel_lacks() -> None:
    # Everything at the top of the checkout except the package itself is left out of the wheel.
    listed = subprocess.run(["git", "ls-files"], cwd=REPOSITORY, capture_output=True, text=True, timeout=30, check=True)
    tops = {line.split("/")[0] for line in listed.stdout.splitlines()} - {"crawlrunner", "pyproject.toml"}
    assert {"docs", "examples", "schemas"} <= tops
    # A folder only as a path into it (``docs/``): "specs" is also a word of the prose.
    names = "|".join(re.escape(top) + ("/" if (REPOSITORY / top).is_dir() else r"\b") for top in sorted(tops))
    outside = re.compile(rf"(?<![\w./-])(?:{names})")

    for name, text in _help_texts():
        assert not outside.findall(text), f"crawlrunner {name} --help names {outside.findall(text)}:\n{text}"


def test_reextract_reports_no_requests(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = write_spec(
        'name: again\nhttp: {{base_url: "{base}"}}\ntargets:\n'
        "  - name: products\n    url: /catalogue/again\n    store_bodies: true\n"
        "    extract: {{records: items, fields: {{id: id}}}}\n",
        base=server,
    )
    server_app.catalogues["again"] = {1: ("kettle", 10.0), 2: ("lamp", 20.5)}
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path), "-q"]).exit_code == 0

    result = cli.invoke(main, ["reextract", str(spec), "-o", str(db_path)])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["target", "stored", "bodies", "records"]
    assert lines[2].split() == ["products", "1", "2"] and lines[4].split() == ["total", "1", "2"]
    # Not a request, a byte fetched or a latency: it made none.
    assert "request" not in result.stdout and " ms" not in result.stdout and " B " not in result.stdout
