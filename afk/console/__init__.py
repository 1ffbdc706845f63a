"""The approver's side over HTTP: an authenticated JSON decision API (``afk serve``).

Needs ``pip install "afk-agents[console]"`` (Starlette and uvicorn). ``app(store=...,
auth=...)`` is an ASGI app to serve or mount inside your own; every decision goes through
the one decision path as the principal the :class:`Authenticator` yields.
"""

from __future__ import annotations

INSTALL_HINT = 'afk.console needs Starlette and uvicorn: pip install "afk-agents[console]"'

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - the dev extra installs both
    raise ImportError(INSTALL_HINT) from exc

from afk.console.app import app  # noqa: E402 - after the check, for its hint
from afk.console.auth import Authenticator, TokenAuthenticator  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "Authenticator",
    "TokenAuthenticator",
    "app",
]
