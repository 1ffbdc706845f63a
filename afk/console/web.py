"""The web inbox: server-rendered pages for approvers, in the console's app.

``/login`` (paste an API token), ``/`` (the pending list, filtered by tool, run, agent or
rule), ``/requests/{id}`` (one request and its buttons: approve, deny, edit, grant for an
approval request; answer or decline for an input request). Every page needs a browser
session (afk.console._sessions); every POST needs the session's CSRF token and changes
nothing without it (403). GET and HEAD only read.
Decisions go through the one decision path (``afk.core._durable_api.resolve``) as the
session's principal: the form never says who decides.

Pages carry a Content-Security-Policy that allows only this app's own script and style,
and may not be framed (an Approve button under someone else's page is a clickjack).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from afk.approvals.display import Escaper, tool_label
from afk.approvals.principal import Principal
from afk.console import _actions as act
from afk.console import _inbox as inbox
from afk.console._decision import BodyError
from afk.console._sessions import Session, Sessions, csrf_ok
from afk.console.auth import token_principal
from afk.errors import AfkError, ConfigurationError, UnknownRequestError
from afk.store.store import RunStore

HERE = Path(__file__).parent
STATIC = {"inbox.css": "text/css", "inbox.js": "text/javascript"}
MAX_FORM_BYTES = 256 * 1024
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Page = Callable[[Request, Session], Awaitable[Response]]
Action = Callable[[Request, Session, dict[str, str]], Awaitable[Response]]


class ForbiddenPostError(AfkError):
    """A browser POST without a valid session, CSRF token or same origin (403): refused
    before anything is read or changed."""

    http_status = 403


_FAR = 253402300799.0  # 9999-12-31: later than this is "no deadline" (inf, or near it)


def when(at: float | None) -> str:
    """An epoch time as the pages show it (UTC, to the second)."""
    if at is None or at > _FAR:
        return "never"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def until(at: float, now: float) -> str:
    """How long until ``at``: "in 3h 5m", or "5m 2s ago"."""
    if at > _FAR:
        return "no deadline"
    left = int(at - now)
    span = abs(left)
    if span >= 86400:
        text = f"{span // 86400}d {span % 86400 // 3600}h"
    elif span >= 3600:
        text = f"{span // 3600}h {span % 3600 // 60}m"
    else:
        text = f"{span // 60}m {span % 60}s"
    return f"in {text}" if left >= 0 else f"{text} ago"


class Web:
    """The inbox's pages and actions over one store and one set of sessions."""

    def __init__(
        self, store: RunStore, sessions: Sessions, ready: Callable[[], Awaitable[None]]
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.ready = ready
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals.update(when=when, until=until, tool_label=tool_label)

    def routes(self) -> list[BaseRoute]:
        """The inbox's routes, to add to the console app."""
        actions = {
            "approve": act.approve,
            "deny": act.deny,
            "edit": act.preview_edit,
            "edited": act.approve_edited,
            "grant": act.approve_and_grant,
            "identical": act.approve_identical,
            "answer": act.answer,
            "decline": act.decline,
        }
        routes: list[BaseRoute] = [
            Route("/", self.page(self.list_page), methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.action(self.logout), methods=["POST"]),
            Route("/static/{name}", self.static, methods=["GET"]),
            Route("/requests/{request_id}", self.page(self.request_page), methods=["GET"]),
            Route("/requests/{request_id}/edit", self.page(self.edit_page), methods=["GET"]),
        ]
        for name, handler in actions.items():
            routes.append(
                Route(
                    f"/requests/{{request_id}}/{name}",
                    self.action(self._bound(handler)),
                    methods=["POST"],
                )
            )
        return routes

    # -- rendering -------------------------------------------------------------------------
    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """Template ``name`` with an Escaper for untrusted text, and the security headers."""
        context.setdefault("esc", Escaper())
        context.setdefault("session", None)
        context.setdefault("error", None)
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def failure(self, request: Request, exc: AfkError, session: Session | None) -> HTMLResponse:
        """An afk error as a page, with the status the API would answer."""
        return self.render(request, "message.html", exc.http_status, session=session, error=exc)

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind a session: without one, off to the login page (and back)."""

        async def guarded(request: Request) -> Response:
            session = await self.sessions.read(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
            try:
                return await handler(request, session)
            except AfkError as exc:
                return self.failure(request, exc, session)

        return guarded

    def action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind a session, a same-origin POST and the session's CSRF token:
        a POST missing any of them is refused (403) before anything is read or changed."""

        async def guarded(request: Request) -> Response:
            session = await self.sessions.read(request)
            try:
                _same_origin(request)
                form = await _form(request)
                if session is None:
                    raise ForbiddenPostError("no valid session: log in first")
                if not csrf_ok(session, form.get("csrf")):
                    raise ForbiddenPostError(
                        "the form's CSRF token is missing or wrong: reload the page"
                    )
                await self.ready()
                return await handler(request, session, form)
            except AfkError as exc:
                return self.failure(request, exc, session)

        return guarded

    def _bound(self, handler: act.Handler) -> Action:
        async def bound(request: Request, session: Session, form: dict[str, str]) -> Response:
            return await handler(self, request, session, form)

        return bound

    # -- login -----------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        """The login page: paste an API token (``afk tokens create --for you``)."""
        return self._login_page(request, _next(request.query_params.get("next")), None, 200)

    def _login_page(self, request: Request, target: str, why: str | None, status: int) -> Response:
        nonce = self.sessions.new_login_nonce()
        # Other ways in (an OIDC login mounted by afk serve): links carrying ``next``.
        links = getattr(request.app.state, "afk_login_links", [])
        response = self.render(
            request, "login.html", status, next=target, nonce=nonce, error=why, links=links
        )
        self.sessions.remember_login_nonce(request, response, nonce)
        return response

    async def login(self, request: Request) -> Response:
        """Check the pasted token and start a session as its principal."""
        try:
            _same_origin(request)
            form = await _form(request)
        except AfkError as exc:
            return self.failure(request, exc, None)
        target = _next(form.get("next"))
        if not self.sessions.login_nonce_ok(request, form.get("nonce")):
            return self._login_page(request, target, "The login form expired: try again.", 403)
        principal = await token_principal(self.store, form.get("token", "").strip())
        if principal is None:
            return self._login_page(
                request, target, "That token is unknown, expired or revoked.", 401
            )
        response = RedirectResponse(target, status_code=303)
        login(self.sessions, request, response, principal)
        return response

    async def logout(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        """End the session: recorded as ended in the store, its cookie deleted."""
        response = RedirectResponse("/login", status_code=303)
        await self.sessions.end(request, response, session)
        return response

    async def static(self, request: Request) -> Response:
        """The inbox's stylesheet and script (nothing else is served from disk)."""
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404)
        return FileResponse(
            HERE / "static" / name,
            media_type=STATIC[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    # -- pages -----------------------------------------------------------------------------
    async def list_page(self, request: Request, session: Session) -> Response:
        """``/``: the pending requests across runs, soonest to expire first."""
        query = request.query_params
        filters = inbox.Filters(
            tool=query.get("tool") or None,
            run=query.get("run") or None,
            agent=query.get("agent") or None,
            rule=query.get("rule") or None,
        )
        try:
            page = await inbox.inbox_page(self.store, filters, query.get("cursor") or None)
        except ConfigurationError as exc:  # a cursor from elsewhere, or a damaged one
            raise BodyError(str(exc), field="cursor") from None
        next_link = None
        if page.next_cursor is not None:
            next_link = "/?" + urlencode({**filters.query(), "cursor": page.next_cursor})
        return self.render(
            request,
            "inbox.html",
            session=session,
            page=page,
            filters=filters,
            next_link=next_link,
            now=time.time(),
            first=query.get("cursor") is None,
            cap=inbox.COUNT_CAP,
        )

    async def request_page(self, request: Request, session: Session) -> Response:
        """``/requests/{id}``: one request, what led to it, and the buttons."""
        d = await inbox.detail(self.store, await self._record(request))
        return act.request_page(self, request, session, d)

    async def edit_page(self, request: Request, session: Session) -> Response:
        """The edit form for a pending approval request's arguments (none for an input
        request: it has no arguments to edit)."""
        record = await self._record(request)
        d = await inbox.detail(self.store, record)
        act.approval_only(d)
        return act.edit_form(self, request, session, d, None, None)

    async def _record(self, request: Request) -> Any:
        request_id = request.path_params["request_id"]
        record = await self.store.get_request(request_id)
        if record is None:
            raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
        return record


def login(sessions: Sessions, request: Request, response: Response, principal: Principal) -> None:
    """Start a browser session for ``principal``, verified by the caller: the pluggable login
    step (the token form calls it; an OIDC callback would too)."""
    sessions.start(request, response, principal)


def _next(target: str | None) -> str:
    """A same-site path to go to after login: anything else becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _same_origin(request: Request) -> None:
    """Refuse a POST whose Origin (or, without one, Referer) names another site. Without
    either header it is not a browser's cross-site form (browsers send Origin on POST):
    the session and its CSRF token still have to be right."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != expected and not origin.startswith(expected + "/"):
        raise ForbiddenPostError(f"a POST from {origin!r} is not from this site")


async def _form(request: Request) -> dict[str, str]:
    """The POSTed form (urlencoded), each field once; no multipart, nothing past
    MAX_FORM_BYTES."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ForbiddenPostError("a form POST must be application/x-www-form-urlencoded")
    body, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise BodyError(f"the form is over {MAX_FORM_BYTES} bytes", field="body")
        body.append(chunk)
    try:
        pairs = parse_qsl(
            b"".join(body).decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise BodyError("the form is not UTF-8", field="body") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form and name != "ids":
            raise BodyError(f"form field {name!r} given twice", field=name)
        form[name] = f"{form[name]},{value}" if name in form else value
    return form


__all__ = ["ForbiddenPostError", "Web", "login", "until", "when"]
