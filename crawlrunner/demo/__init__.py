"""The bundled demo: a small shop served on 127.0.0.1, and the spec that crawls it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .._resources import bundled_path
from ..errors import CrawlRunnerError

if TYPE_CHECKING:
    from ..api import RunResult

DEMO_SPEC = "demo.yaml"


def demo_spec_path() -> Path:
    return bundled_path("examples", DEMO_SPEC)


@asynccontextmanager
async def _shop(port: int) -> AsyncIterator[str]:
    from .site import serve

    try:
        async with serve(port=port) as base_url:
            yield base_url
    except OSError as exc:
        raise CrawlRunnerError(f"cannot serve the demo shop on 127.0.0.1:{port}: {exc.strerror or exc}") from None


async def run_demo(output: str | Path, port: int = 0) -> RunResult:
    """Serve the shop, run the demo spec against it, return the result."""
    from ..api import run_async
    from ..spec import load_spec

    async with _shop(port) as base_url:
        spec = load_spec(demo_spec_path(), base_url=base_url)
        return await run_async(spec, output=output)


async def serve_forever(port: int, echo: Callable[[str], object]) -> None:
    """Serve the shop until cancelled (Ctrl-C)."""
    async with _shop(port) as base_url:
        echo(f"Demo shop at {base_url}/ (JSON under /api/products, HTML under /shop/); Ctrl-C stops it.")
        echo(f"In another terminal:  crawlrunner run {demo_spec_path()} --base-url {base_url}")
        await asyncio.Event().wait()
