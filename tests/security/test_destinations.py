"""Where a crawl may go: ``http.allowed_hosts``, and the link-local rule every run has.

Everything here talks to loopback only. That a redirect from a public
address cannot reach a cloud metadata address that is really there is shown
in a network namespace (``test_network_namespace.py``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from crawlrunner.api import run_async
from crawlrunner.errors import BlockedAddress, SpecError
from crawlrunner.http.guard import Destinations, check_url
from crawlrunner.spec import load_spec, load_spec_text
from crawlrunner.spec.hosts import AllowedHosts, is_link_local

from ..conftest import query
from ..integration import fault_app

Spec = Callable[..., Path]


def _problems(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text, "s.yaml")
    return [(p.line, p.column, p.path, p.message) for p in raised.value.problems]


# -- the spec ------------------------------------------------------------------


def test_a_target_url_off_the_allow_list_is_a_spec_error_at_the_url() -> None:
    problems = _problems(
        "name: a\nhttp: {allowed_hosts: [api.example.com, 'example.com:8443']}\ntargets:\n"
        "  - {name: t, urls: ['https://api.example.com/x', 'https://example.com:8443/', 'https://example.com/']}\n"
        "  - {name: u, url: 'http://other.example/{page}', vars: {page: [1]}}\n"
    )

    assert problems == [
        (4, 80, "targets[0].urls[2]", "example.com:443 is not in http.allowed_hosts"),
        (5, 20, "targets[1].url", "other.example:80 is not in http.allowed_hosts"),
    ]


def test_relative_urls_are_checked_on_the_base_urls_host() -> None:
    problems = _problems(
        "name: a\nhttp: {base_url: 'https://shop.example', allowed_hosts: [cdn.example]}\n"
        "targets:\n  - {name: t, url: /items}\n"
    )

    assert problems == [(4, 20, "targets[0].url", "shop.example:443 is not in http.allowed_hosts")]


def test_hosts_only_known_when_requested_are_left_to_the_run() -> None:
    spec = load_spec_text(
        "name: a\nhttp: {allowed_hosts: ['[::1]:8080', Example.COM]}\ntargets:\n"
        "  - {name: t, url: 'https://{host}/', vars: {host: [elsewhere.example]}}\n"
        "  - {name: u, url: 'https://example.com./x'}\n",
        "s.yaml",
    )

    assert list(spec.http.allowed_hosts) == ["[::1]:8080", "Example.COM"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("example.com:99999", "invalid port '99999': expected a number from 1 to 65535"),
        ("[::1", "unclosed '['"),
        ("https://example.com", "without a scheme or path"),
    ],
)
def test_bad_allow_list_entries_are_spec_errors(entry: str, message: str) -> None:
    problems = _problems(
        f"name: a\nhttp: {{allowed_hosts: ['{entry}']}}\ntargets:\n  - {{name: t, url: 'https://example.org/'}}\n"
    )

    assert any(path == "http.allowed_hosts[0]" and message in text for _, _, path, text in problems), problems


def test_the_allow_list_matches_hosts_and_ports() -> None:
    allowed = AllowedHosts.of(["Example.com", "api.example.com:8443", "[2001:db8::1]:80"])

    assert allowed.allows("example.com", 1234) and allowed.allows("EXAMPLE.com.", 80)
    assert allowed.allows("api.example.com", 8443) and not allowed.allows("api.example.com", 443)
    assert allowed.allows("2001:db8::1", 80) and not allowed.allows("2001:db8::1", 81)
    assert not allowed.allows("sub.example.com", 80)
    assert AllowedHosts.of([]).allows("anything.example", 1)


# -- the run -------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[tuple[int, socket.socket]]:
    """A loopback port that accepts connections into its backlog, so any connection attempt shows."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield int(sock.getsockname()[1]), sock


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


