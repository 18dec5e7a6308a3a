"""The ``crawlrunner`` command: parse options, call the library, render results.

This is the one place errors become messages and exit codes:

    0    every request succeeded (or failed within a declared max_failed_ratio)
    1    the run finished but some requests failed, or the run itself failed
    2    bad spec or bad usage (nothing was fetched)
    3    the run finished but extraction looks broken or expectations were not met (wins over 1)
    130  interrupted (Ctrl-C); everything fetched so far is committed
    143  stopped by SIGTERM; likewise
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from ._resources import bundled_path
from .console import help as texts
from .console.logs import configure_logging, json_message, log_format
from .console.signals import SIGNAL_NAMES, run_with_signals
from .console.summary import format_problems, format_summary
from .errors import CrawlRunnerError, OutputPathError, SpecError, UsageError
from .overrides import check_base_url, check_output
from .settings import MAX_CONNECTIONS, PROJECT_URL

if TYPE_CHECKING:
    from .api import RunResult
    from .read import Stream
    from .spec.model import Spec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EXPECTATIONS = 3
EXIT_INTERRUPTED = 130

_owns_process = False  # set by entry_point: the command runs as its own process


def _say(message: str, level: str = "error") -> None:
    """A message of the command itself on stderr: text, or a JSON line with --log-format json."""
    if log_format() == "json":
        click.echo(json_message(message, level, "crawlrunner.cli"), err=True)
    else:
        click.echo(f"crawlrunner: {message}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    _say(message)
    sys.exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn crawlrunner's errors into messages and exit codes, never tracebacks."""
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        count = len(exc.problems)
        _fail(f"{count} problem{'s' if count != 1 else ''} in the spec; nothing was fetched", EXIT_USAGE)
    except (OutputPathError, UsageError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except CrawlRunnerError as exc:
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted; everything fetched so far was committed", EXIT_INTERRUPTED)


def _run_spec(spec: Spec, output: str | Path | None, only: tuple[str, ...], **options: Any) -> RunResult:
    warn = partial(_say, level="warning")
    result, signals = run_with_signals(spec, output, only or None, warn=warn, settle=_owns_process, **options)
    if result is None:
        _fail("stopped at once; everything fetched so far was committed", signals.exit_code)
    if signals.received is not None:
        by = SIGNAL_NAMES[signal.Signals(signals.received)]
        if not _quiet() and not options.get("join"):  # a helper of --workers: the first worker reports
            click.echo(format_summary(result, by, signals.exit_code))
        where = f"{result.database} (run {result.run_id})"
        _fail(f"interrupted by {by}; everything fetched so far is in {where}", signals.exit_code)
    return result


def _say_already_completed(result: RunResult) -> None:
    """--resume of a run that completed: nothing to do, which is not a failure (resuming is idempotent)."""
    if _quiet():
        return
    failed = sum((result.failed_by_target or {}).values())
    note = f" ({failed} failed: --retry-failed fetches them again)" if failed else ""
    _say(f"run {result.run_id} already completed; nothing to resume{note}", "info")


def _exit_for(result: RunResult) -> NoReturn:
    # Interrupted with no signal here: `crawlrunner stop` ended a shared run.
    interrupted = result.status == "interrupted"
    failed = EXIT_EXPECTATIONS if result.unmet or result.health else EXIT_FAILED
    sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_OK if result.ok else failed)


