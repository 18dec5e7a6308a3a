"""Crawls run inside a network namespace that has only loopback: ``test_network_namespace.py`` starts it.

Loopback there carries two more addresses: 93.184.216.34 stands for a public
site and 169.254.169.254 for a cloud metadata service, and the namespace's
/etc/hosts names them ``public.test`` and ``metadata.test``. The metadata
service is real: it answers any connection with credentials and counts the
connections, so a refused redirect is one that never reached it, not one
that failed because nothing was there. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import resolver, web
from aiohttp.abc import ResolveResult

from crawlrunner.api import run_async
from crawlrunner.spec import load_spec_text

PUBLIC, METADATA = "93.184.216.34", "169.254.169.254"
SECRET = b'{"AccessKeyId": "ASIA-test", "SecretAccessKey": "metadata-secret"}'

connections = 0
requests: list[str] = []  # the paths the metadata service was sent
lookups: list[tuple[float, float]] = []  # (start, end) of each lookup of metadata.test


async def metadata_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global connections
    connections += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            path = head.split(b" ", 2)[1].decode()
            requests.append(path)
            close = "close" in path
            reply = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(SECRET)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
            )
            writer.write(reply.encode() + SECRET)
            await writer.drain()
            if close:
                return
    finally:
        writer.close()


def slow_lookups() -> None:
    """Answer lookups of metadata.test as the system does, 0.3 s late, recording when each ran."""
    real = resolver.DefaultResolver.resolve

    async def resolve(
        self: Any, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != "metadata.test":
            return await real(self, host, port, family)
        start = time.monotonic()
        await asyncio.sleep(0.3)
        try:
            return await real(self, host, port, family)
        finally:
            lookups.append((start, time.monotonic()))

    resolver.DefaultResolver.resolve = resolve  # type: ignore[method-assign]


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["to"]})


async def listing(request: web.Request) -> web.Response:
    """A page linking to the metadata service, a little late: the redirect's lookup is under way by then."""
    await asyncio.sleep(0.05)
    return web.json_response({"items": [{"url": "http://metadata.test/direct/kept"}]})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def crawl(name: str, urls: list[str], folder: Path) -> list[list[object]]:
    """One run with default settings; its fetch log as (url, status, error_kind, error) rows."""
    listed = ", ".join(f"'{url}'" for url in urls)
    spec = load_spec_text(
        f"name: {name}\nhttp: {{retry: null}}\ntargets:\n  - {{name: t, urls: [{listed}]}}\n", "s.yaml"
    )
    output = folder / f"{name}.db"
    await run_async(spec, output=output)
    with sqlite3.connect(output) as db:
        rows = db.execute("SELECT url, status, error_kind, error FROM _crawlrunner_fetch_log ORDER BY url").fetchall()
    return [list(row) for row in rows]


async def mixed(name: str, targets: str, folder: Path, *, connections: int = 1, dns_cache: int = 300) -> dict[str, Any]:
    """A run of a direct request to metadata.test and a redirect to it; what each got, what the service saw."""
    direct = "{name: direct, url: 'http://metadata.test/direct/%s'}" % ("close" if name == "cached" else "kept")
    redirected = "{name: redirected, url: 'http://public.test/redirect?to=http://metadata.test/via-redirect'}"
    listed = {"direct": direct, "redirected": redirected}
    if name == "joined":
        # The direct request comes from a page of the public site: it starts
        # while the redirect's lookup of the name is under way.
        listed["direct"] = (
            "{name: listing, url: 'http://public.test/listing', extract: {records: items, fields: {url: url}}}\n"
            "  - {name: direct, parent: listing, url_field: url}"
        )
    spec = load_spec_text(
        f"name: {name}\nhttp: {{retry: null, limits: {{connections: {connections}, dns_cache: {dns_cache}}}}}\n"
        "targets:\n" + "".join(f"  - {listed[t]}\n" for t in targets.split()),
        "s.yaml",
    )
    output, seen, looked_up = folder / f"{name}.db", len(requests), len(lookups)
    await run_async(spec, output=output)
    with sqlite3.connect(output) as db:
        rows = db.execute(
            "SELECT target, status, error_kind, error FROM _crawlrunner_fetch_log ORDER BY target"
        ).fetchall()
    spans = lookups[looked_up:]
    return {
        "rows": {target: [status, kind, error] for target, status, kind, error in rows},
        "requests": requests[seen:],
        # Whether two lookups of the name were under way at the same time.
        "overlapped": any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :]),
    }


async def main() -> dict[str, object]:
    service = await asyncio.start_server(metadata_service, METADATA, 80)
    app = web.Application()
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/ok", ok)
    app.router.add_get("/listing", listing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, PUBLIC, 80).start()
    report: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            to = "http://public.test/redirect?to="
            report["refused"] = await crawl(
                "refused",
                [
                    f"{to}http://{METADATA}/latest/meta-data/",  # the address itself
                    f"{to}http://metadata.test/latest/meta-data/",  # a name: refused after DNS resolution
                    f"{to}http://[::ffff:{METADATA}]/latest/meta-data/",  # its IPv4-mapped form
                    f"{to}/ok",  # a redirect within the public site still works
                ],
                Path(folder),
            )
            report["connections_after_refused"] = connections
            # The service is there and answers: asked for directly, by the spec, it is reached.
            report["direct"] = await crawl("direct", [f"http://{METADATA}/latest/meta-data/"], Path(folder))
            report["connections_after_direct"] = connections
            slow_lookups()
            report["mixed"] = {
                "cached": await mixed("cached", "direct redirected", Path(folder)),
                "kept": await mixed("kept", "direct redirected", Path(folder), dns_cache=0),
                "redirect_first": await mixed("redirect_first", "redirected direct", Path(folder)),
                "concurrent": await mixed("concurrent", "direct redirected", Path(folder), connections=4),
                "joined": await mixed("joined", "redirected direct", Path(folder), connections=4),
            }
    finally:
        await runner.cleanup()
        service.close()
        await service.wait_closed()
    return report


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
