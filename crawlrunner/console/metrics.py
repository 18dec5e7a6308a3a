"""``run --metrics-port``: the running crawl's counters as Prometheus metrics.

prometheus-client is an optional extra (``crawlrunner[metrics]``), imported
only here. Nothing is counted twice: a collector reads the live view the
progress display reads (``progress.LiveView``: ``stats.RunStats`` and the
requests in flight) each time Prometheus scrapes, from the HTTP server's
thread. The counters are this process's, so they start at zero on
``--resume`` as Prometheus expects of a restarted process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from ..progress import LiveView, Reporter

INSTALL_HINT = "--metrics-port needs prometheus-client: pip install 'crawlrunner[metrics]'"
NAMESPACE = "crawlrunner"


class MetricsReporter:
    """A reporter that lends its live view to the metrics server, and runs the progress display it wraps (if any)."""

    def __init__(self, inner: Reporter | None = None) -> None:
        self.inner = inner
        self.view: LiveView | None = None  # None until the run starts: a scrape then finds no samples

    async def run(self, view: LiveView) -> None:
        self.view = view
        if self.inner is not None:
            await self.inner.run(view)
        else:
            await asyncio.Event().wait()  # until the engine cancels it at the run's end

    def collect(self) -> Iterator[Metric]:
        """The metrics, read from the live view at scrape time (prometheus-client's ``Collector``)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        view = self.view
        if view is None:
            return
        # A copy: the run adds targets while this, the server's thread, reads.
        targets = list(view.stats.targets.items())
        requests = CounterMetricFamily(
            f"{NAMESPACE}_requests",
            "Requests done, by target and final HTTP status (none: no answer)",
            labels=["target", "status"],
        )
        failures = CounterMetricFamily(
            f"{NAMESPACE}_failures", "Requests failed for good, by target and error kind", labels=["target", "kind"]
        )
        retries = CounterMetricFamily(f"{NAMESPACE}_retries", "Retried attempts, by target", labels=["target"])
        records = CounterMetricFamily(f"{NAMESPACE}_records", "Records extracted, by target", labels=["target"])
        size = CounterMetricFamily(f"{NAMESPACE}_response_bytes", "Response body bytes, by target", labels=["target"])
        flying = GaugeMetricFamily(f"{NAMESPACE}_in_flight", "Requests in flight, by target", labels=["target"])
        for name, stats in targets:
            for status, count in list(stats.statuses.items()):
                requests.add_metric([name, str(status) if status else "none"], count)
            for kind, count in list(stats.failures.items()):
                failures.add_metric([name, kind], count)
            retries.add_metric([name], stats.retries)
            records.add_metric([name], stats.records)
            size.add_metric([name], stats.bytes)
            flying.add_metric([name], view.flying[name])
        yield from (requests, failures, retries, records, size, flying)
        yield from _host_metrics(view)


def _host_metrics(view: LiveView) -> Iterator[Metric]:
    """Per host, the waiting politeness imposed: pauses after 429/503 answers, and their length."""
    from prometheus_client.core import CounterMetricFamily

    waited = CounterMetricFamily(
        f"{NAMESPACE}_host_wait_seconds", "Seconds a host was left alone after 429/503 answers", labels=["host"]
    )
    pauses = CounterMetricFamily(f"{NAMESPACE}_host_pauses", "Pauses a host's answers called for", labels=["host"])
    throttled = CounterMetricFamily(f"{NAMESPACE}_host_throttled", "429 answers from a host", labels=["host"])
    for origin, host in list(view.stats.hosts.items()):
        waited.add_metric([origin], host.cooldown_seconds)
        pauses.add_metric([origin], host.cooldowns)
        throttled.add_metric([origin], host.throttled)
    yield from (waited, pauses, throttled)


def parse_address(text: str) -> tuple[str, int]:
    """``9100`` (on 127.0.0.1) or ``HOST:9100``: where the metrics are served."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--metrics-port: expected a port (1-65535) or HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@contextmanager
def serving_metrics(address: str, inner: Reporter | None) -> Iterator[MetricsReporter]:
    """Serve ``/metrics`` at ``address`` while the block runs; the reporter it yields feeds it."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    host, port = parse_address(address)
    reporter = MetricsReporter(inner)
    registry = CollectorRegistry(auto_describe=False)  # the run's own: no process-wide default registry
    registry.register(reporter)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UsageError(f"--metrics-port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        yield reporter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
