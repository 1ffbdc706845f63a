"""The store's procedures for approver votes, standing grants and durable timers (see
:mod:`afk.store._procs` for how procedures work)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from afk.audit.keys import Keyring
from afk.errors import TamperedRecordError
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _seal as s
from afk.store._procs import FOR_UPDATE, Notify, Proc, Q, insert_log, rewake
from afk.store.store import LogEntry, RequestRecord, VoteRule

if TYPE_CHECKING:  # built on first use (afk.store._other_records)
    from afk.store.store import GrantRecord, TimerRecord, VoteRecord


def add_vote(
    keys: Keyring, vote: VoteRecord, decides: VoteRule, now: float, log: Sequence[LogEntry]
) -> Proc[tuple[RequestRecord, int] | TamperedRecordError]:
    row = yield Q(c.SELECT_REQUEST, (vote.request_id,), fetch="one", lock=FOR_UPDATE)
    current = c.request_from_row(row) if row else None
    if current is not None and not s.record_ok(keys, current):
        yield from insert_log(keys, [s.tamper_log(current, "count a vote")])
        return s.tampered(current, "count a vote")
    decided = c.decided_record(  # raises the same refusals as decide()
        current,
        vote.request_id,
        decision=vote.decision,
        decided_by="human",
        approver=vote.approver,
        bound_digest=vote.bound_digest,
        now=now,
        honour_expiry=True,
    )
    assert current is not None  # decided_record refused an unknown request
    if (yield Q(a.SELECT_VOTER, (vote.request_id, vote.approver), fetch="one")):
        raise a.duplicate_vote(vote)
    yield Q(a.INSERT_VOTE, a.vote_params(vote))
    rows = yield Q(a.LIST_VOTES, (vote.request_id,), fetch="all")
    votes, forged = a.counted(keys, rows, current.run_id)
    if decides(votes):
        current = s.sealed(keys, decided)
        yield Q(c.DECIDE, c.decide_params(current))
        yield from rewake(current.run_id, now)
        yield Notify(vote.request_id)
    yield from insert_log(keys, [*forged, *log])
    return current, len(votes)


def add_grant(keys: Keyring, grant: GrantRecord, log: Sequence[LogEntry]) -> Proc[None]:
    # Logged only when inserted: deciding and then resuming adds the grant twice.
    if (yield Q(a.INSERT_GRANT, a.grant_params(grant), fetch="count")) == 1:
        yield from insert_log(keys, log)


def revoke_grant(
    keys: Keyring, grant_id: str, by: str | None, now: float, log: Sequence[LogEntry]
) -> Proc[GrantRecord | None]:
    row = yield Q(a.SELECT_GRANT, (grant_id,), fetch="one", lock=FOR_UPDATE)
    grant, extra, revoke = a.revoked(keys, row, by=by, now=now)
    if grant is not None and revoke:
        yield Q(a.REVOKE_GRANT, (now, by, grant.mac, grant_id))
        yield from insert_log(keys, [*extra, *log])
    return grant


def use_grant(keys: Keyring, grant_id: str, now: float, log: Sequence[LogEntry]) -> Proc[bool]:
    counted: int = yield Q(a.USE_GRANT, (grant_id, now), fetch="count")
    used = counted == 1
    if used:
        yield from insert_log(keys, log)
    return used


def add_timers(timers: Sequence[TimerRecord]) -> Proc[None]:
    if timers:
        rows = [(t.request_id, t.kind, t.due_at) for t in timers]
        yield Q(a.INSERT_TIMER, rows, many=True)


def claim_due_timers(now: float, limit: int) -> Proc[list[TimerRecord]]:
    # SKIP LOCKED (Postgres): another worker firing timers right now keeps its own.
    rows = yield Q(a.DUE_TIMERS, (now, limit), fetch="all", lock=" FOR UPDATE OF m SKIP LOCKED")
    for row in rows:  # a stale one (its request decided) too: it is handled by not sending it
        yield Q(a.FIRE_TIMER, (now, row[0], row[1]))
    return [a.due_timer(row) for row in rows if row[3] == "pending"]
