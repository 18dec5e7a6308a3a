"""robots.txt under RFC 9309, against a real server: 4xx allows all, 5xx and
network errors disallow all with the reason, classified like any fetch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crawlrunner.errors import ErrorKind
from crawlrunner.http.robots import DISALLOWED, RobotsPolicy

TIMEOUT = aiohttp.ClientTimeout(total=5)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@asynccontextmanager
async def _origin(status: int, body: str = "") -> AsyncIterator[str]:
    async def robots(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_missing_robots_txt_allows_everything(status: int, session: aiohttp.ClientSession) -> None:
    async with _origin(status, "User-agent: *\nDisallow: /\n") as origin:
        assert await RobotsPolicy(session, "t", TIMEOUT).verdict(f"{origin}/private") is None


async def test_a_robots_txt_rule_disallows(session: aiohttp.ClientSession) -> None:
    async with _origin(200, "User-agent: *\nDisallow: /private\n") as origin:
        policy = RobotsPolicy(session, "t", TIMEOUT)
        assert await policy.verdict(f"{origin}/private") == DISALLOWED
        assert await policy.verdict(f"{origin}/public") is None


async def test_a_server_error_disallows_everything_with_the_reason(session: aiohttp.ClientSession) -> None:
    async with _origin(503) as origin:
        verdict = await RobotsPolicy(session, "t", TIMEOUT).verdict(f"{origin}/anything")
    assert verdict == (
        f"{origin}/robots.txt is unreachable ({ErrorKind.HTTP_STATUS}: HTTP 503 Service Unavailable);"
        f" nothing on {origin} may be fetched"
    )


async def test_a_network_error_disallows_everything_with_the_reason(
    session: aiohttp.ClientSession, closed_port: int
) -> None:
    origin = f"http://127.0.0.1:{closed_port}"
    verdict = await RobotsPolicy(session, "t", TIMEOUT).verdict(f"{origin}/anything")
    assert verdict is not None and verdict != DISALLOWED
    assert verdict.startswith(f"{origin}/robots.txt is unreachable ({ErrorKind.CONNECT_ERROR}: ")