async def test_a_redirect_off_the_allow_list_fails_before_any_connection(
    faults: str, other_origin: str, listening_port: tuple[int, socket.socket], write_spec: Spec, db_path: Path
) -> None:
    port, sock = listening_port
    here = faults.rsplit(":", 1)[1]
    result = await run_async(
        load_spec(
            write_spec(
                "name: a\nhttp: {{base_url: '{base}', retry: null, allowed_hosts: ['127.0.0.1:{here}', '{other}']}}\n"
                "targets:\n  - {{name: t, urls: ['/redirect-to?to=http://127.0.0.1:{port}/x',\n"
                "    '/redirect-to?to={other_origin}/echo/allowed-elsewhere',\n"
                "    '/redirect-to?to=http://localhost:{here}/echo/allowed-by-name']}}\n",
                base=faults,
                here=here,
                port=port,
                other_origin=other_origin,
                other=other_origin.removeprefix("http://"),
            )
        ),
        output=db_path,
    )

    rows = query(db_path, "SELECT url, error_kind, error FROM _crawlrunner_fetch_log ORDER BY id")
    by_url = {str(url).split("to=", 1)[1]: (kind, error) for url, kind, error in rows}
    assert by_url[f"http://127.0.0.1:{port}/x"] == (
        "blocked_address",
        f"127.0.0.1:{port} is not in http.allowed_hosts",
    )
    assert by_url[f"http://localhost:{here}/echo/allowed-by-name"][0] == "blocked_address"  # a name is not its address
    assert by_url[f"{other_origin}/echo/allowed-elsewhere"] == (None, None)
    assert not result.ok
    assert not _connected(sock)  # refused before a socket was opened, not after
    assert len(fault_app.seen["allowed-elsewhere"]) == 1 and not fault_app.seen["allowed-by-name"]


# -- the link-local rule ---------------------------------------------------------


def test_which_addresses_are_link_local_or_metadata() -> None:
    for address in (
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "fd00:ec2::254",
        "100.100.100.200",
    ):
        assert is_link_local(address), address
    for address in ("127.0.0.1", "10.0.0.1", "93.184.216.34", "::1", "fd00::1", "metadata.google.internal"):
        assert not is_link_local(address), address


def test_a_literal_link_local_address_is_refused_only_on_the_way_to_another_host() -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/"):
        check_url(url, block_private=False)  # the request's own host: a device crawled on purpose
        with pytest.raises(BlockedAddress, match="link-local or cloud metadata"):
            check_url(url, block_private=False, leaving_host=True)
    check_url("http://127.0.0.1:8080/", block_private=False, leaving_host=True)  # not link-local: the default allows it


# -- the allow-list on the real destination ----------------------------------------


