"""Token sources without sockets: when a token is fetched, renewed, kept or refused, and how answers are read.

The token endpoint is a function that answers what the test says and counts
its calls; the clock is the test's. The same rules against a real server:
tests/integration/test_token_auth.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable

import pytest

from crawlrunner.errors import AuthError, ConnectError
from crawlrunner.http.tokens import (
    FAILURE_PAUSE,
    FIRST_PAUSE,
    Answer,
    ClientCredentials,
    LoginAnswer,
    TokenSource,
)
from crawlrunner.secrets import KEPT_ADDED, MASK, Redactor
from crawlrunner.settings import AnswerField, Auth, RetryPolicy, TokenRequest
from crawlrunner.spec import load_spec_text

OAUTH = Auth(type="oauth2_client_credentials", token_url="https://auth.test/token", client_id="id", client_secret="s")


class Endpoint:
    """Answers token requests from a script of (status, JSON body) pairs, the last one repeated."""

    def __init__(self, *answers: tuple[int, object]) -> None:
        self.answers = list(answers) or [(200, None)]
        self.calls = 0

    async def __call__(self) -> Answer:
        self.calls += 1
        await asyncio.sleep(0)  # a real exchange yields: let the other requests pile up behind it
        status, body = self.answers[min(self.calls, len(self.answers)) - 1]
        if body is None:
            body = {"access_token": f"token-{self.calls:04d}", "token_type": "Bearer", "expires_in": 100}
        return Answer(status, {}, json.dumps(body).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(
    endpoint: Callable[[], object],
    clock: Clock,
    redactor: Redactor | None = None,
    attempts: int = 1,
    max_retry_after: float = 120.0,
) -> TokenSource:
    return TokenSource(
        ClientCredentials(OAUTH),
        "Authorization",
        endpoint,  # type: ignore[arg-type]
        redactor or Redactor(),
        RetryPolicy(attempts=attempts, backoff=0.01, max_retry_after=max_retry_after),
        clock=clock,
    )


async def test_concurrent_requests_share_one_token_fetch() -> None:
    endpoint, clock = Endpoint(), Clock()
    tokens = source(endpoint, clock)

    got = await asyncio.gather(*(tokens.current() for _ in range(50)))

    assert endpoint.calls == 1
    assert {t.value for t in got} == {"Bearer token-0001"}


@pytest.mark.parametrize(("lifetime", "renewed_after"), [(100, 90.0), (3600, 3570.0), (0, 0.9)])
async def test_a_token_is_renewed_a_margin_before_it_expires(lifetime: int, renewed_after: float) -> None:
    endpoint = Endpoint((200, {"access_token": "first-tok", "expires_in": lifetime}), (200, None))
    clock = Clock()
    tokens = source(endpoint, clock)
    first = await tokens.current()

    clock.now += renewed_after - 0.01
    assert await tokens.current() is first and endpoint.calls == 1
    clock.now += 0.01
    assert (await tokens.current()).value == "Bearer token-0002" and endpoint.calls == 2


async def test_a_renewal_before_expiry_is_logged_with_its_reason_and_units(caplog: pytest.LogCaptureFixture) -> None:
    endpoint, clock = Endpoint(), Clock()
    tokens = source(endpoint, clock)
    tokens.targets += ["items", "echo", "users"]

    with caplog.at_level(logging.INFO, logger="crawlrunner.http.tokens"):
        await tokens.current()
        clock.now += 90
        await tokens.current()

    assert [r.getMessage() for r in caplog.records] == [
        "items and 2 more targets: token obtained from POST https://auth.test/token, good for 100 s",
        "items and 2 more targets: token renewed (the last one expires in 10.0 s) from POST https://auth.test/token,"
        " good for 100 s",
    ]


async def test_the_live_view_says_what_requests_wait_for() -> None:
    endpoint = Endpoint((500, {"error": "server_error"}))
    tokens = source(endpoint, Clock())  # the clock stands still: the requests wait until cancelled
    assert await tokens.current() is None and tokens.note() == ""  # nobody waits yet

    waiting = [asyncio.create_task(tokens.ready()) for _ in range(3)]
    await asyncio.sleep(0)
    try:
        assert tokens.note() == "3 waiting for a token: the endpoint failed (HTTP 500 (server_error)), next try in 1 s"
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    assert tokens.waiting == 0


async def test_a_token_without_a_lifetime_is_kept_until_a_401() -> None:
    endpoint, clock = Endpoint((200, {"access_token": "forever-tok"}), (200, None)), Clock()
    tokens = source(endpoint, clock)
    first = await tokens.current()

    clock.now += 10**7
    assert await tokens.current() is first
    assert tokens.rejected(first)
    assert (await tokens.current()).value == "Bearer token-0002"


async def test_a_failed_renewal_keeps_the_token_until_it_expires_then_requests_wait() -> None:
    endpoint = Endpoint((200, None), (503, {"error": "temporarily_unavailable"}))
    clock = Clock()
    tokens = source(endpoint, clock)
    first = await tokens.current()

    clock.now += 95  # past the renewal point (90), before expiry (100)
    assert await tokens.current() is first and endpoint.calls == 2
    clock.now += FIRST_PAUSE / 2
    assert await tokens.current() is first and endpoint.calls == 2  # not asked again during the pause
    clock.now += 5  # expired, and the endpoint fails again
    assert await tokens.current() is None  # wait for the next try: the failure may pass
    assert endpoint.calls == 3


async def test_the_pause_grows_and_requests_wait_until_the_endpoint_has_failed_for_max_retry_after() -> None:
    endpoint, clock = Endpoint((500, {"error": "server_error"})), Clock()
    tokens = source(endpoint, clock, max_retry_after=10)
    asked_at = []

    for _ in range(40):  # every tenth of a second, for four seconds
        if await tokens.current() is None and endpoint.calls > len(asked_at):
            asked_at.append(round(clock.now - 1000, 1))
        clock.now += 0.1
    clock.now = 1010.0 - 0.1
    assert await tokens.current() is None  # still waiting, just before the bound

    assert asked_at == [0.0, 1.0, 3.0]  # paused 1 s, then 2 s, then 4 s...
    clock.now = 1010.0
    with pytest.raises(AuthError, match=r"failed: HTTP 500 \(server_error\)"):
        await tokens.current()  # ...but never past the bound: the last try comes at 10 s, and gives up
    assert endpoint.calls == 5  # at 0, 1, 3, 7 (a pause of 3 s, cut to the bound) and 10 s
    clock.now += FAILURE_PAUSE - 1
    with pytest.raises(AuthError):
        await tokens.current()  # failing at once, without asking
    assert endpoint.calls == 5
    clock.now += 1
    with pytest.raises(AuthError):
        await tokens.current()
    assert endpoint.calls == 6  # asked again every FAILURE_PAUSE seconds


async def test_an_endpoint_back_within_the_bound_serves_requests_and_starts_the_pauses_afresh() -> None:
    failed = (503, {})
    endpoint = Endpoint(failed, failed, (200, {"access_token": "back-tok", "expires_in": 10}), failed, (200, None))
    clock = Clock()
    tokens = source(endpoint, clock)

    assert await tokens.current() is None
    clock.now += FIRST_PAUSE
    assert await tokens.current() is None
    clock.now += 2 * FIRST_PAUSE
    back = await tokens.current()
    assert back is not None and back.value == "Bearer back-tok"
    clock.now += 10  # expired: renewed, and the endpoint fails again
    assert await tokens.current() is None
    clock.now += FIRST_PAUSE  # the first pause again, not the fourth
    assert (await tokens.current()) is not None and endpoint.calls == 5


async def test_a_failure_that_will_not_pass_fails_requests_at_once() -> None:
    endpoint, clock = Endpoint((401, {"error": "invalid_client"})), Clock()
    tokens = source(endpoint, clock, attempts=3)

    with pytest.raises(AuthError, match=r"failed: HTTP 401 \(invalid_client\)\Z"):
        await tokens.current()
    clock.now += FAILURE_PAUSE - 1
    with pytest.raises(AuthError):
        await tokens.current()
    assert endpoint.calls == 1  # not retried, and not asked again for FAILURE_PAUSE seconds


async def test_the_token_request_is_retried_as_the_targets_policy_says() -> None:
    endpoint, clock = Endpoint((502, {}), (200, None)), Clock()

    token = await source(endpoint, clock, attempts=2).current()

    assert token.value == "Bearer token-0002" and endpoint.calls == 2


async def test_an_endpoint_that_cannot_be_reached_is_an_auth_error_with_the_reason() -> None:
    async def unreachable() -> Answer:
        raise ConnectError("Cannot connect to host auth.test:443")

    with pytest.raises(AuthError) as caught:  # a bound of 0 s: no waiting for the endpoint to come back
        await source(unreachable, Clock(), max_retry_after=0).current()
    assert str(caught.value) == (
        "the token request POST https://auth.test/token failed: Cannot connect to host auth.test:443"
    )


async def test_a_401_renews_the_token_once_whoever_else_saw_it() -> None:
    endpoint, clock = Endpoint(), Clock()
    tokens = source(endpoint, clock)
    first = await tokens.current()

    assert tokens.rejected(first) and tokens.rejected(first)  # two requests refused with it
    renewed = await asyncio.gather(tokens.current(), tokens.current())

    assert endpoint.calls == 2 and renewed[0] is renewed[1] and renewed[0].after_401


async def test_a_token_a_401_renewed_is_not_renewed_again_too_soon_or_before_it_worked() -> None:
    endpoint, clock = Endpoint(), Clock()
    tokens = source(endpoint, clock)
    tokens.rejected(await tokens.current())
    renewed = await tokens.current()

    assert not tokens.rejected(renewed)  # nothing succeeded with it: the API refuses fresh tokens
    renewed.accepted = True
    clock.now += FAILURE_PAUSE - 1
    assert not tokens.rejected(renewed)  # a 401 about a resource, not the token
    clock.now += 1
    assert tokens.rejected(renewed)  # later, a revocation as any other
    assert endpoint.calls == 2


async def test_every_token_joins_the_redactor_when_it_is_read() -> None:
    redactor = Redactor(["spec-secret"])
    tokens = source(Endpoint(), Clock(), redactor)

    token = await tokens.current()

    assert redactor(f"x {token.value} y spec-secret") == f"x Bearer {MASK} y {MASK}"


def test_the_redactor_keeps_only_the_latest_added_secrets() -> None:
    redactor = Redactor(["spec-secret"])
    added = [f"token-{n:04d}" for n in range(KEPT_ADDED + 2)]
    for value in added:
        redactor.add(value)
        redactor.add(value)  # once is enough

    assert redactor(" ".join(added)) == " ".join(added[:2] + [MASK] * KEPT_ADDED)
    assert redactor("spec-secret") == MASK  # the spec's own are never dropped


def test_client_credentials_go_in_a_basic_header_form_encoded_first() -> None:
    auth = Auth(type="oauth2_client_credentials", token_url="https://a.test/t", client_id="my app", client_secret="p:w")

    request = ClientCredentials(auth).request

    assert request.form == {"grant_type": "client_credentials"}
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"my+app:p%3Aw").decode()


def test_client_credentials_in_the_body_with_scope_and_audience() -> None:
    auth = Auth(
        type="oauth2_client_credentials",
        token_url="https://a.test/t",
        client_id="id",
        client_secret="s",
        client_auth="body",
        scope="a b",
        audience="api",
    )

    request = ClientCredentials(auth).request

    assert "Authorization" not in request.headers
    assert request.form == {
        "grant_type": "client_credentials",
        "scope": "a b",
        "audience": "api",
        "client_id": "id",
        "client_secret": "s",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>login</html>", "the answer is not JSON"),
        (b"[1]", "the answer is not a JSON object"),
        (b'{"token_type": "bearer"}', "the answer has no token at access_token"),
        (b'{"access_token": "  "}', "the answer has no token at access_token"),
        (b'{"access_token": "a\\r\\nX-Evil: 1"}', "the token at access_token holds a line break"),
        (b'{"access_token": "abc", "token_type": "mac"}', "the token endpoint gave a mac token"),
    ],
)
def test_an_unusable_client_credentials_answer_says_why(body: bytes, problem: str) -> None:
    with pytest.raises(AuthError, match=problem):
        ClientCredentials(OAUTH).read(Answer(200, {}, body))


def test_a_client_credentials_answer_read_whole() -> None:
    body = b'{"access_token": "abc", "token_type": "bearer", "expires_in": "3600"}'

    issued = ClientCredentials(OAUTH).read(Answer(200, {}, body))

    assert (issued.token, issued.value, issued.lifetime) == ("abc", "Bearer abc", 3600.0)


@pytest.mark.parametrize(
    ("token", "expires", "answer", "read"),
    [
        (
            AnswerField(source="data.tokens[0]"),
            None,
            Answer(200, {}, b'{"data": {"tokens": ["j1"]}}'),
            ("Tok j1", None),
        ),
        (
            AnswerField(source="X-Auth", header=True),
            AnswerField(source="ttl"),
            Answer(200, {"X-Auth": "h1"}, b'{"ttl": 60}'),
            ("Tok h1", 60.0),
        ),
    ],
    ids=["jmespath", "header"],
)
def test_a_login_answer_gives_the_token_where_the_spec_says(
    token: AnswerField, expires: AnswerField | None, answer: Answer, read: tuple[str, float | None]
) -> None:
    auth = Auth(
        type="token",
        request=TokenRequest(url="https://a.test/login"),
        token_field=token,
        expires_field=expires,
        prefix="Tok ",
    )

    issued = LoginAnswer(auth).read(answer)

    assert (issued.value, issued.lifetime) == read


@pytest.mark.parametrize(
    ("status", "body", "quoted"),
    [
        (
            403,
            {"message": "no user reader with password pw123 (x)"},
            ' (message: "no user *** with password *** (***)")',
        ),
        (401, {"error": {"code": 7, "message": "token=secret-abc\nrefused"}}, ' (error: "token=*** refused")'),
        (400, {"detail": "d" * 200}, ' (detail: "' + "d" * 79 + '…")'),
        (422, {"error": True, "errors": ["pw123"]}, ""),
        (200, {"message": "welcome reader"}, ""),  # nothing from a 2xx answer
        (500, "<html>pw123</html>", ""),
    ],
    ids=["message", "nested-error", "cut", "no-text", "2xx", "not-json"],
)
def test_a_refused_login_quotes_the_servers_reason_without_what_was_sent(
    status: int, body: object, quoted: str
) -> None:
    auth = Auth(
        type="token",
        request=TokenRequest(url="https://a.test/login", json_body={"user": "reader", "password": "pw123", "otp": "x"},
                             headers={"X-Key": "secret-abc"}),
        token_field=AnswerField(source="jwt"),
    )  # fmt: skip
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()

    assert LoginAnswer(auth).refusal(Answer(status, {}, raw)) == quoted


def test_a_client_secret_in_clear_is_warned_about_and_masked_but_a_token_selector_is_neither() -> None:
    spec = load_spec_text(
        "name: s\n"
        "http:\n"
        "  base_url: https://api.test\n"
        "  auth: {type: oauth2_client_credentials, token_url: /t, client_id: me, client_secret: cs-in-clear-1}\n"
        "targets:\n"
        "  - {name: a, url: /a}\n"
        "  - {name: b, url: /b, auth: {type: token, request: {url: /login}, token: data.access_token}}\n",
        file="s.yaml",
    )

    assert [str(w) for w in spec.warnings] == [
        "s.yaml:4:88: http.auth.client_secret: a credential written in the spec: anyone who can read the spec "
        "can use it; take it from the environment with ${env.NAME}"
    ]
    assert spec.redactor("cs-in-clear-1 data.access_token") == f"{MASK} data.access_token"
    a, b = (t.fetch.auth for t in spec.targets)
    assert a is not None and a.token_url == "https://api.test/t" and a.client_auth == "basic"
    assert b is not None and b.token_field == AnswerField(source="data.access_token")
    assert b.request is not None and b.request.url == "https://api.test/login" and b.request.method == "POST"
