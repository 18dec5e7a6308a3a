"""``python -m crawlrunner``: the same command as ``crawlrunner``."""

from .cli import main

main(prog_name="crawlrunner")
