"""A misbehaving server for the engine tests: routes named for their fault.

Counters and hit times are kept per ``key`` so tests never share them.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import time
from collections import Counter, defaultdict
from email.utils import formatdate
from functools import cache

from aiohttp import web

hits: Counter[str] = Counter()
stamps: defaultdict[str, list[float]] = defaultdict(list)
seen: defaultdict[str, list[dict[str, object]]] = defaultdict(list)

DIGEST_USER, DIGEST_PASSWORD, DIGEST_REALM, DIGEST_NONCE = "ada", "lovelace-42", "tests", "n0nce"
CHUNK = b"\0" * 65536


def _hit(key: str) -> int:
    hits[key] += 1
    stamps[key].append(time.monotonic())
    return hits[key]


async def flaky(request: web.Request) -> web.Response:
    """503 for the first n hits, then 200."""
    key, failures = request.match_info["key"], int(request.match_info["n"])
    if _hit(key) <= failures:
        return web.json_response({"error": "busy"}, status=503)
    return web.json_response({"ok": True, "hit": hits[key]})


async def limited(request: web.Request) -> web.Response:
    """429 with Retry-After (seconds, or an HTTP date with ?date=1) on the first hit."""
    key = request.match_info["key"]
    delay = float(request.query.get("after", "1"))
    if _hit(key) == 1:
        value = formatdate(time.time() + delay, usegmt=True) if "date" in request.query else str(int(delay))
        return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": value})
    return web.json_response({"ok": True})


async def stamp(request: web.Request) -> web.Response:
    _hit(request.match_info["key"])
    await asyncio.sleep(float(request.query.get("sleep", "0")))
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.StreamResponse:
    """The first n hits drop the connection before answering."""
    key, failures = request.match_info["key"], int(request.match_info["n"])
    if _hit(key) <= failures:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(1)
    return web.json_response({"ok": True})


async def truncated(request: web.Request) -> web.StreamResponse:
    """The first n hits promise 100 bytes and send 10."""
    key, failures = request.match_info["key"], int(request.match_info["n"])
    if _hit(key) <= failures:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"ok": tru')
        assert request.transport is not None
        request.transport.close()
        return response
    return web.json_response({"ok": True})


async def slow_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 12
    await response.prepare(request)
    await response.write(b'{"ok"')
    await asyncio.sleep(10)
    await response.write(b": true}")
    return response


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(60)
    return web.Response()


async def redirect_loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/redirect-loop")


async def redirect_to(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["to"]})


async def echo(request: web.Request) -> web.Response:
    seen[request.match_info.get("key", "echo")].append(
        {"headers": dict(request.headers), "query": dict(request.query), "url": str(request.url)}
    )
    return web.json_response(
        {"headers": dict(request.headers), "query": dict(request.query), "cookies": dict(request.cookies)}
    )


@cache
def _bomb(encoding: str) -> bytes:
    inflated = b"\0" * (100 * 1024 * 1024)
    if encoding == "gzip":
        return gzip.compress(inflated, compresslevel=9)
    import brotli

    return brotli.compress(inflated, quality=5)


async def bomb(request: web.Request) -> web.Response:
    encoding = request.match_info["encoding"]
    body = _bomb(encoding)
    return web.Response(
        body=body,
        headers={"Content-Encoding": "gzip" if encoding == "gzip" else "br", "Content-Type": "application/json"},
    )


@cache
def _gzip_fault(fault: str) -> bytes:
    good = gzip.compress(b'{"ok": true}' + b" " * 4096, mtime=0)
    if fault == "bad-magic":
        return b"this is not gzip at all" + good[2:]
    if fault == "bad-crc":  # the trailer is CRC-32 then the size: flip the CRC
        return good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:]
    if fault == "garbage":  # a valid header, then noise
        return good[:10] + bytes(range(256)) * 8
    return good


async def gzip_fault(request: web.Request) -> web.StreamResponse:
    """A gzip body that is corrupt (bad-magic, bad-crc, garbage) or cut short of its Content-Length (short)."""
    fault = request.match_info["fault"]
    _hit(request.match_info["key"])
    body = _gzip_fault(fault)
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    response.content_length = len(body) + (100 if fault == "short" else 0)
    await response.prepare(request)
    await response.write(body)
    if fault == "short":
        assert request.transport is not None
        request.transport.close()
        return response
    await response.write_eof()
    return response


@cache
def _gzip_members(count: int) -> bytes:
    return gzip.compress(b"\0" * (1024 * 1024), compresslevel=9, mtime=0) * count


async def gzip_members(request: web.Request) -> web.Response:
    """``count`` gzip members of 1 MiB of zeros each, one after the other (RFC 1952 allows it)."""
    _hit(request.match_info["key"])
    body = _gzip_members(int(request.match_info["count"]))
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"})


async def gzip_split_json(request: web.Request) -> web.Response:
    """One JSON document in three gzip members: only all of them decoded make it whole."""
    parts = (b'{"ok": ', b"true, ", b'"members": 3}')
    body = b"".join(gzip.compress(part, mtime=0) for part in parts)
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def stream(request: web.Request) -> web.StreamResponse:
    """``size`` bytes of zeros in 64 KiB chunks; ?length=1 declares the size up front."""
    size = int(request.match_info["size"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if "length" in request.query:
        response.content_length = size
    await response.prepare(request)
    sent = 0
    while sent < size:
        chunk = CHUNK[: min(len(CHUNK), size - sent)]
        await response.write(chunk)
        sent += len(chunk)
    await response.write_eof()
    return response


async def set_cookie(request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    response.set_cookie("session", "s3ss10n")
    return response


async def basic(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Basic YWRhOmxvdmVsYWNlLTQy":  # ada:lovelace-42
        return web.json_response({"ok": False}, status=401)
    return web.json_response({"ok": True})


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


async def digest(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization", "")
    challenge = {
        "WWW-Authenticate": f'Digest realm="{DIGEST_REALM}", nonce="{DIGEST_NONCE}", qop="auth", algorithm=MD5'
    }
    if not header.startswith("Digest "):
        return web.json_response({"ok": False}, status=401, headers=challenge)
    parts = dict(re.findall(r'(\w+)="?([^",]+)"?', header[7:]))
    ha1 = _md5(f"{DIGEST_USER}:{DIGEST_REALM}:{DIGEST_PASSWORD}")
    ha2 = _md5(f"{request.method}:{parts.get('uri', '')}")
    expected = _md5(f"{ha1}:{DIGEST_NONCE}:{parts.get('nc')}:{parts.get('cnonce')}:{parts.get('qop')}:{ha2}")
    if parts.get("response") != expected:
        return web.json_response({"ok": False}, status=401, headers=challenge)
    return web.json_response({"ok": True, "user": parts.get("username")})


async def gateway(request: web.Request) -> web.Response:
    """A ScraperAPI-style gateway: answers for the URL in ?url=, with its final URL in a header."""
    _hit("gateway")
    seen["gateway"].append({"query": dict(request.query)})
    if request.query.get("api_key") != "gw-key-5e1f0a":
        return web.json_response({"error": "bad key"}, status=403)
    real = request.query["url"]
    return web.json_response({"fetched": real, "render": request.query.get("render")}, headers={"sa-final-url": real})


async def proxied(request: web.Request) -> web.Response:
    """Requests that reach this server as a proxy (absolute-form targets)."""
    seen["proxy"].append({"headers": dict(request.headers), "url": str(request.url), "host": request.host})
    return web.json_response({"via": "proxy", "path": request.path})


async def huge_header(request: web.Request) -> web.Response:
    return web.Response(text="{}", headers={"X-Huge": "a" * 200_000}, content_type="application/json")


async def odd_charset(request: web.Request) -> web.Response:
    body = "<html><h1>Caf\u00e9 \u2615</h1></html>".encode("utf-8")
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=no-such-charset"})


async def latin1_json(request: web.Request) -> web.Response:
    return web.Response(
        body='{"name": "Caf\u00e9"}'.encode("latin-1"), headers={"Content-Type": "application/json; charset=iso-8859-1"}
    )


async def empty(request: web.Request) -> web.Response:
    return web.Response(body=b"", content_type="application/json")


async def empty_html(request: web.Request) -> web.Response:
    return web.Response(body=b"", content_type="text/html")


async def undecodable_html(request: web.Request) -> web.Response:
    """Latin-1 bytes under a UTF-8 label: "Caf\xe9" is not UTF-8."""
    body = "<html><h1>Caf\u00e9</h1></html>".encode("latin-1")
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


async def meta_charset_html(request: web.Request) -> web.Response:
    """The charset only in the markup, as many servers send it."""
    body = '<html><head><meta charset="iso-8859-1"></head><h1>Caf\u00e9</h1></html>'.encode("latin-1")
    return web.Response(body=body, headers={"Content-Type": "text/html"})


async def nan_json(request: web.Request) -> web.Response:
    return web.Response(text='{"price": NaN}', content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/flaky/{key}/{n}", flaky)
    app.router.add_get("/limited/{key}", limited)
    app.router.add_get("/stamp/{key}", stamp)
    app.router.add_get("/reset/{key}/{n}", reset)
    app.router.add_get("/truncated/{key}/{n}", truncated)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/hang", hang)
    app.router.add_get("/redirect-loop", redirect_loop)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/echo/{key}", echo)
    app.router.add_get("/bomb/{encoding}", bomb)
    app.router.add_get("/stream/{size}", stream)
    app.router.add_get("/gzip/{fault}/{key}", gzip_fault)
    app.router.add_get("/gzip-members/{key}/{count}", gzip_members)
    app.router.add_get("/gzip-split-json", gzip_split_json)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_get("/basic", basic)
    app.router.add_get("/digest", digest)
    app.router.add_get("/gateway", gateway)
    app.router.add_get("/proxied/{tail:.*}", proxied)
    app.router.add_get("/huge-header", huge_header)
    app.router.add_get("/odd-charset", odd_charset)
    app.router.add_get("/latin1-json", latin1_json)
    app.router.add_get("/empty", empty)
    app.router.add_get("/nan-json", nan_json)
    app.router.add_get("/empty-html", empty_html)
    app.router.add_get("/undecodable-html", undecodable_html)
    app.router.add_get("/meta-charset-html", meta_charset_html)
    return app
