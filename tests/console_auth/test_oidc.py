"""OpenID Connect login against a provider the test starts on 127.0.0.1: the browser's
redirects followed by hand, the console over ASGI, its code exchange over a real socket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from oidc_standin import CLIENT_ID, CLIENT_SECRET, Provider, _s256, running
from starlette.requests import Request
from starlette.responses import Response

from afk.approvals.principal import Principal
from afk.console import app
from afk.console.oidc import FLOW_COOKIE, OIDCConfig, OIDCLoginError, _UsedStates, oidc_routes
from afk.errors import ConfigurationError
from afk.store import RunStore, open_store

CONSOLE = "http://127.0.0.1:8765"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running() as p:
        yield p


@dataclass
class Console:
    """The console app with the OIDC routes; ``logins``: every principal ``on_login`` got."""

    http: httpx.AsyncClient
    store: RunStore
    logins: list[Principal] = field(default_factory=list)


def config(provider: Provider, **changes: object) -> OIDCConfig:
    fields: dict[str, object] = {
        "issuer": provider.base,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_url": f"{CONSOLE}/login/oidc/callback",
        **changes,
    }
    return OIDCConfig(**fields)  # type: ignore[arg-type]


async def _console(tmp_path: Path, cfg: OIDCConfig) -> AsyncIterator[Console]:
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    await store.setup()
    made = app(store=store)
    sessions = made.state.afk_sessions
    logins: list[Principal] = []

    def on_login(request: Request, response: Response, principal: Principal) -> None:
        logins.append(principal)
        sessions.start(request, response, principal)

    made.router.routes.extend(oidc_routes(cfg, on_login))
    transport = httpx.ASGITransport(app=made)
    async with httpx.AsyncClient(transport=transport, base_url=CONSOLE) as http:
        yield Console(http=http, store=store, logins=logins)
    await store.close()


@pytest.fixture
async def console(tmp_path: Path, provider: Provider) -> AsyncIterator[Console]:
    async for made in _console(tmp_path, config(provider)):
        yield made


async def to_provider(console: Console) -> str:
    """``GET /login/oidc``, then the provider's /authorize: the callback URL it sends back."""
    start = await console.http.get("/login/oidc")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient(timeout=10) as browser:
        authorized = await browser.get(start.headers["location"])
    assert authorized.status_code == 302, authorized.text
    back: str = authorized.headers["location"]
    assert back.startswith(f"{CONSOLE}/login/oidc/callback?")
    return back


async def log_in(console: Console) -> httpx.Response:
    return await console.http.get(await to_provider(console))


