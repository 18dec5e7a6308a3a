"""Settings precedence: built-in defaults < run-wide http < defaults block < a target's own keys."""

from __future__ import annotations

import pytest

from crawlrunner import __version__
from crawlrunner.errors import SpecError
from crawlrunner.plan import plan_target
from crawlrunner.settings import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_USER_AGENT,
    UNLIMITED_POOL_WORKERS,
    FetchSettings,
    HttpSettings,
    Limits,
    Timeouts,
)
from crawlrunner.spec import Spec, load_spec_text


def spec_of(text: str) -> Spec:
    return load_spec_text(text, "s.yaml", environ={})


def headers_of(spec: Spec, target: str) -> dict[str, str]:
    """The headers the target's first request is sent with."""
    return dict(next(plan_target(spec.target(target))).headers)


# --- Timeouts.merged ------------------------------------------------------------


def test_defaults() -> None:
    assert Timeouts() == Timeouts(total=60.0, connect=None, sock_connect=10.0, sock_read=None)
    assert Limits() == Limits(connections=16, per_host=8)
    http = HttpSettings()
    assert http.user_agent == DEFAULT_USER_AGENT
    # The body limit is a request setting now (http, defaults or a target).
    assert FetchSettings().max_body_bytes == DEFAULT_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert http.base_url is None
    assert dict(http.headers) == {}


def test_default_user_agent_names_the_version() -> None:
    assert DEFAULT_USER_AGENT.startswith(f"crawlrunner/{__version__} ")


@pytest.mark.parametrize("overrides", [None, {}])
def test_merged_with_nothing_is_unchanged(overrides: dict[str, float] | None) -> None:
    base = Timeouts(total=5.0)
    assert base.merged(overrides) is base


def test_merged_present_key_overrides_absent_key_keeps() -> None:
    merged = Timeouts().merged({"total": 12.5, "connect": 3})
    assert merged == Timeouts(total=12.5, connect=3, sock_connect=10.0, sock_read=None)


def test_merged_present_null_switches_a_timeout_off() -> None:
    merged = Timeouts().merged({"total": None, "sock_connect": None})
    assert merged == Timeouts(total=None, connect=None, sock_connect=None, sock_read=None)


def test_merged_null_can_be_switched_back_on() -> None:
    off = Timeouts().merged({"sock_connect": None})
    assert off.merged({"sock_connect": 4}).sock_connect == 4


def test_merged_ignores_unknown_keys_and_does_not_mutate() -> None:
    base = Timeouts()
    merged = base.merged({"total": 1, "bogus": 2})
    assert merged.total == 1
    assert base.total == 60.0
    assert not hasattr(merged, "bogus")


def test_limits_workers() -> None:
    assert Limits(connections=3).workers == 3
    assert Limits(connections=0).workers == UNLIMITED_POOL_WORKERS


# --- precedence through a spec ------------------------------------------------------


TIMEOUTS = """\
name: timeouts
http:
  timeout: {total: 20, sock_read: null}
targets:
  - name: inherits
    url: https://example.com/a
  - name: overrides
    url: https://example.com/b
    timeout: {total: 5, sock_connect: 2}
  - name: switches_off
    url: https://example.com/c
    timeout: {total: null}
  - name: switches_back_on
    url: https://example.com/d
    timeout: {sock_read: 7}
"""


def test_run_wide_timeouts_apply_over_the_defaults() -> None:
    spec = spec_of(TIMEOUTS)
    assert spec.http.timeout == Timeouts(total=20, connect=None, sock_connect=10.0, sock_read=None)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("inherits", Timeouts(total=20, connect=None, sock_connect=10.0, sock_read=None)),
        ("overrides", Timeouts(total=5, connect=None, sock_connect=2, sock_read=None)),
        ("switches_off", Timeouts(total=None, connect=None, sock_connect=10.0, sock_read=None)),
        ("switches_back_on", Timeouts(total=20, connect=None, sock_connect=10.0, sock_read=7)),
    ],
)
def test_target_timeouts_override_run_wide_ones(target: str, expected: Timeouts) -> None:
    assert spec_of(TIMEOUTS).target(target).timeout == expected


def test_no_timeouts_anywhere_gives_the_defaults() -> None:
    spec = spec_of("name: x\ntargets:\n  - name: a\n    url: https://example.com/\n")
    assert spec.http.timeout == Timeouts()
    assert spec.targets[0].timeout == Timeouts()


def test_empty_timeout_mappings_change_nothing() -> None:
    spec = spec_of("name: x\nhttp: {timeout: {}}\ntargets:\n  - {name: a, url: 'https://h/', timeout: {}}\n")
    assert spec.targets[0].timeout == Timeouts()


def test_limits_and_body_size_from_the_spec() -> None:
    spec = spec_of(
        "name: x\nhttp:\n  limits: {connections: 0}\n  max_body_bytes: 1024\n"
        "targets:\n  - name: a\n    url: https://example.com/\n"
    )
    assert spec.http.limits == Limits(connections=0, per_host=8)
    assert spec.http.limits.workers == UNLIMITED_POOL_WORKERS
    assert spec.targets[0].fetch.max_body_bytes == 1024


