"""The :class:`~afk.store.RunStore` operations, written once over the procedures of
:mod:`afk.store._procs`: each method builds a procedure and hands it to the backend's
driver, ``_run`` (SQLite: afk.store.sqlite; Postgres: afk.store.postgres). A mixin of both
stores; what a backend does differently (connections, setup, claiming, waiting) stays in its
own module."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from afk.audit.chain import Checkpoint
from afk.audit.keys import Keyring
from afk.errors import GrantNotFoundError, TokenNotFoundError
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _event_batches as eb
from afk.store import _listing as ls
from afk.store import _paging as p
from afk.store import _prefix as px
from afk.store import _procs as q
from afk.store import _procs_approvals as qa
from afk.store import _ready as r
from afk.store import _seal as s
from afk.store import _threads as th
from afk.store import _tokens as tk
from afk.store._docs import documented_as
from afk.store._paging import Page
from afk.store._prefix import IdKind
from afk.store._procs import Proc
from afk.store.store import (
    EventRow,
    ExecutionRecord,
    LogEntry,
    RequestOrder,
    RequestRecord,
    RequestStatus,
    RunRecord,
    RunStatus,
    RunStore,
    VoteRule,
)

if TYPE_CHECKING:  # built on first use (afk.store._other_records)
    from afk.store.store import (
        ClaimedRun,
        GrantRecord,
        IdempotentAnswer,
        ThreadHolder,
        ThreadTurnRecord,
        TimerRecord,
        TokenRecord,
        VoteRecord,
    )

T = TypeVar("T")


class _Store(Protocol):
    """What the operations need of a backend."""

    @property
    def keys(self) -> Keyring: ...

    _returning: bool  # the database has UPDATE ... RETURNING

    async def _run(self, proc: Proc[T], *, tx: bool, durable: bool = True) -> T:
        """Drive ``proc``: in one explicit transaction when ``tx``; else each statement is
        its own (a read, or a write that is one statement). ``durable=False``: ``proc``
        writes only lease columns, whose commit need not wait for the disk."""

    def _take_mark(self) -> None:
        """Note what the waiters' wake-up source has seen (before a readiness query)."""

    async def _byte_ordered(self) -> bool:
        """Whether text keys compare in code-point order (afk.store._prefix)."""


