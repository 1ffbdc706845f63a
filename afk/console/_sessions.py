"""Browser sessions for the web inbox: a signed, expiring, HttpOnly cookie naming the
principal, re-checked against its source on every request.

The cookie is signed with itsdangerous under a key derived from the store's keyring
(afk.audit.keys), so a deployment has no new secret to manage, and rotating the store's key
(the old one kept in ``AFK_SECRET_KEYS_PREVIOUS``) keeps sessions signed before it valid
until they expire. The cookie holds no secret of its own besides the CSRF token: it says who
logged in, how (``token:tok_...``), and when. Logging out records the session as ended in
the store (``ended_sessions``, until its cookie would have expired): a copy of the cookie
kept elsewhere stops working too.

A session started from an API token is only as good as that token: every request reads the
token row again, so revoking the token (``afk tokens revoke``) or its expiry ends the
session at once. Its principal is then ``authenticated_by="session:token:<id>"``, so the
ledger tells a browser's decision from a script's. How a principal was verified is
pluggable: :meth:`Sessions.start` (and :func:`afk.console.login`) takes any verified
:class:`~afk.approvals.Principal` (an OIDC login will call it too).

SameSite=Lax, not Strict: a link to a request from an email or a chat message is a
cross-site navigation, which a Strict cookie would turn into a second login. Lax cookies
still travel on no cross-site POST, and every POST also needs the session's CSRF token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from afk.approvals.principal import Principal
from afk.console.auth import Authenticator, TokenAuthenticator, bearer, principal_of_token
from afk.errors import InvalidPrincipalError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

    from afk.audit.keys import Keyring
    from afk.store.store import RunStore

COOKIE = "afk_session"
LOGIN_COOKIE = "afk_login"  # the login form's CSRF nonce, before there is a session
SESSION_TTL_S = 8 * 3600
LOGIN_TTL_S = 3600
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SALT = "afk.console.session.v1"
_LOGIN_SALT = "afk.console.login.v1"
SameSite = Literal["lax", "strict"]


def session_secrets(keys: Keyring) -> list[bytes]:
    """Signing keys for session cookies, derived from the store's keyring: the current key
    last (itsdangerous signs with the last, verifies with any)."""
    ring = [*reversed(keys.previous), keys.current]
    return [
        hmac.new(k.secret, b"afk console session cookie", hashlib.sha256).digest() for k in ring
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A verified session: who, the CSRF token its forms carry, and when it started."""

    principal: Principal
    csrf: str
    started_at: float
    session_id: str  # what a logout records (a digest of the CSRF token, never the token)


