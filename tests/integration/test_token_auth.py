"""Auth that fetches its token while the run goes: OAuth 2 client credentials and a login request.

A local authorization server issues tokens (checking the client's credentials
and counting every token request) and an API accepts only a bearer token it
issued and that has not expired; the tests change what the server does
(lifetimes, revocations, failures) and read what reached it and what the
run stored.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec_text

from ..conftest import ENTRY_POINT, ThreadedServer, query

pytestmark = pytest.mark.timeout(60)

CLIENT_ID = "crawler-7f3a"
CLIENT_SECRET = "cs-5d1e9b7a44"  # distinctive: searched for in every output
USER, PASSWORD = "reader", "pw-c0ffee-91"


class AuthServer:
    """A token endpoint, a login endpoint and an API that wants their tokens; every answer counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expires_in: float | None = 3600
        self.token_status = 200  # what the token endpoint answers; not 200: an RFC 6749 error
        self.outage: tuple[float, float] | None = None  # (from, to) in time.monotonic(): the endpoint answers 500
        self.token_requests: list[dict[str, Any]] = []
        self.issued: dict[str, float | None] = {}  # token → expiry (time.monotonic), None: never
        self.every_token: list[str] = []  # revoked ones too
        self.api_hits: list[str | None] = []  # the Authorization header of each API request
        self.refused = 0  # API requests answered 401
        self.revoke_after: int | None = None  # revoke every token once the API served this many requests
        self.sequence = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/token", self.token)
        app.router.add_post("/login", self.login)
        app.router.add_get("/api/items/{n}", self.item)
        app.router.add_get("/api/echo", self.echo)
        app.router.add_get("/api/away", self.away)
        app.router.add_get("/api/private/{n}", self.private)
        return app

    def issue(self, lifetime: float | None) -> str:
        token = f"tk{next(self.sequence)}-{secrets.token_hex(8)}"
        self.issued[token] = None if lifetime is None else time.monotonic() + lifetime
        self.every_token.append(token)
        return token

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        down = self.outage is not None and self.outage[0] <= time.monotonic() < self.outage[1]
        with self.lock:
            self.token_requests.append({"headers": dict(request.headers), "form": dict(form), "down": down})
        if self.token_status != 200:
            return web.json_response({"error": "invalid_client", "error_description": "no"}, status=self.token_status)
        if down:
            return web.json_response({"error": "server_error"}, status=500)
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            client = unquote_plus(user), unquote_plus(password)
        else:
            client = str(form.get("client_id")), str(form.get("client_secret"))
        if form.get("grant_type") != "client_credentials" or client != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        answer: dict[str, Any] = {"access_token": self.issue(self.expires_in), "token_type": "bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.json_response(answer)

    async def login(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.token_requests.append({"headers": dict(request.headers), "json": body})
        if body != {"user": USER, "password": PASSWORD}:
            # As careless servers do: what was sent, echoed in the error.
            message = f"who are you? no user {body.get('user')} with password {body.get('password')}"
            return web.json_response({"message": message}, status=403)
        token = self.issue(self.expires_in)
        # The token in the body and in a header, with its lifetime as a string.
        return web.json_response({"data": {"jwt": token, "ttl": str(self.expires_in)}}, headers={"X-Auth-Token": token})

    def allowed(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization") or request.headers.get("X-Session")
        with self.lock:
            self.api_hits.append(header)
            if self.revoke_after is not None and len(self.api_hits) > self.revoke_after:
                self.revoke_after = None
                self.issued.clear()
            token = (header or "").removeprefix("Bearer ")
            if token not in self.issued:
                self.refused += 1
                return False
            expiry = self.issued[token]
            if expiry is not None and time.monotonic() >= expiry:
                self.refused += 1
                return False
        return True

    async def item(self, request: web.Request) -> web.Response:
        if not self.allowed(request):
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"id": int(request.match_info["n"])})

    async def echo(self, request: web.Request) -> web.Response:
        """The request's headers, echoed (a server that repeats the token in its answer)."""
        if not self.allowed(request):
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"headers": dict(request.headers)})

    async def private(self, request: web.Request) -> web.Response:
        """A resource this client may not see, answered 401 whatever the token (not 403, as some APIs do)."""
        self.allowed(request)
        return web.json_response({"error": "not yours"}, status=401)

    async def away(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])


@pytest.fixture
def auth_server() -> Iterator[tuple[AuthServer, str]]:
    server = AuthServer()
    with ThreadedServer(server.app()) as running:
        yield server, running.url


@pytest.fixture
def elsewhere() -> Iterator[tuple[AuthServer, str]]:
    """Another origin, recording what reaches it."""
    server = AuthServer()
    with ThreadedServer(server.app()) as running:
        yield server, running.url


