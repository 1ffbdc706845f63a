"""The inbox's buttons: each POST becomes one decision (or, for "Approve all N identical",
one per request) through the one decision path, as the session's principal. An approval
request takes Approve / Deny / Edit / Grant; an input request takes Answer / Decline. Which
decision fits which kind of request is the decision path's rule
(afk.approvals.requests.validate_decision): a form posted to the other kind's button is
refused there, and logged, whatever it holds.

Called only behind :meth:`afk.console.web.Web.action` (session, same origin, CSRF token
checked). A refusal (already decided, expired, not an approver, arguments off-schema) is
shown on the request's page with the status the API answers it with; nothing is recorded
but the ledger's refusal entry.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse, Response

from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    GrantSpec,
    UserInputDecision,
    validate_decision,
)
from afk.canonical import canonical_json, strict_loads
from afk.console import _forms as forms
from afk.console import _inbox as inbox
from afk.console._decision import BodyError
from afk.console._views import checked
from afk.core._durable_api import resolve
from afk.errors import (
    AfkError,
    InvalidArgumentsError,
    InvalidDecisionError,
    UnknownRequestError,
)
from afk.store.store import RequestRecord

if TYPE_CHECKING:
    from starlette.requests import Request

    from afk.console._sessions import Session
    from afk.console.web import Web

Handler = Callable[["Web", "Request", "Session", dict[str, str]], Awaitable[Response]]
# "Approve and allow similar": how long the grant lasts (seconds, label).
DURATIONS: tuple[tuple[int, str], ...] = (
    (3600, "1 hour"),
    (8 * 3600, "8 hours"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
)
MAX_REASON = 2000


async def _record(web: Web, request: Request) -> RequestRecord:
    request_id = request.path_params["request_id"]
    record = await web.store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    checked(web.store, record)
    return record


def _reason(form: dict[str, str], *, required: bool = False) -> str | None:
    reason = form.get("reason", "").strip()
    if len(reason) > MAX_REASON:
        raise BodyError(f"reason must be at most {MAX_REASON} characters", field="reason")
    if required and not reason:
        raise BodyError("Deny needs a reason: the agent is told it", field="reason")
    return reason or None


def request_page(
    web: Web,
    request: Request,
    session: Session,
    d: inbox.Detail,
    *,
    error: AfkError | None = None,
    answer: str = "",
) -> Response:
    """The request's page (at ``error``'s status when it says one); ``answer``: the text an
    input request's field holds again after a refused answer."""
    status = error.http_status if error is not None else 200
    invalid = isinstance(error, BodyError) and error.field == "answer"
    return web.render(
        request, "request.html", status, session=session, d=d, grant=grant_choices(d),
        error=error, answer=answer, answer_invalid=invalid,
    )  # fmt: skip


async def shown_with_error(
    web: Web, request: Request, session: Session, exc: AfkError, *, answer: str = ""
) -> Response:
    """The request's page again, with ``exc`` said at the top, at its status."""
    record = await web.store.get_request(request.path_params["request_id"])
    if record is None:
        return web.failure(request, exc, session)
    d = await inbox.detail(web.store, record)
    return request_page(web, request, session, d, error=exc, answer=answer)


async def _decide(
    web: Web, request: Request, session: Session, decision: Any, *, answer: str | None = None
) -> Response:
    """Record ``decision``; a refusal shown on the request's page. ``answer``: the submitted
    text of an input request's answer, shown again in its field; the decision path's refusal
    of it (not JSON, off its schema: afk.approvals.requests.input_value) names that field."""
    request_id = request.path_params["request_id"]
    try:
        await resolve(web.store, request_id, decision, session.principal)
    except InvalidDecisionError as exc:
        shown: AfkError = exc
        if answer is not None:
            shown = BodyError(str(exc), field="answer", request_id=request_id)
        return await shown_with_error(web, request, session, shown, answer=answer or "")
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc, answer=answer or "")
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


async def approve(web: Web, request: Request, session: Session, form: dict[str, str]) -> Response:
    """ "Approve": allow, with the arguments as they are."""
    try:
        decision = ApprovalDecision(kind="allow", reason=_reason(form))
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc)
    return await _decide(web, request, session, decision)


async def deny(web: Web, request: Request, session: Session, form: dict[str, str]) -> Response:
    """ "Deny": refuse, with the reason the form asks for (the agent is told it)."""
    try:
        decision = ApprovalDecision(kind="deny", reason=_reason(form, required=True))
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc)
    return await _decide(web, request, session, decision)


def approval_only(d: inbox.Detail) -> ApprovalRequest:
    """``d``'s request, refused (422) unless it is an approval request: only those have
    arguments to edit (an input request's page offers no edit form, and its URL none)."""
    if not isinstance(d.request, ApprovalRequest):
        raise BodyError("only approval requests have arguments to edit", field="kind")
    return d.request


def edit_form(
    web: Web,
    request: Request,
    session: Session,
    d: inbox.Detail,
    submitted: dict[str, str] | None,
    error: AfkError | None,
) -> Response:
    """The edit form, from the tool's schema; with what was submitted when it is shown
    again after a refusal."""
    shown = forms.fields(d.request.tool_schema, d.request.tool_args)
    if submitted is not None:
        shown = [dataclasses.replace(f, value=submitted.get("arg:" + f.name, "")) for f in shown]
    status = error.http_status if error is not None else 200
    return web.render(request, "edit.html", status, session=session, d=d, fields=shown, error=error)