class Sessions:
    """Starts, reads and ends the web inbox's sessions over one store."""

    def __init__(
        self, store: RunStore, *, ttl_s: int = SESSION_TTL_S, same_site: SameSite = "lax"
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.same_site = same_site

    def _signer(self, salt: str) -> URLSafeTimedSerializer:
        # Built per use: the keyring is the store's, read when first needed.
        return URLSafeTimedSerializer(session_secrets(self.store.keys), salt=salt)

    # -- sessions --------------------------------------------------------------------------
    def start(self, request: HTTPConnection, response: Response, principal: Principal) -> None:
        """Log ``principal`` (already verified) in: set the session cookie on ``response``.
        A principal from an API token (``authenticated_by="token:<id>"``) is re-checked
        against that token on every request."""
        data = {
            "p": principal.id,
            "by": principal.authenticated_by,
            "name": principal.display_name,
            "groups": list(principal.groups),
            "csrf": secrets.token_urlsafe(32),
        }
        self._set(request, response, COOKIE, self._signer(_SALT).dumps(data), self.ttl_s)

    async def end(self, request: HTTPConnection, response: Response, session: Session) -> None:
        """Log out: the session is recorded as ended in the store, so its cookie, wherever
        a copy of it is, no longer authenticates; and the cookie is deleted (with the
        attributes it was set with)."""
        from afk.store import _links as lk
        from afk.store import _tokens as tk

        until = session.started_at + self.ttl_s
        await lk.run(self.store, tk.end_session(session.session_id, until, time.time()))
        response.delete_cookie(
            COOKIE, path="/", secure=_secure(request), httponly=True, samesite=self.same_site
        )

    async def read(self, request: HTTPConnection) -> Session | None:
        """The request's session when its cookie verifies, has not expired and its source
        (the API token) still stands; else None."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data, at = self._signer(_SALT).loads(raw, max_age=self.ttl_s, return_timestamp=True)
        except BadSignature:  # forged, damaged, expired, or signed under a retired key
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        session_id = _session_id(data["csrf"])
        if await self._ended(session_id):
            return None
        principal = await self._recheck(data)
        if principal is None:
            return None
        return Session(
            principal=principal,
            csrf=data["csrf"],
            started_at=at.timestamp(),
            session_id=session_id,
        )

    async def _ended(self, session_id: str) -> bool:
        from afk.store import _links as lk
        from afk.store import _tokens as tk

        ended: bool = await lk.run(self.store, tk.session_ended(session_id))
        return ended

    async def _recheck(self, data: dict[str, Any]) -> Principal | None:
        by, who = data.get("by"), data.get("p")
        if not isinstance(by, str) or not isinstance(who, str):
            return None
        if by.startswith("token:"):
            token = await self.store.get_token(by.removeprefix("token:"))
            current = principal_of_token(self.store, token) if token is not None else None
            if current is None or current.id != who:
                return None
            # The ledger then says the decision came through a browser session.
            return dataclasses.replace(current, authenticated_by=f"session:{by}")
        try:  # another login (OIDC): the signed cookie is the proof, until it expires
            groups = data.get("groups") or []
            name = data.get("name")
            return Principal(
                id=who,
                authenticated_by=by,
                display_name=name if isinstance(name, str) else None,
                groups=tuple(g for g in groups if isinstance(g, str)),
            )
        except InvalidPrincipalError:
            return None

    # -- the login form's CSRF nonce -------------------------------------------------------
    @staticmethod
    def new_login_nonce() -> str:
        """A fresh nonce for the login form (see :meth:`remember_login_nonce`)."""
        return secrets.token_urlsafe(24)

    def remember_login_nonce(self, request: HTTPConnection, response: Response, nonce: str) -> None:
        """Set ``nonce`` as a signed cookie: the login form's POST must carry both the field
        and the cookie (a login forged from another site has neither)."""
        signed = self._signer(_LOGIN_SALT).dumps(nonce)
        self._set(request, response, LOGIN_COOKIE, signed, LOGIN_TTL_S)

    def login_nonce_ok(self, request: HTTPConnection, sent: object) -> bool:
        """Whether ``sent`` (the form's field) is the nonce the login cookie was signed for."""
        raw = request.cookies.get(LOGIN_COOKIE)
        if not raw or not isinstance(sent, str) or not sent:
            return False
        try:
            nonce = self._signer(_LOGIN_SALT).loads(raw, max_age=LOGIN_TTL_S)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, sent)

    def _set(
        self, request: HTTPConnection, response: Response, name: str, value: str, ttl: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=ttl,
            path="/",
            secure=_secure(request),
            httponly=True,
            samesite=self.same_site,
        )


def _session_id(csrf: str) -> str:
    """The session's id: the CSRF token is the one random value each session has; the
    store keeps only a digest of it, so its rows cannot be turned into a form's token."""
    return hashlib.sha256(b"afk session id\0" + csrf.encode()).hexdigest()[:32]


def csrf_ok(session: Session, sent: object) -> bool:
    """Whether ``sent`` (a form field or header) is the session's CSRF token."""
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(session.csrf, sent)


def _secure(request: HTTPConnection) -> bool:
    # Behind a TLS-terminating proxy, uvicorn's proxy headers make the scheme https.
    return request.url.scheme == "https"


class SessionAuthenticator:
    """The console's default :class:`~afk.console.Authenticator`: ``primary`` (API tokens
    as ``Authorization: Bearer`` unless told otherwise), else the web inbox's session
    cookie. A cookie authenticates a state-changing call (POST) only with the session's
    CSRF token in ``X-CSRF-Token``: a cross-site page can make a browser send the cookie,
    never the token."""

    def __init__(
        self,
        store: RunStore,
        *,
        primary: Authenticator | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.store = store
        self.primary = primary if primary is not None else TokenAuthenticator(store)
        self.sessions = sessions if sessions is not None else Sessions(store)

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """``primary``'s principal; else, when no Bearer token was sent, the session's (with
        its CSRF token on any method but GET and HEAD); else None."""
        principal = await self.primary.authenticate(request)
        if principal is not None:
            return principal
        if bearer(request) is not None:  # a refused token is a refusal, not a cookie login
            return None
        session = await self.sessions.read(request)
        if session is None:
            return None
        method = request.scope.get("method", "GET")
        if method not in SAFE_METHODS and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
            return None
        return session.principal
