"""The Postgres store's approver votes, standing grants and durable timers (a mixin of
:class:`~afk.store.postgres.PostgresStore`, kept apart to keep each file readable)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from afk.audit.keys import Keyring
from afk.errors import GrantNotFoundError, TamperedRecordError
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _seal as s
from afk.store.store import (
    GrantRecord,
    LogEntry,
    RequestRecord,
    TimerRecord,
    VoteRecord,
    VoteRule,
)

if TYPE_CHECKING:
    from psycopg import AsyncCursor

    Cursor = AsyncCursor[tuple[Any, ...]]


class _Store(Protocol):
    """What the mixin uses of the store."""

    keys: Keyring

    def _sql(self, template: str) -> str: ...

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Cursor]: ...

    async def _insert_log(self, cur: Cursor, log: Sequence[LogEntry]) -> None: ...

    async def _all(self, template: str, args: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class PostgresApprovals:
    """Votes, grants and timers, each one transaction; the request or grant row they change
    is locked with ``FOR UPDATE`` first."""

    # -- approver votes --------------------------------------------------------------------
    async def add_vote(
        self: _Store,
        vote: VoteRecord,
        *,
        decides: VoteRule,
        now: float,
        log: Sequence[LogEntry] = (),
    ) -> tuple[RequestRecord, int]:
        vote = s.sealed(self.keys, vote)
        async with self._tx() as cur:
            await cur.execute(self._sql(c.SELECT_REQUEST + " FOR UPDATE"), (vote.request_id,))
            row = await cur.fetchone()
            current = c.request_from_row(row) if row else None
            if current is not None and not s.record_ok(self.keys, current):
                await self._insert_log(cur, [s.tamper_log(current, "count a vote")])
                outcome: tuple[RequestRecord, int] | TamperedRecordError = s.tampered(
                    current, "count a vote"
                )
            else:
                outcome = await _vote(self, cur, current, vote, decides, now, log)
        return c.raise_tampered(outcome)

    async def list_votes(self: _Store, request_id: str) -> list[VoteRecord]:
        return [a.vote_from_row(r) for r in await self._all(a.LIST_VOTES, (request_id,))]

    # -- standing grants -------------------------------------------------------------------
    async def add_grant(self: _Store, grant: GrantRecord, *, log: Sequence[LogEntry] = ()) -> None:
        grant = s.sealed(self.keys, grant)
        async with self._tx() as cur:
            await cur.execute(self._sql(a.INSERT_GRANT), a.grant_params(grant))
            # Logged only when inserted: deciding and then resuming adds the grant twice.
            if cur.rowcount == 1:
                await self._insert_log(cur, log)

    async def list_grants(self: _Store, *, active_at: float | None = None) -> list[GrantRecord]:
        if active_at is None:
            rows = await self._all(a.LIST_GRANTS, ())
        else:
            rows = await self._all(a.LIST_ACTIVE_GRANTS, (active_at,))
        return [a.grant_from_row(r) for r in rows]

    async def revoke_grant(
        self: _Store, grant_id: str, *, by: str | None, now: float, log: Sequence[LogEntry] = ()
    ) -> GrantRecord:
        async with self._tx() as cur:
            await cur.execute(self._sql(a.SELECT_GRANT + " FOR UPDATE"), (grant_id,))
            grant, extra, revoke = a.revoked(self.keys, await cur.fetchone(), by=by, now=now)
            if grant is not None and revoke:
                await cur.execute(self._sql(a.REVOKE_GRANT), (now, by, grant.mac, grant_id))
                await self._insert_log(cur, [*extra, *log])
        if grant is None:
            raise GrantNotFoundError(f"no grant with id {grant_id!r}")
        return grant

    async def use_grant(
        self: _Store, grant_id: str, *, now: float, log: Sequence[LogEntry] = ()
    ) -> bool:
        async with self._tx() as cur:
            await cur.execute(self._sql(a.USE_GRANT), (grant_id, now))
            used = cur.rowcount == 1
            if used:
                await self._insert_log(cur, log)
        return used

    # -- durable timers --------------------------------------------------------------------
    async def add_timers(self: _Store, timers: Sequence[TimerRecord]) -> None:
        if not timers:
            return
        async with self._tx() as cur:
            rows = [(t.request_id, t.kind, t.due_at) for t in timers]
            await cur.executemany(self._sql(a.INSERT_TIMER), rows)

    async def claim_due_timers(self: _Store, *, now: float, limit: int = 100) -> list[TimerRecord]:
        async with self._tx() as cur:
            await cur.execute(
                self._sql(a.DUE_TIMERS + " FOR UPDATE OF m SKIP LOCKED"), (now, limit)
            )
            due = [a.due_timer(r) for r in await cur.fetchall()]
            for timer in due:
                await cur.execute(self._sql(a.FIRE_TIMER), (now, timer.request_id, timer.kind))
        return due


async def _vote(
    store: _Store,
    cur: Cursor,
    current: RequestRecord | None,
    vote: VoteRecord,
    decides: VoteRule,
    now: float,
    log: Sequence[LogEntry],
) -> tuple[RequestRecord, int]:
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
    await cur.execute(store._sql(a.SELECT_VOTER), (vote.request_id, vote.approver))
    if await cur.fetchone():
        raise a.duplicate_vote(vote)
    await cur.execute(store._sql(a.INSERT_VOTE), a.vote_params(vote))
    await cur.execute(store._sql(a.LIST_VOTES), (vote.request_id,))
    assert current is not None
    votes, forged = a.counted(store.keys, await cur.fetchall(), current.run_id)
    if decides(votes):
        current = s.sealed(store.keys, decided)
        await cur.execute(store._sql(c.DECIDE), c.decide_params(current))
        await cur.execute("SELECT pg_notify(%s, %s)", (c.DECISIONS_CHANNEL, vote.request_id))
    await store._insert_log(cur, [*forged, *log])
    return current, len(votes)
