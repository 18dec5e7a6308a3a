"""The ``crawlrunner`` command: parse options, call the library, render results.

This is the one place errors become messages and exit codes:

    0    every request succeeded (or failed within a declared max_failed_ratio)
    1    the run finished but some requests failed, or the run itself failed
    2    bad spec or bad usage (nothing was fetched)
    3    the run finished but extraction looks broken or expectations were not met (wins over 1)
    130  interrupted (Ctrl-C); everything fetched so far is committed
    143  stopped by SIGTERM; likewise
"""

import click

from .. import __version__
from ..console import help as texts
from ..console.logs import configure_logging
from ..settings import PROJECT_URL
from . import common, reading, running, specs
from .common import verbosity


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=texts.EXIT_CODES_HELP,
)
@click.version_option(__version__, "-V", "--version", prog_name="crawlrunner")
@verbosity
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

for _module in (running, reading, specs):  # every command, registered under `crawlrunner`
    for _command in vars(_module).values():
        if isinstance(_command, click.Command):
            main.add_command(_command)


def entry_point() -> None:
    """The ``crawlrunner`` executable and ``python -m crawlrunner``: the command is the whole process."""
    common.owns_process = True
    main(prog_name="crawlrunner")