def refused(answer: httpx.Response, console: Console, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert "Login failed" in answer.text
    assert console.logins == []
    assert "afk_session" not in answer.cookies
    assert "afk_session" not in console.http.cookies


async def test_a_login_starts_a_session_as_the_oidc_principal(
    console: Console, provider: Provider
) -> None:
    answer = await log_in(console)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    [who] = console.logins
    assert who.id == "alice@example.com"  # canonical, as afk.approvals.principal makes it
    assert who.authenticated_by == f"oidc:{provider.base}"
    assert who.display_name == "Alice"
    # The session works: the inbox answers, and the API takes the session for GETs.
    page = await console.http.get("/")
    assert page.status_code == 200
    assert "alice@example.com" in page.text
    api = await console.http.get("/api/v1/requests")
    assert api.status_code == 200
    assert FLOW_COOKIE not in console.http.cookies  # the flow's cookie is spent


async def test_the_pkce_verifier_is_sent_and_checked(console: Console, provider: Provider) -> None:
    start = await console.http.get("/login/oidc")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["openid email profile"]
    async with httpx.AsyncClient() as browser:
        back = (await browser.get(start.headers["location"])).headers["location"]
    assert (await console.http.get(back)).status_code == 303
    [call] = provider.token_calls
    assert _s256(call["form"]["code_verifier"]) == query["code_challenge"][0]
    assert provider.pkce_checked == 1


async def test_a_verifier_that_does_not_match_the_challenge_is_refused(
    console: Console, provider: Provider
) -> None:
    back = await to_provider(console)
    code = parse_qs(urlsplit(back).query)["code"][0]
    provider.codes[code]["challenge"] = _s256("a verifier someone else holds")
    refused(await console.http.get(back), console, 401)
    assert provider.pkce_checked == 0


async def test_a_rotated_signing_key_is_fetched_once(console: Console, provider: Provider) -> None:
    assert (await log_in(console)).status_code == 303
    provider.key = RSAKey.generate_key(2048)
    provider.behaviour.kid = provider.jwks_kid = "key-2"
    assert (await log_in(console)).status_code == 303
    assert [p.id for p in console.logins] == ["alice@example.com"] * 2
    assert provider.jwks_fetches == 2
    provider.behaviour.kid = "key-3"  # a token naming a key nobody has: no third fetch
    answer = await log_in(console)
    assert answer.status_code == 401 and provider.jwks_fetches == 2


async def test_next_is_kept_when_it_is_a_path_on_this_site(console: Console) -> None:
    for asked, lands in (("/requests/req_1", "/requests/req_1"), ("//evil.example/", "/")):
        console.http.cookies.clear()
        start = await console.http.get("/login/oidc", params={"next": asked})
        async with httpx.AsyncClient() as browser:
            back = (await browser.get(start.headers["location"])).headers["location"]
        answer = await console.http.get(back)
        assert answer.headers["location"] == lands


async def test_a_wrong_state_starts_no_session(console: Console) -> None:
    back = await to_provider(console)
    query = parse_qs(urlsplit(back).query)
    forged = f"{CONSOLE}/login/oidc/callback?code={query['code'][0]}&state=someone-elses"
    refused(await console.http.get(forged), console, 400)


async def test_a_callback_without_the_flow_cookie_starts_no_session(console: Console) -> None:
    back = await to_provider(console)
    console.http.cookies.clear()  # another browser: an attacker's callback link
    refused(await console.http.get(back), console, 400)


async def test_a_replayed_callback_or_code_starts_no_session(
    console: Console, provider: Provider
) -> None:
    back = await to_provider(console)
    flow = console.http.cookies[FLOW_COOKIE]
    assert (await console.http.get(back)).status_code == 303
    console.logins.clear()
    console.http.cookies.clear()
    # The very same callback, cookie included: its state was taken.
    console.http.cookies.set(FLOW_COOKIE, flow, domain="127.0.0.1", path="/login/oidc")
    refused(await console.http.get(back), console, 401)
    # The old code with a fresh flow's state: the provider refuses the second use.
    console.http.cookies.clear()
    fresh = parse_qs(urlsplit(await to_provider(console)).query)["state"][0]
    old_code = parse_qs(urlsplit(back).query)["code"][0]
    replay = f"{CONSOLE}/login/oidc/callback?code={old_code}&state={fresh}"
    refused(await console.http.get(replay), console, 401)
    assert len(provider.used_codes) == 1


@pytest.mark.parametrize(
    "bend",
    [
        {"aud": "another-client"},
        {"aud": ["another-client"]},
        {"iss": "http://127.0.0.1:1/not-the-issuer"},
        {"nonce": "not-the-nonce"},
        {"exp_in": -600},
        {"wrong_key": True},
        {"kid": "unknown-key"},
        {"alg": "HS256"},
    ],
    ids=["aud", "aud-list", "iss", "nonce", "expired", "bad-signature", "kid", "hs256"],
)
async def test_an_id_token_that_does_not_verify_starts_no_session(
    console: Console,
    provider: Provider,
    bend: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in bend.items():
        setattr(provider.behaviour, name, value)
    if bend.get("alg") == "HS256":  # an HMAC under the client secret, as some would try
        from joserfc.jwk import OctKey

        provider.key = OctKey.import_key(CLIENT_SECRET.encode())  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="afk.console.oidc"):
        answer = await log_in(console)
    refused(answer, console, 401)
    assert any("OIDC login refused" in r.getMessage() for r in caplog.records)


async def test_an_unverified_email_or_a_missing_claim_logs_nobody_in(
    console: Console, provider: Provider
) -> None:
    provider.behaviour.claims["email_verified"] = False
    refused(await log_in(console), console, 401)
    del provider.behaviour.claims["email"]
    refused(await log_in(console), console, 401)


async def test_claim_sub_names_the_principal(tmp_path: Path, provider: Provider) -> None:
    async for made in _console(tmp_path, config(provider, claim="sub")):
        assert (await log_in(made)).status_code == 303
        assert [p.id for p in made.logins] == ["u-123"]


async def test_the_allow_lists(tmp_path: Path, provider: Provider) -> None:
    cfg = config(provider, allowed=["Bob@example.com"], allowed_domains=["corp.example"])
    async for made in _console(tmp_path, cfg):
        refused(await log_in(made), made, 401)  # alice@example.com: neither
        provider.behaviour.claims["email"] = "bob@example.com"
        assert (await log_in(made)).status_code == 303
        provider.behaviour.claims["email"] = "carol@corp.example"
        assert (await log_in(made)).status_code == 303
        provider.behaviour.claims.update(email="dave@corp.example", email_verified=False)
        cfg_sub = config(provider, claim="sub", allowed_domains=["corp.example"])
        async for by_sub in _console(tmp_path / "sub", cfg_sub):
            refused(await log_in(by_sub), by_sub, 401)  # the domain, but unverified
        assert [p.id for p in made.logins] == ["bob@example.com", "carol@corp.example"]


async def test_the_providers_error_answer_starts_no_session(console: Console) -> None:
    await console.http.get("/login/oidc")
    answer = await console.http.get("/login/oidc/callback?error=access_denied&state=x")
    refused(answer, console, 400)


async def test_a_discovery_document_for_another_issuer_is_refused(
    console: Console, provider: Provider
) -> None:
    provider.issuer_in_metadata = "https://evil.example"
    answer = await console.http.get("/login/oidc")
    assert answer.status_code == 502
    assert FLOW_COOKIE not in answer.cookies


def test_config_is_checked_where_it_is_written(provider: Provider, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="issuer must be an https:// URL"):
        config(provider, issuer="http://idp.example.com")
    with pytest.raises(ConfigurationError, match="scopes must include 'openid'"):
        config(provider, scopes=("email",))
    with pytest.raises(ConfigurationError, match="allowed_domains"):
        config(provider, allowed_domains=["@"])
    with pytest.raises(ConfigurationError, match="redirect_url"):
        config(provider, redirect_url="/login/oidc/callback")
    assert config(provider, allowed=["  Alice "]).allowed == ("alice",)
    assert OIDCLoginError("x", reason="state", http_status=400).http_status == 400


def test_taken_states_are_remembered_within_their_cap() -> None:
    used = _UsedStates(cap=4)
    assert used.take("a", 0.0) and not used.take("a", 1.0)
    for i, state in enumerate("bcdef"):
        assert used.take(state, 2.0 + i)
    assert not used.take("f", 9.0)  # the newest are kept
    assert len(used.seen) <= 4


async def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(
    console: Console, tmp_path: Path
) -> None:
    """An OIDC session has no token row behind it: logging out records it as ended in the
    store, so a copy of the cookie taken before (another tab, a stolen one) stops working."""
    import re

    assert (await log_in(console)).status_code == 303
    copied = console.http.cookies["afk_session"]
    page = await console.http.get("/")
    [csrf] = re.findall(r'name="csrf" value="([^"]+)"', page.text)[:1]
    out = await console.http.post("/logout", data={"csrf": csrf}, headers={"origin": CONSOLE})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    transport = httpx.ASGITransport(app=app(store=console.store))
    async with httpx.AsyncClient(transport=transport, base_url=CONSOLE) as replay:
        replay.cookies.set("afk_session", copied)
        inbox = await replay.get("/")
        api = await replay.get("/api/v1/requests")
    assert inbox.status_code == 303 and inbox.headers["location"].startswith("/login")
    assert api.status_code == 401
