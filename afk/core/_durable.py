"""A run's link to its store: checkpoints, decisions, exactly-once execution, its lease.

Private machinery used by :mod:`afk.core._run` when the runner has a store.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afk.approvals._rows import load_decision, load_request
from afk.approvals.principal import Principal
from afk.approvals.requests import ApprovalRequest, DecidedBy, Decision, Request
from afk.audit.entries import ExecutionStarted, PolicyDecided, ShadowRule, to_log
from afk.canonical import canonical_json
from afk.core._fallback import denial, fallback_decision
from afk.core._records import (
    approved_args,
    decision_log,
    opened_log,
    outcome_log,
    request_record,
)
from afk.core._snapshot import SCHEMA_VERSION, RunSnapshot, dump_snapshot, to_json
from afk.core._tool_asks import ToolPaused
from afk.errors import AlreadyDecidedError, RequestExpiredError, StoreError
from afk.store._seal import record_ok, tamper_log
from afk.store.store import (
    EventRow,
    ExecutionRecord,
    LogEntry,
    RequestRecord,
    RunRecord,
    RunStatus,
    RunStore,
    TimerRecord,
)

if TYPE_CHECKING:
    from afk.agents.policy import PolicyDecision, PolicyEvent
    from afk.audit.keys import Keyring
    from afk.core._emitter import Emitter
    from afk.core._facts import RunFacts

_READY: weakref.WeakSet[Any] = weakref.WeakSet()


async def ensure_ready(store: RunStore) -> None:
    """``store.setup()`` once per store object and process."""
    if store not in _READY:
        await store.setup()
        _READY.add(store)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOutcome:
    """What exactly-once execution found or produced for one call."""

    output: Any = None
    error: str | None = None  # also: why a stored outcome that does not verify is not trusted
    unknown: bool = False  # found mid-execution after a crash, not re-run


def refused_record(request_id: str) -> str:
    """What the model is told when a request's stored record does not verify."""
    return (
        f"refused: the stored record of request {request_id} does not verify (it was changed "
        "outside afk); nothing was run"
    )


