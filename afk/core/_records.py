"""What a run's store holds, read and written: request rows and decisions from their JSON, the
arguments a decision approves, and the ledger entries a run's own writes carry."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from afk.approvals import _codec as codec
from afk.approvals.principal import Principal
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.audit.entries import (
    ExecutionFinished,
    RequestDecided,
    RequestExpired,
    RequestOpened,
    Who,
    to_log,
    who,
)
from afk.errors import StoreError
from afk.store.store import LogEntry, RequestRecord

if TYPE_CHECKING:
    from afk.audit.keys import Keyring

DECISION_TYPES: dict[str, Any] = {"approval": ApprovalDecision, "user_input": UserInputDecision}


def request_record(request: Request, keys: Keyring) -> RequestRecord:
    return RequestRecord(
        request_id=request.request_id,
        run_id=request.run_id,
        kind=request.kind,
        request=request_json(request),
        args_digest=keys.digest(request.tool_args),
        status="pending",
        created_at=request.created_at,
        expires_at=request.expires_at,
        tool_name=request.tool_name,
    )


# The request row's own columns: its JSON does not repeat them (the row's MAC covers both).
_ROW_COLUMNS = ("request_id", "run_id", "kind", "created_at", "expires_at", "tool_name")


def request_json(request: Request) -> str:
    """The request as its row's ``request`` column holds it: without the row's own columns,
    and without the fields that are null where null is their default. Every other default
    (quorum, approvers, allowed decisions...) is written out: a request row has no schema
    version, so what it allows must never depend on this code's defaults."""
    data: dict[str, Any] = codec.encode(request)
    for name in _ROW_COLUMNS:
        del data[name]
    for name in _NULL_DEFAULTS[request.kind]:
        if data.get(name, 0) is None:
            del data[name]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def load_request(record: RequestRecord) -> Request:
    """The request a row holds; StoreError (naming the field) for one that does not fit."""
    kind: type[Request] = ApprovalRequest if record.kind == "approval" else UserInputRequest
    what = f"request {record.request_id}: "
    try:
        data = json.loads(record.request)
    except ValueError as exc:
        raise StoreError(f"{what}its JSON does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise StoreError(f"{what}its JSON is not an object")
    # The columns are what the row's MAC and its listings go by; older rows repeat them.
    data.update({name: getattr(record, name) for name in _ROW_COLUMNS})
    request: Request = codec.decode(data, kind, what=what)
    return request


def _null_defaults(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind) if f.default is None)


_NULL_DEFAULTS = {
    "approval": _null_defaults(ApprovalRequest),
    "user_input": _null_defaults(UserInputRequest),
}


def load_decision(record: RequestRecord) -> Decision:
    """The decision a decided row holds; StoreError (naming the field) for one that does not
    fit its request's kind."""
    assert record.decision is not None
    kind = DECISION_TYPES.get(record.kind)
    if kind is None:
        raise StoreError(f"request {record.request_id}: unknown kind {record.kind!r}")
    decision: Decision = codec.loads(
        record.decision, kind, what=f"decision of request {record.request_id}: "
    )
    return decision


def approved_args(request: Request, decision: Decision, decided_by: str) -> dict[str, Any]:
    """The arguments a decision approves: the human's edit, the request's own arguments with
    the human's input put into ``input_target_arg``, or the request's own. A fallback's
    "allow" for input runs the original arguments."""
    if isinstance(decision, ApprovalDecision) and decision.updated_tool_args is not None:
        return dict(decision.updated_tool_args)
    target = getattr(request, "input_target_arg", None)
    if isinstance(decision, UserInputDecision) and target and decided_by == "human":
        return {**request.tool_args, target: decision.value}
    return dict(request.tool_args)


def opened_log(request: Request, now: float, keys: Keyring) -> LogEntry:
    entry = RequestOpened(
        run_id=request.run_id,
        request_id=request.request_id,
        tool=request.tool_name,
        args_digest=keys.digest(request.tool_args),
        rule=request.rule_id,
        at=now,
    )
    return to_log(entry)


def decision_log(
    request: Request,
    decision: Decision,
    decided_by: DecidedBy,
    keys: Keyring,
    principal: Principal | None = None,
) -> LogEntry:
    cls: type[RequestExpired | RequestDecided] = (
        RequestExpired if decided_by == "timeout" else RequestDecided
    )
    entry = cls(
        run_id=request.run_id,
        request_id=request.request_id,
        actor=decision.approver or decided_by,
        decision=decision.kind,
        decided_by=decided_by,
        reason=decision.reason,
        args_digest=keys.digest(approved_args(request, decision, decided_by)),
        at=time.time(),
        **(who(principal) if principal is not None else Who()),
    )
    return to_log(entry)


def outcome_log(
    run_id: str, key: str, tool_call_id: str, digest: str, error: str | None
) -> LogEntry:
    """The tool's outcome, for the ledger: success or the error (its first 1000 characters),
    and the digest of the arguments that ran."""
    entry = ExecutionFinished(
        run_id=run_id,
        request_id=key,
        tool_call_id=tool_call_id,
        args_digest=digest,
        success=error is None,
        error=None if error is None else error[:1000],
        at=time.time(),
    )
    return to_log(entry)
