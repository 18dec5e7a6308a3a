"""``run --metrics-port``: Prometheus metrics scraped while a real crawl runs against a slow local server."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.cli import main

NO_PROMETHEUS = "prometheus-client is not installed: pip install -e '.[test]'"
if importlib.util.find_spec("prometheus_client") is None:
    if os.environ.get("CI"):  # CI installs the test extra: there these tests must run
        pytest.fail(NO_PROMETHEUS, pytrace=False)
    pytest.skip(NO_PROMETHEUS, allow_module_level=True)

SPEC = """
name: metered
http: {{base_url: "{base}", limits: {{connections: 2}}}}
targets:
  - name: slow
    url: /slow/metered-{{n}}/0.25
    vars: {{n: {{from: 1, to: 8}}}}
    extract: {{fields: {{key: key}}}}
  - name: gone
    url: /status/404
  - name: tail  # in flight a while after the rest: scrapes then see their final counts
    url: /slow/metered-tail/1.5
"""


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))  # as the exposition sorts them
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


class Scraper(threading.Thread):
    """Scrapes /metrics every 20 ms while the run goes, keeping what it read mid-run."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url, self.done, self.scrapes = f"http://127.0.0.1:{port}/metrics", threading.Event(), list[str]()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    self.scrapes.append(response.read().decode())
            except OSError:  # not listening yet, or already closed
                pass
            time.sleep(0.02)


def test_metrics_are_served_during_a_run(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, closed_port: int
) -> None:
    spec = write_spec(SPEC, base=server)
    scraper = Scraper(closed_port)
    scraper.start()
    try:
        result = cli.invoke(main, ["run", str(spec), "-o", str(db_path), "--metrics-port", str(closed_port)])
    finally:
        scraper.done.set()
        scraper.join(timeout=5)

    assert result.exit_code == 1, result.output  # the 404
    mid_run = [text for text in scraper.scrapes if (_sample(text, "crawlrunner_in_flight", target="slow") or 0) > 0]
    assert mid_run, f"no scrape saw a request in flight ({len(scraper.scrapes)} scrapes)"
    waiting = [text for text in scraper.scrapes if _sample(text, "crawlrunner_in_flight", target="tail") == 1]
    assert waiting, "no scrape while the tail request was in flight"
    last = waiting[-1]
    assert _sample(last, "crawlrunner_requests_total", target="slow", status="200") == 8
    assert _sample(last, "crawlrunner_requests_total", target="gone", status="404") == 1
    assert _sample(last, "crawlrunner_failures_total", target="gone", kind="http_status") == 1
    assert _sample(last, "crawlrunner_records_total", target="slow") == 8
    assert (_sample(last, "crawlrunner_response_bytes_total", target="slow") or 0) > 0
    assert _sample(last, "crawlrunner_retries_total", target="slow") == 0
    assert _sample(last, "crawlrunner_host_wait_seconds_total", host=server) == 0
    # counters only grow: a mid-run scrape never shows more than the end
    assert all((_sample(t, "crawlrunner_requests_total", target="slow", status="200") or 0) <= 8 for t in mid_run)
    with pytest.raises(OSError):  # the server stops with the run
        urllib.request.urlopen(scraper.url, timeout=2)


def test_metrics_port_in_use_or_malformed_is_a_usage_error(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path, closed_port: int
) -> None:
    spec = str(write_spec(SPEC, base=f"http://127.0.0.1:{closed_port}"))
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        in_use = cli.invoke(main, ["run", spec, "-o", str(tmp_path / "a.db"), "--metrics-port", str(taken)])
    malformed = cli.invoke(main, ["run", spec, "-o", str(tmp_path / "b.db"), "--metrics-port", "nine"])

    assert in_use.exit_code == 2 and f"--metrics-port: cannot listen on 127.0.0.1:{taken}" in in_use.stderr
    assert malformed.exit_code == 2 and "expected a port (1-65535) or HOST:PORT" in malformed.stderr
    assert "Traceback" not in in_use.output + malformed.output


def test_metrics_without_the_extra_says_how_to_install_it(
    cli: CliRunner, write_spec: Callable[..., Path], tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # what a machine without the extra has
    spec = str(write_spec(SPEC, base=f"http://127.0.0.1:{closed_port}"))
    result = cli.invoke(main, ["run", spec, "-o", str(tmp_path / "c.db"), "--metrics-port", str(closed_port)])

    assert result.exit_code == 2
    assert "pip install 'crawlrunner[metrics]'" in result.stderr
