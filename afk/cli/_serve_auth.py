"""``afk serve``'s authentication options: API tokens always, and optionally a trusted
proxy's header (``--proxy-header``) and an OpenID Connect login (``--oidc-*``).

Each ``--oidc-*`` option also reads an ``AFK_OIDC_*`` variable; the client secret only from
``AFK_OIDC_CLIENT_SECRET`` or a file (``--oidc-client-secret-file``), never from the command
line, where every user of the machine can read it (``ps``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afk.errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from afk.console.auth import Authenticator
    from afk.console.oidc import OIDCConfig
    from afk.store import RunStore

_OIDC_ENV = {
    "oidc_issuer": "AFK_OIDC_ISSUER",
    "oidc_client_id": "AFK_OIDC_CLIENT_ID",
    "oidc_redirect_url": "AFK_OIDC_REDIRECT_URL",
    "oidc_scopes": "AFK_OIDC_SCOPES",
    "oidc_claim": "AFK_OIDC_CLAIM",
}


def add_arguments(serve: argparse.ArgumentParser) -> None:
    """The authentication options, in their own ``--help`` group."""
    group = serve.add_argument_group(
        "authentication",
        "API tokens (afk tokens create, sent as Authorization: Bearer) always work. A "
        "trusted proxy's header and an OpenID Connect login for the web inbox can be added.",
    )
    group.add_argument(
        "--proxy-header",
        metavar="NAME",
        help="believe this header (e.g. X-Forwarded-User) as the caller's name, only on "
        "connections from a --trusted-proxy address (the proxy must strip it from clients); "
        "the web inbox's /login/proxy starts a session for that person",
    )
    group.add_argument(
        "--trusted-proxy",
        metavar="CIDR",
        action="append",
        default=[],
        help="address or network of the authenticating proxy (e.g. 127.0.0.1/32); repeatable",
    )
    add = group.add_argument
    add("--oidc-issuer", metavar="URL", help="OpenID provider's issuer URL ($AFK_OIDC_ISSUER)")
    add("--oidc-client-id", metavar="ID", help="client id at the provider ($AFK_OIDC_CLIENT_ID)")
    add(
        "--oidc-client-secret-file",
        metavar="PATH",
        help="file holding the client secret (else $AFK_OIDC_CLIENT_SECRET; none: a public "
        "client, PKCE only)",
    )
    add(
        "--oidc-redirect-url",
        metavar="URL",
        help="the callback URL registered at the provider, ending /login/oidc/callback "
        "($AFK_OIDC_REDIRECT_URL; default http://HOST:PORT/login/oidc/callback on loopback)",
    )
    add("--oidc-scopes", metavar="SCOPES", help='($AFK_OIDC_SCOPES; "openid email profile")')
    add(
        "--oidc-claim",
        metavar="CLAIM",
        help="ID token claim naming the approver: email (default, must be verified) or sub... "
        "($AFK_OIDC_CLAIM)",
    )
    add(
        "--oidc-allow",
        metavar="ID",
        action="append",
        default=[],
        help="only these principals may log in (repeatable; with --oidc-allow-domain, either)",
    )
    add(
        "--oidc-allow-domain",
        metavar="DOMAIN",
        action="append",
        default=[],
        help="only verified emails at this domain may log in (repeatable)",
    )


def _value(args: argparse.Namespace, name: str) -> str | None:
    given = getattr(args, name, None)
    return given if given else os.environ.get(_OIDC_ENV[name]) or None


def oidc_config(args: argparse.Namespace) -> OIDCConfig | None:
    """The OIDC login's configuration from the options and ``AFK_OIDC_*``, or None."""
    issuer = _value(args, "oidc_issuer")
    if issuer is None:
        if getattr(args, "oidc_client_id", None) or args.oidc_allow or args.oidc_allow_domain:
            raise ConfigurationError("--oidc-* options need --oidc-issuer (or $AFK_OIDC_ISSUER)")
        return None
    from afk.console.oidc import OIDCConfig, scopes_of

    client_id = _value(args, "oidc_client_id")
    if client_id is None:
        raise ConfigurationError("--oidc-issuer needs --oidc-client-id (or $AFK_OIDC_CLIENT_ID)")
    secret = os.environ.get("AFK_OIDC_CLIENT_SECRET") or None
    if args.oidc_client_secret_file:
        try:
            secret = Path(args.oidc_client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"--oidc-client-secret-file: {exc}") from None
    redirect = _value(args, "oidc_redirect_url")
    redirect = redirect or f"http://{args.host}:{args.port}/login/oidc/callback"
    return OIDCConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        redirect_url=redirect,
        scopes=scopes_of(_value(args, "oidc_scopes") or "openid email profile"),
        claim=_value(args, "oidc_claim") or "email",
        allowed=tuple(args.oidc_allow),
        allowed_domains=tuple(args.oidc_allow_domain),
    )


def authenticator(args: argparse.Namespace, store: RunStore) -> Authenticator:
    """API tokens, then the trusted proxy's header when ``--proxy-header`` is given."""
    from afk.console.auth import TokenAuthenticator
    from afk.console.proxy import FirstOf, ProxyHeaderAuthenticator

    tokens = TokenAuthenticator(store)
    if args.proxy_header is None:
        if args.trusted_proxy:
            raise ConfigurationError("--trusted-proxy needs --proxy-header NAME")
        return tokens
    if not args.trusted_proxy:
        raise ConfigurationError(
            "--proxy-header needs --trusted-proxy CIDR: the addresses allowed to set it"
        )
    proxy = ProxyHeaderAuthenticator(header=args.proxy_header, trusted=args.trusted_proxy)
    return FirstOf(tokens, proxy)


# What the inbox's login page offers besides pasting a token: (label, path).
OIDC_LINK = ("Log in with your identity provider", "/login/oidc")


def mount_oidc(made: Starlette, config: OIDCConfig) -> None:
    """Add the OIDC login's routes to the console's app, starting its browser sessions."""
    from afk.console.oidc import oidc_routes

    made.router.routes.extend(oidc_routes(config, made.state.afk_sessions.start))
    made.state.afk_login_links = [*getattr(made.state, "afk_login_links", []), OIDC_LINK]


def mount_proxy_login(made: Starlette, auth: Authenticator) -> None:
    """Add ``/login/proxy`` (a web inbox session for the proxy's user) when ``auth`` holds a
    proxy header authenticator."""
    from afk.console.proxy import FirstOf, ProxyHeaderAuthenticator, proxy_login_routes

    chain = auth.authenticators if isinstance(auth, FirstOf) else (auth,)
    for one in chain:
        if isinstance(one, ProxyHeaderAuthenticator):
            made.router.routes.extend(proxy_login_routes(one, made.state.afk_sessions.start))


def closing(app: ASGIApp, store: RunStore) -> ASGIApp:
    """``app``, closing ``store`` when the server shuts down (before it says it is done)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await store.close()
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


__all__ = [
    "add_arguments",
    "authenticator",
    "closing",
    "mount_oidc",
    "mount_proxy_login",
    "oidc_config",
]
