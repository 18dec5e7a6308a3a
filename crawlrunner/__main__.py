"""``python -m crawlrunner``: the same command as ``crawlrunner``."""

from .cli import entry_point

entry_point()
