"""The engine against a misbehaving server: retries, politeness, auth, TLS,
limits, redirects, the gateway and proxies. Each test asserts on what the
server saw (hits, timings, headers) as well as on what was stored."""

from __future__ import annotations

import hashlib
import logging
import resource
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from crawlrunner.api import RunResult, run_async
from crawlrunner.spec import load_spec

from ..conftest import ThreadedServer, query
from . import fault_app

Spec = Callable[..., Path]


async def _run(write_spec: Spec, db_path: Path, text: str, **values: object) -> RunResult:
    return await run_async(load_spec(write_spec(text, **values)), output=db_path)


def _log(db_path: Path, columns: str = "url, status, attempts, error_kind") -> list[tuple[object, ...]]:
    return query(db_path, f"SELECT {columns} FROM _crawlrunner_fetch_log ORDER BY id")


# -- retries -----------------------------------------------------------------


async def test_a_flaky_url_is_retried_until_it_succeeds(faults: str, write_spec: Spec, db_path: Path) -> None:
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{attempts: 4, backoff: 0.01}}, rate_limit: {{cooldown: 0}}}}\n"
        "targets:\n  - {{name: t, url: /flaky/retry-ok/2, extract: {{fields: {{ok: ok}}}}}}\n",
        base=faults,
    )  # fmt: skip

    assert result.ok
    assert fault_app.hits["retry-ok"] == 3
    assert _log(db_path, "status, attempts, error_kind") == [(200, 3, None)]
    assert query(db_path, "SELECT ok FROM t") == [(1,)]


async def test_retries_are_bounded_and_the_reason_is_recorded(faults: str, write_spec: Spec, db_path: Path) -> None:
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{attempts: 3, backoff: 0.01}}, rate_limit: {{cooldown: 0}}}}\n"
        "targets:\n  - {{name: t, urls: [/flaky/retry-never/99, /status-missing]}}\n",
        base=faults,
    )  # fmt: skip

    assert fault_app.hits["retry-never"] == 3
    rows = query(db_path, "SELECT status, attempts, error_kind, error FROM _crawlrunner_fetch_log ORDER BY url")
    assert rows[0] == (503, 3, "http_status", "HTTP 503 Service Unavailable (gave up after 3 attempts)")
    assert rows[1][:3] == (404, 1, "http_status")  # other 4xx: never retried


@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_retry_after_is_honoured_in_both_forms(form: str, faults: str, write_spec: Spec, db_path: Path) -> None:
    key = f"retry-after-{form}"
    query_string = "after=1" if form == "seconds" else "after=2&date=1"
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{backoff: 0.01}}, rate_limit: {{cooldown: 0}}}}\n"
        "targets:\n  - {{name: t, url: '/limited/{key}?{qs}'}}\n",
        base=faults, key=key, qs=query_string,
    )  # fmt: skip

    assert result.ok
    first, second = fault_app.stamps[key]
    assert second - first >= 0.95  # an HTTP date has one-second resolution
    assert _log(db_path, "status, attempts") == [(200, 2)]


async def test_a_retry_after_beyond_the_maximum_fails_at_once(faults: str, write_spec: Spec, db_path: Path) -> None:
    started = time.monotonic()
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{max_retry_after: 60}}}}\n"
        "targets:\n  - {{name: t, url: '/limited/too-long?after=3600'}}\n",
        base=faults,
    )  # fmt: skip

    assert time.monotonic() - started < 5
    kind, error = query(db_path, "SELECT error_kind, error FROM _crawlrunner_fetch_log")[0]
    assert kind == "retry_after_too_long"
    assert "Retry-After of 3600 s exceeds max_retry_after (60 s)" in str(error)


# aiohttp itself resends a GET once when the connection drops before any
# response byte, so the reset case drops it twice to reach our policy.
@pytest.mark.parametrize(("route", "failures", "hits"), [("reset", 2, 3), ("truncated", 1, 2)])
async def test_resets_and_truncated_bodies_are_retried(
    route: str, failures: int, hits: int, faults: str, write_spec: Spec, db_path: Path
) -> None:
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{backoff: 0.01}}}}\n"
        "targets:\n  - {{name: t, url: /{route}/{route}/{failures}, extract: {{fields: {{ok: ok}}}}}}\n",
        base=faults, route=route, failures=failures,
    )  # fmt: skip

    assert result.ok
    assert fault_app.hits[route] == hits
    assert _log(db_path, "status, attempts") == [(200, 2)]
    assert query(db_path, "SELECT ok FROM t") == [(1,)]


