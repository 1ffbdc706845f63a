"""A trusted reverse proxy's header: believed from the configured proxy addresses only,
over ASGI (the client address set by the transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from afk.console import TokenAuthenticator, app
from afk.console.proxy import (
    FirstOf,
    ProxyHeaderAuthenticator,
    forwarded_proto,
    peer_in,
    proxy_login_routes,
)
from afk.errors import ConfigurationError
from afk.store import RunStore, open_store

USER = "X-Forwarded-User"


def echo(auth: ProxyHeaderAuthenticator) -> Starlette:
    """An app answering who ``auth`` says the caller is (and the scheme it saw)."""

    async def who(request: Request) -> Response:
        principal = await auth.authenticate(request)
        if principal is None:
            return JSONResponse({"principal": None, "scheme": request.url.scheme}, 401)
        body = {"principal": principal.id, "by": principal.authenticated_by}
        return JSONResponse({**body, "scheme": request.url.scheme})

    return Starlette(routes=[Route("/who", who, methods=["GET", "POST"])])


def client(asgi: object, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi, client=(peer, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://console")


async def who(asgi: object, peer: str, **kwargs: object) -> httpx.Response:
    method = str(kwargs.pop("method", "GET"))
    async with client(asgi, peer) as http:
        return await http.request(method, "/who", **kwargs)  # type: ignore[arg-type]


AUTH = ProxyHeaderAuthenticator(trusted=["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"])


@pytest.mark.parametrize("peer", ["10.1.2.3", "127.0.0.1", "::ffff:10.9.9.9", "fd00::7"])
async def test_the_header_is_believed_from_a_trusted_proxy(peer: str) -> None:
    answer = await who(echo(AUTH), peer, headers={USER: "  Alice "})
    assert answer.status_code == 200
    assert answer.json()["principal"] == "alice"  # canonical, as afk.approvals makes it
    assert answer.json()["by"] == "proxy:X-Forwarded-User"


@pytest.mark.parametrize("peer", ["192.168.1.5", "11.0.0.1", "::1", "not-an-address"])
async def test_the_header_is_ignored_from_anywhere_else(peer: str) -> None:
    answer = await who(echo(AUTH), peer, headers={USER: "alice", "X-Forwarded-For": "10.0.0.1"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(USER, "")],
        [(USER, "alice"), (USER, "bob")],  # which one did the proxy write?
        [(USER, "ali\u200bce".encode())],  # a hidden character: no principal
        [(USER, b"al\xffice")],  # not UTF-8
    ],
    ids=["none", "empty", "twice", "hidden", "not-utf8"],
)
async def test_a_missing_or_doubtful_header_authenticates_nobody(
    headers: list[tuple[str, str | bytes]],
) -> None:
    assert (await who(echo(AUTH), "10.0.0.1", headers=headers)).status_code == 401


async def test_a_utf8_name_is_read_as_utf8() -> None:
    answer = await who(echo(AUTH), "10.0.0.1", headers=[(USER, "José".encode())])
    assert answer.json()["principal"] == "josé"


async def test_a_cross_site_post_is_not_vouched_for() -> None:
    asgi = echo(AUTH)
    other = {USER: "alice", "Origin": "https://evil.example"}
    assert (await who(asgi, "10.0.0.1", method="POST", headers=other)).status_code == 401
    fetch = {USER: "alice", "Sec-Fetch-Site": "cross-site"}
    assert (await who(asgi, "10.0.0.1", method="POST", headers=fetch)).status_code == 401
    same = {USER: "alice", "Origin": "http://console"}
    assert (await who(asgi, "10.0.0.1", method="POST", headers=same)).status_code == 200
    script = {USER: "alice"}  # no Origin: not a browser's cross-site request
    assert (await who(asgi, "10.0.0.1", method="POST", headers=script)).status_code == 200
    # A GET reads only: a cross-site one is still the person behind the proxy.
    assert (await who(asgi, "10.0.0.1", headers=other)).status_code == 200


async def test_forwarded_proto_is_taken_from_trusted_proxies_only() -> None:
    asgi = forwarded_proto(echo(AUTH), ["10.0.0.0/8"])
    https = {USER: "alice", "X-Forwarded-Proto": "https"}
    assert (await who(asgi, "10.0.0.1", headers=https)).json()["scheme"] == "https"
    assert (await who(asgi, "192.168.0.1", headers=https)).json()["scheme"] == "http"


def test_the_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="IP networks"):
        ProxyHeaderAuthenticator(trusted=["10.0.0.1/8"])  # host bits set: a typo, not a net
    with pytest.raises(ConfigurationError, match="IP networks"):
        ProxyHeaderAuthenticator(trusted=["proxy.internal"])
    with pytest.raises(ConfigurationError, match="at least one network"):
        ProxyHeaderAuthenticator(trusted=[])
    with pytest.raises(ConfigurationError, match="header"):
        ProxyHeaderAuthenticator(header=" ", trusted=["127.0.0.1"])
    with pytest.raises(ConfigurationError, match="at least one"):
        FirstOf()
    assert not peer_in(None, AUTH.trusted)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RunStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    await opened.setup()
    yield opened
    await opened.close()


async def test_the_console_api_with_tokens_and_the_proxy(store: RunStore) -> None:
    console = app(store=store, auth=FirstOf(TokenAuthenticator(store), AUTH))
    async with client(console, "10.0.0.2") as http:
        assert (await http.get("/api/v1/requests", headers={USER: "alice"})).status_code == 200
        assert (await http.get("/api/v1/requests")).status_code == 401
    async with client(console, "203.0.113.9") as http:
        assert (await http.get("/api/v1/requests", headers={USER: "alice"})).status_code == 401


async def test_the_inbox_login_through_the_proxy_starts_a_session(store: RunStore) -> None:
    console = app(store=store)
    console.router.routes.extend(proxy_login_routes(AUTH, console.state.afk_sessions.start))
    async with client(console, "203.0.113.9") as http:  # not the proxy
        answer = await http.get("/login/proxy", headers={USER: "alice"})
        assert answer.status_code == 401 and "afk_session" not in http.cookies
    async with client(console, "10.0.0.2") as http:
        answer = await http.get(
            "/login/proxy", params={"next": "/?tool=x"}, headers={USER: "Alice"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/?tool=x"
        page = await http.get("/")  # the session alone, no header
        assert page.status_code == 200 and "alice" in page.text
        session = await console.state.afk_sessions.read(_cookie_request(http))
        assert session.principal.authenticated_by == "proxy:X-Forwarded-User"


def _cookie_request(http: httpx.AsyncClient) -> Request:
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    scope = {"type": "http", "headers": [(b"cookie", cookie.encode())], "method": "GET"}
    return Request(scope)
