"""A redirect from a public site to a cloud metadata service that is really there, in a network namespace.

On loopback alone a public address cannot redirect anywhere (loopback is not
public), and outside a namespace 169.254.169.254 may be a real metadata
service. So the crawl runs in a namespace of its own with only loopback up,
where 93.184.216.34 (a public address) and 169.254.169.254 are added to
loopback and a fake metadata service listens and counts connections
(``netns_scenario.py``). That proves what a test of the rule alone cannot:
the redirects are refused before a connection, since a service that would
have answered saw none; a name is refused on the address it resolves to; and
the direct request shows the service was reachable all along.

Needs root and iproute2's ``ip netns`` (CI runs as root); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO

PUBLIC, METADATA = "93.184.216.34", "169.254.169.254"
SCENARIO_SECONDS = 50


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    """A network namespace with only loopback up, two extra addresses on it and its own /etc/hosts."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip command is not installed")
    if os.geteuid() != 0:
        pytest.skip("ip netns needs root")
    name = f"crawlrunner-test-{uuid.uuid4().hex[:8]}"
    created = _ip("netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"ip netns add failed: {created.stderr.strip()}")
    # `ip netns exec` mounts /etc/netns/<name>/hosts over /etc/hosts for what it runs.
    etc = Path("/etc/netns") / name
    try:
        etc.mkdir(parents=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{PUBLIC} public.test\n{METADATA} metadata.test\n")
        for step in (
            ("-n", name, "link", "set", "lo", "up"),
            ("-n", name, "addr", "add", f"{PUBLIC}/32", "dev", "lo"),
            ("-n", name, "addr", "add", f"{METADATA}/32", "dev", "lo"),
            ("netns", "exec", name, "true"),  # a container may allow the namespace but not the mounts exec makes
        ):
            done = _ip(*step)
            if done.returncode != 0:
                pytest.skip(f"cannot set up the namespace (ip {' '.join(step)}): {done.stderr.strip()}")
        yield name
    finally:
        _ip("netns", "delete", name)
        shutil.rmtree(etc, ignore_errors=True)
        if etc.parent.exists() and not any(etc.parent.iterdir()):
            etc.parent.rmdir()


@pytest.fixture(scope="module")
def report(namespace: str) -> dict[str, Any]:
    """What ``netns_scenario`` reports, run once for the tests of this module."""
    ran = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "tests.security.netns_scenario"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SCENARIO_SECONDS,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    scenario: dict[str, Any] = json.loads(ran.stdout)
    return scenario


def test_a_public_redirect_never_reaches_the_metadata_service(report: dict[str, Any]) -> None:
    by_target = {str(url).split("to=", 1)[1]: (kind, error) for url, _, kind, error in report["refused"]}
    for url in (
        f"http://{METADATA}/latest/meta-data/",
        "http://metadata.test/latest/meta-data/",
        f"http://[::ffff:{METADATA}]/latest/meta-data/",
    ):
        kind, error = by_target[url]
        assert kind == "blocked_address", (url, error)
        assert "link-local or cloud metadata" in error
    assert "metadata.test resolves to 169.254.169.254" in by_target["http://metadata.test/latest/meta-data/"][1]
    assert by_target["/ok"] == (None, None)
    assert report["connections_after_refused"] == 0  # refused before a connection, not after one

    ((url, status, kind, _),) = report["direct"]
    assert (status, kind) == (200, None)
    assert report["connections_after_direct"] == 1


@pytest.mark.parametrize("run", ["cached", "kept", "redirect_first", "concurrent", "joined"])
def test_a_redirect_is_refused_whoever_resolved_the_name_first(report: dict[str, Any], run: str) -> None:
    """One run fetches metadata.test directly (allowed) while another target is redirected there (refused).

        aiohttp skips the resolver, where the rule is applied, for an answer it
        cached, for a lookup another request started, and for a kept-alive
        connection. The runs (``netns_scenario.mixed``) give the redirect each of
        those chances: the direct request first with its answer cached
        (``cached``), first with its connection kept alive and no DNS cache
        (``kept``), after the redirect (``redirect_first``: the redirect's
        refusal must not stick to the name), and both at once with a slow lookup
        so the two overlap, the direct lookup first (``concurrent``) or the
    redirect's (``joined``), which must not hand its refusal to the direct
    request. In every one the redirect is
        ``blocked_address`` and the service, which answers everything, was sent
        only the direct request.
    """
    mixed = report["mixed"][run]
    rows = mixed["rows"]
    assert rows["direct"][:2] == [200, None], rows
    status, kind, error = rows["redirected"]
    assert (status, kind) == (None, "blocked_address"), rows
    assert "metadata.test resolves to 169.254.169.254" in error and "link-local or cloud metadata" in error
    assert mixed["requests"] == [f"/direct/{'close' if run == 'cached' else 'kept'}"]
    if run in ("concurrent", "joined"):
        assert mixed["overlapped"]  # two lookups of the name were under way at once: none was shared
