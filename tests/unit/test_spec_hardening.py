"""Specs that were accepted but should not be, or were blamed on the wrong line.

NUL bytes in ``output``, numbers out of range, ports and brackets in URLs,
credentials written in clear (a URL's userinfo, an Authorization header, an
auth block) and ``tls.verify: false`` without the caller's consent.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from crawlrunner.api import run_async
from crawlrunner.errors import InsecureTLSError, SpecError, UsageError
from crawlrunner.overrides import check_output
from crawlrunner.plan import plan_target
from crawlrunner.secrets import MASK
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    return [str(p) for p in info.value.problems]


# --- output ---------------------------------------------------------------------


def test_a_nul_byte_in_output_is_a_spec_error_at_output() -> None:
    assert problems('name: x\noutput: "a\\0.db"\ntargets:\n  - {name: t, url: "http://h/"}\n') == [
        "s.yaml:2:9: output: a file name must not contain a NUL character (\\0)"
    ]


def test_a_nul_byte_from_the_environment_in_output_is_located_too() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(
            "name: x\noutput: ${env.OUT}\ntargets:\n  - {name: t, url: 'http://h/'}\n", "s.yaml", {"OUT": "a\0b"}
        )
    assert [(p.line, p.path) for p in info.value.problems] == [(2, "output")]


def test_an_output_override_with_a_nul_byte_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^--output: a file name must not contain a NUL"):
        check_output("a\0b", name="--output")
    check_output("fine.db")
    check_output(None)


# --- URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:0/", "invalid port '0': expected a number from 1 to 65535"),
        ("http://h:65536/", "invalid port '65536': expected a number from 1 to 65535"),
        ("http://h:８０/", "invalid port '８０': expected a number from 1 to 65535"),
        ("http://[fe80::1/", "unclosed '[' in the host '[fe80::1': an IPv6 address is written [::1]"),
        ("http://[::1]x/", "unexpected 'x' after the IPv6 address in the host"),
        ("http://h]/", "'[' and ']' in the host 'h]': they may only enclose an IPv6 address, as in [::1]"),
    ],
)
def test_a_bad_authority_is_a_spec_error_at_the_url(url: str, message: str) -> None:
    assert problems(f"name: x\ntargets:\n  - {{name: t, url: '{url}'}}\n") == [
        f"s.yaml:3:20: targets[0].url: {message}"
    ]


@pytest.mark.parametrize(
    "url",
    ["http://h:8080/a", "http://[::1]:8080/a", "http://[::1]/", "http://h:/a", "http://{host}/a", "http://h:{p}/a"],
)
def test_good_or_templated_authorities_are_accepted(url: str) -> None:
    load_spec_text(f"name: x\ntargets:\n  - {{name: t, url: '{url}', vars: {{host: [h], p: [1]}}}}\n", "s.yaml")


# --- credentials in a URL -----------------------------------------------------------


USERINFO = "name: x\ntargets:\n  - {name: t, url: 'http://crawler:pa%40ss-w0rd@example.com/items'}\n"


def test_userinfo_credentials_are_secrets() -> None:
    spec = load_spec_text(USERINFO, "s.yaml")
    plan = next(plan_target(spec.target("t")))
    assert plan.url == "http://crawler:pa%40ss-w0rd@example.com/items"  # sent as written
    redact = spec.redactor
    assert redact(plan.url) == f"http://{MASK}@example.com/items"
    assert redact("password pa@ss-w0rd, decoded") == f"password {MASK}, decoded"
    basic = base64.b64encode(b"crawler:pa@ss-w0rd").decode()
    assert redact(f"Authorization: Basic {basic}") == f"Authorization: Basic {MASK}"
    assert redact.detokenize(redact.tokenize(plan.url)) == plan.url
    assert "pa%40ss" not in redact.tokenize(plan.url)


def test_userinfo_in_base_url_is_a_secret_too() -> None:
    spec = load_spec_text(
        "name: x\nhttp: {base_url: 'https://bot:hunter22@api.example.com'}\ntargets:\n  - {name: t, url: /a}\n",
        "s.yaml",
    )
    assert spec.redactor("https://bot:hunter22@api.example.com/a") == f"https://{MASK}@api.example.com/a"


@pytest.mark.parametrize(
    ("url", "rendered"),
    [
        ("https://user:s3cretpw@{host}/x", "https://user:s3cretpw@example.com/x"),
        ("https://user:s3cretpw@example.com:{port}/", "https://user:s3cretpw@example.com:8443/"),
        ("https://user:s3cretpw@{host}:{port}", "https://user:s3cretpw@example.com:8443"),
    ],
)
def test_userinfo_before_a_placeholder_in_the_authority_is_a_secret(url: str, rendered: str) -> None:
    # The authority is not finished before the placeholder, but the userinfo is:
    # its "@" is written.
    spec = load_spec_text(
        f"name: x\ntargets:\n  - {{name: t, url: '{url}', vars: {{host: [example.com], port: [8443]}}}}\n", "s.yaml"
    )
    plan = next(plan_target(spec.target("t")))
    assert plan.url == rendered
    redact = spec.redactor
    assert "s3cretpw" not in redact(plan.url)
    assert redact(plan.url) == rendered.replace("user:s3cretpw", MASK)
    assert "s3cretpw" not in redact.tokenize(plan.url)
    assert redact.detokenize(redact.tokenize(plan.url)) == plan.url


def test_a_placeholder_inside_the_userinfo_leaves_nothing_literal_to_remember() -> None:
    # "user" alone is not a secret: it would mask that word everywhere.
    spec = load_spec_text("name: x\ntargets:\n  - {name: t, url: 'https://user:{pw}@h/', vars: {pw: [x]}}\n", "s.yaml")
    assert spec.redactor("user") == "user"


def test_a_short_userinfo_is_masked_where_it_is_a_userinfo() -> None:
    spec = load_spec_text("name: x\ntargets:\n  - {name: t, url: 'http://a:b@h/x'}\n", "s.yaml")
    url = next(plan_target(spec.target("t"))).url
    redact = spec.redactor
    assert redact(url) == f"http://{MASK}@h/x"
    assert redact("GET http%3A%2F%2Fa%3Ab%40h") == "GET http%3A%2F%2Fa%3Ab%40h"  # not "//…@" text
    assert redact("at 1:2 a:b, ratio a:b") == "at 1:2 a:b, ratio a:b"  # too short to mask everywhere
    assert redact.bytes(b'{"url": "http://a:b@h/x"}') == b'{"url": "http://***@h/x"}'
    assert "a:b" not in redact.tokenize(url)
    assert redact.detokenize(redact.tokenize(url)) == url
    assert redact(f"Basic {base64.b64encode(b'a:b').decode()}") == f"Basic {MASK}"


def test_a_common_word_as_a_password_is_not_masked_everywhere() -> None:
    spec = load_spec_text("name: x\ntargets:\n  - {name: t, url: 'http://admin:password@h/x'}\n", "s.yaml")
    redact = spec.redactor
    assert redact("http://admin:password@h/x") == f"http://{MASK}@h/x"
    assert redact("enter the admin password") == "enter the admin password"
    assert redact(f"Basic {base64.b64encode(b'admin:password').decode()}") == f"Basic {MASK}"


# --- credentials written in clear -----------------------------------------------------


def _warnings(spec: Spec) -> list[str]:
    return [str(w) for w in spec.warnings]


def test_literal_credentials_are_warned_about_where_they_are_written(caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "name: x\n"
        "http:\n"
        "  headers: {authorization: 'Bearer abc123def'}\n"
        "targets:\n"
        "  - name: t\n"
        "    url: http://h/\n"
        "    auth: {type: basic, username: me, password: 'p4ssw0rd!'}\n"
    )
    with caplog.at_level(logging.WARNING, logger="crawlrunner"):
        spec = load_spec_text(text, "s.yaml")
    expected = [
        "s.yaml:3:28: http.headers.authorization: a credential written in the spec: anyone who can read the spec"
        " can use it; take it from the environment with ${env.NAME}",
        "s.yaml:7:49: targets[0].auth.password: a credential written in the spec: anyone who can read the spec"
        " can use it; take it from the environment with ${env.NAME}",
    ]
    assert _warnings(spec) == expected
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == expected
    # A literal Authorization value is masked like any secret from now on.
    assert spec.redactor("sent Bearer abc123def") == f"sent {MASK}"


def test_credentials_from_the_environment_are_not_warned_about() -> None:
    text = (
        "name: x\nhttp:\n  headers: {Authorization: 'Bearer ${env.TOKEN}'}\n"
        "  auth: {type: bearer, token: '${env.TOKEN}'}\n"
        "targets:\n  - {name: t, url: 'http://h/', headers: {X-Not-A-Credential: plain}}\n"
    )
    assert _warnings(load_spec_text(text, "s.yaml", {"TOKEN": "from-env-123"})) == []


LITERAL_GATEWAY_AND_DEFAULTS = (
    "name: x\n"
    "http:\n"
    "  headers: {Authorization: 'Bearer ${env.TOKEN:-dflt-bearer-77}'}\n"
    "targets:\n"
    "  - name: t\n"
    "    url: http://h/\n"
    "    gateway: {endpoint: 'http://g/', api_key: gw-key-in-clear}\n"
    "    auth: {type: basic, username: me, password: '${env.PW:-dflt-pw-1234}'}\n"
)


def test_a_literal_gateway_key_and_used_defaults_are_warned_about() -> None:
    spec = load_spec_text(LITERAL_GATEWAY_AND_DEFAULTS, "s.yaml", environ={})
    default = "a credential written in the spec: {} is not set, so its default is sent; anyone who can read the spec"
    assert _warnings(spec) == [
        f"s.yaml:3:28: http.headers.Authorization: {default.format('TOKEN')} can use it; set TOKEN or remove the"
        " default",
        "s.yaml:7:47: targets[0].gateway.api_key: a credential written in the spec: anyone who can read the spec"
        " can use it; take it from the environment with ${env.NAME}",
        f"s.yaml:8:49: targets[0].auth.password: {default.format('PW')} can use it; set PW or remove the default",
    ]
    for value in ("dflt-bearer-77", "dflt-pw-1234", "gw-key-in-clear"):
        assert spec.redactor(f"sent {value}") == f"sent {MASK}"


LOGIN_IN_CLEAR = (
    "name: x\n"
    "http: {base_url: 'http://h'}\n"
    "targets:\n"
    "  - name: t\n"
    "    url: /a\n"
    "    auth:\n"
    "      type: token\n"
    "      token: data.jwt\n"
    "      request:\n"
    "        url: /login\n"
    "        headers: {Authorization: 'Basic abc123def', X-Trace: plain-value}\n"
    "        json: {user: me, password: pw123-clear, device: {api_key: 'k-${env.K:-dflt-key-99}'}, n: 3}\n"
    "  - name: u\n"
    "    url: /b\n"
    "    auth: {type: token, token: jwt, request: {url: /login, form: {login: me, passwd: '${env.PW}'}}}\n"
)


def test_credentials_in_a_login_requests_headers_and_body_are_warned_about() -> None:
    spec = load_spec_text(LOGIN_IN_CLEAR, "s.yaml", environ={"PW": "env-pw-1234"})

    clear = "a credential written in the spec: anyone who can read the spec can use it; take it from the environment"
    assert _warnings(spec) == [
        f"s.yaml:11:34: targets[0].auth.request.headers.Authorization: {clear} with ${{env.NAME}}",
        f"s.yaml:12:36: targets[0].auth.request.json.password: {clear} with ${{env.NAME}}",
        "s.yaml:12:67: targets[0].auth.request.json.device.api_key: a credential written in the spec: K is not set,"
        " so its default is sent; anyone who can read the spec can use it; set K or remove the default",
    ]  # not the user name, the trace header, a number, nor the password taken from the environment
    for value in ("Basic abc123def", "pw123-clear"):
        assert spec.redactor(f"sent {value}") == f"sent {MASK}"


def test_a_default_that_is_not_used_is_not_warned_about() -> None:
    spec = load_spec_text(LITERAL_GATEWAY_AND_DEFAULTS, "s.yaml", environ={"TOKEN": "env-token-1", "PW": "env-pw-12"})
    assert [w.path for w in spec.warnings] == ["targets[0].gateway.api_key"]


@pytest.mark.parametrize("credential", ["auth: {type: bearer, token: 123456789}", "headers: {Authorization: 1234567}"])
def test_a_credential_that_is_not_a_string_is_a_spec_error_not_sent(credential: str) -> None:
    assert len(problems(f"name: x\nhttp:\n  {credential}\ntargets:\n  - {{name: t, url: 'http://h/'}}\n")) == 1


# --- tls.verify: false ----------------------------------------------------------------


TLS_OFF = """\
name: x
targets:
  - {name: safe, url: 'https://h/a'}
  - {name: unsafe, url: 'https://h/b', tls: {verify: false}}
  - {name: pinned, url: 'https://h/c', tls: {verify: false, fingerprint: '%s'}}
""" % ("ab" * 32)


def test_verification_off_is_refused_unless_allowed() -> None:
    spec = load_spec_text(TLS_OFF, "s.yaml")
    with pytest.raises(InsecureTLSError, match=r"'unsafe': run with --insecure \(insecure=True\)") as info:
        spec.check_tls()
    assert isinstance(info.value, UsageError)
    spec.check_tls(["safe", "pinned"])  # a pinned certificate is checked, exactly


async def test_run_async_refuses_verification_off_before_opening_anything(tmp_path: Path) -> None:
    spec = load_spec_text(TLS_OFF, "s.yaml")
    with pytest.raises(InsecureTLSError):
        await run_async(spec, output=tmp_path / "out.db")
    with pytest.raises(InsecureTLSError):
        await run_async(spec, output=tmp_path / "out.db", only=iter(["unsafe"]))
    assert not (tmp_path / "out.db").exists()
