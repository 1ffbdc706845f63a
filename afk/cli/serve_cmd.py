"""``afk serve``: the decision API (afk.console) over HTTP, served by uvicorn.

Needs the console extra. It listens on 127.0.0.1 unless told otherwise and speaks plain
HTTP: API tokens travel in every request, so anything beyond this machine belongs behind a
reverse proxy that terminates TLS.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from afk.cli._output import open_cli_store, store_spec
from afk.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``afk`` command's sub-parsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the decision API over HTTP (the console extra)",
        description="Serve the JSON decision API under /api/v1 (OpenAPI document: "
        "/api/v1/openapi.json). Callers authenticate with API tokens (afk tokens create).",
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
    open_cli_store(args)  # refuses a missing SQLite file or no store at all, before serving
    if not _loopback(args.host):
        print(
            f"afk: serving plain HTTP on {args.host}: put it behind a TLS-terminating proxy, "
            "API tokens travel in every request",
            file=sys.stderr,
        )
    print(f"afk: decision API on http://{args.host}:{args.port}/api/v1", file=sys.stderr)
    uvicorn.run(
        app(store=store_spec(args) or ""), host=args.host, port=args.port, log_level="warning"
    )
    return 0


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "register",
    "serve_command",
]
