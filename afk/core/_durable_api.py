"""What the Runner's durable-run methods do against a store: record a human's decision,
and claim a paused run for resuming."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from afk.approvals import _codec as codec
from afk.approvals._rows import load_decision, load_request
from afk.approvals.decide import Decided, Vote, decide
from afk.approvals.principal import Principal
from afk.approvals.requests import ApprovalDecision, ApprovalRequest, Decision, Request
from afk.audit.entries import RequestDecided, to_log, who
from afk.canonical import sha256_hex
from afk.core._records import approved_args
from afk.errors import (
    AlreadyDecidedError,
    InteractionError,
    RunLockedError,
    RunNotFoundError,
    RunNotResumableError,
    UnknownRequestError,
)
from afk.store._paging import MAX_LIMIT, every_request
from afk.store._seal import record_ok, tamper_log, tampered
from afk.store.store import (
    TERMINAL_RUN_STATES,
    LogEntry,
    RequestRecord,
    RunRecord,
    RunStore,
    VoteRule,
)

if TYPE_CHECKING:
    from afk.agents.agent import Agent
    from afk.audit.entries import VoteCast
    from afk.core._snapshot import RunSnapshot
    from afk.core.result import RunInfo, RunResult
    from afk.store.store import ClaimedRun, VoteRecord

# Deciding (`afk approvals approve` in a fresh process) imports only this module's top: the
# snapshot, the run's result and pydantic load inside claim(), which resumes a run; grants
# (and their ledger kinds) when a decision makes one. Timers fire from afk.core._timers.


async def resolve(
    store: RunStore,
    request_id: str,
    decision: Decision,
    principal: Principal | None = None,
) -> Literal["decided", "pending"]:
    """Record ``principal``'s vote on a stored request through the one decision rule
    (:func:`afk.approvals.decide.decide`); the store compare-and-sets what it returns. A
    refusal is written to the ledger (who, how authenticated, why) and raised."""
    record = await store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    # The row's deadline is the one the store enforces (and seals).
    request = replace(load_request(record), expires_at=record.expires_at)
    vote = Vote(principal=principal, decision=decision, at=time.time())
    try:
        outcome = decide(request, vote, votes=await _votes(store, request), now=vote.at)
        decision = outcome.vote.decision  # its approver is now the principal's id
        digest = _digest(store, approved_args(request, decision, "human"))
        log = _vote_log(request, outcome.vote, digest, _vote_kind(request))
        if _quorum(request):
            assert outcome.vote.approver is not None  # decide() refuses anonymous quorum votes
            from afk.store.store import VoteRecord  # a quorum's: built on first use

            stored, _ = await store.add_vote(
                VoteRecord(
                    request_id=request_id,
                    approver=outcome.vote.approver,
                    kind=decision.kind,
                    decision=codec.dumps(decision),
                    bound_digest=digest,
                    at=vote.at,
                ),
                decides=_rule(request, outcome.vote),
                now=vote.at,
                log=[log],
            )
            if stored.status == "pending":
                return "pending"
        else:
            await store.decide(
                request_id,
                decision=codec.dumps(decision),
                decided_by="human",
                approver=decision.approver,
                bound_digest=digest,
                now=vote.at,
                log=[log],
            )
    except AlreadyDecidedError as exc:
        await _refused(store, record.run_id, request_id, vote, exc)
        current = await store.get_request(request_id)
        first = load_decision(current) if current and current.decision else exc.first_decision
        raise AlreadyDecidedError(
            f"request {request_id} was already decided ({first!r}); the first decision stands",
            request_id=request_id,
            first_decision=first,
        ) from None
    except InteractionError as exc:
        await _refused(store, record.run_id, request_id, vote, exc)
        raise
    if isinstance(decision, ApprovalDecision) and decision.grant is not None:
        # Only then: grants and their ledger kinds are not loaded by a plain decision.
        # add_grant (grant_record) is still what decides whether there is one to store.
        from afk.approvals.grants import add_grant

        await add_grant(store, request, decision)
    return "decided"


def _quorum(request: Request) -> bool:
    return isinstance(request, ApprovalRequest) and request.quorum > 1


def _digest(store: RunStore, args: Any) -> str:
    keys = getattr(store, "keys", None)
    return keys.digest(args) if keys is not None else sha256_hex(args)


async def _votes(store: RunStore, request: Request) -> list[Vote]:
    """The votes counted so far, as the decision rule reads them (only rows that verify)."""
    if not _quorum(request):
        return []
    stored = await store.list_votes(request.request_id)
    return _as_votes(v for v in stored if record_ok(store.keys, v))


def _as_votes(records: Iterable[VoteRecord]) -> list[Vote]:
    votes = []
    for v in records:
        stored = codec.loads(v.decision, ApprovalDecision, what=f"vote of {v.approver!r}: ")
        who = Principal(id=v.approver, authenticated_by="stored vote")
        votes.append(Vote(principal=who, decision=stored, at=v.at))
    return votes


def _rule(request: Request, vote: Vote) -> VoteRule:
    """What the store asks, with the request row locked: do the stored votes (this one
    among them) decide it? The one decision rule answers; the store counts nothing."""

    def decides(records: Sequence[VoteRecord]) -> bool:
        prior = _as_votes(r for r in records if r.approver != vote.approver)
        return isinstance(decide(request, vote, votes=prior, now=vote.at), Decided)

    return decides


def _vote_kind(request: Request) -> type[VoteCast | RequestDecided]:
    """A quorum's vote is a ``vote`` entry, any other a ``decided`` one."""
    if not _quorum(request):
        return RequestDecided
    from afk.audit.entries import VoteCast  # built on first use (afk.audit.entries)

    return VoteCast