class Durable:
    """Everything a run writes to or reads from its store.

    Given the run's facts and its emitter (whose events each checkpoint flushes); the run
    loop hands it each snapshot to write."""

    def __init__(
        self,
        facts: RunFacts,
        store: RunStore,
        *,
        emitter: Emitter,
        owner: str,
        lease_ttl_s: float,
    ) -> None:
        self.facts = facts
        self.store = store
        self.emitter = emitter
        self.owner = owner
        self.lease_ttl_s = lease_ttl_s
        self.flushed_seq = emitter.seq
        self._lease_task: asyncio.Task[None] | None = None
        self._released = False  # by finish(): release() has nothing left to do
        self._pending_log: list[LogEntry] = []
        # Decided request rows this run already read (a decision never changes: the first
        # stands), so taking the decision and checking it before execution read each once.
        self._decided: dict[str, RequestRecord] = {}
        # Decided rows that verified, read back as typed values: the decision is taken from
        # a row and checked again before execution, and the row (the same object, its bytes
        # unchanged) need not be checked and parsed twice.
        self._trusted: dict[str, tuple[RequestRecord, Request, Decision]] = {}

    def remember(self, records: Iterable[RequestRecord]) -> None:
        """Request rows read under this run's lease (when it was claimed)."""
        self._decided.update((r.request_id, r) for r in records if r.decision is not None)

    def decided_rows(self) -> list[RequestRecord]:
        """The decided request rows read so far (a sub-agent's journal starts from them)."""
        return list(self._decided.values())

    async def request_row(self, request_id: str) -> RequestRecord | None:
        """The request's row (decided ones are read once)."""
        return await self._request_row(request_id)

    async def _request_row(self, request_id: str) -> RequestRecord | None:
        known = self._decided.get(request_id)
        if known is not None:
            return known
        record = await self.store.get_request(request_id)
        if record is not None and record.decision is not None:
            self._decided[request_id] = record
        return record

    @property
    def keys(self) -> Keyring:
        return self.store.keys

    # -- checkpoints -----------------------------------------------------------------------
    async def ready(self) -> None:
        await ensure_ready(self.store)

    async def checkpoint(
        self,
        status: RunStatus,
        snapshot: RunSnapshot,
        new_requests: Sequence[Request] = (),
    ) -> None:
        """Persist ``snapshot``, the run's new requests and unflushed events in one
        transaction."""
        await self._save(status, snapshot, new_requests, release=False)

    async def finish(self, status: RunStatus, snapshot: RunSnapshot) -> None:
        """The run's last checkpoint (it ended: ``status``), which hands its lease back in
        the same transaction; renewing stops first, so no renewal can take it again."""
        self._stop_renewing()
        await self._save(status, snapshot, (), release=True)
        self._released = True

    async def _save(
        self,
        status: RunStatus,
        snapshot: RunSnapshot,
        new_requests: Sequence[Request],
        *,
        release: bool,
    ) -> None:
        from afk.core.events import stored_payload  # lazy: the CLI's decision path never saves

        facts = self.facts
        now = time.time()
        record = RunRecord(
            run_id=facts.run_id,
            agent_name=facts.agent_name,
            status=status,
            snapshot=dump_snapshot(snapshot),
            schema_version=SCHEMA_VERSION,
            created_at=facts.started_at,
            updated_at=now,
            thread_id=facts.thread_id,
            requested_by=facts.requested_by,
            lease_owner=self.owner if status == "paused" and self._lease_task else None,
            lease_expires_at=now + self.lease_ttl_s if self._lease_task else None,
        )
        events = [
            EventRow(run_id=e.run_id, seq=e.seq, type=e.type, payload=stored_payload(e), ts=e.ts)
            for e in self.emitter.events
            if e.seq > self.flushed_seq
        ]
        log = self._take_log(*(opened_log(r, now, self.keys) for r in new_requests))
        requests = [request_record(r, self.keys) for r in new_requests]
        await self.store.save_run(
            record,
            requests=requests,
            events=events,
            log=log,
            release=self.owner if release else None,
        )
        if events:
            self.flushed_seq = events[-1].seq
        timers = _timers(new_requests)
        if timers:
            # Written after the run: a crash in between loses a reminder, never a decision.
            await self.store.add_timers(timers)

    # -- decisions -------------------------------------------------------------------------
    async def stored_decision(self, request: Request) -> tuple[Decision, DecidedBy] | None:
        """The request's decision from the store; applies the fallback once past expiry. A
        stored record that does not verify yields a denial, never its decision."""
        record = await self._request_row(request.request_id)
        if record is None:
            return None
        if not await self._verified(record, "take its decision"):
            return denial(request, refused_record(request.request_id)), "error"
        if record.status != "pending":
            return self._read(record)[1], _decided_by(record.decided_by)
        if time.time() <= record.expires_at:
            return None
        fallback = fallback_decision(self.facts.config, request, "expired")
        return await self.record(request, fallback, "timeout")

    async def record(
        self,
        request: Request,
        decision: Decision,
        decided_by: DecidedBy,
        *,
        principal: Principal | None = None,
    ) -> tuple[Decision, DecidedBy]:
        """Write a decision the run obtained itself (``principal``: who decided, when a
        human did); if another one got in first, that one stands and is returned."""
        try:
            await self.store.decide(
                request.request_id,
                decision=to_json(decision, type(decision)),
                decided_by=decided_by,
                approver=decision.approver,
                bound_digest=self.keys.digest(approved_args(request, decision, decided_by)),
                now=time.time(),
                honour_expiry=decided_by == "human",
                log=self._take_log(
                    decision_log(request, decision, decided_by, self.keys, principal)
                ),
            )
        except (AlreadyDecidedError, RequestExpiredError):
            stored = await self.store.get_request(request.request_id)
            if stored is not None and stored.decision is not None:
                return load_decision(stored), _decided_by(stored.decided_by)
            return fallback_decision(self.facts.config, request, "expired"), "timeout"
        return decision, decided_by

    async def wait_for_store(self, request: Request, timeout_s: float) -> None:
        await self.store.wait_for_decisions([request.request_id], timeout_s=timeout_s)

    # -- exactly once ----------------------------------------------------------------------
    async def verified_args(self, request: Request) -> dict[str, Any] | str:
        """The approved arguments as stored, checked against the record's MAC and the keyed
        digests the request and its decision bound; a string explains a refusal instead."""
        record = await self._request_row(request.request_id)
        if record is None or record.decision is None:
            return "no stored decision for this request"
        if not await self._verified(record, "execute"):
            return refused_record(record.request_id)
        stored, decision = self._read(record)
        return approved_args(stored, decision, record.decided_by or "human")

    def _read(self, record: RequestRecord) -> tuple[Request, Decision]:
        """A decided row that ``_verified`` passed, as its request and decision."""
        known = self._trusted.get(record.request_id)
        if known is not None and known[0] is record:
            return known[1], known[2]
        return load_request(record), load_decision(record)

    async def _verified(self, record: RequestRecord, refused: str) -> bool:
        """Whether the request row is what the store wrote: its MAC, and its digests over the
        arguments it holds. When not, the refusal goes to the ledger."""
        known = self._trusted.get(record.request_id)
        if known is not None and known[0] is record:
            return True
        if record_ok(self.keys, record) and self._digests_ok(record):
            return True
        entry = tamper_log(record, refused)
        await self.store.log_refusal(entry)
        return False

    def _digests_ok(self, record: RequestRecord) -> bool:
        try:
            stored = load_request(record)
            decision = load_decision(record) if record.decision is not None else None
        except (ValueError, StoreError):  # not even readable: as untrusted as a bad MAC
            return False
        if not self.keys.verify("args", stored.tool_args, record.args_digest):
            return False
        if decision is None or record.bound_digest is None:
            return True
        args = approved_args(stored, decision, record.decided_by or "human")
        if not self.keys.verify("args", args, record.bound_digest):
            return False
        self._trusted[record.request_id] = (record, stored, decision)
        return True

    async def execute_once(
        self,
        key: str,
        tool_call_id: str,
        args: dict[str, Any],
        *,
        idempotent: bool,
        invoke: Callable[[], Awaitable[Any]],
    ) -> StoredOutcome:
        run_id = self.facts.run_id
        digest = self.keys.digest(args)
        created, record = await self.store.begin_execution(
            ExecutionRecord(
                key=key,
                run_id=run_id,
                tool_call_id=tool_call_id,
                args_digest=digest,
                status="executing",
                started_at=time.time(),
            ),
            log=self._take_log(
                to_log(
                    ExecutionStarted(
                        run_id=run_id,
                        request_id=key,
                        tool_call_id=tool_call_id,
                        args_digest=digest,
                        at=time.time(),
                    )
                )
            ),
        )
        if not created and not record_ok(self.keys, record):
            # Forged or edited: its outcome is not trusted, and the call is not run again.
            await self.store.log_refusal(tamper_log(record, "trust or repeat an execution"))
            return StoredOutcome(error=_untrusted_outcome(key))
        if not created and record.status == "done":
            assert record.result is not None
            stored = json.loads(record.result)
            if "asked" in stored:  # it stopped at a question whose checkpoint never came
                return StoredOutcome(unknown=True)
            return StoredOutcome(output=stored.get("output"), error=stored.get("error"))
        if not created and not idempotent:
            return StoredOutcome(unknown=True)
        output: Any = None
        error: str | None = None
        try:
            output = await invoke()
        except asyncio.CancelledError:
            raise
        except ToolPaused as paused:
            # This entry ends at a question (afk.core._tool_asks): done, with no outcome.
            asked = {"asked": paused.request.request_id, "error": None, "output": None}
            await self.store.finish_execution(
                key,
                result=canonical_json(asked),
                now=time.time(),
                log=[outcome_log(run_id, key, tool_call_id, digest, "asked a human")],
            )
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        from pydantic_core import to_jsonable_python

        result = {"output": to_jsonable_python(output, fallback=repr), "error": error}
        await self.store.finish_execution(
            key,
            result=canonical_json(result),
            now=time.time(),
            log=[outcome_log(run_id, key, tool_call_id, digest, error)],
        )
        return StoredOutcome(output=result["output"], error=error)

    # -- ledger ----------------------------------------------------------------------------
    async def log_policy(self, event: PolicyEvent, decision: PolicyDecision) -> None:
        """Queue the policy's decision on one call (tool or model) for the decision ledger.

        It is written with the run's next write, in that transaction: the execution record
        it lets start, the request it opens, the decision it leads to, or the checkpoint.
        That keeps it with the state change it explains, at no extra transaction per call."""
        entry = PolicyDecided(
            run_id=self.facts.run_id,
            actor="policy",
            event=event.event_type,
            step=event.step,
            tool=event.tool_name,
            tool_call_id=event.tool_call_id,
            args_digest=self.keys.digest(dict(event.tool_args)),
            action=decision.action,
            rule=decision.rule_id,
            matched=tuple(decision.matched_rules),
            reason=decision.reason,
            shadow=tuple(
                ShadowRule(rule=s.rule_id, action=s.action, would_change=s.would_change)
                for s in decision.shadow
            ),
            at=time.time(),
        )
        self._pending_log.append(to_log(entry))

    def _take_log(self, *entries: LogEntry) -> list[LogEntry]:
        """Queued policy entries first (they came first), then this write's own."""
        taken, self._pending_log = self._pending_log, []
        return [*taken, *entries]

    def adopt_log(self, entries: Sequence[LogEntry]) -> None:
        """A sub-agent's queued ledger entries, written with this run's next checkpoint."""
        self._pending_log.extend(entries)

    async def flush_log(self) -> None:
        if self._pending_log:
            for entry in self._take_log():
                await self.store.log_refusal(entry)

    # -- lease -----------------------------------------------------------------------------
    def keep_lease(self) -> None:
        """Hold the run's lease while this process works on it, renewing it every third of
        its time to live. The lease is fresh when this is called (just claimed, or written
        by the checkpoint that follows), so the first renewal waits."""
        if self._lease_task is None:
            self._lease_task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            await self.store.acquire_lease(
                self.facts.run_id, owner=self.owner, ttl_s=self.lease_ttl_s, now=time.time()
            )

    def _stop_renewing(self) -> None:
        if self._lease_task is not None:
            self._lease_task.cancel()
            self._lease_task = None

    async def release(self) -> None:
        self._stop_renewing()
        if not self._released:  # finish() handed it back already
            await self.store.release_lease(self.facts.run_id, owner=self.owner)


