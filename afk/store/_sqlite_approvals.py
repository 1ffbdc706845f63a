"""The SQLite store's transaction plumbing, and its approver votes, standing grants and
durable timers (a mixin of :class:`~afk.store.sqlite.SQLiteStore`, kept apart to keep each
file readable).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

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

T = TypeVar("T")
_SERIAL = "INTEGER PRIMARY KEY AUTOINCREMENT"  # AUTOINCREMENT: ids are never reused


@functools.cache
def _sql(template: str) -> str:
    return c.render(template, prefix="", postgres=False, real="REAL", serial=_SERIAL)


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    conn.commit()


def _insert_log(conn: sqlite3.Connection, keys: Keyring, log: Sequence[LogEntry]) -> None:
    # Inside a BEGIN IMMEDIATE transaction: this connection is the only writer, so the head
    # read here is the chain's head until commit.
    if log:
        head = conn.execute(_sql(c.LOG_HEAD)).fetchone()
        conn.executemany(_sql(c.INSERT_LOG), c.chained_log_rows(keys, log, head))


class _Store(Protocol):
    """What the mixin uses of the store."""

    @property
    def keys(self) -> Keyring: ...

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class SQLiteApprovals:
    """Votes, grants and timers, each write one ``BEGIN IMMEDIATE`` transaction."""

    # -- approver votes --------------------------------------------------------------------
    async def add_vote(
        self: _Store,
        vote: VoteRecord,
        *,
        decides: VoteRule,
        now: float,
        log: Sequence[LogEntry] = (),
    ) -> tuple[RequestRecord, int]:
        keys, vote = self.keys, s.sealed(self.keys, vote)

        def work(conn: sqlite3.Connection) -> tuple[RequestRecord, int] | TamperedRecordError:
            with _write(conn):
                row = conn.execute(_sql(c.SELECT_REQUEST), (vote.request_id,)).fetchone()
                current = c.request_from_row(row) if row else None
                if current is not None and not s.record_ok(keys, current):
                    _insert_log(conn, keys, [s.tamper_log(current, "count a vote")])
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
                voter = (vote.request_id, vote.approver)
                if conn.execute(_sql(a.SELECT_VOTER), voter).fetchone():
                    raise a.duplicate_vote(vote)
                conn.execute(_sql(a.INSERT_VOTE), a.vote_params(vote))
                rows = conn.execute(_sql(a.LIST_VOTES), (vote.request_id,)).fetchall()
                assert current is not None
                votes, forged = a.counted(keys, rows, current.run_id)
                if decides(votes):
                    current = s.sealed(keys, decided)
                    conn.execute(_sql(c.DECIDE), c.decide_params(current))
                _insert_log(conn, keys, [*forged, *log])
                return current, len(votes)

        return c.raise_tampered(await self._call(work))

    async def list_votes(self: _Store, request_id: str) -> list[VoteRecord]:
        rows = await self._all(_sql(a.LIST_VOTES), (request_id,))
        return [a.vote_from_row(r) for r in rows]

    # -- standing grants -------------------------------------------------------------------
    async def add_grant(self: _Store, grant: GrantRecord, *, log: Sequence[LogEntry] = ()) -> None:
        keys, grant = self.keys, s.sealed(self.keys, grant)

        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                # Logged only when inserted: deciding and then resuming adds the grant twice.
                if conn.execute(_sql(a.INSERT_GRANT), a.grant_params(grant)).rowcount == 1:
                    _insert_log(conn, keys, log)

        await self._call(work)

    async def list_grants(self: _Store, *, active_at: float | None = None) -> list[GrantRecord]:
        if active_at is None:
            rows = await self._all(_sql(a.LIST_GRANTS), ())
        else:
            rows = await self._all(_sql(a.LIST_ACTIVE_GRANTS), (active_at,))
        return [a.grant_from_row(r) for r in rows]

    async def revoke_grant(
        self: _Store, grant_id: str, *, by: str | None, now: float, log: Sequence[LogEntry] = ()
    ) -> GrantRecord:
        keys = self.keys

        def work(conn: sqlite3.Connection) -> GrantRecord | None:
            with _write(conn):
                row = conn.execute(_sql(a.SELECT_GRANT), (grant_id,)).fetchone()
                grant, extra, revoke = a.revoked(keys, row, by=by, now=now)
                if grant is not None and revoke:
                    conn.execute(_sql(a.REVOKE_GRANT), (now, by, grant.mac, grant_id))
                    _insert_log(conn, keys, [*extra, *log])
            return grant

        grant = await self._call(work)
        if grant is None:
            raise GrantNotFoundError(f"no grant with id {grant_id!r}")
        return grant

    async def use_grant(
        self: _Store, grant_id: str, *, now: float, log: Sequence[LogEntry] = ()
    ) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                used = conn.execute(_sql(a.USE_GRANT), (grant_id, now)).rowcount == 1
                if used:
                    _insert_log(conn, self.keys, log)
                return used

        return await self._call(work)

    # -- durable timers --------------------------------------------------------------------
    async def add_timers(self: _Store, timers: Sequence[TimerRecord]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                rows = [(t.request_id, t.kind, t.due_at) for t in timers]
                conn.executemany(_sql(a.INSERT_TIMER), rows)

        if timers:
            await self._call(work)

    async def claim_due_timers(self: _Store, *, now: float, limit: int = 100) -> list[TimerRecord]:
        def work(conn: sqlite3.Connection) -> list[TimerRecord]:
            with _write(conn):
                due = [a.due_timer(r) for r in conn.execute(_sql(a.DUE_TIMERS), (now, limit))]
                for timer in due:
                    conn.execute(_sql(a.FIRE_TIMER), (now, timer.request_id, timer.kind))
            return due

        return await self._call(work)
