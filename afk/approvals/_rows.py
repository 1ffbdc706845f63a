"""Request rows to and from what the store holds: the one reader and writer of a request
row's ``request`` column and of its ``decision``, for every layer that reads them (the run,
the command line, the console, the notification channels)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from afk.approvals import _codec as codec
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.errors import StoreError
from afk.store.store import RequestRecord

DECISION_TYPES: dict[str, Any] = {"approval": ApprovalDecision, "user_input": UserInputDecision}


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


__all__ = [
    "DECISION_TYPES",
    "load_decision",
    "load_request",
    "request_json",
]