async def test_a_truncated_body_that_stays_truncated_is_a_payload_error(
    faults: str, write_spec: Spec, db_path: Path
) -> None:
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: null}}\ntargets:\n  - {{name: t, url: /truncated/always/9}}\n",
        base=faults,
    )  # fmt: skip

    assert _log(db_path, "attempts, error_kind") == [(1, "payload_error")]


# Corruption is in the bytes the server sends: asking again gets the same
# bytes, so it fails at once. A body cut short is the network: asked again.
@pytest.mark.parametrize(
    ("fault", "kind", "hits"),
    [("bad-magic", "decode_error", 1), ("bad-crc", "decode_error", 1), ("garbage", "decode_error", 1),
     ("short", "payload_error", 3)],
)  # fmt: skip
async def test_a_corrupt_gzip_body_is_not_retried_and_a_short_one_is(
    fault: str, kind: str, hits: int, faults: str, write_spec: Spec, db_path: Path
) -> None:
    key = f"gzip-{fault}"
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: {{attempts: 3, backoff: 0.01}}}}\n"
        "targets:\n  - {{name: t, url: /gzip/{fault}/{key}, extract: {{fields: {{ok: ok}}}}}}\n",
        base=faults, fault=fault, key=key,
    )  # fmt: skip

    assert _log(db_path, "attempts, error_kind") == [(hits, kind)]
    assert fault_app.hits[key] == hits
    assert query(db_path, "SELECT count(*) FROM t") == [(0,)]


async def test_every_gzip_member_is_decoded(faults: str, write_spec: Spec, db_path: Path) -> None:
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}'}}\n"
        "targets:\n  - {{name: t, url: /gzip-split-json, extract: {{fields: {{ok: ok, members: members}}}}}}\n",
        base=faults,
    )  # fmt: skip

    assert result.ok
    assert query(db_path, "SELECT ok, members FROM t") == [(1, 3)]


async def test_gzip_members_past_the_limit_stop_at_the_limit_once(faults: str, write_spec: Spec, db_path: Path) -> None:
    fault_app._gzip_members(200)  # build the body before measuring
    before = _max_rss_mb()
    started = time.monotonic()
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', max_body_bytes: 5000000, retry: {{attempts: 3, backoff: 0.01}}}}\n"
        "targets:\n  - {{name: t, url: /gzip-members/members/200}}\n",
        base=faults,
    )  # fmt: skip

    # 200 MiB inflated from 200 members: refused at 5 MB, in one attempt.
    assert _log(db_path, "attempts, error_kind") == [(1, "body_too_large")]
    assert fault_app.hits["members"] == 1
    assert time.monotonic() - started < 10
    assert _max_rss_mb() - before < 50


# -- timeouts and pools --------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "timeout"),
    [("/hang", "{total: 0.5}"), ("/slow-body", "{sock_read: 0.3}")],
    ids=["hang-total", "slow-body-sock-read"],
)
async def test_timeouts(route: str, timeout: str, faults: str, write_spec: Spec, db_path: Path) -> None:
    started = time.monotonic()
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', retry: null, timeout: {timeout}}}\ntargets:\n  - {{name: t, url: '{route}'}}\n",
        base=faults, route=route, timeout=timeout,
    )  # fmt: skip

    assert time.monotonic() - started < 3
    assert _log(db_path, "error_kind") == [("timeout",)]


async def test_a_deadline_starts_when_the_request_can_be_sent_not_in_the_queue(
    faults: str, write_spec: Spec, db_path: Path
) -> None:
    """200 URLs, 10 connections, a 3 s total timeout, 1 s per response: no timeouts."""
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp:\n  base_url: '{base}'\n  timeout: {{total: 3}}\n  limits: {{connections: 10, per_host: 10}}\n"
        "targets:\n  - name: t\n    url: '/stamp/queue?sleep=1&n={{n}}'\n    vars: {{n: {{from: 1, to: 200}}}}\n",
        base=faults,
    )  # fmt: skip

    assert result.ok, result.totals.failures
    assert fault_app.hits["queue"] == 200
    assert query(db_path, "SELECT count(*), max(attempts) FROM _crawlrunner_fetch_log WHERE error_kind IS NULL") == [
        (200, 1)
    ]


