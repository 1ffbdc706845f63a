"""Who is calling, as a trusted reverse proxy says: :class:`ProxyHeaderAuthenticator`.

An authenticating proxy (oauth2-proxy, an identity-aware proxy, Apache or nginx with SSO)
logs the person in and passes their name in a header such as ``X-Forwarded-User``. Anyone
can send that header, so it is believed only on a connection whose peer address is one of
the configured proxies' networks; from anywhere else it is ignored and the request is
anonymous (401). The proxy must also strip the header from what its clients send.

The peer address is the socket's: behind uvicorn, run it with ``proxy_headers=False`` (``afk
serve --proxy-header`` does), or its X-Forwarded-For handling replaces the proxy's address
with the client's before afk sees it. :func:`forwarded_proto` then takes the scheme (https)
from the trusted proxies alone, so session cookies stay ``Secure``.

A browser sends the proxy's credentials on any request, as it does cookies, so a
state-changing request (POST) the proxy vouches for is refused when its ``Origin`` (or
``Sec-Fetch-Site``) says another site made it: a cross-site page cannot decide as you.

The web inbox's pages take browser sessions only: :func:`proxy_login_routes` adds
``/login/proxy``, which starts one for the person the proxy names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from afk.approvals.principal import Principal
from afk.errors import ConfigurationError, InvalidPrincipalError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

    from afk.console.auth import Authenticator
    from afk.console.oidc import OnLogin

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def networks(cidrs: Iterable[str], *, what: str = "trusted") -> tuple[Network, ...]:
    """``cidrs`` (``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"``) as networks; raises
    ConfigurationError naming ``what`` and the entry that is not one."""
    if isinstance(cidrs, str):
        cidrs = [cidrs]
    found: list[Network] = []
    for text in cidrs:
        try:
            found.append(ipaddress.ip_network(str(text).strip(), strict=True))
        except ValueError:
            raise ConfigurationError(
                f"{what} must be IP networks like 10.0.0.0/8 or 127.0.0.1/32, got {text!r}"
            ) from None
    if not found:
        raise ConfigurationError(f"{what} needs at least one network (the proxy's address)")
    return tuple(found)


def peer_in(scope_client: Any, trusted: Sequence[Network]) -> bool:
    """Whether an ASGI scope's ``client`` (host, port) is an address in ``trusted``."""
    if not scope_client:
        return False
    try:
        address = ipaddress.ip_address(str(scope_client[0]))
    except ValueError:  # a Unix socket path, or no address at all: not a configured proxy
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket
    return any(address in net for net in trusted)


def _cross_site(request: HTTPConnection) -> bool:
    if request.headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-origin request: browsers send Origin on POST
    return origin != f"{request.url.scheme}://{request.headers.get('host', '')}"


class ProxyHeaderAuthenticator:
    """The principal a trusted proxy names in ``header``:
    ``Principal(id=<header>, authenticated_by="proxy:<header>")``, only on a connection from
    an address in ``trusted`` (CIDRs); else None. An empty, repeated or uncanonicalizable
    header authenticates nobody, and so does a cross-site POST."""

    def __init__(self, *, header: str = "X-Forwarded-User", trusted: Iterable[str]) -> None:
        if not isinstance(header, str) or not header.strip() or not header.isascii():
            raise ConfigurationError(f"header must be an HTTP header name, got {header!r}")
        self.header = header.strip()
        self.trusted = networks(trusted, what="trusted")

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The proxy's word for who this is, when the peer is a trusted proxy."""
        if not peer_in(request.scope.get("client"), self.trusted):
            return None
        values = request.headers.getlist(self.header)
        if len(values) != 1 or not values[0].strip():
            return None  # none, or two: which one did the proxy write?
        method = request.scope.get("method", "GET")
        if method not in _SAFE_METHODS and _cross_site(request):
            return None
        try:
            # Header bytes arrive decoded as Latin-1; proxies send names as UTF-8.
            name = values[0].encode("latin-1").decode("utf-8")
            return Principal(id=name, authenticated_by=f"proxy:{self.header}")
        except (UnicodeError, InvalidPrincipalError):
            return None


class FirstOf:
    """Several authenticators, tried in order: the first principal one yields (API tokens,
    then a proxy header, say)."""

    def __init__(self, *authenticators: Authenticator) -> None:
        if not authenticators:
            raise ConfigurationError("FirstOf needs at least one authenticator")
        self.authenticators = authenticators

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The first principal an authenticator yields, or None."""
        for authenticator in self.authenticators:
            principal = await authenticator.authenticate(request)
            if principal is not None:
                return principal
        return None


def proxy_login_routes(auth: ProxyHeaderAuthenticator, on_login: OnLogin) -> list[BaseRoute]:
    """``GET /login/proxy?next=/path``: a web inbox session for the person the trusted proxy
    names (``on_login``: the app's ``app.state.afk_sessions.start``), then on to ``next``;
    401 from anywhere else. A cross-site link to it can only log you in as yourself."""
    from starlette.responses import HTMLResponse, RedirectResponse
    from starlette.routing import Route

    from afk.console.web import HEADERS, _next

    async def login(request: Request) -> Response:
        principal = await auth.authenticate(request)
        if principal is None:
            page = "<!doctype html><title>Login failed</title><h1>Login failed</h1>"
            return HTMLResponse(page, status_code=401, headers=HEADERS)
        target = _next(request.query_params.get("next"))
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        on_login(request, response, principal)
        return response

    return [Route("/login/proxy", login, methods=["GET"])]


def forwarded_proto(app: ASGIApp, trusted: Iterable[str]) -> ASGIApp:
    """``app`` with ``X-Forwarded-Proto`` (http or https) taken as the scheme from the
    ``trusted`` proxies only; the peer address is left as the socket's."""
    nets = networks(trusted, what="trusted")

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and peer_in(scope.get("client"), nets):
            headers = [v for k, v in scope.get("headers", []) if k == b"x-forwarded-proto"]
            proto = headers[-1].decode("latin-1").split(",")[-1].strip() if headers else ""
            if proto in ("http", "https"):
                secure = proto == "https"
                scheme = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto
                scope = {**scope, "scheme": scheme}
        await app(scope, receive, send)

    return wrapped


__all__ = [
    "FirstOf",
    "ProxyHeaderAuthenticator",
    "forwarded_proto",
    "networks",
    "peer_in",
    "proxy_login_routes",
]