def test_integer_settings_written_as_floats_are_refused() -> None:
    # JSON Schema counts 4.0 as an integer; the engine would then call range(4.0).
    text = (
        "name: x\nhttp:\n  limits: {connections: 4.0, per_host: 2}\n  max_body_bytes: 1.0e+6\n"
        "targets:\n  - name: a\n    url: https://example.com/\n"
    )
    with pytest.raises(SpecError) as info:
        spec_of(text)
    assert [str(p) for p in info.value.problems] == [
        "s.yaml:3:25: http.limits.connections: expected an integer, got a number",
        "s.yaml:4:19: http.max_body_bytes: expected an integer, got a number",
    ]


DEFAULTS = """\
name: layers
http:
  timeout: {total: 20, sock_read: 9}
  headers: {Accept: application/json, X-Run: run}
defaults:
  method: POST
  timeout: {total: 10}
  headers: {X-Default: default, X-Run: from-defaults}
targets:
  - name: inherits
    url: https://example.com/a
  - name: overrides
    url: https://example.com/b
    method: GET
    timeout: {sock_read: null}
    headers: {X-Default: null, accept: text/html}
"""


def test_defaults_block_sits_between_http_and_the_target() -> None:
    spec = spec_of(DEFAULTS)
    inherits, overrides = spec.target("inherits"), spec.target("overrides")
    assert inherits.request.method == "POST"
    assert overrides.request.method == "GET"
    assert inherits.timeout == Timeouts(total=10, connect=None, sock_connect=10.0, sock_read=9)
    assert overrides.timeout == Timeouts(total=10, connect=None, sock_connect=10.0, sock_read=None)
    assert headers_of(spec, "inherits") == {
        "User-Agent": DEFAULT_USER_AGENT,
        "Accept": "application/json",
        "X-Run": "from-defaults",
        "X-Default": "default",
    }


def test_null_header_removes_an_inherited_one_and_names_ignore_case() -> None:
    assert headers_of(spec_of(DEFAULTS), "overrides") == {
        "User-Agent": DEFAULT_USER_AGENT,
        "X-Run": "from-defaults",
        "accept": "text/html",
    }


def test_null_user_agent_sends_none() -> None:
    spec = spec_of("name: x\ntargets:\n  - name: a\n    url: https://h/\n    headers: {user-agent: null}\n")
    assert headers_of(spec, "a") == {}


# --- headers ------------------------------------------------------------------


def test_default_user_agent_header_is_present() -> None:
    spec = spec_of("name: x\ntargets:\n  - name: a\n    url: https://example.com/\n")
    assert headers_of(spec, "a") == {"User-Agent": DEFAULT_USER_AGENT}


def test_run_wide_user_agent_replaces_the_default() -> None:
    spec = spec_of("name: x\nhttp: {user_agent: my-bot/1.0}\ntargets:\n  - name: a\n    url: https://example.com/\n")
    assert headers_of(spec, "a") == {"User-Agent": "my-bot/1.0"}


HEADERS = """\
name: headers
http:
  user_agent: run-wide-agent
  headers:
    Accept: application/json
    X-Run: run
targets:
  - name: plain
    url: https://example.com/a
  - name: custom
    url: https://example.com/b
    headers:
      Accept: text/html
      User-Agent: target-agent
      X-Target: target
"""


def test_run_wide_headers_reach_every_target() -> None:
    assert headers_of(spec_of(HEADERS), "plain") == {
        "User-Agent": "run-wide-agent",
        "Accept": "application/json",
        "X-Run": "run",
    }


def test_target_headers_override_run_wide_ones() -> None:
    assert headers_of(spec_of(HEADERS), "custom") == {
        "User-Agent": "target-agent",
        "Accept": "text/html",
        "X-Run": "run",
        "X-Target": "target",
    }


def test_run_wide_headers_can_override_the_user_agent_setting() -> None:
    spec = spec_of(
        "name: x\nhttp:\n  headers: {User-Agent: from-headers}\ntargets:\n  - name: a\n    url: https://h/\n"
    )
    assert headers_of(spec, "a") == {"User-Agent": "from-headers"}


def test_target_override_does_not_leak_into_other_targets() -> None:
    spec = spec_of(HEADERS)
    assert headers_of(spec, "plain")["Accept"] == "application/json"
    assert spec.http.headers == {"Accept": "application/json", "X-Run": "run"}


def test_target_header_override_ignores_case() -> None:
    spec = spec_of(
        "name: x\nhttp:\n  headers: {Accept: application/json}\n"
        "targets:\n  - name: a\n    url: https://h/\n    headers: {accept: text/html, user-agent: mine}\n"
    )
    assert headers_of(spec, "a") == {"accept": "text/html", "user-agent": "mine"}


def test_a_targets_per_minute_replaces_an_inherited_per_second() -> None:
    spec = load_spec_text(
        "name: r\nhttp: {base_url: 'https://h', rate_limit: {per_second: 2, min_delay: 1}}\ntargets:\n"
        "  - {name: slow, url: /a, rate_limit: {per_minute: 30}}\n  - {name: plain, url: /b}\n"
    )

    slow, plain = (t.fetch.rate_limit for t in spec.targets)

    assert (slow.per_second, slow.min_delay) == (0.5, 1)  # 30 a minute; the rest still inherited
    assert plain.per_second == 2
    with pytest.raises(SpecError, match="give per_second or per_minute, not both"):
        load_spec_text(
            "name: r\ntargets:\n  - {name: t, url: 'https://h/', rate_limit: {per_second: 1, per_minute: 5}}\n"
        )