def _vote_log(
    request: Request, vote: Vote, digest: str, kind: type[VoteCast | RequestDecided]
) -> LogEntry:
    entry = kind(
        run_id=request.run_id,
        request_id=request.request_id,
        actor=vote.approver or "anonymous",
        decision=vote.decision.kind,
        decided_by="human",
        reason=vote.decision.reason,
        args_digest=digest,
        at=vote.at,
        **who(vote.principal),
    )
    return to_log(entry)


async def log_refused(store: RunStore, request: Request, vote: Vote, exc: Exception) -> None:
    """Write a refused vote to the ledger: who, how they were authenticated, why."""
    await _refused(store, request.run_id, request.request_id, vote, exc)


async def _refused(
    store: RunStore, run_id: str, request_id: str, vote: Vote, exc: Exception
) -> None:
    from afk.audit.entries import DecisionRefused

    entry = DecisionRefused(
        run_id=run_id,
        request_id=request_id,
        actor=vote.approver or "anonymous",
        decision=vote.decision.kind,
        why=type(exc).__name__,
        detail=str(exc),
        at=time.time(),
        **who(vote.principal),
    )
    await store.log_refusal(to_log(entry))


async def get_request(store: RunStore, request_id: str) -> Request:
    """The stored request, verified (``Runner.get_request``)."""
    record = await store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    if not record_ok(store.keys, record):
        raise tampered(record, "show the request")
    return load_request(record)


async def get_run(store: RunStore, run_id: str) -> RunInfo:
    """The stored run and its pending requests, verified (``Runner.get_run``)."""
    from afk.core.result import RunInfo

    record = await store.load_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no stored run with id {run_id!r}")
    if not record_ok(store.keys, record):
        raise tampered(record, "show the run")
    waiting = await every_request(store, run_id=run_id, status="pending")
    for row in waiting:
        if not record_ok(store.keys, row):
            raise tampered(row, "show the run's requests")
    return RunInfo(
        run_id=record.run_id,
        agent_name=record.agent_name,
        state=record.status,
        created_at=record.created_at,
        updated_at=record.updated_at,
        thread_id=record.thread_id,
        requested_by=record.requested_by,
        pending_requests=[load_request(r) for r in waiting],
    )


async def claim(
    store: RunStore,
    run_id: str,
    agent: Agent,
    owner: str,
    lease_ttl_s: float,
    leased: RunRecord | None = None,
) -> tuple[RunSnapshot, list[RequestRecord]] | RunResult:
    """The run's snapshot and its request rows (read under the lease, for the run's
    Durable to take decisions from), with its lease taken by ``owner``; or a ``paused``
    result when it still waits for a decision. ``leased``: the run's row as
    ``claim_ready`` returned it, its lease taken by ``owner`` in that same statement (a
    worker's claim): only the requests are read."""
    from afk.core._snapshot import load_snapshot
    from afk.core.result import RunResult

    now = time.time()
    # Lease first, then read (one transaction): read first, and a worker finishing in
    # between would release the lease and leave us resuming a stale snapshot of a run that
    # already ended.
    if leased is not None and leased.run_id == run_id and leased.lease_owner == owner:
        claimed = await _claimed(store, leased)
    else:
        claimed = await store.claim_run(run_id, owner=owner, ttl_s=lease_ttl_s, now=now)
    record = claimed.run
    if record is None:
        if claimed.leased:  # a lease on no row cannot be, but hand nothing back held
            await store.release_lease(run_id, owner=owner)
        raise RunNotFoundError(f"no stored run with id {run_id!r}")
    if not claimed.leased:
        raise RunLockedError(f"run {run_id} is being resumed by another worker")
    if not record_ok(store.keys, record):
        # A snapshot edited in the database (an extra tool call marked allowed, say) must
        # not be resumed: log it, hand the run back, refuse.
        await store.log_refusal(tamper_log(record, "resume the run"))
        await store.release_lease(run_id, owner=owner)
        raise tampered(record, "resume the run")
    problem = None
    if record.status in TERMINAL_RUN_STATES:
        problem = f"run {run_id} already ended: {record.status}"
    elif record.agent_name != agent.name:
        problem = f"run {run_id} belongs to agent {record.agent_name!r}, not {agent.name!r}"
    if problem is not None:
        await store.release_lease(run_id, owner=owner)
        raise RunNotResumableError(problem)
    # Complete, not one page: a run left out here would resume past a pending request.
    held = list(claimed.requests)
    if claimed.next_cursor is not None:
        held = await every_request(store, run_id=run_id, status=None)
    waiting = [r for r in held if r.status == "pending" and r.expires_at >= now]
    if waiting:
        await store.release_lease(run_id, owner=owner)
        return RunResult(
            run_id=run_id, state="paused", pending_requests=[load_request(r) for r in waiting]
        )
    try:
        # The snapshot names its paused step's requests: their rows hold them.
        requests = {r.request_id: load_request(r) for r in held}
        snapshot = load_snapshot(
            record.snapshot, record=record, requests=requests, system=agent.system_message
        )
        return snapshot, held
    except Exception:
        await store.release_lease(run_id, owner=owner)
        raise


async def _claimed(store: RunStore, leased: RunRecord) -> ClaimedRun:
    """What ``claim_run`` would return for a run whose lease ``claim_ready`` already took:
    its first page of requests, read now, under that lease."""
    from afk.store.store import ClaimedRun  # built on first use (afk.store._other_records)

    page = await store.list_requests(run_id=leased.run_id, status=None, limit=MAX_LIMIT)
    return ClaimedRun(run=leased, leased=True, requests=page, next_cursor=page.next_cursor)
