"""${env.NAME} interpolation, located errors for unset variables, and redaction."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from crawlrunner.errors import MissingEnvironmentVariable, SpecError
from crawlrunner.plan import RequestPlan, plan_target
from crawlrunner.secrets import MASK, Redactor, interpolate
from crawlrunner.spec import Spec, load_spec, load_spec_text

TOKEN = "s3cr3t-T0ken/with+odd chars&more"

SPEC = """\
name: secrets
http:
  base_url: ${env.BASE_URL:-https://api.example.com}
  headers:
    Authorization: "Bearer ${env.API_TOKEN}"
targets:
  - name: items
    url: /items
    params:
      key: ${env.API_KEY:-default-key}
"""


def first_request(spec: Spec, target: str) -> RequestPlan:
    """The target's first start request, URL and headers rendered."""
    return next(plan_target(spec.target(target)))


# --- interpolate ------------------------------------------------------------


def test_interpolate_replaces_and_reports_the_values() -> None:
    text, found = interpolate("a ${env.ONE} b ${env.TWO} c", {"ONE": "1111", "TWO": "2222"})
    assert text == "a 1111 b 2222 c"
    assert found == ["1111", "2222"]


def test_interpolate_default_is_used_only_when_unset() -> None:
    assert interpolate("${env.X:-fallback}", {}) == ("fallback", ["fallback"])
    assert interpolate("${env.X:-fallback}", {"X": "set"}) == ("set", ["set"])
    assert interpolate("${env.X:-}", {}) == ("", [""])


def test_interpolate_default_may_contain_url_characters() -> None:
    assert interpolate("${env.BASE:-https://h:8080/a?b=c}", {})[0] == "https://h:8080/a?b=c"


def test_interpolate_without_references_is_unchanged() -> None:
    assert interpolate("plain $HOME {x} $", {}) == ("plain $HOME {x} $", [])


def test_interpolate_missing_variable_raises_with_its_name() -> None:
    with pytest.raises(MissingEnvironmentVariable) as info:
        interpolate("x ${env.NOT_SET_ANYWHERE} y", {})
    assert info.value.name == "NOT_SET_ANYWHERE"
    assert isinstance(info.value, LookupError)


def test_interpolate_uses_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRAWLRUNNER_TEST_FROM_OS", "from-os")
    assert interpolate("${env.CRAWLRUNNER_TEST_FROM_OS}")[0] == "from-os"


def test_interpolate_is_not_recursive() -> None:
    # A value that itself looks like a reference is sent as written.
    assert interpolate("${env.A}", {"A": "${env.B}"})[0] == "${env.B}"


# --- through the spec -----------------------------------------------------------


def test_spec_interpolation_in_headers_base_url_and_params() -> None:
    spec = load_spec_text(SPEC, environ={"API_TOKEN": TOKEN, "API_KEY": "k-123456"})
    request = first_request(spec, "items")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert spec.http.base_url == "https://api.example.com"
    assert request.url == "https://api.example.com/items?key=k-123456"


def test_spec_interpolation_defaults() -> None:
    spec = load_spec_text(SPEC, environ={"API_TOKEN": TOKEN, "BASE_URL": "http://127.0.0.1:9"})
    assert first_request(spec, "items").url == "http://127.0.0.1:9/items?key=default-key"


def test_spec_does_not_read_os_environ_when_environ_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "from-the-real-environment")
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC, "s.yaml", environ={})
    assert "http.headers.Authorization" in {p.path for p in info.value.problems}
    assert "from-the-real-environment" not in str(info.value)


UNSET = (
    "s.yaml:5:20: http.headers.Authorization: environment variable API_TOKEN is not set "
    "(set it, or give a default: ${env.API_TOKEN:-value})"
)


def test_unset_variable_is_located_where_it_is_used() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC, "s.yaml", environ={})
    assert UNSET in [str(p) for p in info.value.problems]


