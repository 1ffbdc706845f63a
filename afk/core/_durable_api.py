"""What the Runner's durable-run methods do against a store: record a human's decision,
and claim a paused run for resuming."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from afk.agents.agent import Agent
from afk.approvals.approvers import check_approver, eligible
from afk.approvals.grants import add_grant
from afk.approvals.requests import ApprovalRequest, Decision, Request, validate_decision
from afk.canonical import canonical_json
from afk.core._durable import _decision_log, approved_args, load_decision, load_request
from afk.core._snapshot import RunSnapshot, args_digest, load_snapshot, to_json
from afk.core.result import RunResult
from afk.errors import (
    AlreadyDecidedError,
    InteractionError,
    RunLockedError,
    RunNotFoundError,
    RunNotResumableError,
    UnknownRequestError,
)
from afk.store.store import TERMINAL_RUN_STATES, LogEntry, RunStore, VoteRecord


async def resolve(
    store: RunStore, request_id: str, decision: Decision
) -> Literal["decided", "pending"]:
    record = await store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    request = load_request(record)
    try:
        validate_decision(request, decision)
        check_approver(request, decision)
        digest = args_digest(approved_args(request, decision, "human"))
        text = to_json(decision, type(decision))
        if isinstance(request, ApprovalRequest) and request.quorum > 1:
            assert decision.approver is not None  # check_approver demands a name for quorums
            vote = VoteRecord(
                request_id=request_id,
                approver=decision.approver,
                kind=decision.kind,
                decision=text,
                bound_digest=digest,
                at=time.time(),
            )
            stored, _ = await store.add_vote(
                vote,
                quorum=request.quorum,
                now=vote.at,
                deny_decides=request.deny_decides,
                log=[_vote_log(request, decision)],
            )
            if stored.status == "pending":
                return "pending"
        else:
            await store.decide(
                request_id,
                decision=text,
                decided_by="human",
                approver=decision.approver,
                bound_digest=digest,
                now=time.time(),
                log=[_decision_log(request, decision, "human")],
            )
    except AlreadyDecidedError as exc:
        await _refused(store, record.run_id, request_id, decision, exc)
        current = await store.get_request(request_id)
        first = load_decision(current) if current and current.decision else exc.first_decision
        raise AlreadyDecidedError(
            f"request {request_id} was already decided ({first!r}); the first decision stands",
            request_id=request_id,
            first_decision=first,
        ) from None
    except InteractionError as exc:
        await _refused(store, record.run_id, request_id, decision, exc)
        raise
    await add_grant(store, request, decision)
    return "decided"


def _vote_log(request: ApprovalRequest, decision: Decision) -> LogEntry:
    entry = _decision_log(request, decision, "human")
    return replace(entry, kind="vote")


async def _refused(
    store: RunStore, run_id: str, request_id: str, decision: Decision, exc: Exception
) -> None:
    await store.log_refusal(
        LogEntry(
            kind="refused",
            run_id=run_id,
            request_id=request_id,
            actor=decision.approver,
            payload=canonical_json(
                {"kind": decision.kind, "why": type(exc).__name__, "detail": str(exc)}
            ),
            at=time.time(),
        )
    )


async def claim(
    store: RunStore, run_id: str, agent: Agent, owner: str, lease_ttl_s: float
) -> RunSnapshot | RunResult:
    """The run's snapshot, with its lease taken by ``owner``; or a ``paused`` result when it
    still waits for a decision."""
    now = time.time()
    # Lease first, then read: read first, and a worker finishing in between would release
    # the lease and leave us resuming a stale snapshot of a run that already ended.
    if not await store.acquire_lease(run_id, owner=owner, ttl_s=lease_ttl_s, now=now):
        if await store.load_run(run_id) is None:
            raise RunNotFoundError(f"no stored run with id {run_id!r}")
        raise RunLockedError(f"run {run_id} is being resumed by another worker")
    record = await store.load_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no stored run with id {run_id!r}")
    problem = None
    if record.status in TERMINAL_RUN_STATES:
        problem = f"run {run_id} already ended: {record.status}"
    elif record.agent_name != agent.name:
        problem = f"run {run_id} belongs to agent {record.agent_name!r}, not {agent.name!r}"
    if problem is not None:
        await store.release_lease(run_id, owner=owner)
        raise RunNotResumableError(problem)
    waiting = [
        r for r in await store.list_requests(run_id=run_id, status="pending") if r.expires_at >= now
    ]
    if waiting:
        await store.release_lease(run_id, owner=owner)
        return RunResult(
            run_id=run_id, state="paused", pending_requests=[load_request(r) for r in waiting]
        )
    try:
        return load_snapshot(record.snapshot)
    except Exception:
        await store.release_lease(run_id, owner=owner)
        raise


@dataclass(frozen=True, slots=True, kw_only=True)
class Reminder:
    """A pending request's reminder or escalation came due (sent to ``Runner(notifier=)``)."""

    kind: Literal["remind", "escalate"]
    request: Request
    approvers: tuple[str, ...]  # who may decide now (widened when escalated)
    due_at: float


async def fire_due_timers(store: RunStore, notifier: Any) -> list[Reminder]:
    now = time.time()
    sent = []
    for timer in await store.claim_due_timers(now=now):
        record = await store.get_request(timer.request_id)
        if record is None:
            continue
        request = load_request(record)
        reminder = Reminder(
            kind=timer.kind,
            request=request,
            approvers=eligible(request, now) or (),
            due_at=timer.due_at,
        )
        await store.log_refusal(  # the decision log's generic append
            LogEntry(
                kind="escalated" if timer.kind == "escalate" else "reminded",
                run_id=request.run_id,
                request_id=request.request_id,
                payload=canonical_json({"approvers": list(reminder.approvers)}),
                at=now,
            )
        )
        if notifier is not None:
            outcome = notifier(reminder)
            if inspect.isawaitable(outcome):
                await outcome
        sent.append(reminder)
    return sent
