"""The speed-ups are used when installed, can be switched off, and change no result."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from crawlrunner import runtime
from crawlrunner.backends.sqlite.schema import OWN_TABLES

from ..conftest import ENTRY_POINT, REPO


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_runs_on_uvloop_when_it_is_installed() -> None:
    pytest.importorskip("uvloop")
    assert runtime.run(_loop_module()) == "uvloop"


def test_no_speedups_means_asyncio_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "SPEEDUPS", False)
    assert runtime.loop_factory() is None
    assert runtime.run(_loop_module()) == "asyncio"


@pytest.mark.parametrize(("value", "on"), [("", True), ("0", True), ("1", False), ("yes", False), ("true", False)])
def test_the_environment_switch(value: str, on: bool) -> None:
    code = "from crawlrunner import runtime; from crawlrunner.document import json; print(runtime.SPEEDUPS, json._orjson_loads is not None)"
    env = {**os.environ, "CRAWLRUNNER_NO_SPEEDUPS": value}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    speedups, orjson_used = out.split()
    assert speedups == str(on)
    try:
        import orjson  # noqa: F401
    except ImportError:
        on = False
    assert orjson_used == str(on)


def test_settling_the_process_freezes_the_start_up_heap_and_makes_collections_rare() -> None:
    # In a child process: tuning the test runner's own heap is what settle_process must never do.
    # The collector, off while the command started (cli.common.collection_deferred), runs again from here.
    code = (
        "import gc; from crawlrunner import runtime; before = gc.get_threshold(); gc.disable();"
        " runtime.settle_process();"
        " print(gc.get_freeze_count() > 0, gc.isenabled(), before[1:] == gc.get_threshold()[1:], gc.get_threshold()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    frozen, enabled, older_kept, young = out.split()
    assert (frozen, enabled, older_kept, int(young)) == ("True", "True", "True", runtime.YOUNG_OBJECTS)
    assert gc.get_threshold()[0] != runtime.YOUNG_OBJECTS  # this process (the test runner's) is left alone


@pytest.mark.subprocess
def test_a_crawl_stores_the_same_records_with_and_without_speedups(demo_server: str, tmp_path: Path) -> None:
    # The real entry point (uvloop, orjson, the settled process) against asyncio and the json module.
    tables: list[dict[str, list[tuple[object, ...]]]] = []
    for switch in ("", "1"):
        db = tmp_path / f"demo-{switch or 'fast'}.db"
        env = {**os.environ, "CRAWLRUNNER_NO_SPEEDUPS": switch}
        command = [
            str(ENTRY_POINT),
            "run",
            str(REPO / "examples" / "demo.yaml"),
            "--base-url",
            demo_server,
            "-o",
            str(db),
            "-q",
        ]
        subprocess.run(command, env=env, check=True, timeout=120, capture_output=True)
        with closing(sqlite3.connect(db)) as conn:
            names = [
                n
                for (n,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'"
                )
            ]
            found = {}
            for name in names:
                if name in OWN_TABLES:
                    continue
                columns = [c for (_, c, *_) in conn.execute(f'PRAGMA table_info("{name}")') if not c.startswith("_")]
                found[name] = sorted(conn.execute(f'SELECT {", ".join(columns)} FROM "{name}"').fetchall(), key=repr)
            tables.append(found)
    assert tables[0] and all(tables[0].values())
    assert tables[0] == tables[1]