async def preview_edit(
    web: Web, request: Request, session: Session, form: dict[str, str]
) -> Response:
    """The edit form's "Review changes": the arguments read and checked against the tool's
    schema, and the diff shown with a confirm button (nothing is decided yet)."""
    d = await inbox.detail(web.store, await _record(web, request))
    asked = approval_only(d)
    try:
        args = forms.read(asked.tool_schema, form, asked.tool_args)
        validate_decision(asked, ApprovalDecision(kind="allow", updated_tool_args=args))
    except AfkError as exc:
        return edit_form(web, request, session, d, form, exc)
    return web.render(
        request, "preview.html", session=session, d=d, args=args,
        args_json=canonical_json(args), changes=forms.diff(asked.tool_args, args),
    )  # fmt: skip


async def approve_edited(
    web: Web, request: Request, session: Session, form: dict[str, str]
) -> Response:
    """The diff's confirm button: allow with the edited arguments (checked again by the
    decision path against the tool's schema)."""
    try:
        args = strict_loads(form.get("args", "").encode(), what="args")
    except InvalidArgumentsError as exc:
        raise BodyError(f"args is not valid JSON: {exc}", field="args") from None
    if not isinstance(args, dict):
        raise BodyError("args must be a JSON object", field="args")
    try:
        decision = ApprovalDecision(kind="allow", updated_tool_args=args, reason=_reason(form))
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc)
    return await _decide(web, request, session, decision)


async def answer(web: Web, request: Request, session: Session, form: dict[str, str]) -> Response:
    """ "Answer": the text field as the answer to an input request. For a schema'd request
    it is JSON, read strictly and checked against the schema by the decision path itself
    (afk.approvals.requests.input_value, as for the API and the CLI): a refusal leaves the
    request pending and names the field."""
    value = form.get("value", "")
    decision = UserInputDecision(kind="allow", value=value)
    return await _decide(web, request, session, decision, answer=value)


async def decline(web: Web, request: Request, session: Session, form: dict[str, str]) -> Response:
    """ "Decline": refuse to answer an input request, with an optional reason (the asking
    tool is told it)."""
    try:
        decision = UserInputDecision(kind="deny", reason=_reason(form))
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc)
    return await _decide(web, request, session, decision)


def grant_choices(d: inbox.Detail) -> dict[str, Any]:
    """What "Approve and allow similar" offers for this request: the scopes it can have
    (with the value each is bound to), how long, and for which arguments."""
    r = d.request
    scopes = [("agent", f"this agent ({r.agent_name})")]
    if r.thread_id:
        scopes.insert(0, ("thread", f"this conversation thread ({r.thread_id})"))
    if r.requested_by:
        scopes.append(("user", f"runs requested by {r.requested_by}"))
    durations = [(s, label, d.now + s) for s, label in DURATIONS]
    return {"scopes": scopes, "durations": durations}


async def approve_and_grant(
    web: Web, request: Request, session: Session, form: dict[str, str]
) -> Response:
    """ "Approve and allow similar": allow, and grant later calls of this tool within the
    chosen scope until the chosen time, for these exact arguments or any."""
    record = await _record(web, request)
    d = await inbox.detail(web.store, record)
    choices = grant_choices(d)
    scope = form.get("scope", "")
    if scope not in [s for s, _ in choices["scopes"]]:
        accepted = ", ".join(s for s, _ in choices["scopes"])
        raise BodyError(f"scope must be one of {accepted}, got {scope!r}", field="scope")
    seconds = {str(s): s for s, _ in DURATIONS}.get(form.get("duration", ""))
    if seconds is None:
        accepted = ", ".join(str(s) for s, _ in DURATIONS)
        raise BodyError(f"duration must be one of {accepted} (seconds)", field="duration")
    match = form.get("match", "")
    if match not in ("same", "any"):
        raise BodyError(f"match must be 'same' or 'any', got {match!r}", field="match")
    when = {k: {"eq": v} for k, v in d.request.tool_args.items()} if match == "same" else {}
    try:
        grant = GrantSpec(scope=scope, until=time.time() + seconds, when=when)  # type: ignore[arg-type]
        decision = ApprovalDecision(kind="allow", reason=_reason(form), grant=grant)
    except AfkError as exc:
        return await shown_with_error(web, request, session, exc)
    return await _decide(web, request, session, decision)


async def approve_identical(
    web: Web, request: Request, session: Session, form: dict[str, str]
) -> Response:
    """ "Approve all N identical": allow each request the page listed that is still pending
    with this request's tool and arguments (the keyed digest compared again here); each is
    its own decision, refused or recorded on its own."""
    anchor = await _record(web, request)
    ids = [i for i in form.get("ids", "").split(",") if i][: inbox.IDENTICAL_SCAN]
    outcomes: list[tuple[str, str]] = []
    for request_id in ids:
        outcomes.append((request_id, await _approve_one(web, session, anchor, request_id)))
    return web.render(request, "batch.html", session=session, anchor=anchor, outcomes=outcomes)


async def _approve_one(web: Web, session: Session, anchor: RequestRecord, request_id: str) -> str:
    record = await web.store.get_request(request_id)
    if record is None:
        return "unknown request"
    same = (record.tool_name, record.args_digest, record.kind) == (
        anchor.tool_name, anchor.args_digest, "approval",
    )  # fmt: skip
    if not same:
        return "skipped: not identical to this request"
    try:
        checked(web.store, record)
        outcome = await resolve(
            web.store, request_id, ApprovalDecision(kind="allow"), session.principal
        )
    except AfkError as exc:
        return f"refused: {exc}"
    return "approved" if outcome == "decided" else "vote counted (needs more approvers)"