OAUTH = """
name: oauth
http:
  base_url: "{base}"
  retry: {{attempts: 2, backoff: 0.01}}
  auth:
    type: oauth2_client_credentials
    token_url: /oauth/token
    client_id: {client_id}
    client_secret: "${{env.CR_CLIENT_SECRET}}"
    scope: "items:read"
{extra}targets:
  - name: items
    url: "/api/items/{{n}}"
    vars: {{n: {{from: 1, to: {count}}}}}
    extract: {{fields: {{id: id}}}}
{targets}"""

ENV = {"CR_CLIENT_SECRET": CLIENT_SECRET}


def oauth_spec(base: str, *, count: int = 20, extra: str = "", targets: str = "", client_id: str = CLIENT_ID) -> Any:
    text = OAUTH.format(base=base, count=count, extra=extra, targets=targets, client_id=client_id)
    return load_spec_text(text, environ=ENV)


def fetch_log(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT url, status, attempts, error_kind, error FROM _crawlrunner_fetch_log ORDER BY id")


async def test_one_token_serves_every_request_of_every_target_with_the_same_auth(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    other = "  - {name: echo, url: /api/echo, extract: {fields: {seen: {jmespath: headers, type: json}}}}\n"
    spec = oauth_spec(base, targets=other)

    result = await run_async(spec, output=db_path)

    assert result.ok and result.totals.ok == 21
    assert len(server.token_requests) == 1
    sent = server.token_requests[0]
    assert sent["form"] == {"grant_type": "client_credentials", "scope": "items:read"}
    assert sent["headers"]["Accept"] == "application/json"
    assert sent["headers"]["User-Agent"].startswith("crawlrunner/")
    assert len(set(server.api_hits)) == 1 and server.refused == 0
    assert query(db_path, "SELECT count(*) FROM items") == [(20,)]


async def test_client_auth_body_sends_the_credentials_as_form_fields(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    text = OAUTH.format(base=base, count=2, extra="", targets="", client_id=CLIENT_ID).replace(
        'scope: "items:read"', "client_auth: body\n    audience: https://api.example"
    )
    spec = load_spec_text(text, environ=ENV)

    result = await run_async(spec, output=db_path)

    assert result.ok
    (sent,) = server.token_requests
    assert "Authorization" not in sent["headers"]
    assert sent["form"] == {
        "grant_type": "client_credentials",
        "audience": "https://api.example",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


async def test_a_short_lived_token_is_renewed_before_it_expires(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    server.expires_in = 1  # renewed a tenth of a second before the API would refuse it
    # Ten requests a second for about two and a half seconds.
    spec = oauth_spec(base, count=25, extra="  rate_limit: {per_second: 10}\n")

    result = await run_async(spec, output=db_path)

    assert result.ok
    assert len(server.token_requests) >= 3
    assert server.refused == 0  # renewed in time: no request was sent with an expired token
    assert {row[2] for row in fetch_log(db_path)} == {1}


async def test_a_revoked_token_is_renewed_once_and_the_request_goes_again(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    server.revoke_after = 5

    result = await run_async(spec := oauth_spec(base, count=30), output=db_path)

    assert result.ok, fetch_log(db_path)
    assert spec.http.limits.connections > 1  # several requests meet the revocation at once...
    assert len(server.token_requests) == 2  # ...and one renewal serves them all
    assert server.refused >= 1
    attempts = [row[2] for row in fetch_log(db_path)]
    assert attempts.count(2) == server.refused and set(attempts) == {1, 2}


async def test_an_api_that_refuses_every_token_does_not_make_the_run_hammer_the_endpoint(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    server.revoke_after = 0
    server.issued = _Forgetful()  # type: ignore[assignment]

    result = await run_async(oauth_spec(base, count=20), output=db_path)

    assert not result.ok
    rows = fetch_log(db_path)
    assert {(status, kind) for _, status, _, kind, _ in rows} == {(401, "http_status")}
    # Those sent again after their renewal say so; the rest were refused their first (renewed) token.
    again = {error for _, _, attempts, _, error in rows if attempts == 2}
    assert again == {"HTTP 401 Unauthorized (a renewed token was refused too)"}
    assert {error for _, _, attempts, _, error in rows if attempts == 1} == {"HTTP 401 Unauthorized"}
    # The first token, and one renewal after the first 401: the renewed token
    # is refused before any request succeeded with it, so no more are asked for.
    assert len(server.token_requests) == 2


async def test_v_says_when_a_token_is_obtained_and_renewed_and_why_and_never_the_token(
    auth_server: tuple[AuthServer, str], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, base = auth_server
    server.revoke_after = 3

    with caplog.at_level(logging.INFO, logger="crawlrunner"):  # what -v shows
        result = await run_async(oauth_spec(base, count=8), output=db_path)

    assert result.ok
    said = [r.getMessage() for r in caplog.records if r.name == "crawlrunner.http.tokens"]
    assert said == [
        f"items: token obtained from POST {base}/oauth/token, good for 3600 s",
        f"items: token renewed (a request sent with the last one got HTTP 401) from POST {base}/oauth/token,"
        " good for 3600 s",
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert len(server.every_token) == 2 and not [t for t in server.every_token if t in logged]


async def test_401s_about_resources_not_the_token_cost_one_renewal_not_one_each(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    private = '  - {name: private, url: "/api/private/{n}", vars: {n: {from: 1, to: 10}}, extract: {fields: {a: a}}}\n'

    await run_async(oauth_spec(base, count=20, targets=private), output=db_path)

    assert query(db_path, "SELECT target, status, count(*) FROM _crawlrunner_fetch_log GROUP BY 1, 2 ORDER BY 1") == [
        ("items", 200, 20),
        ("private", 401, 10),
    ]
    assert len(server.token_requests) == 2  # the first token, and one renewal after the first of those 401s


class _Forgetful(dict[str, Any]):
    """Tokens the API forgets as soon as they are issued: every request is refused."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "asked", "message"),
    [
        # Retried as the target's retry says, and asked again after 1 s and 2 s more while requests
        # wait: that third try comes max_retry_after (3 s) after the first failure, and gives up.
        (500, 2 * 3, "failed after 2 attempts: HTTP 500 (invalid_client)"),
        (401, 1, "failed: HTTP 401 (invalid_client)"),  # a refused client: not worth waiting for
    ],
)
async def test_a_failing_token_endpoint_fails_the_requests_clearly_without_hammering_it(
    auth_server: tuple[AuthServer, str], db_path: Path, status: int, asked: int, message: str
) -> None:
    server, base = auth_server
    server.token_status = status
    text = OAUTH.format(base=base, count=20, extra="", targets="", client_id=CLIENT_ID)
    spec = load_spec_text(text.replace("backoff: 0.01", "backoff: 0.01, max_retry_after: 3"), environ=ENV)
    started = time.monotonic()

    result = await run_async(spec, output=db_path)

    assert time.monotonic() - started < 15  # a dead endpoint does not hang the run
    assert not result.ok and result.totals.failed == 20
    rows = fetch_log(db_path)
    expected = f"the token request POST {base}/oauth/token {message}"
    assert {(row[1], row[3], row[4]) for row in rows} == {(None, "auth_error", expected)}
    assert len(server.token_requests) == asked  # a few for the run, not one per request
    assert server.api_hits == []  # nothing was sent without a token


async def test_a_token_endpoint_down_for_two_seconds_fails_no_request(
    auth_server: tuple[AuthServer, str], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, base = auth_server
    server.expires_in = 1  # renewed while the endpoint is down, and expired long before it is back
    now = time.monotonic()
    server.outage = (now + 0.5, now + 2.5)
    # Twenty requests a second for three seconds; a total timeout of 1 s that waiting for the token does not tick.
    spec = oauth_spec(base, count=60, extra="  rate_limit: {per_second: 20}\n  timeout: {total: 1}\n")

    with caplog.at_level(logging.INFO, logger="crawlrunner"):
        result = await run_async(spec, output=db_path)

    assert result.ok and result.totals.ok == 60, fetch_log(db_path)
    failed = [r for r in server.token_requests if r["down"]]
    assert failed and len(failed) <= 6  # asked after 1 s, then 2 s: not once per waiting request
    # (A request sent with the old token in its last instant may be refused: it waits, and goes again.)
    assert len(server.api_hits) - server.refused == 60
    waited = [r.getMessage() for r in caplog.records if "wait for the next try" in r.getMessage()]
    assert waited and waited[0].startswith(f"items: the token request POST {base}/oauth/token failed after 2 attempts")


async def test_wrong_client_credentials_are_an_auth_error_naming_the_endpoint(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server

    await run_async(oauth_spec(base, count=3, client_id="someone-else"), output=db_path)

    assert {row[4] for row in fetch_log(db_path)} == {
        f"the token request POST {base}/oauth/token failed: HTTP 401 (invalid_client)"
    }
    assert len(server.token_requests) == 1


LOGIN = """
name: login
http: {{base_url: "{base}"}}
targets:
  - name: items
    url: "/api/items/{{n}}"
    vars: {{n: [1, 2, 3, 4, 5]}}
    auth:
      type: token
      request:
        url: /login
        json: {{user: {user}, password: "${{env.CR_LOGIN_PASSWORD}}"}}
{auth}    extract: {{fields: {{id: id}}}}
"""


@pytest.mark.parametrize(
    ("keys", "header"),
    [
        ("      token: data.jwt\n      expires_in: data.ttl\n", "Authorization"),
        ("      token: {header: X-Auth-Token}\n      header: X-Session\n      prefix: ''\n", "X-Session"),
    ],
    ids=["json-selector", "response-header"],
)
async def test_a_login_requests_answer_gives_the_token(
    auth_server: tuple[AuthServer, str], db_path: Path, keys: str, header: str
) -> None:
    server, base = auth_server
    spec = load_spec_text(LOGIN.format(base=base, user=USER, auth=keys), environ={"CR_LOGIN_PASSWORD": PASSWORD})

    result = await run_async(spec, output=db_path)

    assert result.ok, fetch_log(db_path)
    assert [r["json"] for r in server.token_requests] == [{"user": USER, "password": PASSWORD}]
    (token,) = server.issued
    expected = f"Bearer {token}" if header == "Authorization" else token
    assert server.api_hits == [expected] * 5


async def test_a_refused_login_is_an_auth_error(auth_server: tuple[AuthServer, str], db_path: Path) -> None:
    _, base = auth_server
    spec = load_spec_text(
        LOGIN.format(base=base, user="nobody", auth="      token: data.jwt\n"), environ={"CR_LOGIN_PASSWORD": "x"}
    )

    await run_async(spec, output=db_path)

    assert {row[3:] for row in fetch_log(db_path)} == {
        (
            "auth_error",
            f'the token request POST {base}/login failed: HTTP 403 (message: "who are you? no user *** with password ***")',
        )
    }


async def test_an_answer_without_the_token_says_where_it_looked(
    auth_server: tuple[AuthServer, str], db_path: Path
) -> None:
    _, base = auth_server
    spec = load_spec_text(
        LOGIN.format(base=base, user=USER, auth="      token: data.session\n"),
        environ={"CR_LOGIN_PASSWORD": PASSWORD},
    )

    await run_async(spec, output=db_path)

    assert {row[4] for row in fetch_log(db_path)} == {
        f"the token request POST {base}/login: the answer has no token at data.session"
    }


async def test_a_cross_origin_redirect_does_not_carry_the_token(
    auth_server: tuple[AuthServer, str], elsewhere: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    other, other_base = elsewhere
    extra = "  - {name: away, url: '/api/away?to=" + other_base + "/api/echo', extract: {fields: {a: a}}}\n"
    spec = oauth_spec(base, count=1, targets=extra)

    await run_async(spec, output=db_path)

    assert other.api_hits == [None]  # it arrived, without the token (so the API there refused it)
    assert len(server.token_requests) == 1
    assert query(db_path, "SELECT status FROM _crawlrunner_fetch_log WHERE target = 'away'") == [(401,)]


async def test_a_token_url_off_allowed_hosts_is_refused_before_it_is_asked(
    auth_server: tuple[AuthServer, str], elsewhere: tuple[AuthServer, str], db_path: Path
) -> None:
    server, base = auth_server
    other, other_base = elsewhere
    port = base.rsplit(":", 1)[1]
    spec = load_spec_text(
        OAUTH.format(
            base=base, count=2, extra=f"  allowed_hosts: ['127.0.0.1:{port}']\n", targets="", client_id=CLIENT_ID
        ).replace("token_url: /oauth/token", f"token_url: {other_base}/oauth/token"),
        environ=ENV,
    )

    await run_async(spec, output=db_path)

    other_port = other_base.rsplit(":", 1)[1]
    assert {row[3:] for row in fetch_log(db_path)} == {
        (
            "auth_error",
            f"the token request POST {other_base}/oauth/token failed: 127.0.0.1:{other_port} is not in http.allowed_hosts",
        )
    }
    assert other.token_requests == [] and server.api_hits == []


def test_plan_fetches_no_token_and_try_fetches_one(
    auth_server: tuple[AuthServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, base = auth_server
    path = tmp_path / "oauth.yaml"
    path.write_text(OAUTH.format(base=base, count=3, extra="", targets="", client_id=CLIENT_ID), encoding="utf-8")
    monkeypatch.setenv("CR_CLIENT_SECRET", CLIENT_SECRET)
    cli = CliRunner()

    planned = cli.invoke(main, ["plan", str(path), "-n", "1"])
    assert planned.exit_code == 0, planned.output
    assert (
        "      Authorization: *** (auth oauth2_client_credentials: a token fetched when the run starts)"
        in planned.stdout
    )
    assert server.token_requests == []

    tried = cli.invoke(main, ["try", str(path), "items"])
    assert tried.exit_code == 0, tried.output
    assert "HTTP 200" in tried.stdout
    assert len(server.token_requests) == 1 and server.refused == 0


CANARY_TARGETS = """  - name: echo
    url: /api/echo
    store_bodies: true
    extract: {fields: {seen: {jmespath: headers, type: json}, auth: headers.Authorization}}
  - {name: private, url: /api/private/1, extract: {fields: {a: a}}}
  - name: login
    url: /api/echo
    auth: {type: token, request: {url: /login, json: {user: reader, password: "${env.CR_LOGIN_PASSWORD}"}}, token: data.jwt}
    extract: {fields: {auth: headers.Authorization}}
"""


@pytest.mark.subprocess
def test_no_token_or_client_secret_lands_in_the_database_logs_or_messages(
    auth_server: tuple[AuthServer, str], tmp_path: Path
) -> None:
    server, base = auth_server
    server.revoke_after = 3  # a renewal after a 401 too
    spec = tmp_path / "oauth.yaml"
    spec.write_text(OAUTH.format(base=base, count=6, extra="", targets=CANARY_TARGETS, client_id=CLIENT_ID))
    broken = tmp_path / "broken.yaml"
    broken.write_text(spec.read_text().replace("client_id: " + CLIENT_ID, "client_id: nobody"))
    db = tmp_path / "out.db"
    env = {**os.environ, **ENV, "CR_LOGIN_PASSWORD": PASSWORD, "PYTHONWARNINGS": "error"}
    outputs: list[bytes] = []

    def crawlrunner(*args: str) -> int:
        done = subprocess.run([str(ENTRY_POINT), *args], capture_output=True, env=env, cwd=tmp_path, timeout=60)
        outputs.extend([done.stdout, done.stderr])
        assert b"Traceback" not in done.stderr, done.stderr.decode()
        return done.returncode

    assert crawlrunner("-vv", "run", str(spec), "-o", str(db)) == 1  # the private resource's 401
    assert crawlrunner("--log-format", "json", "-vv", "run", str(broken), "-o", str(db)) == 1
    crawlrunner("-vv", "try", str(spec), "echo")
    crawlrunner("plan", str(spec))
    crawlrunner("run", str(spec), "-o", str(db), "--retry-failed", "-v")
    for table in ("items", "echo", "private", "login"):
        crawlrunner("export", str(db), table, "-f", "jsonl")
    for table in ("fetch_log", "requests", "bodies", "validators", "runs"):
        crawlrunner("query", str(db), f"SELECT * FROM {table}", "-f", "json")

    # The run really sent the tokens, and echoed them back in the pages it stored.
    tokens = server.every_token
    assert len(tokens) >= 4  # oauth, its renewal after the revocation, the login, try's and --retry-failed's
    assert {f"Bearer {t}" for t in tokens} & set(server.api_hits)
    assert query(db, "SELECT DISTINCT auth FROM echo") == [("Bearer ***",)]
    written = [p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name.startswith("out.db")]
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in [*tokens, CLIENT_SECRET, PASSWORD, basic]:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            for blob in outputs + written:
                assert form.encode() not in blob, f"{secret!r} leaked as {form!r}"
    assert b"auth_error" in b"".join(outputs)  # the broken run's failures were printed, masked


async def test_a_postgresql_run_fetches_its_token_and_stores_none(
    auth_server: tuple[AuthServer, str], pg_url: str
) -> None:
    import asyncpg

    server, base = auth_server
    server.revoke_after = 4
    echo = "  - {name: echo, url: /api/echo, store_bodies: true, extract: {fields: {auth: headers.Authorization}}}\n"

    result = await run_async(oauth_spec(base, count=10, targets=echo), output=pg_url)

    assert result.ok and result.totals.ok == 11
    assert len(server.token_requests) == 2  # the first token, and one renewal after the revocation
    conn = await asyncpg.connect(pg_url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        dumped = [
            str(row)
            for schema, table in tables
            for row in await conn.fetch(f'SELECT t::text FROM "{schema}"."{table}" t')
        ]
        auth = await conn.fetchval('SELECT array_agg(DISTINCT auth) FROM "echo"')
    finally:
        await conn.close()
    assert auth == ["Bearer ***"]  # the token the API echoed, masked
    assert len(dumped) > 20
    for secret in [*server.every_token, CLIENT_SECRET]:
        assert not [row for row in dumped if secret in row], secret
