"""What the Runner's durable-run methods do against a store: record a human's decision,
and claim a paused run for resuming."""

from __future__ import annotations

import time

from afk.agents.agent import Agent
from afk.agents.interaction import Decision, validate_decision
from afk.core._durable import _decision_log, approved_args, load_decision, load_request
from afk.core._snapshot import RunSnapshot, args_digest, canonical_json, load_snapshot, to_json
from afk.core.result import RunResult
from afk.errors import (
    AlreadyDecidedError,
    InteractionError,
    RunLockedError,
    RunNotFoundError,
    RunNotResumableError,
    UnknownRequestError,
)
from afk.store.store import TERMINAL_RUN_STATES, LogEntry, RunStore


async def resolve(store: RunStore, request_id: str, decision: Decision) -> None:
    record = await store.get_request(request_id)
    if record is None:
        raise UnknownRequestError(f"no request with id {request_id!r}", request_id=request_id)
    request = load_request(record)
    try:
        validate_decision(request, decision)
        await store.decide(
            request_id,
            decision=to_json(decision, type(decision)),
            decided_by="human",
            approver=decision.approver,
            bound_digest=args_digest(approved_args(request, decision, "human")),
            now=time.time(),
            log=[_decision_log(request, decision, "human")],
        )
    except AlreadyDecidedError as exc:
        await _refused(store, record.run_id, request_id, decision, exc)
        stored = await store.get_request(request_id)
        first = load_decision(stored) if stored and stored.decision else exc.first_decision
        raise AlreadyDecidedError(
            f"request {request_id} was already decided ({first!r}); the first decision stands",
            request_id=request_id,
            first_decision=first,
        ) from None
    except InteractionError as exc:
        await _refused(store, record.run_id, request_id, decision, exc)
        raise


async def _refused(
    store: RunStore, run_id: str, request_id: str, decision: Decision, exc: Exception
) -> None:
    await store.log_refusal(
        LogEntry(
            kind="refused",
            run_id=run_id,
            request_id=request_id,
            actor=decision.approver,
            payload=canonical_json({"kind": decision.kind, "why": type(exc).__name__}),
            at=time.time(),
        )
    )


async def claim(
    store: RunStore, run_id: str, agent: Agent, owner: str, lease_ttl_s: float
) -> RunSnapshot | RunResult:
    """The run's snapshot, with its lease taken by ``owner``; or a ``paused`` result when it
    still waits for a decision."""
    record = await store.load_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no stored run with id {run_id!r}")
    if record.status in TERMINAL_RUN_STATES:
        raise RunNotResumableError(f"run {run_id} already ended: {record.status}")
    if record.agent_name != agent.name:
        raise RunNotResumableError(
            f"run {run_id} belongs to agent {record.agent_name!r}, not {agent.name!r}"
        )
    now = time.time()
    if not await store.acquire_lease(run_id, owner=owner, ttl_s=lease_ttl_s, now=now):
        raise RunLockedError(f"run {run_id} is being resumed by another worker")
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