def _verbosity(command: Callable[..., None]) -> Callable[..., None]:
    """-v/-q, accepted before or after the command name."""

    def set_verbose(ctx: click.Context, _: click.Parameter, value: int) -> None:
        if value:
            ctx.ensure_object(dict)["verbose"] = value
            configure_logging(verbose=value)

    def set_quiet(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(dict)["quiet"] = True
            configure_logging(quiet=True)

    def set_format(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
        if value:
            ctx.ensure_object(dict)["log_format"] = value
            configure_logging(fmt=value)

    command = click.option(
        "--log-format", type=click.Choice(["text", "json"]), expose_value=False, callback=set_format,
        help="Log lines as text (default) or one JSON object per line.",
    )(command)  # fmt: skip

    command = click.option(
        "-v", "--verbose", count=True, expose_value=False, callback=set_verbose,
        help="More output on stderr: -v one line per request, -vv debug.",
    )(command)  # fmt: skip
    return click.option(
        "-q", "--quiet", is_flag=True, expose_value=False, callback=set_quiet,
        help="Only errors: no summary, no warnings.",
    )(command)  # fmt: skip


def _quiet() -> bool:
    ctx = click.get_current_context()
    return any((c.obj or {}).get("quiet") for c in (ctx, ctx.parent) if c is not None)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=texts.EXIT_CODES_HELP,
)
@click.version_option(__version__, "-V", "--version", prog_name="crawlrunner")
@_verbosity
def main() -> None:
    """Run declarative YAML crawl specs and store every record in SQLite.

    \b
    Try it offline:   crawlrunner demo
    Start a spec:     crawlrunner init shop.yaml && crawlrunner validate shop.yaml
    Run a spec:       crawlrunner run shop.yaml -o shop.db

    SPEC may be - to read the spec from stdin. The spec language: the commented
    starters of `crawlrunner init`, its JSON Schema from `crawlrunner schema`,
    and the documentation at {url}.
    """
    if not click.get_current_context().obj:  # no -v, -q or --log-format before the command
        configure_logging(verbose=0, quiet=False, fmt="text")


main.help = (main.help or "").format(url=PROJECT_URL)  # the docstring, with the one place the URL is kept


@main.command(help=texts.RUN_HELP, epilog=texts.EXIT_CODES_HELP, short_help="Run a spec: fetch, extract, store.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", metavar="DB", help="SQLite file to write (default: the spec's output, or <name>.db).")
@click.option(
    "-t", "--target", "only", multiple=True, metavar="NAME",
    help="Run only this target (repeatable); its parent targets run too, since they give it its requests.",
)  # fmt: skip
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url (e.g. a staging host).")
@click.option(
    "--resume", is_flag=True,
    help="Continue the spec's last run in DB where it stopped, with any targets added to the spec since "
    "(a completed run: nothing to do).",
)  # fmt: skip
@click.option("--retry-failed", is_flag=True, help="A new run fetching only the requests the last run failed.")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, MAX_CONNECTIONS),
    metavar="N",
    help="Requests at once (overrides http.limits.connections).",
)
@click.option("--max-requests", type=click.IntRange(1), metavar="N", help="Stop after N requests: for trying a spec.")
@click.option("--max-records", type=click.IntRange(1), metavar="N", help="Stop once N records are stored.")
@click.option("--dry-run", is_flag=True, help="Show what would be fetched (like `crawlrunner plan`) and stop.")
@click.option("-n", "--first", type=click.IntRange(0), metavar="N", help="With --dry-run: requests shown (default: 5).")
@click.option("--insecure", is_flag=True, help="Allow targets with tls.verify: false (no certificate checks).")
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Live progress on a terminal, else a line every 10 s.",
)
@click.option(
    "-w", "--workers", type=click.IntRange(1, 256), default=1, metavar="N",
    help="Worker processes on this machine, sharing the run (needs a postgresql:// output).",
)  # fmt: skip
@click.option("--join", "join", hidden=True)  # a worker started by --workers: "-", its run's id on stdin
@_verbosity
def run(
    spec_file: Path,
    output: str | None,
    only: tuple[str, ...],
    base_url: str | None,
    resume: bool,
    retry_failed: bool,
    concurrency: int | None,
    max_requests: int | None,
    max_records: int | None,
    dry_run: bool,
    first: int | None,
    insecure: bool,
    progress: bool,
    workers: int,
    join: str | None,
) -> None:
    from .backends import is_database_url
    from .console.workers import LocalWorkers, check_shared, helper_arguments, run_to_join
    from .spec import load_spec

    with _user_errors():
        check_base_url(base_url, name="--base-url")
        check_output(output, name="--output")
        if resume and retry_failed:
            _fail("give --resume or --retry-failed, not both", EXIT_USAGE)
        if first is not None and not dry_run:
            _fail("-n/--first only goes with --dry-run (it says how many planned requests to show)", EXIT_USAGE)
        spec = load_spec(spec_file, base_url=base_url)
        if dry_run:
            _print_plan(spec, only, 5 if first is None else first, database=output, max_requests=max_requests)
            return
        if concurrency is not None:
            from .api import with_concurrency

            spec = with_concurrency(spec, concurrency)
        reporter = None
        if progress and not _quiet() and join is None:
            from .progress import reporter_for

            reporter = reporter_for(sys.stderr)
        check_shared(workers, join, is_database_url(output or spec.default_output))
        if workers > 1 and str(spec_file) == "-":  # helpers read their run's id from stdin: it has no spec left
            _fail("--workers needs the spec in a file, not on stdin", EXIT_USAGE)
        helpers = LocalWorkers(workers, helper_arguments(click.get_current_context(), output or spec.default_output))
        if (run_id := run_to_join(join)) == 0:  # the first worker gave up before the run opened
            sys.exit(EXIT_OK)
        try:
            helpers.spawn()  # now: they load while this one opens the run, and wait for its id
            result = _run_spec(
                spec, output, only, resume=resume, retry_failed=retry_failed, reporter=reporter,
                max_requests=max_requests, max_records=max_records, insecure=insecure, join=run_id,
                opened=helpers.start, forward=helpers.forward,
            )  # fmt: skip
        finally:
            if (failed := helpers.wait()) not in (EXIT_OK, EXIT_INTERRUPTED, 143):
                _say(f"a worker started by --workers exited with status {failed}; see its messages above", "warning")
    if join is not None:  # a helper: the worker that started it reports the run
        sys.exit(EXIT_OK)
    if result.already_completed:
        _say_already_completed(result)
        sys.exit(EXIT_OK)
    if not _quiet():
        click.echo(format_summary(result))
    elif (problems := format_problems(result)) is not None:
        click.echo(problems, err=True)
    _exit_for(result)


