"""The SQLite run store: one file, safe for many processes on one machine.

Each store owns one connection, used from worker threads (``asyncio.to_thread``) one call at
a time under a lock. Cross-process safety comes from SQLite itself: WAL lets readers run
beside the single writer, every read-modify-write starts with ``BEGIN IMMEDIATE`` so it takes
the write lock before reading (two processes' compare-and-set cannot interleave), and
``busy_timeout`` makes a writer wait for the lock instead of failing.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from afk.audit.chain import GENESIS, Checkpoint
from afk.errors import GrantNotFoundError, StoreError
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store.store import (
    EventRow,
    ExecutionRecord,
    GrantRecord,
    LogEntry,
    RequestRecord,
    RequestStatus,
    RunRecord,
    RunStatus,
    TimerRecord,
    VoteRecord,
)

T = TypeVar("T")
BUSY_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2


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


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switching to WAL needs the database to itself, and SQLite answers "locked" at once
    instead of waiting when others hold it (several processes opening one file together):
    retry within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _insert_log(conn: sqlite3.Connection, log: Sequence[LogEntry]) -> None:
    # Inside a BEGIN IMMEDIATE transaction: this connection is the only writer, so the head
    # read here is the chain's head until commit.
    if log:
        head = conn.execute(_sql(c.LOG_HEAD)).fetchone()
        conn.executemany(_sql(c.INSERT_LOG), c.chained_log_rows(log, head))


def _migrate_log(conn: sqlite3.Connection) -> None:
    """v1 → v2: add the hash columns (if missing) and chain the existing rows in id order."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(log)")}
    for column in ("prev_hash", "hash"):
        if column not in have:
            conn.execute(f"ALTER TABLE log ADD COLUMN {column} TEXT")
    head = (0, GENESIS)
    while rows := conn.execute(_sql(c.LIST_LOG), (head[0], 1000)).fetchall():
        updates, head = c.rehash(rows, head)
        conn.executemany(_sql(c.SET_LOG_HASH), updates)