async def test_a_per_host_limit_below_the_pool_does_not_starve_requests(
    faults: str, write_spec: Spec, db_path: Path
) -> None:
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp:\n  base_url: '{base}'\n  timeout: {{total: 0.5}}\n  retry: null\n"
        "  limits: {{connections: 16, per_host: 2}}\n"
        "targets:\n  - name: t\n    url: '/stamp/starve?sleep=0.1&n={{n}}'\n    vars: {{n: {{from: 1, to: 30}}}}\n",
        base=faults,
    )  # fmt: skip

    assert result.ok, result.totals.failures
    assert fault_app.hits["starve"] == 30


# -- politeness ---------------------------------------------------------------


@pytest.mark.parametrize(("rule", "spacing"), [("{per_second: 10}", 0.1), ("{min_delay: 0.2}", 0.2)])
async def test_rate_limits_space_requests_to_a_host(
    rule: str, spacing: float, faults: str, write_spec: Spec, db_path: Path
) -> None:
    key = f"rate-{spacing}"
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', rate_limit: {rule}, limits: {{connections: 8}}}}\n"
        "targets:\n  - {{name: t, url: '/stamp/{key}?n={{n}}', vars: {{n: {{from: 1, to: 6}}}}}}\n",
        base=faults, rule=rule, key=key,
    )  # fmt: skip

    times = sorted(fault_app.stamps[key])
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 6
    assert min(gaps) >= spacing * 0.9, gaps


async def test_a_429_cools_the_whole_host_down(faults: str, write_spec: Spec, db_path: Path) -> None:
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', rate_limit: {{cooldown: 1}}, retry: {{backoff: 0.01}},"
        " limits: {{connections: 4}}}}\n"
        "targets:\n  - name: first\n    url: '/limited/cool-429?after=1'\n"
        "  - {{name: rest, url: '/stamp/cool-rest?sleep=0.3&n={{n}}', vars: {{n: {{from: 1, to: 6}}}}}}\n",
        base=faults,
    )  # fmt: skip

    # Requests already in flight when the 429 came back arrive with it; every
    # later one, for any URL on the host, waits out the pause (its Retry-After).
    the_429 = fault_app.stamps["cool-429"][0]
    later = [t - the_429 for t in fault_app.stamps["cool-rest"] if t - the_429 > 0.05]
    assert later, "some requests should have been sent after the 429"
    assert min(later) >= 0.9, later
    assert fault_app.stamps["cool-429"][1] - the_429 >= 0.9  # the retry waited too


# -- redirects and credentials ------------------------------------------------------


async def test_redirect_loops_and_non_http_redirects_fail_cleanly(faults: str, write_spec: Spec, db_path: Path) -> None:
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', max_redirects: 5}}\ntargets:\n  - name: t\n    urls:\n"
        "      - /redirect-loop\n      - '/redirect-to?to=file:///etc/passwd'\n      - '/redirect-to?to=ftp://example.com/x'\n"
        "      - '/redirect-to?to=data:text/plain,hi'\n",
        base=faults,
    )  # fmt: skip

    kinds = [k for (k,) in query(db_path, "SELECT error_kind FROM _crawlrunner_fetch_log ORDER BY id")]
    assert sorted(kinds) == ["redirect_refused", "redirect_refused", "redirect_refused", "too_many_redirects"]


