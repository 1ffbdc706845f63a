"""Log in to the web inbox with OpenID Connect: the authorization code flow with PKCE (S256),
``state`` and ``nonce``.

``oidc_routes(config, on_login)`` gives two routes to add to the console's app:
``GET /login/oidc`` sends the browser to the provider; ``GET /login/oidc/callback`` takes the
code back, exchanges it, verifies the ID token (the provider's JWKS signature, issuer,
audience, expiry, nonce) and calls ``on_login(request, response, principal)``, the session
layer's :meth:`~afk.console._sessions.Sessions.start`, before sending the browser on. The
principal is ``Principal(id=<config.claim>, authenticated_by="oidc:<issuer>")``. Any failure
answers a 400 or 401 page, starts no session and logs why (logger ``afk.console.oidc``).

The flow's secrets (state, nonce, PKCE verifier) wait for the callback in a signed,
HttpOnly cookie scoped to ``/login/oidc`` for ten minutes, so no server-side session middleware
is needed; a state is accepted once per process, so a replayed callback starts nothing even
with the cookie (the provider refuses a replayed code too).

Why Authlib's httpx client rather than its Starlette integration: the latter keeps the flow's
state in ``request.session`` (Starlette's SessionMiddleware, a second cookie secret), while the
console already signs its cookies under a key of its own; the client gives the same PKCE and
code exchange code without it. Needs ``pip install "afk-agents[console]"``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from afk.approvals.principal import Principal, canonical_id
from afk.console.web import HEADERS, _next
from afk.errors import AfkError, ConfigurationError, InvalidPrincipalError

try:
    from afk.console._oidc_provider import Provider, _ProviderError
except ImportError as exc:  # pragma: no cover - the dev extra installs Authlib
    raise ImportError('afk.console.oidc needs Authlib: pip install "afk-agents[console]"') from exc

log = logging.getLogger("afk.console.oidc")
FLOW_COOKIE = "afk_oidc"
FLOW_PATH = "/login/oidc"
FLOW_TTL_S = 600
_SALT = "afk.console.oidc.flow.v1"
OnLogin = Callable[[Request, Response, Principal], None]


class OIDCLoginError(AfkError):
    """An OpenID Connect login that proved nobody: ``reason`` says why (the log has it; the
    page says only that the login failed). 400 for a callback that does not belong to a
    login this browser started, 401 for one whose code or ID token does not check out."""

    http_status = 401

    def __init__(self, message: str, *, reason: str, http_status: int = 401) -> None:
        self.reason = reason
        self.http_status = http_status
        super().__init__(message)


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, url: object) -> str:
    """``url`` as an absolute https URL (http only on a loopback host: a test's provider)."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"OIDCConfig.{name} must be an absolute URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _loopback(parts.hostname):
        return url
    raise ConfigurationError(
        f"OIDCConfig.{name} must be an https:// URL (http:// only on a loopback host), got {url!r}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OIDCConfig:
    """One OpenID provider and this console's client registration with it.

    ``claim`` names the ID token claim that becomes the principal's id (``email``, or
    ``sub``, ``preferred_username``...); a token without it logs nobody in. With
    ``claim="email"`` the token must also say ``email_verified: true`` unless
    ``require_verified_email=False`` (some providers never send it). ``allowed`` (principal
    ids) and ``allowed_domains`` (email domains): when either is set, only a principal in
    ``allowed`` or with an email in one of ``allowed_domains`` may log in. ``client_secret``
    None makes a public client (PKCE alone)."""

    issuer: str
    client_id: str
    client_secret: str | None
    redirect_url: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    claim: str = "email"
    allowed: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    require_verified_email: bool = True
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check_url("issuer", self.issuer)
        _check_url("redirect_url", self.redirect_url)
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            raise ConfigurationError("OIDCConfig.client_id must be a non-empty string")
        if self.client_secret is not None and not isinstance(self.client_secret, str):
            raise ConfigurationError("OIDCConfig.client_secret must be a string or None")
        scopes = tuple(self.scopes)
        if "openid" not in scopes:
            raise ConfigurationError(f"OIDCConfig.scopes must include 'openid', got {scopes!r}")
        object.__setattr__(self, "scopes", scopes)
        if not isinstance(self.claim, str) or not self.claim:
            raise ConfigurationError("OIDCConfig.claim must name a claim, e.g. 'email' or 'sub'")
        try:
            allowed = tuple(canonical_id(a, what="OIDCConfig.allowed") for a in self.allowed)
        except InvalidPrincipalError as exc:
            raise ConfigurationError(str(exc)) from None
        object.__setattr__(self, "allowed", allowed)
        domains = tuple(d.strip().lower().lstrip("@") for d in self.allowed_domains)
        if any(not d or "@" in d for d in domains):
            raise ConfigurationError(
                f"OIDCConfig.allowed_domains must be domains like 'example.com', got "
                f"{self.allowed_domains!r}"
            )
        object.__setattr__(self, "allowed_domains", domains)
        if not self.timeout_s > 0:
            raise ConfigurationError(f"OIDCConfig.timeout_s must be > 0, got {self.timeout_s}")

    @property
    def authenticated_by(self) -> str:
        """How the ledger says a principal from this provider was verified."""
        return f"oidc:{self.issuer}"


@dataclass(slots=True)
class _UsedStates:
    """States whose callback was taken, kept until their flow cookie would have expired
    (at most ``cap``, oldest forgotten first: the provider refuses a replayed code too)."""

    seen: dict[str, float] = field(default_factory=dict)
    cap: int = 10_000

    def take(self, state: str, now: float) -> bool:
        """Whether ``state`` was not taken before (and take it)."""
        if len(self.seen) >= self.cap:
            kept = [(s, at) for s, at in self.seen.items() if at > now - FLOW_TTL_S]
            self.seen = dict(kept[-(self.cap // 2) :])  # insertion order is time order
        if state in self.seen:
            return False
        self.seen[state] = now
        return True


class OIDCLogin:
    """The two routes' handlers over one provider (see :func:`oidc_routes`)."""

    def __init__(self, config: OIDCConfig, on_login: OnLogin, *, secret: bytes | None = None):
        self.config = config
        self.on_login = on_login
        self.provider = Provider(config)
        # Random per process unless given: a flow lives minutes, and a restart mid-login only
        # means logging in again. Several processes behind one name need one shared secret.
        self._signer = URLSafeTimedSerializer(secret or secrets.token_bytes(32), salt=_SALT)
        self._used = _UsedStates()

    def routes(self) -> list[BaseRoute]:
        """``GET /login/oidc`` and ``GET /login/oidc/callback``."""
        return [
            Route(FLOW_PATH, self.start, methods=["GET"]),
            Route(FLOW_PATH + "/callback", self.callback, methods=["GET"]),
        ]

    async def start(self, request: Request) -> Response:
        """Send the browser to the provider, with a fresh state, nonce and PKCE challenge."""
        flow = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(64),  # 86 characters: RFC 7636 allows 43-128
            "next": _next(request.query_params.get("next")),
        }
        try:
            url = await self.provider.authorization_url(
                state=flow["state"], nonce=flow["nonce"], verifier=flow["verifier"]
            )
        except _ProviderError as exc:
            log.warning("OIDC login not started: %s", exc.reason)
            return _failure(502, "The identity provider cannot be reached. Try again later.")
        response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            FLOW_COOKIE,
            self._signer.dumps(flow),
            max_age=FLOW_TTL_S,
            path=FLOW_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",  # the provider's redirect back is a cross-site top-level GET
        )
        return response

    async def callback(self, request: Request) -> Response:
        """Exchange the code, verify the ID token, start the session and go on; any failure
        is a page (400/401) that starts nothing."""
        response: Response
        try:
            principal, target = await self._login(request)
        except OIDCLoginError as exc:
            log.warning("OIDC login refused (%s): %s", exc.reason, exc)
            response = _failure(exc.http_status, "The login did not succeed. Try again.")
        else:
            log.info("OIDC login: %s", principal.label)
            response = RedirectResponse(target, status_code=303, headers=HEADERS)
            self.on_login(request, response, principal)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax")
        return response

    async def _login(self, request: Request) -> tuple[Principal, str]:
        query = request.query_params
        if "error" in query:
            raise OIDCLoginError(
                f"the provider answered {query['error']!r}: {query.get('error_description')!r}",
                reason="provider_error",
                http_status=400,
            )
        flow = self._flow(request)
        code = query.get("code")
        if not code:
            raise OIDCLoginError("the callback has no code", reason="no_code", http_status=400)
        if not self._used.take(flow["state"], time.time()):
            raise OIDCLoginError("this login's callback was used before", reason="replayed")
        try:
            token = await self.provider.exchange(code, flow["verifier"])
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise OIDCLoginError("the token response has no id_token", reason="no_id_token")
            access = token.get("access_token")
            claims = await self.provider.verify(
                id_token,
                nonce=flow["nonce"],
                access_token=access if isinstance(access, str) else None,
            )
        except _ProviderError as exc:
            raise OIDCLoginError(exc.reason, reason="token") from None
        return self.principal(claims), flow["next"]

    def _flow(self, request: Request) -> dict[str, str]:
        """The flow this browser started, when the callback's state is its state."""
        raw = request.cookies.get(FLOW_COOKIE)
        try:
            flow = self._signer.loads(raw or "", max_age=FLOW_TTL_S)
        except BadSignature:  # none, forged, or older than FLOW_TTL_S
            raise OIDCLoginError(
                "no login was started in this browser, or it expired",
                reason="no_flow",
                http_status=400,
            ) from None
        if not isinstance(flow, dict) or not all(
            isinstance(flow.get(k), str) for k in ("state", "nonce", "verifier", "next")
        ):
            raise OIDCLoginError("the login cookie is malformed", reason="no_flow", http_status=400)
        sent = request.query_params.get("state") or ""
        if not hmac.compare_digest(sent.encode(), flow["state"].encode()):
            raise OIDCLoginError(
                "the callback's state is not this browser's", reason="state", http_status=400
            )
        return flow

    def principal(self, claims: dict[str, Any]) -> Principal:
        """The principal verified ``claims`` stand for, if the allow-lists let it in."""
        config = self.config
        value = claims.get(config.claim)
        if not isinstance(value, str) or not value.strip():
            raise OIDCLoginError(f"the ID token has no {config.claim!r} claim", reason="claim")
        if (
            config.claim == "email"
            and config.require_verified_email
            and claims.get("email_verified") is not True
        ):
            raise OIDCLoginError(f"the email {value!r} is not verified", reason="unverified")
        name = claims.get("name")
        try:
            principal = Principal(
                id=value,
                authenticated_by=config.authenticated_by,
                display_name=name if isinstance(name, str) else None,
            )
        except InvalidPrincipalError as exc:
            raise OIDCLoginError(str(exc), reason="claim") from None
        if not _allowed(config, principal, claims):
            raise OIDCLoginError(f"{principal.id!r} is not allowed to log in", reason="not_allowed")
        return principal


def _allowed(config: OIDCConfig, principal: Principal, claims: dict[str, Any]) -> bool:
    if not config.allowed and not config.allowed_domains:
        return True
    if principal.id in config.allowed:
        return True
    email = claims.get("email")
    if not isinstance(email, str) or (
        config.require_verified_email and claims.get("email_verified") is not True
    ):
        return False  # a domain is only as good as the provider's word that the mail is theirs
    domain = canonical_id(email).rpartition("@")[2]
    return bool(domain) and domain in config.allowed_domains


def _failure(status: int, message: str) -> HTMLResponse:
    """A page that says the login failed, and nothing of why (the log says why)."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Login failed</title>'
        f"</head><body><main><h1>Login failed</h1><p>{escape(message)}</p>"
        '<p><a href="/login">Back to the login page</a></p></main></body></html>'
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def oidc_routes(
    config: OIDCConfig, on_login: OnLogin, *, secret: bytes | None = None
) -> list[BaseRoute]:
    """The OIDC login's routes (``GET /login/oidc``, ``GET /login/oidc/callback``), to add
    to the console's app. ``on_login(request, response, principal)`` starts the session:
    pass the app's ``app.state.afk_sessions.start``. ``secret`` signs the flow cookie
    (default: random per process; give one when several processes serve one console)."""
    return OIDCLogin(config, on_login, secret=secret).routes()


def scopes_of(text: str | Sequence[str]) -> tuple[str, ...]:
    """Scopes from ``"openid email"`` (or a list), in order, without repeats."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    return tuple(dict.fromkeys(items))


__all__ = [
    "FLOW_COOKIE",
    "OIDCConfig",
    "OIDCLogin",
    "OIDCLoginError",
    "OnLogin",
    "oidc_routes",
    "scopes_of",
]
