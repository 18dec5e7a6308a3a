"""Start-up guards: commands that fetch nothing load none of the crawl's machinery.

Most of `crawlrunner validate`'s time is imports; aiohttp alone costs about as
much as the whole command. Each check runs a command in a fresh interpreter
(a test process has imported everything already) and lists which of the
modules it must not need were loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Loaded only by a command that crawls or reads a database.
CRAWL_MODULES = (
    "aiohttp",
    "aiosqlite",
    "asyncio",
    "asyncpg",
    "crawlrunner.api",
    "crawlrunner.backends",
    "crawlrunner.console.plan",
    "crawlrunner.engine",
    "crawlrunner.http",
    "crawlrunner.read",
    "prometheus_client",
    "pyarrow",
    "sqlite3",
)
# What reading and checking a spec needs, which --version does not.
SPEC_MODULES = ("crawlrunner.spec", "jsonschema", "parsel", "yaml")
# Only for wording a problem ("did you mean ...?"): a good spec never needs it.
PROBLEM_MODULES = ("difflib",)

_LOADED = """
import json, sys
from crawlrunner.cli import main
try:
    main(sys.argv[2:], prog_name="crawlrunner")
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "loaded": [m for m in json.loads(sys.argv[1]) if m in sys.modules]}))
"""


def _loaded_by(*arguments: str, watched: tuple[str, ...]) -> tuple[int, list[str]]:
    """The exit status of ``crawlrunner ARGUMENTS``, and which of ``watched`` it imported."""
    completed = subprocess.run(
        [sys.executable, "-c", _LOADED, json.dumps(watched), *arguments],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    outcome = json.loads(completed.stdout.splitlines()[-1])
    return outcome["status"], outcome["loaded"]


@pytest.mark.subprocess
def test_validate_loads_no_crawl_machinery() -> None:
    status, loaded = _loaded_by(
        "validate", "examples/demo.yaml", watched=CRAWL_MODULES + SPEC_MODULES + PROBLEM_MODULES
    )
    assert status == 0
    assert sorted(loaded) == sorted(SPEC_MODULES)  # the spec is read, and nothing else is


@pytest.mark.subprocess
def test_a_bad_spec_is_reported_without_loading_crawl_machinery(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ntargets:\n  - name: a\n    url: /x\n    retry: {attempts: -1}\n")
    for command in (["validate"], ["run", "-o", str(tmp_path / "bad.db")]):
        status, loaded = _loaded_by(*command, str(spec), watched=CRAWL_MODULES)
        assert (command, status, loaded) == (command, 2, [])


@pytest.mark.subprocess
def test_version_and_help_load_neither_the_spec_nor_the_crawl() -> None:
    for arguments in (["--version"], ["--help"], ["run", "--help"]):
        status, loaded = _loaded_by(*arguments, watched=CRAWL_MODULES + SPEC_MODULES)
        assert (arguments, status, loaded) == (arguments, 0, [])
