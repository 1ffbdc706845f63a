"""What a run's store holds, read and written: request rows and decisions from their JSON, the
arguments a decision approves, and the ledger entries a run's own writes carry."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from afk.approvals._rows import request_json
from afk.approvals.principal import Principal
from afk.approvals.requests import (
    ApprovalDecision,
    DecidedBy,
    Decision,
    Request,
    UserInputDecision,
)
from afk.audit.entries import RequestDecided, Who, to_log, who
from afk.store.store import LogEntry, RequestRecord

# The other ledger kinds are imported where they are written: a decision (afk approvals
# approve, which imports this module) writes none of them, and each costs a class to build.
if TYPE_CHECKING:
    from afk.audit.entries import RequestExpired
    from afk.audit.keys import Keyring


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
    from afk.audit.entries import RequestOpened

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
    cls: type[RequestExpired | RequestDecided] = RequestDecided
    if decided_by == "timeout":
        from afk.audit.entries import RequestExpired

        cls = RequestExpired
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
    from afk.audit.entries import ExecutionFinished

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