def _untrusted_outcome(key: str) -> str:
    return (
        f"outcome unknown: the stored record of execution {key} does not verify (it was "
        "changed outside afk), so its result is not trusted and the call was not run again"
    )


def _timers(requests: Sequence[Request]) -> list[TimerRecord]:
    """Durable reminder and escalation timers for newly opened approval requests."""
    timers = []
    for r in requests:
        if isinstance(r, ApprovalRequest) and r.remind_at is not None:
            timers.append(TimerRecord(request_id=r.request_id, kind="remind", due_at=r.remind_at))
        if isinstance(r, ApprovalRequest) and r.escalate_at is not None:
            timers.append(
                TimerRecord(request_id=r.request_id, kind="escalate", due_at=r.escalate_at)
            )
    return timers


def _decided_by(value: str | None) -> DecidedBy:
    if value in ("human", "timeout", "fallback", "error"):
        return value  # type: ignore[return-value]
    return "human"


class NestedDurable(Durable):
    """A sub-agent's journal (afk.core._subagents): its calls run exactly once and its
    decisions are read and written in the store like any run's, but it has no run row and
    no lease of its own. Its checkpoints stay here (``last``) for the parent, which stores
    the child's snapshot inside its own step, with the child's requests as its own."""

    last: RunSnapshot | None = None

    async def checkpoint(
        self,
        status: RunStatus,
        snapshot: RunSnapshot,
        new_requests: Sequence[Request] = (),
    ) -> None:
        """Keep ``snapshot`` for the parent (the parent's checkpoint writes it)."""
        self.last = snapshot

    async def finish(self, status: RunStatus, snapshot: RunSnapshot) -> None:
        """The child's last checkpoint: kept for the parent, like the others."""
        self.last = snapshot

    def take_log(self) -> list[LogEntry]:
        """The ledger entries queued for the next checkpoint: the parent's writes them."""
        return self._take_log()

    def keep_lease(self) -> None:
        """Nothing: the top run's lease covers the tree."""

    async def release(self) -> None:
        """Nothing: the top run's lease covers the tree."""