@main.command(epilog=texts.VALIDATE_EXIT_HELP, short_help="Check specs without fetching.")
@click.argument("spec_files", metavar="SPEC...", nargs=-1, required=True, type=click.Path(path_type=Path))
@_verbosity
def validate(spec_files: tuple[Path, ...]) -> None:
    """Check one or more specs without fetching anything.

    Every problem is reported as FILE:LINE:COLUMN: PATH: MESSAGE. Schema
    problems are reported first; checks that need a well-formed spec
    (selectors, templates, parents) run once those are fixed.

    \b
    Example:
      crawlrunner validate *.yaml
    """
    from .console.plan import planned
    from .preview import count_start_requests
    from .spec import load_spec

    problems = 0
    for path in spec_files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            problems += len(exc.problems)
            continue
        count = len(spec.targets)
        if not _quiet():
            click.echo(
                f"{spec.source}: ok ({count} target{'s' if count != 1 else ''}, {planned(*count_start_requests(spec))})"
            )
    if problems:
        _fail(f"{problems} problem{'s' if problems != 1 else ''} found", EXIT_USAGE)


@main.command(help=texts.DEMO_HELP, epilog=texts.DEMO_EXIT_HELP, short_help="Crawl the bundled shop offline.")
@click.option("-o", "--output", default="demo.db", show_default=True, metavar="DB", help="SQLite file to write.")
@click.option("--serve", is_flag=True, help="Only serve the demo shop (until Ctrl-C), to run specs against it.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port for the shop [default: any free port; 8765 with --serve].",
)
@_verbosity
def demo(output: str, serve: bool, port: int | None) -> None:
    from . import runtime
    from .demo import run_demo, serve_forever

    if serve:
        with _user_errors():
            try:
                asyncio.run(serve_forever(8765 if port is None else port, click.echo))
            except KeyboardInterrupt:
                click.echo("demo shop stopped", err=True)
        return
    with _user_errors():
        result = runtime.run(run_demo(output, port or 0))
    if not _quiet():
        click.echo(format_summary(result))
        click.echo(
            "\nTry a query:\n"
            f'  sqlite3 {result.database} "SELECT name, price FROM products '
            f'WHERE _run_id = {result.run_id} ORDER BY price DESC LIMIT 5"'
        )
    _exit_for(result)


FORMATS = click.Choice(["table", "csv", "json", "jsonl"])


def _emit(stream: AbstractContextManager[Stream], fmt: str, output: Path | None = None) -> int:
    """Write rows as they are read (constant memory), to ``output`` or stdout; returns the row count."""
    from .console.formats import write_rows

    with _user_errors(), stream as rows:
        return write_rows(rows.columns, rows.rows, fmt, output)


