"""The console's JSON: stored requests, decisions, votes and runs as API documents.

Requests and decisions are written by the one codec the store reads them with
(afk.approvals._codec), so the arguments shown are exactly the stored ones, which are exactly
what runs if approved. A row whose MAC does not verify is refused, never shown.
"""

from __future__ import annotations

import time
from typing import Any

from afk.approvals import _codec as codec
from afk.approvals._rows import load_decision, load_request
from afk.approvals.decide import eligible
from afk.store._seal import record_ok, tampered
from afk.store.store import RequestRecord, RunRecord, RunStore, VoteRecord


def checked(store: RunStore, record: RequestRecord | RunRecord) -> None:
    """Refuse (TamperedRecordError, 500) a row changed outside afk: shown, it would mislead."""
    if not record_ok(store.keys, record):
        raise tampered(record, "show the row")


def request_summary(record: RequestRecord, now: float) -> dict[str, Any]:
    """One listing entry: what an inbox row needs (the arguments exact and whole)."""
    request = load_request(record)
    return {
        "request_id": record.request_id,
        "run_id": record.run_id,
        "kind": record.kind,
        "agent_name": request.agent_name,
        "tool_name": record.tool_name,
        "tool_args": request.tool_args,
        "rule_id": request.rule_id,
        "reason": request.reason,
        "status": record.status,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "past_deadline": record.status == "pending" and now > record.expires_at,
    }


def decision_fields(record: RequestRecord) -> dict[str, Any]:
    """The stored decision, and who or what made it (nulls while pending)."""
    return {
        "decision": codec.encode(load_decision(record)) if record.decision else None,
        "decided_by": record.decided_by,
        "approver": record.approver,
        "decided_at": record.decided_at,
    }


def request_detail(
    record: RequestRecord, votes: list[VoteRecord], store: RunStore
) -> dict[str, Any]:
    """Everything about one request: the whole request as stored (canonical arguments, tool
    schema, rule, reason, approvers, quorum...), its status and decision, the votes that
    verify, who may decide now, and its deadline."""
    now = time.time()
    request = load_request(record)
    allowed = eligible(request, now)
    return {
        **codec.encode(request),
        "expires_at": record.expires_at,  # the row's deadline is the one enforced
        "status": record.status,
        "past_deadline": record.status == "pending" and now > record.expires_at,
        "args_digest": record.args_digest,
        **decision_fields(record),
        "votes": [vote_json(v) for v in votes if record_ok(store.keys, v)],
        "eligible_approvers": list(allowed) if allowed is not None else None,
    }


def vote_json(vote: VoteRecord) -> dict[str, Any]:
    return {"approver": vote.approver, "kind": vote.kind, "at": vote.at}


def run_summary(record: RunRecord) -> dict[str, Any]:
    """A run without its snapshot (the conversation and state a resume starts from)."""
    return {
        "run_id": record.run_id,
        "agent_name": record.agent_name,
        "status": record.status,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "thread_id": record.thread_id,
        "requested_by": record.requested_by,
    }


def decision_answer(record: RequestRecord) -> dict[str, Any]:
    """What a POST decision answers: the request's status after it (``pending`` when the
    vote was counted towards a quorum) and the decision that stands."""
    return {"request_id": record.request_id, "status": record.status, **decision_fields(record)}
