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
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from crawlrunner.api import run_async
from crawlrunner.spec import load_spec_text

PUBLIC, METADATA = "93.184.216.34", "169.254.169.254"
SECRET = b'{"AccessKeyId": "ASIA-test", "SecretAccessKey": "metadata-secret"}'

connections = 0


async def metadata_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global connections
    connections += 1
    await reader.readuntil(b"\r\n\r\n")
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + SECRET)
    await writer.drain()
    writer.close()


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["to"]})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def crawl(name: str, urls: list[str], folder: Path) -> list[list[object]]:
    """One run with default settings; its fetch log as (url, status, error_kind, error) rows."""
    import sqlite3

    listed = ", ".join(f"'{url}'" for url in urls)
    spec = load_spec_text(
        f"name: {name}\nhttp: {{retry: null}}\ntargets:\n  - {{name: t, urls: [{listed}]}}\n", "s.yaml"
    )
    output = folder / f"{name}.db"
    await run_async(spec, output=output)
    with sqlite3.connect(output) as db:
        rows = db.execute("SELECT url, status, error_kind, error FROM fetch_log ORDER BY url").fetchall()
    return [list(row) for row in rows]


async def main() -> dict[str, object]:
    service = await asyncio.start_server(metadata_service, METADATA, 80)
    app = web.Application()
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/ok", ok)
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
    finally:
        await runner.cleanup()
        service.close()
        await service.wait_closed()
    return report


if __name__ == "__main__":
    json.dump(asyncio.run(main()), sys.stdout)