def test_unset_variable_is_the_only_problem_reported() -> None:
    # http.headers is resolved once, where it is written: not again for each
    # target, and the unresolved text is not read as a {var} template.
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC, "s.yaml", environ={})
    assert [str(p) for p in info.value.problems] == [UNSET]


def test_every_unset_variable_is_reported_at_once() -> None:
    text = (
        "name: x\n"
        "targets:\n"
        "  - name: a\n"
        "    url: https://h/${env.PATH_PART}\n"
        "    headers: {X-Key: '${env.KEY_ONE}'}\n"
        "    params: {nested: '${env.KEY_TWO}'}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    unset = [p for p in info.value.problems if " is not set " in p.message]
    assert [(p.line, p.path, p.message.split(" is not set")[0]) for p in unset] == [
        (4, "targets[0].url", "environment variable PATH_PART"),
        (5, "targets[0].headers.X-Key", "environment variable KEY_ONE"),
        (6, "targets[0].params.nested", "environment variable KEY_TWO"),
    ]


def test_unset_variable_in_a_json_body_is_a_spec_error() -> None:
    text = "name: x\ntargets:\n  - name: a\n    url: https://h/\n    json: {nested: [1, '${env.KEY_TWO}']}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    assert [str(p) for p in info.value.problems] == [
        "s.yaml:5:24: targets[0].json.nested[1]: environment variable KEY_TWO is not set "
        "(set it, or give a default: ${env.KEY_TWO:-value})"
    ]


def test_substituted_values_are_not_schema_checked_as_written() -> None:
    # Validation runs on the data as written, so a base_url from the
    # environment passes the schema and is checked once resolved.
    text = "name: x\nhttp:\n  base_url: ${env.B}\ntargets:\n  - name: a\n    url: /p\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={"B": "ftp://h"})
    assert [str(p) for p in info.value.problems] == [
        "s.yaml:3:13: http.base_url: expected an absolute http:// or https:// URL"
    ]


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("api?key=${env.KEY}", "supersecret", "relative URL 'api?key=${env.KEY}' needs http.base_url"),
        ("${env.KEY}/items", "example.com", "relative URL '${env.KEY}/items' needs http.base_url"),
    ],
    ids=["in-the-query", "as-the-host"],
)
def test_spec_errors_never_contain_a_secret_value(url: str, secret: str, message: str) -> None:
    text = f"name: x\ntargets:\n  - name: a\n    url: {url}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={"KEY": secret})
    assert [str(p) for p in info.value.problems] == [f"s.yaml:4:10: targets[0].url: {message}"]
    assert secret not in str(info.value)


