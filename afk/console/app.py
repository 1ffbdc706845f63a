"""The console's ASGI app: the JSON decision API under ``/api/v1`` (Starlette).

Every endpoint but the OpenAPI document needs an authenticated principal (401 with
``WWW-Authenticate: Bearer`` otherwise): the arguments of a pending call are as sensitive as
the call. GET and HEAD only read the store: no lazy expiry, no setup, no log entry. Errors
are afk's own, answered with their ``http_status`` (afk.errors) and a JSON body naming the
error, and for a body that does not fit, the field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, cast, get_args

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from afk.approvals import _codec as codec
from afk.approvals._rows import load_request
from afk.approvals.principal import Principal
from afk.console import _inbox as inbox
from afk.console import _views as v
from afk.console._decision import BodyError, decide, idempotency_key
from afk.console._events import events_endpoint
from afk.console._openapi import openapi
from afk.console._sessions import SessionAuthenticator, Sessions
from afk.console.auth import Authenticator, TokenAuthenticator
from afk.console.web import Web
from afk.errors import (
    AfkError,
    AlreadyDecidedError,
    ConfigurationError,
    RunNotFoundError,
    UnknownRequestError,
)
from afk.store import RunStore, open_store
from afk.store._paging import DEFAULT_LIMIT, check_limit
from afk.store.store import RequestOrder, RequestStatus, RunStatus

MAX_BODY_BYTES = 1 << 20  # a decision is small; edited arguments rarely reach a kilobyte
_BY = ("tool", "rule", "agent")  # the pending list's filters (afk.store._listing)
_REQUEST_FILTERS = ("status", "run", "order", *_BY, "cursor", "limit")
_RUN_FILTERS = ("status", "cursor", "limit")
_ORDERS = ("created", "expires")
_REQUEST: tuple[str, ...] = get_args(RequestStatus)
_RUN: tuple[str, ...] = get_args(RunStatus)
Endpoint = Callable[[Request], Awaitable[Response]]


def app(
    *, store: RunStore | str, auth: Authenticator | None = None, inbox: bool = True
) -> Starlette:
    """The console as an ASGI app, to serve (``afk serve``) or mount in your own app.

    ``store``: a run store or its URL; ``auth``: who may call the API (default: API tokens
    kept in the store, :class:`~afk.console.auth.TokenAuthenticator`). ``inbox``: also serve
    the web inbox (``/``, ``/login``, ``/requests/{id}``); its browser sessions then
    authenticate API calls too (a POST with the session's CSRF token), after ``auth``, and
    ``app.state.afk_sessions`` is its :class:`~afk.console._sessions.Sessions`, for another
    login step to start sessions with (:func:`afk.console.login`). The store is set up when
    the app starts (its lifespan) and closed when it stops, if it was given as a URL."""
    opened = open_store(store)
    authenticator = auth if auth is not None else TokenAuthenticator(opened)
    if not isinstance(authenticator, Authenticator):
        raise ConfigurationError(
            f"app(auth=) takes an Authenticator (async authenticate(request)), got "
            f"{type(authenticator).__name__}"
        )
    sessions = Sessions(opened)
    if inbox:
        authenticator = SessionAuthenticator(opened, primary=authenticator, sessions=sessions)
    api = _Api(opened, authenticator)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await api.ready()
        try:
            yield
        finally:
            if isinstance(store, str):
                await opened.close()

    routes: list[BaseRoute] = [
        Route("/api/v1/openapi.json", _openapi, methods=["GET"]),
        Route("/api/v1/requests", api.guard(api.list_requests), methods=["GET"]),
        Route("/api/v1/requests/{request_id}", api.guard(api.get_request), methods=["GET"]),
        Route(
            "/api/v1/requests/{request_id}/decision",
            api.guard(api.post_decision),
            methods=["POST"],
        ),
        Route("/api/v1/runs", api.guard(api.list_runs), methods=["GET"]),
        Route("/api/v1/runs/{run_id}", api.guard(api.get_run), methods=["GET"]),
        Route("/api/v1/events", api.guard(api.events), methods=["GET"]),
    ]
    if inbox:
        routes += Web(opened, sessions, api.ready).routes()
    made = Starlette(routes=routes, lifespan=lifespan)
    # What another login (OIDC) or a confirm page needs: afk.console.login(sessions, ...)
    # starts a session, sessions.read(request) reads one.
    made.state.afk_sessions = sessions
    return made


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi())


def error_response(exc: AfkError) -> JSONResponse:
    """``exc`` as the API answers it: its ``http_status``, and a body naming it."""
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    field = getattr(exc, "field", None)
    if field is not None:
        error["field"] = field
    if isinstance(exc, AlreadyDecidedError) and exc.first_decision is not None:
        first = exc.first_decision
        error["first_decision"] = codec.encode(first) if type(first) in codec.KINDS else first
    return JSONResponse({"error": error}, status_code=exc.http_status)


def unauthenticated() -> JSONResponse:
    """The 401 answer: no principal, and how to become one (a Bearer token)."""
    body = {"error": {"type": "Unauthenticated", "message": "a valid API token is required"}}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="afk"'})


class _Api:
    """The endpoints, over one store and one authenticator."""

    def __init__(self, store: RunStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth
        self._ready = False

    async def ready(self) -> None:
        """Set the store up once (at start-up; a POST in an app whose lifespan never ran)."""
        if not self._ready:
            await self.store.setup()
            self._ready = True

    def guard(self, endpoint: Callable[[Request, Principal], Awaitable[Response]]) -> Endpoint:
        """``endpoint`` behind authentication, its afk errors answered with their status."""

        async def guarded(request: Request) -> Response:
            try:
                principal = await self.auth.authenticate(request)
                if principal is None:
                    return unauthenticated()
                return await endpoint(request, principal)
            except AfkError as exc:
                return error_response(exc)

        return guarded

    # -- requests --------------------------------------------------------------------------
    async def list_requests(self, request: Request, principal: Principal) -> Response:
        query = _query(request, _REQUEST_FILTERS)
        status = cast("RequestStatus | None", _status(query.get("status", "pending"), _REQUEST))
        limit = _limit(query)
        order, filters = _listing(query, status)
        with _cursor_field():
            page = await self.store.list_requests(
                run_id=query.get("run"),
                status=status,
                limit=limit,
                cursor=query.get("cursor"),
                order=order,
                **filters,
            )
        now = time.time()
        for record in page:
            v.checked(self.store, record)
        items = [v.request_summary(r, now) for r in page]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    async def get_request(self, request: Request, principal: Principal) -> Response:
        request_id = request.path_params["request_id"]
        record = await self.store.get_request(request_id)
        if record is None:
            raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
        v.checked(self.store, record)
        votes = await self.store.list_votes(request_id)
        detail = v.request_detail(record, votes, self.store)
        # What the inbox's request page shows too: the platform's risk line (from the
        # policy's own records, never the model's words) and the conversation that led here.
        snapshot = await inbox.run_snapshot(self.store, record.run_id)
        found = load_request(record)
        detail["risk"] = dataclasses.asdict(await inbox.risk(self.store, record, found, snapshot))
        excerpt = inbox.excerpt(snapshot, found.tool_call_id)
        detail["conversation"] = dataclasses.asdict(excerpt)
        return JSONResponse(detail)

    async def post_decision(self, request: Request, principal: Principal) -> Response:
        await self.ready()
        key = idempotency_key(request.headers.get("idempotency-key"))
        raw = await _body(request)
        answer = await decide(self.store, request.path_params["request_id"], raw, principal, key)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)

    # -- runs ------------------------------------------------------------------------------
    async def list_runs(self, request: Request, principal: Principal) -> Response:
        query = _query(request, _RUN_FILTERS)
        status = cast("RunStatus | None", _status(query.get("status", "all"), _RUN))
        limit = _limit(query)
        with _cursor_field():
            page = await self.store.list_runs(
                status=status,
                limit=limit,
                cursor=query.get("cursor"),
            )
        items = [v.run_summary(r) for r in page]
        return JSONResponse({"items": items, "next_cursor": page.next_cursor})

    async def get_run(self, request: Request, principal: Principal) -> Response:
        run_id = request.path_params["run_id"]
        record = await self.store.load_run(run_id)
        if record is None:
            raise RunNotFoundError(f"no stored run with id {run_id!r}")
        v.checked(self.store, record)
        requests = await self.store.list_requests(run_id=run_id, status=None, limit=100)
        now = time.time()
        for r in requests:
            v.checked(self.store, r)
        body = {
            **v.run_summary(record),
            "requests": [v.request_summary(r, now) for r in requests],
            "requests_next_cursor": requests.next_cursor,
        }
        return JSONResponse(body)

    async def events(self, request: Request, principal: Principal) -> Response:
        return await events_endpoint(self.store, request)


async def _body(request: Request) -> bytes:
    """The request's body, refused (422) past MAX_BODY_BYTES without reading it all."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyError(f"the body is over {MAX_BODY_BYTES} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _query(request: Request, accepted: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one this endpoint reads."""
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in accepted:
            raise BodyError(
                f"unknown query parameter {name!r}; accepted: {', '.join(accepted)}",
                field=name,
            )
        if name in found:
            raise BodyError(f"query parameter {name!r} given twice", field=name)
        found[name] = value
    return found


def _status(text: str, accepted: tuple[str, ...]) -> str | None:
    if text == "all":
        return None
    if text not in accepted:
        raise BodyError(
            f"status must be one of {', '.join((*accepted, 'all'))}, got {text!r}",
            field="status",
        )
    return text


def _listing(
    query: dict[str, str], status: str | None
) -> tuple[RequestOrder, dict[str, str | None]]:
    """The order and filters of a request listing, each refusal naming its field. Pending
    requests (and a tool, rule or agent filter, which lists pending ones) come soonest
    deadline first unless ``order=created``; one run's requests may be listed in either
    order, oldest first by default."""
    filters = {name: query.get(name) for name in _BY}
    named = [name for name, value in filters.items() if value is not None]
    for name in named:
        if not filters[name]:
            raise BodyError(f"{name} must not be empty", field=name)
    # The pending list is what approvers work through: soonest deadline first by default.
    default = (
        "expires" if named or (status == "pending" and query.get("run") is None) else "created"
    )
    order = query.get("order", default)
    if order not in _ORDERS:
        raise BodyError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}", field="order")
    if named and order != "expires":
        raise BodyError(f"{named[0]} lists by expiry: order must be expires", field="order")
    if named and query.get("run") is not None:
        message = f"{named[0]} cannot be combined with run (list the run's requests)"
        raise BodyError(message, field=named[0])
    if order == "expires" and query.get("run") is None and status != "pending":
        message = f"order=expires lists pending requests (or one run's): got status {status!r}"
        raise BodyError(message, field="status")
    return cast("RequestOrder", order), filters


@contextlib.contextmanager
def _cursor_field() -> Iterator[None]:
    """A listing's refusal (its limit is checked before): the cursor, named as the field."""
    try:
        yield
    except ConfigurationError as exc:
        raise BodyError(str(exc), field="cursor") from None


def _limit(query: dict[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    try:
        return check_limit(int(text))
    except (ValueError, ConfigurationError):
        message = f"limit must be a whole number from 1 to 1000, got {text!r}"
        raise BodyError(message, field="limit") from None


__all__ = [
    "MAX_BODY_BYTES",
    "app",
    "error_response",
    "unauthenticated",
]
