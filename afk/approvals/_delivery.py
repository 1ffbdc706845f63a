"""The ledger side of notifications: ledger entries to events (:func:`events_from_log`) and
the pump a worker loop calls each pass (:func:`deliver_pending`).

Each channel keeps its own place in the ledger in the store (afk.store._links), under a
lease, so two workers never deliver one channel at once and a channel that fails is retried
from where it stopped while the others move on. A channel is offered the same event at most
``max_attempts`` passes in a row; then it is logged as given up and the channel moves past
it (one poisoned event must not silence a channel for ever).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afk.approvals._rows import load_request
from afk.approvals.decide import eligible
from afk.approvals.notify import (
    NotificationEvent,
    Notifiers,
    RequestDecidedEvent,
    RequestEscalatedEvent,
    RequestExpiredEvent,
    RequestOpenedEvent,
    RequestRemindedEvent,
    RequestSummary,
    log,
)
from afk.audit.entries import (
    LedgerEntryError,
    ReminderSent,
    RequestDecided,
    RequestEscalated,
    RequestExpired,
    RequestOpened,
    VoteCast,
    from_log,
)
from afk.errors import ConfigurationError, StoreError
from afk.store import _links as lk
from afk.store._seal import record_ok

if TYPE_CHECKING:
    from afk.store.store import LogEntry, RequestRecord, RunStore

# The ledger kinds that become events ("vote" only when it is the deciding one).
KINDS = frozenset({"request_opened", "reminded", "escalated", "decided", "expired", "vote"})
PAGE = 200
LEASE_TTL_S = 300.0  # longer than a channel's retries (Notifiers.timeout_s): one pass's lease
MAX_ATTEMPTS = 5
OWNER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReport:
    """One pass: how many deliveries were made, each channel's place in the ledger after it,
    the channels that failed (what they raised; retried next pass), those given up on an
    event (its ledger id), and those another worker was delivering."""

    delivered: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    gave_up: dict[str, list[int]] = field(default_factory=dict)
    busy: tuple[str, ...] = ()


def _event_id(entry: LogEntry) -> str:
    # The entry's chain hash is unique to this entry in this store (a MAC under its key);
    # hashed again so the id reveals nothing of it.
    return "evt_" + hashlib.sha256(f"{entry.id}:{entry.hash}".encode()).hexdigest()[:32]


def _summary(record: RequestRecord, now: float) -> RequestSummary:
    request = load_request(record)
    return RequestSummary(
        request_id=record.request_id,
        run_id=record.run_id,
        kind=record.kind,
        agent_name=request.agent_name,
        tool_name=record.tool_name,
        tool_args=dict(request.tool_args),
        rule_id=request.rule_id,
        reason=request.reason,
        status=record.status,
        expires_at=record.expires_at,
        approvers=eligible(request, now),
    )


async def events_from_log(
    store: RunStore, entries: Sequence[LogEntry]
) -> list[tuple[int, NotificationEvent]]:
    """The events ``entries`` hold, each with its ledger id, in ledger order. Entries of
    other kinds are left out, and so are those whose request row does not verify under the
    store's key (its arguments and approvers may be forged: nobody is told of them)."""
    rows: dict[str, RequestRecord | None] = {}
    found: list[tuple[int, NotificationEvent]] = []
    now = time.time()
    for entry in entries:
        if entry.kind not in KINDS or entry.request_id is None:
            continue
        if entry.request_id not in rows:
            rows[entry.request_id] = await store.get_request(entry.request_id)
        record = rows[entry.request_id]
        if record is None or not record_ok(store.keys, record):
            log.warning("ledger entry %s: request %s does not verify", entry.id, entry.request_id)
            continue
        try:
            event = _event(entry, record, now)
        except (LedgerEntryError, StoreError) as exc:
            log.warning("ledger entry %s is not an event: %s", entry.id, exc)
            continue
        if event is not None:
            found.append((entry.id, event))
    return found


def _event(entry: LogEntry, record: RequestRecord, now: float) -> NotificationEvent | None:
    typed = from_log(entry)
    common: dict[str, Any] = {
        "event_id": _event_id(entry),
        "ledger_id": entry.id,
        "request_id": record.request_id,
        "run_id": record.run_id,
        "at": entry.at,
        "request": _summary(record, now),
    }
    if isinstance(typed, RequestOpened):
        return RequestOpenedEvent(**common)
    if isinstance(typed, ReminderSent):
        return RequestRemindedEvent(**common, approvers=tuple(typed.approvers))
    if isinstance(typed, RequestEscalated):
        return RequestEscalatedEvent(**common, approvers=tuple(typed.approvers))
    if isinstance(typed, RequestExpired):
        return RequestExpiredEvent(**common, decision=typed.decision, reason=typed.reason)
    if isinstance(typed, VoteCast) and not _deciding_vote(typed, record):
        return None  # a vote towards a quorum: nothing decided yet
    if isinstance(typed, RequestDecided | VoteCast):
        return RequestDecidedEvent(
            **common,
            decision=typed.decision,
            decided_by=typed.decided_by,
            approver=typed.principal if typed.authenticated_by else None,
            authenticated_by=typed.authenticated_by,
            operator=typed.operator,
            reason=typed.reason,
        )
    return None


