"""``POST /api/v1/requests/{id}/decision``: a JSON body to a decision, recorded through the
one decision path (``afk.core._durable_api.resolve``, what ``Runner.resolve`` calls) as the
authenticated principal.

The body never names who decides: an ``approver`` field is ignored (the decision rule sets
the approver to the principal's id, whatever a decision says). Every other field is checked
here, so a 422 names the field.

``Idempotency-Key``: the answer to a decision that was recorded (200) is kept in the store
under (principal, key) before it is sent, so an acknowledged answer survives a restart and a
retry gets it again. Refusals are not kept: a retry is decided again and meets the same
refusal (already decided, expired, not an approver), naming the first decision.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from afk.approvals.principal import Principal
from afk.approvals.requests import ApprovalDecision, Decision, GrantSpec, UserInputDecision
from afk.canonical import strict_loads
from afk.console._views import checked, decision_answer
from afk.core._durable_api import resolve
from afk.errors import (
    AlreadyDecidedError,
    InvalidArgumentsError,
    InvalidDecisionError,
    UnknownRequestError,
)
from afk.store._seal import record_ok, tampered
from afk.store.store import IdempotentAnswer, RunStore

_APPROVAL_FIELDS = ("kind", "reason", "updated_tool_args", "grant", "stop_run")
_INPUT_FIELDS = ("kind", "value", "reason", "stop_run")
_IGNORED = ("approver",)  # who decides is the authenticated principal
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as HTTP header values go


class BodyError(InvalidDecisionError):
    """A decision body that does not fit (422), naming the ``field``."""

    def __init__(self, message: str, *, field: str, request_id: str | None = None) -> None:
        self.field = field
        super().__init__(message, request_id=request_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """An HTTP answer: status and JSON body; ``replayed`` when it is a kept one."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header's value, checked (422 naming it when malformed)."""
    if header is None:
        return None
    if not _KEY.fullmatch(header):
        raise BodyError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters", field="Idempotency-Key"
        )
    return header


def parse_body(raw: bytes, kind: str, request_id: str) -> Decision:
    """The decision a body holds, for a request of ``kind`` (approval or user_input)."""
    try:  # strict: NaN, Infinity and repeated keys are refused, not read one way or another
        data = strict_loads(raw, what="body")
    except InvalidArgumentsError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise BodyError("the body must be a JSON object", field="body")
    allowed = _APPROVAL_FIELDS if kind == "approval" else _INPUT_FIELDS
    for name in data:
        if name not in allowed and name not in _IGNORED:
            raise BodyError(
                f"unknown field {name!r} for a {kind} request (accepted: {', '.join(allowed)})",
                field=name,
                request_id=request_id,
            )
    fields = {name: data[name] for name in allowed if name in data}
    _check_types(fields)
    try:
        if kind == "approval":
            grant = fields.pop("grant", None)
            return ApprovalDecision(**fields, grant=_grant(grant) if grant is not None else None)
        return UserInputDecision(**fields)
    except InvalidDecisionError as exc:
        if isinstance(exc, BodyError):
            raise
        raise BodyError(str(exc), field=_field_of(str(exc)), request_id=request_id) from None


def _check_types(fields: dict[str, Any]) -> None:
    if fields.get("kind") not in ("allow", "deny"):
        raise BodyError(f"kind must be 'allow' or 'deny', got {fields.get('kind')!r}", field="kind")
    expected = {
        "reason": (str, "a string"),
        "value": (str, "a string"),
        "updated_tool_args": (dict, "an object of argument name to value"),
        "grant": (dict, "an object {scope, until, when}"),
    }
    for name, (kind, text) in expected.items():
        if fields.get(name) is not None and not isinstance(fields[name], kind):
            raise BodyError(f"{name} must be {text} or null", field=name)
    if "stop_run" in fields and not isinstance(fields["stop_run"], bool):
        raise BodyError("stop_run must be true or false", field="stop_run")


def _grant(data: dict[str, Any]) -> GrantSpec:
    unknown = sorted(set(data) - {"scope", "until", "when"})
    if unknown:
        field = f"grant.{unknown[0]}"
        raise BodyError(f"unknown field {field} (accepted: scope, until, when)", field=field)
    for name in ("scope", "until"):
        if name not in data:
            raise BodyError(f"grant.{name} is required", field=f"grant.{name}")
    when = data.get("when") or {}
    if not isinstance(when, dict):
        raise BodyError("grant.when must be an object of predicates", field="grant.when")
    try:
        return GrantSpec(scope=data["scope"], until=data["until"], when=when)
    except InvalidDecisionError as exc:
        raise BodyError(str(exc), field=_field_of(str(exc), "grant")) from None


def _field_of(message: str, default: str = "body") -> str:
    """The field a dataclass's own refusal names (``ApprovalDecision.stop_run=...``)."""
    found = re.search(r"(?:ApprovalDecision|UserInputDecision|GrantSpec)\.(\w+)", message)
    if found is None:
        if "input_schema" in message:  # an answer that is not JSON, or off its schema
            return "value"
        return "updated_tool_args" if "updated_tool_args" in message else default
    prefix = "grant." if message.startswith("GrantSpec") else ""
    return prefix + found.group(1)


async def decide(
    store: RunStore, request_id: str, raw: bytes, principal: Principal, key: str | None
) -> Answer:
    """Record ``principal``'s decision on ``request_id`` from the body ``raw``; the answer
    kept under ``key`` when the same principal sent it before."""
    if key is not None:
        kept = await _kept(store, principal, key, request_id)
        if kept is not None:
            return kept
    record = await store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    checked(store, record)
    decision = parse_body(raw, record.kind, request_id)
    try:
        await resolve(store, request_id, decision, principal)
    except BodyError:
        raise
    except InvalidDecisionError as exc:  # refused (and logged) by the decision rule
        raise BodyError(str(exc), field=_field_of(str(exc)), request_id=request_id) from None
    except AlreadyDecidedError:
        # Two tries of one key at once: the other one decided; its answer is the answer.
        kept = await _kept(store, principal, key, request_id) if key is not None else None
        if kept is not None:
            return kept
        raise
    after = await store.get_request(request_id)
    assert after is not None  # it was just decided, or voted on
    body = decision_answer(after)
    if key is None:
        return Answer(status=200, body=body)
    answer = IdempotentAnswer(
        principal_id=principal.id,
        key=key,
        request_id=request_id,
        status=200,
        body=json.dumps(body, separators=(",", ":")),
        at=time.time(),
    )
    stored = await store.save_answer(answer)
    return Answer(status=stored.status, body=json.loads(stored.body))


async def _kept(store: RunStore, principal: Principal, key: str, request_id: str) -> Answer | None:
    kept = await store.get_answer(principal.id, key)
    if kept is None:
        return None
    if not record_ok(store.keys, kept):  # written outside afk: it vouches for nothing
        raise tampered(kept, "replay an idempotent answer")
    if kept.request_id != request_id:
        raise BodyError(
            f"Idempotency-Key {key!r} was used for request {kept.request_id}; use a new key "
            "for each decision",
            field="Idempotency-Key",
        )
    return Answer(status=kept.status, body=json.loads(kept.body), replayed=True)
