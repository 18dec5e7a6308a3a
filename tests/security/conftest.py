from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..conftest import ThreadedServer
from ..integration import fault_app


@pytest.fixture(scope="module")
def faults() -> Iterator[str]:
    with ThreadedServer(fault_app.make_app()) as running:
        yield running.url


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    with ThreadedServer(fault_app.make_app()) as running:
        yield running.url