@documented_as(RunStore)
class StoreOps:
    """Every store operation that is the same on both backends."""

    # -- runs ------------------------------------------------------------------------------
    async def save_run(
        self: _Store,
        run: RunRecord,
        *,
        requests: Sequence[RequestRecord] = (),
        events: Sequence[EventRow] = (),
        log: Sequence[LogEntry] = (),
        release: str | None = None,
    ) -> None:
        proc = q.save_run(self.keys, run, requests, events, log, time.time(), release=release)
        await self._run(proc, tx=True)

    async def load_run(self: _Store, run_id: str) -> RunRecord | None:
        row = await self._run(q.one(c.SELECT_RUN, (run_id,)), tx=False)
        return c.run_from_row(row) if row else None

    async def list_runs(
        self: _Store,
        *,
        status: RunStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RunRecord]:
        sql, args = p.runs_query(status=status, limit=limit, cursor=cursor)
        rows = await self._run(q.every(sql, args), tx=False)
        return p.run_page([c.run_from_row(row) for row in rows], status=status, limit=limit)

    async def ids_with_prefix(
        self: _Store, kind: IdKind, prefix: str, *, limit: int = 10
    ) -> list[str]:
        """Up to ``limit`` (1 to 1000) ids of ``kind`` that start with ``prefix``, in
        code-point order: one range scan of the table's primary key."""
        table, column = px.key_of(kind)
        byte_order = await self._byte_ordered()
        sql, args = px.prefix_sql(
            table, column, prefix, p.check_limit(limit), byte_order=byte_order
        )
        rows = await self._run(q.every(sql, args), tx=False)
        return [row[0] for row in rows if row[0].startswith(prefix)]

    # -- requests --------------------------------------------------------------------------
    async def get_request(self: _Store, request_id: str) -> RequestRecord | None:
        row = await self._run(q.one(c.SELECT_REQUEST, (request_id,)), tx=False)
        return c.request_from_row(row) if row else None

    async def list_requests(
        self: _Store,
        *,
        run_id: str | None = None,
        status: RequestStatus | None = "pending",
        limit: int = p.DEFAULT_LIMIT,
        cursor: str | None = None,
        order: RequestOrder = "created",
        tool: str | None = None,
        rule: str | None = None,
        agent: str | None = None,
    ) -> Page[RequestRecord]:
        if ls.is_plain(ls.check_order(order), tool, rule, agent):
            sql, args = p.requests_query(run_id=run_id, status=status, limit=limit, cursor=cursor)
            rows = await self._run(q.every(sql, args), tx=False)
            found = [c.request_from_row(row) for row in rows]
            return p.request_page(found, run_id=run_id, status=status, limit=limit)
        filters = {"tool": tool, "rule": rule, "agent": agent}
        sql, args = ls.query(
            order=order, run_id=run_id, status=status, limit=limit, cursor=cursor, **filters
        )
        rows = await self._run(q.every(sql, args), tx=False)
        return ls.page(rows, run_id=run_id, status=status, limit=limit, **filters)

    async def decide(
        self: _Store,
        request_id: str,
        *,
        decision: str,
        decided_by: str,
        approver: str | None,
        bound_digest: str,
        now: float,
        honour_expiry: bool = True,
        log: Sequence[LogEntry] = (),
    ) -> RequestRecord:
        proc = q.decide(
            self.keys,
            request_id,
            decision=decision,
            decided_by=decided_by,
            approver=approver,
            bound_digest=bound_digest,
            now=now,
            honour_expiry=honour_expiry,
            log=log,
        )
        return c.raise_tampered(await self._run(proc, tx=True))

    async def log_refusal(self: _Store, entry: LogEntry) -> None:
        await self._run(q.insert_log(self.keys, (entry,)), tx=True)

    # -- executions ------------------------------------------------------------------------
    async def begin_execution(
        self: _Store, record: ExecutionRecord, *, log: Sequence[LogEntry] = ()
    ) -> tuple[bool, ExecutionRecord]:
        proc = q.begin_execution(self.keys, s.sealed(self.keys, record), log)
        return await self._run(proc, tx=True)

    async def finish_execution(
        self: _Store, key: str, *, result: str, now: float, log: Sequence[LogEntry] = ()
    ) -> None:
        await self._run(q.finish_execution(self.keys, key, result, now, log), tx=True)

    async def get_execution(self: _Store, key: str) -> ExecutionRecord | None:
        row = await self._run(q.one(c.SELECT_EXECUTION, (key,)), tx=False)
        return c.execution_from_row(row) if row else None

    # -- events, log and checkpoints -------------------------------------------------------
    async def list_events(self: _Store, run_id: str, *, after_seq: int = 0) -> list[EventRow]:
        rows = await self._run(q.every(eb.LIST, (run_id, after_seq)), tx=False)
        return [e for row in rows for e in eb.after(eb.decode(row[0], row[1]), after_seq)]

    async def list_log(self: _Store, *, after_id: int = 0, limit: int = 10_000) -> list[LogEntry]:
        rows = await self._run(q.every(c.LIST_LOG, (after_id, limit)), tx=False)
        return [c.log_from_row(row) for row in rows]

    async def last_log_id(self: _Store) -> int:
        row = await self._run(q.one(c.LOG_HEAD), tx=False)
        return int(row[0]) if row else 0

    async def save_checkpoint(self: _Store, checkpoint: Checkpoint) -> None:
        """Keep a signed ledger checkpoint (``afk.audit.checkpoint`` signs it)."""
        row = c.params(checkpoint, c.CHECKPOINT_COLS[1:])
        await self._run(q.changes(c.INSERT_CHECKPOINT, row), tx=False)

    async def latest_checkpoint(self: _Store) -> Checkpoint | None:
        """The newest signed ledger checkpoint, or None before the first (afk.audit)."""
        row = await self._run(q.one(c.LATEST_CHECKPOINT), tx=False)
        return c.checkpoint_from_row(row) if row else None

    # -- leases and readiness --------------------------------------------------------------
    async def acquire_lease(
        self: _Store, run_id: str, *, owner: str, ttl_s: float, now: float
    ) -> bool:
        # One conditional UPDATE, its own transaction (one round trip): Postgres re-checks
        # its WHERE clause after waiting on a concurrent writer's row lock, SQLite holds the
        # write lock for it: two racers cannot both win.
        args = (owner, now + ttl_s, run_id, owner, now)
        taken = await self._run(q.last_changes(c.ACQUIRE_LEASE, args), tx=False, durable=False)
        return taken == 1

    async def claim_run(
        self: _Store, run_id: str, *, owner: str, ttl_s: float, now: float
    ) -> ClaimedRun:
        from afk.store._other_records import ClaimedRun  # built on first use: see there

        page = p.requests_query(run_id=run_id, status=None, limit=p.MAX_LIMIT, cursor=None)
        lease = (owner, now + r.check_ttl(ttl_s), now)
        proc = q.claim_run(run_id, lease, page, returning=self._returning)
        # The rows are read as the lease holder's, after the lease (what acquire_lease then
        # load_run did), in one call to the backend.
        leased, row, rows = await self._run(proc, tx=False, durable=False)
        if row is None and self._returning:  # held by another, or no such run: say which
            row = await self._run(q.one(c.SELECT_RUN, (run_id,)), tx=False)
        run = c.run_from_row(row) if row else None
        if not leased:
            return ClaimedRun(run=run, leased=False)
        found = p.request_page(
            [c.request_from_row(x) for x in rows], run_id=run_id, status=None, limit=p.MAX_LIMIT
        )
        return ClaimedRun(run=run, leased=True, requests=found, next_cursor=found.next_cursor)

    async def release_lease(self: _Store, run_id: str, *, owner: str) -> None:
        await self._run(q.last_changes(c.RELEASE_LEASE, (run_id, owner)), tx=False, durable=False)

    async def ready_runs(self: _Store, *, now: float, limit: int = 100) -> list[RunRecord]:
        self._take_mark()
        rows = await self._run(q.every(r.READY_RUNS, (now, now, now, limit)), tx=False)
        return [c.run_from_row(row) for row in rows]

    async def next_wake_at(self: _Store) -> float | None:
        self._take_mark()
        row = await self._run(q.one(r.NEXT_WAKE), tx=False)
        return float(row[0]) if row else None

    async def held_leases(self: _Store, *, now: float, limit: int = 100) -> list[RunRecord]:
        rows = await self._run(q.every(r.HELD_LEASES, (now, p.check_limit(limit))), tx=False)
        return [c.run_from_row(row) for row in rows]

    async def take_over_lease(
        self: _Store, run_id: str, *, from_owner: str, owner: str, ttl_s: float, now: float
    ) -> bool:
        args = (owner, now + r.check_ttl(ttl_s), run_id, from_owner)
        return await self._run(q.last_changes(r.TAKE_OVER, args), tx=False, durable=False) == 1

    # -- approver votes --------------------------------------------------------------------
    async def add_vote(
        self: _Store,
        vote: VoteRecord,
        *,
        decides: VoteRule,
        now: float,
        log: Sequence[LogEntry] = (),
    ) -> tuple[RequestRecord, int]:
        proc = qa.add_vote(self.keys, s.sealed(self.keys, vote), decides, now, log)
        return c.raise_tampered(await self._run(proc, tx=True))

    async def list_votes(self: _Store, request_id: str) -> list[VoteRecord]:
        rows = await self._run(q.every(a.LIST_VOTES, (request_id,)), tx=False)
        return [a.vote_from_row(row) for row in rows]

    # -- standing grants -------------------------------------------------------------------
    async def add_grant(self: _Store, grant: GrantRecord, *, log: Sequence[LogEntry] = ()) -> None:
        await self._run(qa.add_grant(self.keys, s.sealed(self.keys, grant), log), tx=True)

    async def list_grants(
        self: _Store,
        *,
        active_at: float | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[GrantRecord]:
        if limit is None and cursor is None:  # every grant, in one read
            read: Proc[list[tuple[Any, ...]]] = (
                q.every(a.LIST_GRANTS)
                if active_at is None
                else q.every(a.LIST_ACTIVE_GRANTS, (active_at,))
            )
            return p.Page(a.grant_from_row(row) for row in await self._run(read, tx=False))
        filters = ["active" if active_at is not None else "all"]
        size, after = p.bounds(limit, cursor, "grants", filters)
        sql = a.grants_page_sql(active=active_at is not None, after=after is not None)
        args = [*(() if active_at is None else (active_at,)), *(after or ()), size + 1]
        found = [a.grant_from_row(row) for row in await self._run(q.every(sql, args), tx=False)]
        return p.keyed_page(found, a.grant_key, "grants", filters, size)

    async def get_grant(self: _Store, grant_id: str) -> GrantRecord | None:
        row = await self._run(q.one(a.SELECT_GRANT, (grant_id,)), tx=False)
        return a.grant_from_row(row) if row else None

    async def active_grants(
        self: _Store, tool_name: str, *, scope_values: Sequence[str], now: float
    ) -> list[GrantRecord]:
        values = sorted(set(scope_values))
        if not values:
            return []
        sql = a.active_grants_sql(len(values))
        rows = await self._run(q.every(sql, (tool_name, *values, now)), tx=False)
        found = [a.grant_from_row(row) for row in rows]
        return sorted(found, key=lambda g: (g.created_at, g.grant_id))  # a few: no SQL sort

    async def revoke_grant(
        self: _Store, grant_id: str, *, by: str | None, now: float, log: Sequence[LogEntry] = ()
    ) -> GrantRecord:
        grant = await self._run(qa.revoke_grant(self.keys, grant_id, by, now, log), tx=True)
        if grant is None:
            raise GrantNotFoundError(f"no grant with id {grant_id!r}")
        return grant

    async def use_grant(
        self: _Store, grant_id: str, *, now: float, log: Sequence[LogEntry] = ()
    ) -> bool:
        return await self._run(qa.use_grant(self.keys, grant_id, now, log), tx=True)

    # -- durable timers --------------------------------------------------------------------
    async def add_timers(self: _Store, timers: Sequence[TimerRecord]) -> None:
        if timers:
            await self._run(qa.add_timers(timers), tx=True)

    async def claim_due_timers(self: _Store, *, now: float, limit: int = 100) -> list[TimerRecord]:
        if await self._run(q.one(a.ANY_DUE_TIMER, (now,)), tx=False) is None:
            return []  # the usual pass: nothing due, and no write lock taken to learn it
        return await self._run(qa.claim_due_timers(now, limit), tx=True)

    # -- conversation threads (afk.store._threads) -------------------------------------------
    async def take_thread(
        self: _Store,
        thread_id: str,
        *,
        run_id: str,
        owner: str,
        now: float,
        take_from: str | None = None,
    ) -> ThreadHolder | None:
        return await self._run(th.take(thread_id, run_id, owner, now, take_from), tx=True)

    async def release_thread(self: _Store, thread_id: str, *, run_id: str) -> None:
        await self._run(q.changes(th.RELEASE, (thread_id, run_id)), tx=False)

    async def add_thread_turn(self: _Store, turn: ThreadTurnRecord) -> ThreadTurnRecord:
        return await self._run(th.add_turn(self.keys, turn), tx=True)

    async def thread_turns(self: _Store, thread_id: str) -> list[ThreadTurnRecord]:
        rows = await self._run(q.every(th.SELECT_TURNS, (thread_id,)), tx=False)
        return [th.turn_from_row(row) for row in rows]

    # -- API tokens and idempotent answers (afk.store._tokens) -----------------------------
    async def add_token(self: _Store, token: TokenRecord) -> None:
        row = tk.token_params(s.sealed(self.keys, token))
        await self._run(q.changes(tk.INSERT_TOKEN, row), tx=True)

    async def get_token(self: _Store, token_id: str) -> TokenRecord | None:
        row = await self._run(q.one(tk.SELECT_TOKEN, (token_id,)), tx=False)
        return tk.token_from_row(row) if row else None

    async def list_tokens(self: _Store, *, limit: int = 100) -> list[TokenRecord]:
        rows = await self._run(q.every(tk.LIST_TOKENS, (p.check_limit(limit),)), tx=False)
        return [tk.token_from_row(row) for row in rows]

    async def revoke_token(
        self: _Store, token_id: str, *, by: str | None, now: float
    ) -> TokenRecord:
        token = await self._run(tk.revoke_token(self.keys, token_id, by, now), tx=True)
        if token is None:
            raise TokenNotFoundError(f"no API token with id {token_id!r}")
        return token

    async def save_answer(self: _Store, answer: IdempotentAnswer) -> IdempotentAnswer:
        return await self._run(tk.save_answer(s.sealed(self.keys, answer)), tx=True)

    async def get_answer(self: _Store, principal_id: str, key: str) -> IdempotentAnswer | None:
        row = await self._run(q.one(tk.SELECT_ANSWER, (principal_id, key)), tx=False)
        return tk.answer_from_row(row) if row else None