async def test_through_a_gateway_the_real_destination_is_checked_on_the_allow_list(
    faults: str, write_spec: Spec, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host only known when requested, sent through a gateway: the URL checked is the real one, not the endpoint's."""
    monkeypatch.setenv("CR_GATEWAY_KEY", "gw-key-5e1f0a")
    before = len(fault_app.seen["gateway"])
    result = await run_async(
        load_spec(
            write_spec(
                "name: g\nhttp: {{retry: null, allowed_hosts: ['127.0.0.1:{here}', shop.example]}}\n"
                "defaults:\n  gateway: {{endpoint: '{base}/gateway', api_key: '${{env.CR_GATEWAY_KEY}}'}}\n"
                "targets:\n  - {{name: t, url: 'https://{{h}}/product', vars: {{h: [shop.example, elsewhere.example]}}}}\n",
                base=faults,
                here=faults.rsplit(":", 1)[1],
            )
        ),
        output=db_path,
    )

    assert query(db_path, "SELECT url, error_kind, error FROM _crawlrunner_fetch_log ORDER BY url") == [
        ("https://elsewhere.example/product", "blocked_address", "elsewhere.example:443 is not in http.allowed_hosts"),
        ("https://shop.example/product", None, None),
    ]
    sent = [seen["query"] for seen in fault_app.seen["gateway"][before:]]
    assert [params.get("url") for params in sent if isinstance(params, dict)] == ["https://shop.example/product"]
    assert not result.ok


async def test_through_a_proxy_the_destination_is_checked_and_the_proxy_is_not(
    faults: str, write_spec: Spec, db_path: Path
) -> None:
    before = len(fault_app.seen["proxy"])
    await run_async(
        load_spec(
            write_spec(
                "name: p\nhttp: {{proxy: '{proxy}', retry: null, allowed_hosts: [far.example]}}\n"
                "targets:\n  - {{name: t, url: 'http://{{h}}/proxied/page', vars: {{h: [far.example, near.example]}}}}\n",
                proxy=faults,
            )
        ),
        output=db_path,
    )

    assert query(db_path, "SELECT url, error_kind, error FROM _crawlrunner_fetch_log ORDER BY url") == [
        ("http://far.example/proxied/page", None, None),
        ("http://near.example/proxied/page", "blocked_address", "near.example:80 is not in http.allowed_hosts"),
    ]
    assert [seen["host"] for seen in fault_app.seen["proxy"][before:]] == ["far.example"]


def test_a_gateway_endpoint_off_the_allow_list_is_a_spec_error_where_it_is_written() -> None:
    problems = _problems(
        "name: a\nhttp: {allowed_hosts: [shop.example, 'gw.example:8443']}\n"
        "defaults:\n  gateway: {endpoint: 'https://api.gw.example/', api_key: k}\ntargets:\n"
        "  - {name: t, url: 'https://shop.example/', gateway: {endpoint: 'https://gw.example:8443/', api_key: k}}\n"
        "  - {name: u, url: 'https://shop.example/u', gateway: {endpoint: 'https://gw.example/', api_key: k}}\n"
        "  - {name: v, url: 'https://shop.example/v'}\n"
        "  - {name: w, url: 'https://shop.example/w'}\n"
    )

    assert problems == [
        (4, 23, "defaults.gateway.endpoint", "the gateway's endpoint api.gw.example:443 is not in http.allowed_hosts"),
        (7, 66, "targets[1].gateway.endpoint", "the gateway's endpoint gw.example:443 is not in http.allowed_hosts"),
    ]


async def test_robots_txt_is_not_asked_for_a_host_off_the_allow_list(
    faults: str, write_spec: Spec, db_path: Path
) -> None:
    """A link-following target's request to a host off the list is blocked_address, not robots_unreachable."""
    here = faults.rsplit(":", 1)[1]
    await run_async(
        load_spec(
            write_spec(
                "name: r\nhttp: {{retry: null, allowed_hosts: ['127.0.0.1:{here}']}}\ntargets:\n"
                "  - {{name: t, url: 'http://{{h}}:{here}/echo/robots-off-list', vars: {{h: [localhost]}},"
                " follow: {{robots: true}}}}\n",
                here=here,
            )
        ),
        output=db_path,
    )

    assert query(db_path, "SELECT error_kind, error FROM _crawlrunner_fetch_log") == [
        ("blocked_address", f"localhost:{here} is not in http.allowed_hosts")
    ]


# -- IPv6 entries ---------------------------------------------------------------------


def test_ipv6_entries_match_however_the_address_is_written() -> None:
    spec = load_spec_text(
        "name: a\nhttp: {allowed_hosts: ['[::FFFF:1.2.3.4]:80', '[2001:DB8:0::1]']}\ntargets:\n"
        "  - {name: t, urls: ['http://[::ffff:1.2.3.4]/', 'https://[2001:db8::1]:8443/']}\n",
        "s.yaml",
    )
    # yarl (so aiohttp) writes the first as [::ffff:102:304]: it is the same address.
    assert AllowedHosts.of(spec.http.allowed_hosts).allows("::ffff:102:304", 80)
    destinations = Destinations.of(spec.http.allowed_hosts, block_private=False)
    destinations.check("http://[::ffff:1.2.3.4]/")
    destinations.check("http://[::FFFF:0102:0304]:80/x")
    destinations.check("https://[2001:0db8::0001]:8443/")
    with pytest.raises(BlockedAddress, match=r"\[::ffff:102:304\]:81 is not in http.allowed_hosts"):
        destinations.check("http://[::ffff:1.2.3.4]:81/")


def test_a_bare_ipv6_entry_is_told_to_use_brackets() -> None:
    problems = _problems(
        "name: a\nhttp: {allowed_hosts: ['2001:db8::abcd']}\ntargets:\n  - {name: t, url: 'https://example.org/'}\n"
    )

    assert [(path, text) for _, _, path, text in problems if path.startswith("http")] == [
        ("http.allowed_hosts[0]", "an IPv6 address needs brackets: '[2001:db8::abcd]' or '[2001:db8::abcd]:port'")
    ]