class SQLiteStore:
    """A :class:`~afk.store.RunStore` in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- plumbing ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._conn is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            # isolation_level=None: no implicit transactions; every write is explicit.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            self._conn = conn
        return self._conn

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._connect()
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from exc

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    async def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = await self._call(
            lambda conn: conn.execute(sql, args).fetchone()
        )
        return row

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._call(
            lambda conn: conn.execute(sql, args).fetchall()
        )
        return rows

    # -- lifecycle -----------------------------------------------------------------------
    async def setup(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            # The write lock is taken before any DDL, so concurrent setups run one by one.
            with _write(conn):
                conn.execute(_sql(c.DDL[0]))
                found = conn.execute(_sql(c.SELECT_VERSION)).fetchone()
                c.check_schema_version(found[0] if found else None, self.url)
                for ddl in (*c.DDL[1:], *a.DDL):
                    conn.execute(_sql(ddl))
                if c.needs_ledger_migration(found[0] if found else None):
                    _migrate_log(conn)
                conn.execute(_sql(c.INSERT_VERSION), (str(c.STORE_SCHEMA_VERSION),))

        await self._call(work)

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(work)

    # -- runs ----------------------------------------------------------------------------
    async def save_run(
        self,
        run: RunRecord,
        *,
        requests: Sequence[RequestRecord] = (),
        events: Sequence[EventRow] = (),
        log: Sequence[LogEntry] = (),
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(_sql(c.UPSERT_RUN), c.params(run, c.RUN_COLS))
                rows = [c.params(r, c.REQUEST_COLS) for r in requests]
                conn.executemany(_sql(c.INSERT_REQUEST), rows)
                try:
                    rows = [c.params(e, c.EVENT_COLS) for e in events]
                    conn.executemany(_sql(c.INSERT_EVENT), rows)
                except sqlite3.IntegrityError as exc:
                    raise StoreError(f"duplicate event for run {run.run_id!r}: {exc}") from exc
                _insert_log(conn, log)

        await self._call(work)

    async def load_run(self, run_id: str) -> RunRecord | None:
        row = await self._one(_sql(c.SELECT_RUN), (run_id,))
        return c.run_from_row(row) if row else None

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        if status is None:
            rows = await self._all(_sql(c.LIST_RUNS), (limit,))
        else:
            rows = await self._all(_sql(c.LIST_RUNS_BY_STATUS), (status, limit))
        return [c.run_from_row(r) for r in rows]

    # -- requests ------------------------------------------------------------------------
    async def get_request(self, request_id: str) -> RequestRecord | None:
        row = await self._one(_sql(c.SELECT_REQUEST), (request_id,))
        return c.request_from_row(row) if row else None

    async def list_requests(
        self, *, run_id: str | None = None, status: RequestStatus | None = "pending"
    ) -> list[RequestRecord]:
        sql = c.list_requests_sql(by_run=run_id is not None, by_status=status is not None)
        args = [a for a in (run_id, status) if a is not None]
        return [c.request_from_row(r) for r in await self._all(_sql(sql), args)]

    async def decide(
        self,
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
        def work(conn: sqlite3.Connection) -> RequestRecord:
            with _write(conn):
                row = conn.execute(_sql(c.SELECT_REQUEST), (request_id,)).fetchone()
                new = c.decided_record(
                    c.request_from_row(row) if row else None,
                    request_id,
                    decision=decision,
                    decided_by=decided_by,
                    approver=approver,
                    bound_digest=bound_digest,
                    now=now,
                    honour_expiry=honour_expiry,
                )
                conn.execute(_sql(c.DECIDE), c.decide_params(new))
                _insert_log(conn, log)
            return new

        return await self._call(work)

    async def log_refusal(self, entry: LogEntry) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                _insert_log(conn, (entry,))

        await self._call(work)

    # -- executions ----------------------------------------------------------------------
    async def begin_execution(
        self, record: ExecutionRecord, *, log: Sequence[LogEntry] = ()
    ) -> tuple[bool, ExecutionRecord]:
        def work(conn: sqlite3.Connection) -> tuple[bool, ExecutionRecord]:
            with _write(conn):
                cur = conn.execute(_sql(c.INSERT_EXECUTION), c.params(record, c.EXECUTION_COLS))
                if cur.rowcount == 1:
                    _insert_log(conn, log)
                    return True, record
                row = conn.execute(_sql(c.SELECT_EXECUTION), (record.key,)).fetchone()
            return False, c.execution_from_row(row)

        return await self._call(work)

    async def finish_execution(
        self, key: str, *, result: str, now: float, log: Sequence[LogEntry] = ()
    ) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                cur = conn.execute(_sql(c.FINISH_EXECUTION), (result, now, key))
                if cur.rowcount != 1:
                    raise StoreError(f"execution {key!r} is unknown or already finished")
                _insert_log(conn, log)

        await self._call(work)

    async def get_execution(self, key: str) -> ExecutionRecord | None:
        row = await self._one(_sql(c.SELECT_EXECUTION), (key,))
        return c.execution_from_row(row) if row else None

    # -- events and log ------------------------------------------------------------------
    async def list_events(self, run_id: str, *, after_seq: int = 0) -> list[EventRow]:
        rows = await self._all(_sql(c.LIST_EVENTS), (run_id, after_seq))
        return [c.event_from_row(r) for r in rows]

    async def list_log(self, *, after_id: int = 0, limit: int = 10_000) -> list[LogEntry]:
        rows = await self._all(_sql(c.LIST_LOG), (after_id, limit))
        return [c.log_from_row(r) for r in rows]

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed ledger checkpoint (``afk.audit.checkpoint`` signs it)."""
        row = c.params(checkpoint, c.CHECKPOINT_COLS[1:])

        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(_sql(c.INSERT_CHECKPOINT), row)

        await self._call(work)

    async def latest_checkpoint(self) -> Checkpoint | None:
        row = await self._one(_sql(c.LATEST_CHECKPOINT), ())
        return c.checkpoint_from_row(row) if row else None

    # -- leases and readiness ------------------------------------------------------------
    async def acquire_lease(self, run_id: str, *, owner: str, ttl_s: float, now: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                args = (owner, now + ttl_s, run_id, owner, now)
                return conn.execute(_sql(c.ACQUIRE_LEASE), args).rowcount == 1

        return await self._call(work)

    async def release_lease(self, run_id: str, *, owner: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(_sql(c.RELEASE_LEASE), (run_id, owner))

        await self._call(work)

    async def ready_runs(self, *, now: float, limit: int = 100) -> list[RunRecord]:
        rows = await self._all(_sql(c.READY_RUNS), (now, now, limit))
        return [c.run_from_row(r) for r in rows]

    async def wait_for_decisions(self, request_ids: Sequence[str], *, timeout_s: float) -> None:
        if not request_ids:
            return
        sql = _sql(c.any_decided_sql(len(request_ids)))
        deadline = time.monotonic() + timeout_s
        while await self._one(sql, list(request_ids)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(POLL_INTERVAL_S, remaining))

    # -- approver votes --------------------------------------------------------------------
    async def add_vote(
        self,
        vote: VoteRecord,
        *,
        quorum: int,
        now: float,
        deny_decides: bool = True,
        log: Sequence[LogEntry] = (),
    ) -> tuple[RequestRecord, int]:
        def work(conn: sqlite3.Connection) -> tuple[RequestRecord, int]:
            with _write(conn):
                row = conn.execute(_sql(c.SELECT_REQUEST), (vote.request_id,)).fetchone()
                current = c.request_from_row(row) if row else None
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
                agreeing = conn.execute(
                    _sql(a.COUNT_AGREEING), (vote.request_id, vote.kind, vote.bound_digest)
                ).fetchone()[0]
                assert current is not None
                if a.after_vote(vote, agreeing, quorum, deny_decides):
                    conn.execute(_sql(c.DECIDE), c.decide_params(decided))
                    current = decided
                _insert_log(conn, log)
                return current, agreeing

        return await self._call(work)

    async def list_votes(self, request_id: str) -> list[VoteRecord]:
        rows = await self._all(_sql(a.LIST_VOTES), (request_id,))
        return [a.vote_from_row(r) for r in rows]

    # -- standing grants -------------------------------------------------------------------
    async def add_grant(self, grant: GrantRecord, *, log: Sequence[LogEntry] = ()) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(_sql(a.INSERT_GRANT), a.grant_params(grant))
                _insert_log(conn, log)

        await self._call(work)

    async def list_grants(self, *, active_at: float | None = None) -> list[GrantRecord]:
        if active_at is None:
            rows = await self._all(_sql(a.LIST_GRANTS), ())
        else:
            rows = await self._all(_sql(a.LIST_ACTIVE_GRANTS), (active_at,))
        return [a.grant_from_row(r) for r in rows]

    async def revoke_grant(
        self, grant_id: str, *, by: str | None, now: float, log: Sequence[LogEntry] = ()
    ) -> GrantRecord:
        def work(conn: sqlite3.Connection) -> GrantRecord:
            with _write(conn):
                if conn.execute(_sql(a.REVOKE_GRANT), (now, by, grant_id)).rowcount == 1:
                    _insert_log(conn, log)
                row = conn.execute(_sql(a.SELECT_GRANT), (grant_id,)).fetchone()
            if row is None:
                raise GrantNotFoundError(f"no grant with id {grant_id!r}")
            return a.grant_from_row(row)

        return await self._call(work)

    async def use_grant(self, grant_id: str, *, now: float, log: Sequence[LogEntry] = ()) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                used = conn.execute(_sql(a.USE_GRANT), (grant_id, now)).rowcount == 1
                if used:
                    _insert_log(conn, log)
                return used

        return await self._call(work)

    # -- durable timers --------------------------------------------------------------------
    async def add_timers(self, timers: Sequence[TimerRecord]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                rows = [(t.request_id, t.kind, t.due_at) for t in timers]
                conn.executemany(_sql(a.INSERT_TIMER), rows)

        if timers:
            await self._call(work)

    async def claim_due_timers(self, *, now: float, limit: int = 100) -> list[TimerRecord]:
        def work(conn: sqlite3.Connection) -> list[TimerRecord]:
            with _write(conn):
                due = [a.due_timer(r) for r in conn.execute(_sql(a.DUE_TIMERS), (now, limit))]
                for timer in due:
                    conn.execute(_sql(a.FIRE_TIMER), (now, timer.request_id, timer.kind))
            return due

        return await self._call(work)