def _deciding_vote(vote: VoteCast, record: RequestRecord) -> bool:
    """A quorum's last vote is logged as a vote; the row it decided names it (same approver,
    decided at the vote's time, in the same transaction)."""
    return (
        record.status == "decided"
        and record.approver == vote.actor
        and record.decided_at is not None
        and abs(record.decided_at - vote.at) < 1e-6
    )


async def deliver_pending(
    store: RunStore,
    notifiers: Notifiers,
    after_id: int | None = None,
    *,
    owner: str = OWNER,
    limit: int = PAGE,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Deliver the ledger's new events to every channel; the channels run at once, each
    from its own place. ``after_id``: where a channel with no place yet starts (default:
    the ledger's head, so a new channel hears what happens from now on, not the history).
    Safe to call from every worker: a channel another worker is delivering is skipped."""
    if not isinstance(notifiers, Notifiers):
        raise ConfigurationError(f"deliver_pending takes Notifiers, got {type(notifiers).__name__}")
    start = after_id if after_id is not None else await store.last_log_id()
    cache: dict[tuple[int, ...], list[tuple[int, NotificationEvent]]] = {}
    outcomes = await asyncio.gather(
        *(
            _pass(store, notifiers, name, start, owner, limit, max_attempts, cache)
            for name in notifiers.channels
        ),
        return_exceptions=True,  # a store error in one channel's pass stops only that pass
    )
    positions: dict[str, int] = {}
    failed: dict[str, str] = {}
    gave_up: dict[str, list[int]] = {}
    busy, delivered = [], 0
    for name, outcome in zip(notifiers.channels, outcomes, strict=True):
        if outcome is None:
            busy.append(name)
            continue
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a channel's failure
            log.warning(
                "channel %s: the pass failed: %s: %s", name, type(outcome).__name__, outcome
            )
            failed[name] = f"{type(outcome).__name__}: {outcome}"
            continue
        positions[name], count, failure, given_up = outcome
        delivered += count
        if failure is not None:
            failed[name] = failure
        if given_up:
            gave_up[name] = given_up
    return DeliveryReport(
        delivered=delivered,
        positions=positions,
        failed=failed,
        gave_up=gave_up,
        busy=tuple(busy),
    )


_Outcome = tuple[int, int, str | None, list[int]]


async def _pass(
    store: RunStore,
    notifiers: Notifiers,
    name: str,
    start: int,
    owner: str,
    limit: int,
    max_attempts: int,
    cache: dict[tuple[int, ...], list[tuple[int, NotificationEvent]]],
) -> _Outcome | None:
    """One channel's pass: its place taken under its lease, moved past what it delivered."""
    cursor = await lk.run(store, lk.take_cursor(name, owner, start, time.time(), LEASE_TTL_S))
    if cursor is None:
        return None
    position, attempts, delivered, failure = cursor.after_id, cursor.attempts, 0, None
    gave_up: list[int] = []
    try:
        entries = await store.list_log(after_id=position, limit=limit)
        # Channels that read the same entries share one conversion. Not by place alone: the
        # passes run at once, and one that read the ledger after another (an entry more)
        # would take the shorter reading for its own and move past what it never saw.
        seen = (position, *(e.id for e in entries))
        if seen not in cache:
            cache[seen] = await events_from_log(store, entries)
        events = dict(cache[seen])
        for entry in entries:
            event = events.get(entry.id)
            if event is not None:
                problem = await notifiers.deliver(name, event)
                if problem is not None:
                    attempts += 1
                    if attempts < max_attempts:
                        failure = f"{type(problem).__name__}: {problem}"
                        break
                    log.error("channel %s gave up on ledger entry %s", name, entry.id)
                    gave_up.append(entry.id)
                else:
                    delivered += 1
            position, attempts = entry.id, 0
    finally:  # what was delivered stays delivered, whatever stopped the pass
        await lk.run(store, lk.move_cursor(name, owner, position, attempts, time.time()))
    return position, delivered, failure, gave_up


__all__ = [
    "KINDS",
    "LEASE_TTL_S",
    "MAX_ATTEMPTS",
    "DeliveryReport",
    "deliver_pending",
    "events_from_log",
]