@main.command(epilog=texts.READ_EXIT_HELP, short_help="Run SQL against a crawl database.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("sql")
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@_verbosity
def query(database: str, sql: str, fmt: str) -> None:
    """Run read-only SQL against DB and print the rows.

    \b
    Example:
      crawlrunner query demo.db "SELECT name, price FROM products ORDER BY price DESC LIMIT 5"
      crawlrunner query demo.db "SELECT * FROM fetch_log WHERE error_kind IS NOT NULL" -f csv
    """
    from .read import stream_query

    _emit(stream_query(database, sql), fmt)


@main.command(epilog=texts.READ_EXIT_HELP, short_help="Export a target's table: JSONL, JSON, CSV or Parquet.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("target")
@click.option("-f", "--format", "fmt", type=click.Choice(texts.EXPORT_FORMATS), default="jsonl", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--run", "run_id", type=int, help="Only the rows of this run.")
@_verbosity
def export(database: str, target: str, fmt: str, output: Path | None, run_id: int | None) -> None:
    """Export TARGET's rows from DB.

    \b
    Example:
      crawlrunner export demo.db products -o products.jsonl
      crawlrunner export demo.db products -f csv --run 3 > products.csv
    """
    from .read import stream_export

    count = _emit(stream_export(database, target, run_id), fmt, output)
    if output is not None and not _quiet():
        click.echo(f"{count} rows written to {output}", err=True)


@main.command(help=texts.RUNS_HELP, epilog=texts.READ_EXIT_HELP, short_help="List the runs in a database.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@_verbosity
def runs(database: str, fmt: str) -> None:
    from .read import stream_runs

    _emit(stream_runs(database), fmt)


@main.command(help=texts.REPORT_HELP, epilog=texts.READ_EXIT_HELP, short_help="Write a run's report as one HTML page.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("run_id", metavar="[RUN]", required=False, type=click.IntRange(1))
@click.option("-o", "--output", default="report.html", show_default=True, metavar="FILE", help="HTML file to write.")
@_verbosity
def report(database: str, run_id: int | None, output: str) -> None:
    from .run_report import write_report

    with _user_errors():
        written = write_report(database, output, run_id)
    if not _quiet():
        click.echo(f"report written to {written}", err=True)


@main.command(epilog=texts.READ_EXIT_HELP, short_help="Make every worker of a shared run finish and exit.")
@click.argument("database", metavar="URL")
@click.argument("run_id", metavar="RUN", type=click.IntRange(1))
@_verbosity
def stop(database: str, run_id: int) -> None:
    """Make every worker of run RUN (in the PostgreSQL database URL) finish its requests in flight and exit;
    what is left stays to do: starting workers again resumes the run.

    \b
    Example:
      crawlrunner stop postgresql://crawl@db/crawls 7
    """
    from .api import stop_run

    with _user_errors():
        alive = stop_run(database, run_id)
    if not _quiet():
        click.echo(f"run {run_id}: asked {alive} worker{'s' if alive != 1 else ''} to finish and exit", err=True)


@main.command(epilog=texts.READ_EXIT_HELP, short_help="What changed in an upsert target.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("target")
@click.option("--since", type=int, metavar="RUN", help="Changes after this run (default: the latest run's).")
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@_verbosity
def changes(database: str, target: str, since: int | None, fmt: str) -> None:
    """Show keys added, values changed, keys removed and restored in TARGET (a target with mode: upsert).

    \b
    Example:
      crawlrunner changes shop.db products              # in the latest run
      crawlrunner changes shop.db products --since 12   # in every run after 12
    """
    from .read import stream_changes

    count = _emit(stream_changes(database, target, since), fmt)
    if not count and not _quiet():
        click.echo(
            f"no changes in {target}" + (f" after run {since}" if since is not None else " in its latest run"), err=True
        )


@main.command(epilog=texts.EXIT_CODES_HELP, short_help="Rebuild tables from stored bodies, no requests.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", metavar="DB", help="SQLite file (default: the spec's output, or <name>.db).")
@click.option("-t", "--target", "only", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@_verbosity
def reextract(spec_file: Path, output: str | None, only: tuple[str, ...]) -> None:
    """Re-run SPEC's extraction rules over the bodies earlier runs stored.

    For targets with store_bodies: true. After changing fields or selectors,
    this rebuilds their tables without a single request; the result is a run
    with status "reextracted".

    \b
    Example:
      crawlrunner reextract shop.yaml -o shop.db
    """
    from .api import reextract as reextract_spec
    from .spec import load_spec

    with _user_errors():
        result = reextract_spec(load_spec(spec_file), output=output, only=only or None)
    if not _quiet():
        click.echo(format_summary(result))
    _exit_for(result)


def _print_plan(spec: Spec, only: tuple[str, ...], first: int, **options: Any) -> None:
    from .console.plan import plan_report

    for line in plan_report(spec, only, first, **options):
        click.echo(line)


@main.command(epilog=texts.PLAN_EXIT_HELP, short_help="Show what a spec would fetch, without fetching.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--first", "count", type=click.IntRange(0), default=5, show_default=True, help="Requests to show.")
@click.option("-t", "--target", "only", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url.")
@click.option("-o", "--output", metavar="DB", help="The database of earlier runs (default: the spec's output).")
@_verbosity
def plan(spec_file: Path, count: int, only: tuple[str, ...], base_url: str | None, output: str | None) -> None:
    """Show the requests SPEC would make: the first N per target, and how many.

    Method, URL and headers of each, secrets masked; per host, the least time
    politeness lets its known requests take. No network traffic.

    \b
    Example:
      crawlrunner plan shop.yaml -n 3
    """
    from .spec import load_spec

    with _user_errors():
        check_base_url(base_url, name="--base-url")
        _print_plan(load_spec(spec_file, base_url=base_url), only, count, database=output)


@main.command("try", help=texts.TRY_HELP, epilog=texts.TRY_EXIT_HELP, short_help="Fetch one page, show what it yields.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target")
@click.argument("url", required=False)
@click.option("--body", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read a saved page instead.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="The same as -f json.")
@click.option("-n", "--first", type=click.IntRange(0), default=10, show_default=True, help="Records, requests shown.")
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url.")
@click.option("--insecure", is_flag=True, help="Allow a target with tls.verify: false.")
@_verbosity
def try_(spec_file: Path, target: str, url: str | None, body: Path | None, fmt: str, as_json: bool, first: int,
         base_url: str | None, insecure: bool) -> None:  # fmt: skip
    from .console.trial import trial_json, trial_lines
    from .spec import load_spec
    from .trial import try_page

    with _user_errors():
        check_base_url(base_url, name="--base-url")
        spec, saved = load_spec(spec_file, base_url=base_url), body.read_bytes() if body else None
        trial = try_page(spec, target, url, body=saved, first=first, insecure=insecure)
    click.echo(trial_json(trial) if as_json or fmt == "json" else "\n".join(trial_lines(trial, first)))
    if trial.problem is not None:
        _fail(trial.problem, EXIT_FAILED if not trial.fetch.ok else EXIT_EXPECTATIONS)


@main.command(epilog=texts.PLAN_EXIT_HELP.replace("the spec is valid; nothing was fetched", "the starter spec was written"),
              short_help="Write a commented starter spec.")  # fmt: skip
@click.argument("path", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--kind", type=click.Choice(["json-api", "html", "gateway"]), default="json-api", show_default=True,
              help="json-api: a paginated JSON API; html: a catalogue and a docs crawl; gateway: a rendering API.")  # fmt: skip
@click.option("--name", help="The crawl's name (default: from FILE).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@_verbosity
def init(path: Path | None, kind: str, name: str | None, force: bool) -> None:
    """Write a commented starter spec to FILE (default: crawl.yaml); it validates as written.

    Its first line points editors at ./crawlspec.schema.json, written next to
    FILE unless that exists: commit both, and the modeline works in every checkout.

    \b
    Example:
      crawlrunner init shop.yaml --kind html
      crawlrunner validate shop.yaml && crawlrunner plan shop.yaml
    """
    from .starters import write_starter

    target = path or Path("crawl.yaml")
    with _user_errors():
        written = write_starter(target, kind, name, force=force)
    click.echo(f"wrote {' and '.join(map(str, written))} ({kind}); next: crawlrunner validate {target}")


@main.command(epilog="\b\nExit status:\n  0    printed", short_help="Print the spec's JSON Schema.")
@_verbosity
def schema() -> None:
    """Print the JSON Schema (Draft 2020-12) that specs are checked against.

    Editors with the YAML language server check and complete a spec whose
    first line is:  # yaml-language-server: $schema=<path or URL of the schema>

    \b
    Example:
      crawlrunner schema > crawlspec.schema.json
    """
    click.echo(bundled_path("schemas", "crawlspec.schema.json").read_text(encoding="utf-8"), nl=False)


def entry_point() -> None:
    """The ``crawlrunner`` executable and ``python -m crawlrunner``: the command is the whole process."""
    global _owns_process
    _owns_process = True
    main(prog_name="crawlrunner")