def test_a_secret_with_braces_is_not_in_spec_errors_either() -> None:
    text = "name: x\ntargets:\n  - name: a\n    url: api?key=${env.KEY}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={"KEY": "super{secret"})
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("secret", ["abc{page}def", "a{{b}}c", "{page}", "x}y{"])
def test_environment_values_are_sent_verbatim(secret: str) -> None:
    # Braces in a value from the environment are text, never template syntax,
    # in every place that is a template.
    text = (
        "name: x\ntargets:\n  - name: a\n    url: https://h/{page}\n    vars: {page: [1]}\n"
        "    method: POST\n"
        "    headers: {Authorization: '${env.KEY}', X-Page: 'p{page}-${env.KEY}'}\n"
        "    params: {key: '${env.KEY}'}\n"
        "    json: {token: '${env.KEY}', nested: ['${env.KEY}', '{page}']}\n"
    )
    spec = load_spec_text(text, "s.yaml", environ={"KEY": secret})
    request = first_request(spec, "a")
    assert request.headers["Authorization"] == secret
    assert request.headers["X-Page"] == f"p1-{secret}"
    assert request.url == f"https://h/1?key={quote_plus(secret)}"
    assert request.json_body == {"token": secret, "nested": [secret, 1]}


# --- Redactor -----------------------------------------------------------------


def test_redactor_masks_the_raw_value() -> None:
    redact = Redactor([TOKEN])
    assert redact(f"Authorization: Bearer {TOKEN}") == f"Authorization: Bearer {MASK}"


@pytest.mark.parametrize(
    "encode",
    [lambda s: quote(s, safe=""), quote_plus, quote],
    ids=["quote-nothing-safe", "quote_plus", "quote-slash-safe"],
)
def test_redactor_masks_percent_encoded_forms(encode: object) -> None:
    assert callable(encode)
    encoded = encode(TOKEN)
    assert encoded != TOKEN
    assert Redactor([TOKEN])(f"GET https://h/x?token={encoded}&page=2") == f"GET https://h/x?token={MASK}&page=2"


def test_redactor_masks_every_occurrence_and_every_secret() -> None:
    redact = Redactor(["alpha-secret", "beta-secret"])
    assert redact("alpha-secret beta-secret alpha-secret") == f"{MASK} {MASK} {MASK}"


def test_redactor_masks_the_longest_secret_whole() -> None:
    redact = Redactor(["abcd", "abcdefgh"])
    assert redact("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


@pytest.mark.parametrize("short", ["", "1", "ab", "xyz"])
def test_redactor_ignores_values_shorter_than_four_characters(short: str) -> None:
    redact = Redactor([short])
    assert not redact
    assert redact("xyz ab 1 text") == "xyz ab 1 text"


def test_redactor_keeps_four_character_values() -> None:
    redact = Redactor(["abcd", "abc"])
    assert redact
    assert redact("abcd abc") == f"{MASK} abc"


def test_empty_redactor_is_falsy_and_changes_nothing() -> None:
    redact = Redactor()
    assert not redact
    assert redact("anything") == "anything"


def test_loaded_spec_redactor_knows_every_substituted_value() -> None:
    spec = load_spec_text(SPEC, environ={"API_TOKEN": TOKEN, "API_KEY": "k-123456"})
    line = f"GET {first_request(spec, 'items').url} Authorization: Bearer {TOKEN}"
    redacted = spec.redactor(line)
    assert TOKEN not in redacted
    assert "k-123456" not in redacted
    assert redacted.endswith(f"key={MASK} Authorization: Bearer {MASK}")


def test_spec_without_env_references_has_an_empty_redactor() -> None:
    spec = load_spec_text("name: x\ntargets:\n  - name: a\n    url: https://h/\n", environ={})
    assert not spec.redactor


# --- repr ---------------------------------------------------------------------


def test_spec_repr_does_not_contain_secret_values() -> None:
    spec = load_spec_text(SPEC, environ={"API_TOKEN": TOKEN, "API_KEY": "k-123456"})
    request = first_request(spec, "items")
    for text in (repr(spec), str(spec), repr(spec.targets), repr(spec.target("items")), repr(request)):
        assert TOKEN not in text
        assert quote(TOKEN, safe="") not in text
        assert "k-123456" not in text


def test_target_level_secret_header_is_not_in_repr() -> None:
    text = "name: x\ntargets:\n  - name: a\n    url: https://h/\n    headers: {X-Api-Key: '${env.K}'}\n"
    spec = load_spec_text(text, environ={"K": "target-level-secret"})
    request = first_request(spec, "a")
    assert request.headers["X-Api-Key"] == "target-level-secret"
    assert "target-level-secret" not in repr(spec)
    assert "target-level-secret" not in repr(request)


def test_every_unset_variable_of_one_value_is_named() -> None:
    text = (
        'name: x\nhttp: {proxy: "http://${env.PU}:${env.PP}@proxy:3128"}\ntargets:\n  - {name: a, url: "https://h/"}\n'
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml", environ={})
    assert [p.message for p in info.value.problems] == [
        "environment variables PU, PP are not set (set them, or give a default: ${env.PU:-value})"
    ]


def test_an_inherited_file_setting_is_reported_where_it_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: x\nhttp:\n  tls: {ca_bundle: nope.pem}\ntargets:\n  - {name: a, url: 'https://h/'}\n  - {name: b, url: 'https://h/'}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec, environ={})
    assert [(p.line, p.path) for p in info.value.problems] == [(3, "http.tls.ca_bundle")]
