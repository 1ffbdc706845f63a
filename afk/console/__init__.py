"""The approver's side over HTTP: an authenticated JSON decision API (``afk serve``).

Needs ``pip install "afk-agents[console]"`` (Starlette, uvicorn, Jinja2, itsdangerous).
``app(store=..., auth=...)`` is an ASGI app to serve or mount inside your own: the API under
``/api/v1`` and the web inbox (``/``); every decision goes through the one decision path as
the principal the :class:`Authenticator` (or the inbox's browser session) yields.
"""

from __future__ import annotations

INSTALL_HINT = (
    "afk.console needs Starlette, uvicorn, Jinja2 and itsdangerous: "
    'pip install "afk-agents[console]"'
)

try:
    import itsdangerous  # noqa: F401
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - the dev extra installs both
    raise ImportError(INSTALL_HINT) from exc

from afk.console._sessions import SessionAuthenticator  # noqa: E402
from afk.console.app import app  # noqa: E402 - after the check, for its hint
from afk.console.auth import Authenticator, TokenAuthenticator  # noqa: E402
from afk.console.web import login  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "Authenticator",
    "SessionAuthenticator",
    "TokenAuthenticator",
    "app",
    "login",
]
