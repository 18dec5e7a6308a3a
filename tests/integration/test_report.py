"""``crawlrunner report``: a run as one self-contained HTML page, checked on a known run and in a real browser.

The run is a real crawl of the test server (four items, three 404s), stored
in SQLite or PostgreSQL; the browser is Debian's chromium, headless. Without
chromium the browser test skips, except under CI, which must run it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.run_report import LATENCY_BOUNDS_MS, run_facts
from crawlrunner.spec import load_spec

SPEC = """
name: reported
http:
  base_url: "{base}"
targets:
  - name: items
    urls:
      - /json/item/1
      - /json/item/2
      - /json/item/3
      - /json/item/4
    extract:
      fields: {{id: id, name: name}}
  - name: broken
    urls:
      - /status/404?n=1
      - /status/404?n=2
      - /status/404?n=3
    extract:
      fields: {{status: status}}
"""


async def _known_run(server: str, write_spec: Callable[..., Path], output: str) -> None:
    await run_async(load_spec(write_spec(SPEC, base=server)), output=output)


async def test_the_report_shows_every_target_with_the_numbers_of_the_run(
    server: str, write_spec: Callable[..., Path], output: str
) -> None:
    await _known_run(server, write_spec, output)

    facts = run_facts(output)
    by_name = {t.name: t for t in facts.targets}
    assert sorted(by_name) == ["broken", "items"]
    items, broken = by_name["items"], by_name["broken"]
    assert (items.requests, items.failed, items.records) == (4, 0, 4)
    assert (broken.requests, broken.failed, broken.records) == (3, 3, 0)
    assert broken.failures == {"http_status": 3}
    assert [u.removeprefix(server) for u in broken.examples["http_status"]] == [f"/status/404?n={n}" for n in (1, 2, 3)]
    assert sum(items.latency) == 4 and len(items.latency) == len(LATENCY_BOUNDS_MS) + 1
    assert sum(items.per_second.values()) == 4
    assert {f for f, _, _ in items.health} == {"id", "name"}

    html = crawlrunner.report(output)
    for name, requests, failed, records in (("items", 4, 0, 4), ("broken", 3, 3, 0)):
        section = html.split(f'data-target="{name}"', 1)[1].split("</section>", 1)[0]
        assert f"<b>{requests}</b> requests" in section
        assert f"<b>{failed}</b> failed" in section
        assert f"<b>{records}</b> records" in section
    assert f"{server}/status/404?n=1" in html
    assert 'data-chart="failures" data-bars="1"' in html
    assert html.count('data-chart="latency"') == 2


async def test_the_report_escapes_what_the_database_holds(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    await _known_run(server, write_spec, str(db_path))
    hostile = "<script>alert(1)</script>"
    with sqlite3.connect(db_path) as conn:  # text a spec cannot write, as a damaged or hand-edited database holds it
        conn.execute(
            "UPDATE _crawlrunner_fetch_log SET target = ?, url = url || ? WHERE target = 'broken'",
            (hostile, '"><img src=x>'),
        )
        conn.execute("UPDATE _crawlrunner_extraction_health SET field = ? WHERE field = 'name'", (hostile,))
        conn.execute("UPDATE _crawlrunner_host_stats SET origin = origin || ?", (hostile,))
    conn.close()

    html = crawlrunner.report(db_path)

    assert html.count("<script>") == 1  # the report's own script, once
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&quot;&gt;&lt;img src=x&gt;" in html


async def test_the_report_needs_nothing_from_the_network(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    await _known_run(server, write_spec, str(db_path))

    html = crawlrunner.report(db_path)

    # URLs of the crawl appear as text only; no attribute, stylesheet or script loads anything.
    assert server in html
    assert not re.search(r"""=\s*["']?[a-z]*:?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<link|<iframe|<img|src=", html, re.IGNORECASE)


async def test_report_command_writes_the_file_and_refuses_what_it_cannot_do(
    server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path, cli: CliRunner
) -> None:
    await _known_run(server, write_spec, str(db_path))
    out = tmp_path / "report.html"

    done = cli.invoke(main, ["report", str(db_path), "1", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")

    missing = cli.invoke(main, ["report", str(db_path), "7", "-o", str(tmp_path / "other.html")])
    assert missing.exit_code == 2 and "no run 7" in missing.output and "Traceback" not in missing.output
    assert not (tmp_path / "other.html").exists()

    before = db_path.read_bytes()
    over = cli.invoke(main, ["report", str(db_path), "-o", str(db_path)])
    assert over.exit_code == 2 and "will not overwrite" in over.output
    assert db_path.read_bytes() == before

    nowhere = cli.invoke(main, ["report", str(db_path), "-o", str(tmp_path / "no" / "such" / "dir.html")])
    assert nowhere.exit_code == 2 and "cannot write" in nowhere.output and "Traceback" not in nowhere.output


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium not found: apt-get install chromium (the browser test of the report)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the browser test must run there)", pytrace=False)
        pytest.skip(reason)
    return found


async def test_a_real_browser_draws_every_chart(
    server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path
) -> None:
    browser = _chromium()
    await _known_run(server, write_spec, str(db_path))
    page = crawlrunner.run_report.write_report(db_path, tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    charts = re.findall(r'<svg class="chart" data-chart="(\w+)" data-bars="(\d+)"', html)
    # Two targets: latency and rate each; failures for the one that failed; waits for the one host.
    assert sorted(kind for kind, _ in charts) == ["failures", "latency", "latency", "rate", "rate", "waits"]

    process = await asyncio.create_subprocess_exec(
        browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=45)
    except TimeoutError:
        process.kill()  # never leave a browser behind
        await process.wait()
        raise
    assert process.returncode == 0
    dom = out.decode()

    # The page's script ran after layout and found every chart with a size: drawn, not just present.
    assert f'data-charts-drawn="{len(charts)}"' in dom
    assert dom.count('data-drawn="yes"') == len(charts)
    assert dom.count('<rect class="bar') == sum(int(bars) for _, bars in charts)
