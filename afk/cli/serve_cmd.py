"""``afk serve``: the decision API (afk.console) over HTTP, served by uvicorn.

Needs the console extra. It listens on 127.0.0.1 unless told otherwise and speaks plain
HTTP: API tokens travel in every request, so anything beyond this machine belongs behind a
reverse proxy that terminates TLS. Authentication options (a trusted proxy's header, an
OpenID Connect login) are in afk.cli._serve_auth.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from afk.cli import _serve_auth
from afk.cli._output import open_cli_store
from afk.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``afk`` command's sub-parsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the decision API over HTTP (the console extra)",
        description="Serve the JSON decision API under /api/v1 (OpenAPI document: "
        "/api/v1/openapi.json) and the web inbox (/). Callers authenticate with API tokens "
        "(afk tokens create), and optionally through a trusted proxy's header or an OpenID "
        "Connect login (below).",
    )
    serve.add_argument(
        "--store", metavar="URL", help="run store, e.g. sqlite:///runs.db (default: $AFK_STORE)"
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT})"
    )
    _serve_auth.add_arguments(serve)
    serve.set_defaults(func=serve_command)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace) -> int:
    """``afk serve``: run the console until interrupted. Returns 0."""
    try:
        from afk.console import app  # first: its ImportError carries the install hint
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from None
    import uvicorn

    if not 0 < args.port < 65536:
        raise ConfigurationError(f"--port must be from 1 to 65535, got {args.port}")
    store = open_cli_store(args)  # refuses a missing SQLite file or no store, before serving
    oidc = _serve_auth.oidc_config(args)
    auth = _serve_auth.authenticator(args, store)
    made = app(store=store, auth=auth)
    _serve_auth.mount_proxy_login(made, auth)
    if oidc is not None:
        _serve_auth.mount_oidc(made, oidc)
    served = _serve_auth.closing(made, store)
    if args.proxy_header is not None:
        from afk.console.proxy import forwarded_proto

        # The proxy's socket address is what --trusted-proxy checks: uvicorn's own
        # X-Forwarded-For handling would replace it with the client's.
        served = forwarded_proto(served, args.trusted_proxy)
    if not _loopback(args.host):
        print(
            f"afk: serving plain HTTP on {args.host}: put it behind a TLS-terminating proxy, "
            "API tokens travel in every request",
            file=sys.stderr,
        )
    print(f"afk: decision API on http://{args.host}:{args.port}/api/v1", file=sys.stderr)
    if oidc is not None:
        print(f"afk: OIDC login at http://{args.host}:{args.port}/login/oidc", file=sys.stderr)
    uvicorn.run(
        served,
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=args.proxy_header is None,
    )
    return 0


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "register",
    "serve_command",
]