async def test_credentials_never_follow_a_redirect_to_another_origin(
    faults: str, other_origin: str, write_spec: Spec, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_TEST_HEADER_SECRET", "hdr-9c0ffee1")
    monkeypatch.setenv("CR_TEST_QUERY_KEY", "qry-7b00b5e2")
    text = (
        "name: r\nhttp: {{base_url: '{base}', auth: {{type: api_key, name: X-Api-Key, value: key-4c1d5a}}}}\n"
        "targets:\n  - name: t\n"
        "    url: '/redirect-to?to={target}&sig=${{env.CR_TEST_QUERY_KEY}}'\n"
        "    headers: {{X-Custom-Token: '${{env.CR_TEST_HEADER_SECRET}}', Authorization: Bearer tok-11aa, X-Plain: kept}}\n"
    )
    await _run(write_spec, db_path, text, base=faults, target=f"{other_origin}/echo/elsewhere?page=2")
    await _run(write_spec, db_path, text, base=faults, target=f"{faults}/echo/same-origin")

    elsewhere = fault_app.seen["elsewhere"][-1]
    sent = {k.lower(): v for k, v in elsewhere["headers"].items()}  # type: ignore[union-attr]
    assert "x-api-key" not in sent and "authorization" not in sent and "x-custom-token" not in sent
    assert sent["x-plain"] == "kept"
    assert elsewhere["query"] == {"page": "2"}
    same = {k.lower(): v for k, v in fault_app.seen["same-origin"][-1]["headers"].items()}  # type: ignore[union-attr]
    assert same["x-api-key"] == "key-4c1d5a" and same["authorization"] == "Bearer tok-11aa"


# -- auth and cookies -------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "auth"),
    [
        ("/basic", "{type: basic, username: ada, password: lovelace-42}"),
        ("/digest", "{type: digest, username: ada, password: lovelace-42}"),
        ("/echo/bearer", "{type: bearer, token: t0k3n-abc}"),
        ("/echo/apikey-query", "{type: api_key, name: key, value: k3y-abc, in: query}"),
    ],
    ids=["basic", "digest", "bearer", "api-key-query"],
)
async def test_auth_kinds(route: str, auth: str, faults: str, write_spec: Spec, db_path: Path) -> None:
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', auth: {auth}}}\ntargets:\n  - {{name: t, url: '{route}'}}\n",
        base=faults, auth=auth, route=route,
    )  # fmt: skip

    assert result.ok, query(db_path, "SELECT status, error FROM _crawlrunner_fetch_log")
    if route == "/echo/bearer":
        assert fault_app.seen["bearer"][-1]["headers"]["Authorization"] == "Bearer t0k3n-abc"  # type: ignore[index]
    if route == "/echo/apikey-query":
        assert fault_app.seen["apikey-query"][-1]["query"] == {"key": "k3y-abc"}
        assert query(db_path, "SELECT url FROM _crawlrunner_fetch_log") == [(f"{faults}/echo/apikey-query",)]
    for path in db_path.parent.glob("out.db*"):
        data = path.read_bytes()
        assert b"lovelace-42" not in data and b"t0k3n-abc" not in data and b"k3y-abc" not in data


async def test_one_cookie_jar_per_run_with_initial_cookies(faults: str, write_spec: Spec, db_path: Path) -> None:
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', cookies: {{theme: dark}}, limits: {{connections: 1}}}}\n"
        "targets:\n  - {{name: login, url: /set-cookie}}\n"
        "  - name: page\n    url: /echo/cookies\n    extract: {{fields: {{cookies: {{jmespath: cookies, type: json}}}}}}\n",
        base=faults,
    )  # fmt: skip

    assert query(db_path, "SELECT cookies FROM page") == [('{"session": "s3ss10n", "theme": "dark"}',)]


# -- bounded resources ---------------------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("encoding", ["gzip", "brotli"])
async def test_decompression_bombs_stop_at_the_limit(
    encoding: str, faults: str, write_spec: Spec, db_path: Path
) -> None:
    fault_app._bomb(encoding)  # build the bomb before measuring
    before = _max_rss_mb()
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', max_body_bytes: 1000000, retry: null}}\n"
        "targets:\n  - {{name: t, url: /bomb/{encoding}}}\n",
        base=faults, encoding=encoding,
    )  # fmt: skip

    assert _log(db_path, "error_kind") == [("body_too_large",)]
    assert _max_rss_mb() - before < 50


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_2_gb_body_with_a_10_mb_limit_is_refused_within_seconds(
    declared: bool, faults: str, write_spec: Spec, db_path: Path
) -> None:
    before = _max_rss_mb()
    started = time.monotonic()
    await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', max_body_bytes: 10485760, retry: null}}\n"
        "targets:\n  - {{name: t, url: '/stream/2000000000{length}'}}\n",
        base=faults, length="?length=1" if declared else "",
    )  # fmt: skip

    assert time.monotonic() - started < 10
    assert _log(db_path, "error_kind") == [("body_too_large",)]
    assert _max_rss_mb() - before < 60


async def test_downloads_stream_to_files_with_flat_memory(
    faults: str, write_spec: Spec, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    size = 64 * 1024 * 1024
    before = _max_rss_mb()
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{base_url: '{base}', download_dir: files}}\n"
        "targets:\n  - {{name: t, url: '/stream/{size}?length=1', download: true}}\n",
        base=faults, size=size,
    )  # fmt: skip

    assert result.ok
    ((path, size_logged),) = query(db_path, "SELECT body_path, bytes FROM _crawlrunner_fetch_log")
    assert size_logged == size and Path(str(path)).stat().st_size == size
    assert Path(str(path)).parent == Path("files").resolve() or Path(str(path)).parent.name == "files"
    assert not list((tmp_path / "files").glob("*.part"))
    assert _max_rss_mb() - before < 40


