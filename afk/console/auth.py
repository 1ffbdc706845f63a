"""Who is calling the console: an :class:`Authenticator` turns an HTTP request into the
:class:`~afk.approvals.Principal` that decides, or None (the API then answers 401).

Here, not in afk.approvals: it reads HTTP requests, and the principal it yields is the one
afk.approvals already defines, so the decision rule needs nothing from the web.

Built in: :class:`TokenAuthenticator`, API tokens made with ``afk tokens create`` and sent as
``Authorization: Bearer <secret>``. An unknown, malformed, expired or revoked token, or a
token row that does not verify under the store's key, authenticates nobody.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from afk.approvals.principal import Principal
from afk.errors import InvalidPrincipalError
from afk.store import _tokens as tk
from afk.store._seal import record_ok

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from afk.store.store import RunStore, TokenRecord


@runtime_checkable
class Authenticator(Protocol):
    """Authenticates one HTTP request (or SSE connection)."""

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The principal ``request`` proves it is, or None: never a name it merely claims."""


def bearer(request: HTTPConnection) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header, or None."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


class TokenAuthenticator:
    """API tokens kept in ``store`` (``afk tokens create``), as ``Authorization: Bearer``.
    The principal is the token's, ``authenticated_by="token:<token id>"``."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The token's principal, or None for a missing, unknown, malformed, expired, revoked
        or unverifiable token. Reads only: a GET stays free of writes."""
        secret = bearer(request)
        return await token_principal(self.store, secret) if secret is not None else None


async def token_principal(store: RunStore, secret: str) -> Principal | None:
    """The principal of the API token ``secret`` (a Bearer header's, or one pasted on the
    web inbox's login page), or None when it is unknown, malformed, expired, revoked or
    unverifiable."""
    token_id = tk.token_id_of(secret)
    if token_id is None:
        return None
    token = await store.get_token(token_id)
    if token is None or not tk.secret_matches(secret, token):
        return None
    return principal_of_token(store, token)


def principal_of_token(store: RunStore, token: TokenRecord) -> Principal | None:
    """The principal a stored token stands for, while it verifies under the store's key and
    is neither revoked nor expired: what a browser session re-checks on every request."""
    if not record_ok(store.keys, token) or token.revoked_at is not None:
        return None
    if token.expires_at is not None and time.time() >= token.expires_at:
        return None
    try:
        return Principal(id=token.principal_id, authenticated_by=f"token:{token.token_id}")
    except InvalidPrincipalError:
        return None  # a stored id that no longer canonicalizes matches nobody


__all__ = [
    "Authenticator",
    "TokenAuthenticator",
    "bearer",
    "principal_of_token",
    "token_principal",
]
