"""The commands about a spec, fetching at most one page: ``validate``, ``plan``, ``try``, ``init``, ``schema``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._resources import bundled_path
from ..console import help as texts
from ..errors import SpecError
from ..overrides import check_base_url
from .common import (
    EXIT_EXPECTATIONS,
    EXIT_FAILED,
    EXIT_USAGE,
    collection_deferred,
    fail,
    quiet,
    say_problems,
    user_errors,
    verbosity,
)

if TYPE_CHECKING:
    from ..spec.model import Spec


@click.command(epilog=texts.VALIDATE_EXIT_HELP, short_help="Check specs without fetching.")
@click.argument("spec_files", metavar="SPEC...", nargs=-1, required=True, type=click.Path(path_type=Path))
@verbosity
def validate(spec_files: tuple[Path, ...]) -> None:
    """Check one or more specs without fetching anything.

    Every problem is reported as FILE:LINE:COLUMN: PATH: MESSAGE. Schema
    problems are reported first; checks that need a well-formed spec
    (selectors, templates, parents) run once those are fixed.

    \b
    Example:
      crawlrunner validate *.yaml
    """
    with collection_deferred():
        problems = _validate(spec_files)
    if problems:
        fail(f"{problems} problem{'s' if problems != 1 else ''} found", EXIT_USAGE)


def _validate(spec_files: tuple[Path, ...]) -> int:
    """Report on each spec; how many problems they have."""
    from ..preview import count_start_requests
    from ..spec import load_spec

    problems = 0
    for path in spec_files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            say_problems(exc.problems)
            problems += len(exc.problems)
            continue
        count = len(spec.targets)
        if not quiet():
            click.echo(
                f"{spec.source}: ok ({count} target{'s' if count != 1 else ''}, {_planned(*count_start_requests(spec))})"
            )
    return problems


def _planned(start: int, dynamic: bool) -> str:
    """``validate``'s note on a spec's size: "12 start requests, more from pages"."""
    # Here, not in console.plan: that module imports the database readers, which validate does not need.
    return f"{start} start request{'s' if start != 1 else ''}{', more from pages' if dynamic else ''}"


def print_plan(spec: Spec, only: tuple[str, ...], first: int, **options: Any) -> None:
    from ..console.plan import plan_report

    for line in plan_report(spec, only, first, **options):
        click.echo(line)


@click.command(epilog=texts.PLAN_EXIT_HELP, short_help="Show what a spec would fetch, without fetching.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--first", "count", type=click.IntRange(0), default=5, show_default=True, help="Requests to show.")
@click.option("-t", "--target", "only", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url.")
@click.option("-o", "--output", metavar="DB", help="The database of earlier runs (default: the spec's output).")
@verbosity
def plan(spec_file: Path, count: int, only: tuple[str, ...], base_url: str | None, output: str | None) -> None:
    """Show the requests SPEC would make: the first N per target, and how many.

    Method, URL and headers of each, secrets masked; per host, the least time
    politeness lets its known requests take. No network traffic.

    \b
    Example:
      crawlrunner plan shop.yaml -n 3
    """
    from ..spec import load_spec

    with user_errors():
        check_base_url(base_url, name="--base-url")
        print_plan(load_spec(spec_file, base_url=base_url), only, count, database=output)


@click.command(
    "try", help=texts.TRY_HELP, epilog=texts.TRY_EXIT_HELP, short_help="Fetch one page, show what it yields."
)
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target")
@click.argument("url", required=False)
@click.option("--body", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read a saved page instead.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="The same as -f json.")
@click.option("-n", "--first", type=click.IntRange(0), default=10, show_default=True, help="Records, requests shown.")
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url.")
@click.option("--insecure", is_flag=True, help="Allow a target with tls.verify: false.")
@verbosity
def try_(spec_file: Path, target: str, url: str | None, body: Path | None, fmt: str, as_json: bool, first: int,
         base_url: str | None, insecure: bool) -> None:  # fmt: skip
    from ..console.trial import trial_json, trial_lines
    from ..spec import load_spec
    from ..trial import try_page

    with user_errors():
        check_base_url(base_url, name="--base-url")
        spec, saved = load_spec(spec_file, base_url=base_url), body.read_bytes() if body else None
        trial = try_page(spec, target, url, body=saved, first=first, insecure=insecure)
    click.echo(trial_json(trial) if as_json or fmt == "json" else "\n".join(trial_lines(trial, first)))
    if trial.problem is not None:
        fail(trial.problem, EXIT_FAILED if not trial.fetch.ok else EXIT_EXPECTATIONS)


@click.command(epilog=texts.PLAN_EXIT_HELP.replace("the spec is valid; nothing was fetched", "the starter spec was written"),
              short_help="Write a commented starter spec.")  # fmt: skip
@click.argument("path", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--kind", type=click.Choice(["json-api", "html", "gateway"]), default="json-api", show_default=True,
              help="json-api: a paginated JSON API; html: a catalogue and a docs crawl; gateway: a rendering API.")  # fmt: skip
@click.option("--name", help="The crawl's name (default: from FILE).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@verbosity
def init(path: Path | None, kind: str, name: str | None, force: bool) -> None:
    """Write a commented starter spec to FILE (default: crawl.yaml); it validates as written.

    Its first line points editors at ./crawlspec.schema.json, written next to
    FILE unless that exists: commit both, and the modeline works in every checkout.

    \b
    Example:
      crawlrunner init shop.yaml --kind html
      crawlrunner validate shop.yaml && crawlrunner plan shop.yaml
    """
    from ..starters import write_starter

    target = path or Path("crawl.yaml")
    with user_errors():
        written = write_starter(target, kind, name, force=force)
    click.echo(f"wrote {' and '.join(map(str, written))} ({kind}); next: crawlrunner validate {target}")


@click.command(epilog="\b\nExit status:\n  0    printed", short_help="Print the spec's JSON Schema.")
@verbosity
def schema() -> None:
    """Print the JSON Schema (Draft 2020-12) that specs are checked against.

    Editors with the YAML language server check and complete a spec whose
    first line is:  # yaml-language-server: $schema=<path or URL of the schema>

    \b
    Example:
      crawlrunner schema > crawlspec.schema.json
    """
    click.echo(bundled_path("schemas", "crawlspec.schema.json").read_text(encoding="utf-8"), nl=False)
