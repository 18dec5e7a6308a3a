"""Overrides of a spec's settings given from outside the spec (the command line, a script).

An override is checked before the spec is loaded, so that a bad value is
blamed on whoever gave it, not on a line of the spec file.
"""

from __future__ import annotations

import re

from .errors import UsageError

# What http.base_url must look like, in a spec (spec/layering.py) or given from outside it.
ABSOLUTE_HTTP_URL = re.compile(r"https?://[^/]")


def check_base_url(base_url: str | None, *, name: str = "base_url") -> None:
    """Raise ``UsageError`` unless ``base_url`` (if given) is an absolute http(s) URL.

    ``name`` is how the caller knows the value, for the message (``--base-url``
    on the command line).
    """
    if base_url is not None and not ABSOLUTE_HTTP_URL.match(base_url):
        raise UsageError(f"{name}: expected an absolute http:// or https:// URL, got {base_url!r}")


def output_problem(output: str) -> str | None:
    """What makes ``output`` unusable as a file name before anything opens it, or None."""
    if "\0" in output:
        # No file system accepts it; the OS call would fail with a bare ValueError.
        return "a file name must not contain a NUL character (\\0)"
    return None


def check_output(output: str | None, *, name: str = "output") -> None:
    """Raise ``UsageError`` if ``output`` (if given) cannot be a file name."""
    problem = output_problem(output) if output is not None else None
    if problem is not None:
        raise UsageError(f"{name}: {problem}")
