"""What every command shares: its messages, exit codes, -v/-q/--log-format, and errors turned into exit codes."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from ..console.logs import configure_logging, json_message, log_format
from ..errors import CrawlRunnerError, OutputPathError, SpecError, SpecProblem, UsageError

if TYPE_CHECKING:
    from ..api import RunResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EXPECTATIONS = 3
EXIT_INTERRUPTED = 130

owns_process = False  # set by entry_point: the command runs as its own process


@contextmanager
def collection_deferred() -> Iterator[None]:
    """No garbage collection while a command that is the whole process starts up.

    Start-up makes some 80,000 objects (modules, classes, the spec) that live
    as long as the process, and the collector traced them again and again as
    they piled up: 2.5% of the instructions to a run's first request. It runs
    again at the end of the block, or once ``runtime.settle_process`` has
    frozen what start-up made (a few thousand objects of garbage with it,
    about 1 MB).
    """
    if not owns_process:  # a caller's process (a test runner's, an application's): not ours to tune
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def say(message: str, level: str = "error") -> None:
    """A message of the command itself on stderr: text, or a JSON line with --log-format json."""
    # sys.stderr as it is now, not click's own stream on the terminal: while the live progress
    # display is up it is the display's (rich's), which prints the message above the display.
    if log_format() == "json":
        click.echo(json_message(message, level, "crawlrunner.cli"), file=sys.stderr)
    else:
        click.echo(f"crawlrunner: {message}", file=sys.stderr)


def say_problems(problems: Iterable[SpecProblem]) -> None:
    """A spec's located problems on stderr: ``file:line:col: path: message``, or JSON objects with those keys."""
    for problem in problems:
        if log_format() == "json":
            fields = {key: getattr(problem, key) for key in ("file", "line", "column", "path", "message")}
            click.echo(json_message(problem.message, "error", "crawlrunner.spec", fields), err=True)
        else:
            click.echo(str(problem), err=True)


def fail(message: str, code: int) -> NoReturn:
    say(message)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn crawlrunner's errors into messages and exit codes, never tracebacks."""
    try:
        yield
    except SpecError as exc:
        say_problems(exc.problems)
        count = len(exc.problems)
        fail(f"{count} problem{'s' if count != 1 else ''} in the spec; nothing was fetched", EXIT_USAGE)
    except (OutputPathError, UsageError) as exc:
        fail(str(exc), EXIT_USAGE)
    except CrawlRunnerError as exc:
        fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted; everything fetched so far was committed", EXIT_INTERRUPTED)


def exit_status(result: RunResult) -> int:
    """The exit status a finished run calls for."""
    # Interrupted with no signal here: `crawlrunner stop` ended a shared run.
    interrupted = result.status == "interrupted"
    failed = EXIT_EXPECTATIONS if result.unmet or result.health else EXIT_FAILED
    return EXIT_INTERRUPTED if interrupted else EXIT_OK if result.ok else failed


def exit_for(result: RunResult) -> NoReturn:
    sys.exit(exit_status(result))


def verbosity(command: Callable[..., None]) -> Callable[..., None]:
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


def quiet() -> bool:
    ctx = click.get_current_context()
    return any((c.obj or {}).get("quiet") for c in (ctx, ctx.parent) if c is not None)