# -- TLS -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """An HTTPS server with a certificate from a throwaway CA: (url, CA file, SHA-256 fingerprint)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    folder = tmp_path_factory.mktemp("tls")
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    with ThreadedServer(fault_app.make_app(), ssl_context=context) as running:
        yield running.url, ca_file, hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    ("tls", "ok"),
    [
        ("{}", False),
        ("{ca_bundle: CA}", True),
        ("{fingerprint: FP}", True),
        ("{fingerprint: '00000000000000000000000000000000000000000000000000000000000000ff'}", False),
        ("{verify: false}", True),
    ],
    ids=["verified-by-default", "ca-bundle", "pinned", "wrong-pin", "verify-off"],
)
async def test_tls_verification_bundles_and_pinning(
    tls: str,
    ok: bool,
    tls_site: tuple[str, Path, str],
    write_spec: Spec,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, ca_file, fingerprint = tls_site
    tls = tls.replace("CA", str(ca_file)).replace("FP", ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)))
    text = "name: r\nhttp: {{base_url: '{base}', tls: {tls}, retry: null}}\ntargets:\n  - {{name: t, url: /echo/tls}}\n"
    with caplog.at_level(logging.WARNING, logger="crawlrunner"):
        # Verification off runs only when the caller allows it.
        spec = load_spec(write_spec(text, base=url, tls=tls))
        result = await run_async(spec, output=db_path, insecure="verify: false" in tls)

    assert result.ok is ok, query(db_path, "SELECT error FROM _crawlrunner_fetch_log")
    if not ok:
        assert _log(db_path, "error_kind") == [("connect_error",)]
    if "verify: false" in tls:
        assert "TLS certificate verification is OFF" in caplog.text


# -- gateway and proxy ------------------------------------------------------------


async def test_the_gateway_gets_the_real_url_and_key_and_rows_keep_the_real_url(
    faults: str, write_spec: Spec, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_GATEWAY_KEY", "gw-key-5e1f0a")
    result = await _run(
        write_spec, db_path,
        "name: r\ndefaults:\n  gateway: {{endpoint: '{base}/gateway', api_key: '${{env.CR_GATEWAY_KEY}}',"
        " render: true, country_code: us, premium: false}}\n"
        "targets:\n  - name: t\n    url: 'https://shop.example/product?id=7'\n"
        "    extract: {{fields: {{fetched: fetched, render: render, url: {{meta: final_url}}}}}}\n",
        base=faults,
    )  # fmt: skip

    assert result.ok, query(db_path, "SELECT error FROM _crawlrunner_fetch_log")
    sent = fault_app.seen["gateway"][-1]["query"]
    assert sent == {
        "api_key": "gw-key-5e1f0a", "url": "https://shop.example/product?id=7",
        "render": "true", "country_code": "us", "premium": "false",
    }  # fmt: skip
    assert query(db_path, "SELECT url, final_url FROM _crawlrunner_fetch_log") == [
        ("https://shop.example/product?id=7",) * 2
    ]
    assert query(db_path, "SELECT fetched, render, url FROM t") == [
        ("https://shop.example/product?id=7", "true", "https://shop.example/product?id=7")
    ]
    for path in db_path.parent.glob("out.db*"):
        assert b"gw-key-5e1f0a" not in path.read_bytes()
    assert (
        load_spec(
            write_spec(
                "name: g\ntargets:\n  - {name: t, url: 'https://x/', gateway: {endpoint: 'https://g/', api_key: k-123}}\n"
            )
        )
        .targets[0]
        .timeout.total
        == 70
    )


async def test_requests_go_through_a_proxy_with_credentials(faults: str, write_spec: Spec, db_path: Path) -> None:
    proxy = faults.replace("http://", "http://puser:ppass@")
    result = await _run(
        write_spec, db_path,
        "name: r\nhttp: {{proxy: '{proxy}', retry: null}}\ntargets:\n  - {{name: t, url: 'http://far.example/proxied/page'}}\n",
        proxy=proxy,
    )  # fmt: skip

    assert result.ok, query(db_path, "SELECT error FROM _crawlrunner_fetch_log")
    seen = fault_app.seen["proxy"][-1]
    assert seen["host"] == "far.example"
    assert seen["headers"]["Proxy-Authorization"] == "Basic cHVzZXI6cHBhc3M="  # type: ignore[index]
    for path in db_path.parent.glob("out.db*"):
        assert b"ppass" not in path.read_bytes()
