"""Each registry by type agrees with the spec's grammar and the schema; unknown names list the known ones."""

from __future__ import annotations

import base64
import re
from typing import Any, get_args

import pytest

from crawlrunner.extract.sources import SOURCES
from crawlrunner.http.auth import AUTH_TYPES, credentials
from crawlrunner.http.tokens import GRANTS
from crawlrunner.paginate import PAGINATORS
from crawlrunner.settings import AUTH_NEEDS, FETCHED_TOKEN_TYPES, Auth
from crawlrunner.spec import spec_schema
from crawlrunner.spec.model import FIELD_SOURCES, PaginationType
from crawlrunner.spec.pagination import STYLES


def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = spec_schema()["$defs"]
    return defs


def test_every_pagination_style_has_a_machine_keys_and_a_schema_entry() -> None:
    enum = _defs()["paginate"]["properties"]["type"]["enum"]
    assert set(PAGINATORS) == set(STYLES) == set(enum) == set(get_args(PaginationType))


def test_every_auth_type_has_a_unit_its_keys_and_a_schema_entry() -> None:
    enum = next(s for s in _defs()["auth"]["anyOf"] if s.get("type") == "object")["properties"]["type"]["enum"]
    assert set(AUTH_TYPES) == set(AUTH_NEEDS) == set(enum)


def test_the_auth_types_that_fetch_a_token_each_have_a_grant() -> None:
    assert set(GRANTS) == FETCHED_TOKEN_TYPES < set(AUTH_TYPES)


def test_every_field_source_is_read_and_written_in_the_schema() -> None:
    field = next(s for s in _defs()["field"]["oneOf"] if s.get("type") == "object")
    assert set(SOURCES) == set(FIELD_SOURCES)
    assert set(FIELD_SOURCES) <= set(field["properties"])
    listed = re.search(r"one source \(([^)]*)\)", _defs()["field"]["description"])
    assert listed is not None and set(listed.group(1).split(", ")) == set(FIELD_SOURCES)


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        (PAGINATORS, "unknown pagination style 'nope' (known: cursor, link_header, next_url, offset, page_number)"),
        (
            AUTH_TYPES,
            "unknown auth type 'nope' (known: api_key, basic, bearer, digest, oauth2_client_credentials, token)",
        ),
    ],
)
def test_an_unknown_name_lists_the_known_ones(registry: Any, message: str) -> None:
    with pytest.raises(LookupError) as caught:
        registry["nope"]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("auth", "headers", "query"),
    [
        (
            Auth(type="basic", username="u", password="p"),
            {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()},
            {},
        ),
        (Auth(type="bearer", token="t"), {"Authorization": "Bearer t"}, {}),
        (Auth(type="api_key", name="X-Key", value="k"), {"X-Key": "k"}, {}),
        (Auth(type="api_key", name="key", value="k", location="query"), {}, {"key": "k"}),
    ],
)
def test_each_auth_type_adds_its_credentials(auth: Auth, headers: dict[str, str], query: dict[str, str]) -> None:
    creds = credentials(auth)
    assert dict(creds.headers) == headers
    assert dict(creds.query) == query
    assert set(query) == set(creds.sensitive_params)


def test_a_fetched_tokens_header_is_known_up_front_and_never_follows_a_redirect() -> None:
    creds = credentials(Auth(type="token", header="X-Session"))
    assert not creds.headers and creds.token_header == "X-Session"
    assert "x-session" in creds.sensitive_headers and "authorization" in creds.sensitive_headers


def test_digest_auth_answers_the_challenge_instead_of_sending_a_header() -> None:
    creds = credentials(Auth(type="digest", username="u", password="p"))
    assert not creds.headers and len(creds.middlewares) == 1
