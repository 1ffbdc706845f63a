"""The SQLite run store: one file, safe for many processes on one machine.

Each store owns one connection, used from worker threads (``asyncio.to_thread``) one call at
a time under a lock. Cross-process safety comes from SQLite itself: WAL lets readers run
beside the single writer, every read-modify-write starts with ``BEGIN IMMEDIATE`` so it takes
the write lock before reading (two processes' compare-and-set cannot interleave), and
``busy_timeout`` makes a writer wait for the lock instead of failing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from afk.audit.chain import GENESIS, Checkpoint
from afk.audit.keys import Keyring, sqlite_keyring
from afk.errors import ConfigurationError, StoreError, TamperedRecordError
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _migrate as m
from afk.store import _paging as p
from afk.store import _seal as s
from afk.store._paging import Page
from afk.store._sqlite_approvals import SQLiteApprovals, _insert_log, _sql, _write
from afk.store.store import (
    EventRow,
    ExecutionRecord,
    LogEntry,
    RequestRecord,
    RequestStatus,
    RunRecord,
    RunStatus,
)

T = TypeVar("T")
BUSY_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2


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


def _add_column(conn: sqlite3.Connection, table: str, column: str) -> None:
    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


def _migrate(conn: sqlite3.Connection, keys: Keyring) -> None:
    """v1/v2 → v3: add the hash and mac columns (where missing), seal every row and chain
    the ledger under ``keys`` in id order (see afk.store._migrate)."""
    for column in ("prev_hash", "hash"):
        _add_column(conn, "log", column)
    for table in m.SEALED_TABLES:
        _add_column(conn, table, "mac")
    for step in m.STEPS:
        rows = conn.execute(_sql(step.select)).fetchall()
        conn.executemany(_sql(step.update), step.updates(keys, rows))
    head, entries = (0, GENESIS), 0
    while rows := conn.execute(_sql(c.LIST_LOG), (head[0], 1000)).fetchall():
        updates, head = c.rehash(keys, rows, head)
        conn.executemany(_sql(c.SET_LOG_HASH), updates)
        entries += len(rows)
    if conn.execute(_sql(m.COUNT_CHECKPOINTS)).fetchone()[0]:
        conn.execute(_sql(c.INSERT_CHECKPOINT), m.fresh_checkpoint(keys, head, entries))


def _hint(exc: BaseException) -> str:
    """What to do about the errors a person can fix."""
    text = str(exc).lower()
    if "readonly" in text or "unable to open" in text or isinstance(exc, OSError):
        return (
            ": this process cannot write the database; make the file and its directory "
            "writable by this user (SQLite also creates -wal and -shm files beside it), or "
            "point the store at a writable path"
        )
    return ""


class SQLiteStore(SQLiteApprovals):
    """A :class:`~afk.store.RunStore` in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, keys: Keyring | None = None) -> None:
        if keys is not None and not isinstance(keys, Keyring):
            raise ConfigurationError(
                f"SQLiteStore keys must be a Keyring, got {type(keys).__name__}"
            )
        self.path = os.path.abspath(os.fspath(path))
        self.url = f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._keys = keys

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @property
    def keys(self) -> Keyring:
        """The store's keyring: ``keys=``, else $AFK_SECRET_KEY, else the key file
        ``<path>.key`` (made on first use)."""
        if self._keys is None:
            self._keys = sqlite_keyring(self.path)
        return self._keys

    # -- plumbing ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._conn is None:
            self.keys  # noqa: B018 - resolve the key (maybe make the key file) before any write
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            # isolation_level=None: no implicit transactions; every write is explicit.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous = FULL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return fn(self._connect())
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}{_hint(exc)}") from exc

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
                for ddl in (*c.DDL[1:], *a.DDL, *p.INDEXES):
                    conn.execute(_sql(ddl))
                if c.needs_seal_migration(found[0] if found else None):
                    _migrate(conn, self.keys)
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
        keys = self.keys

        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                created = conn.execute(_sql(c.SELECT_RUN_CREATED), (run.run_id,)).fetchone()
                conn.execute(_sql(c.UPSERT_RUN), c.run_params(keys, run, created))
                rows = [c.params(s.sealed(keys, r), c.REQUEST_COLS) for r in requests]
                conn.executemany(_sql(c.INSERT_REQUEST), rows)
                try:
                    rows = [c.params(e, c.EVENT_COLS) for e in events]
                    conn.executemany(_sql(c.INSERT_EVENT), rows)
                except sqlite3.IntegrityError as exc:
                    raise StoreError(f"duplicate event for run {run.run_id!r}: {exc}") from exc
                _insert_log(conn, keys, log)

        await self._call(work)

    async def load_run(self, run_id: str) -> RunRecord | None:
        row = await self._one(_sql(c.SELECT_RUN), (run_id,))
        return c.run_from_row(row) if row else None

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[RunRecord]:
        sql, args = p.runs_query(status=status, limit=limit, cursor=cursor)
        rows = await self._all(_sql(sql), args)
        return p.run_page([c.run_from_row(r) for r in rows], status=status, limit=limit)

    # -- requests ------------------------------------------------------------------------
    async def get_request(self, request_id: str) -> RequestRecord | None:
        row = await self._one(_sql(c.SELECT_REQUEST), (request_id,))
        return c.request_from_row(row) if row else None

    async def list_requests(
        self,
        *,
        run_id: str | None = None,
        status: RequestStatus | None = "pending",
        limit: int = p.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[RequestRecord]:
        sql, args = p.requests_query(run_id=run_id, status=status, limit=limit, cursor=cursor)
        found = [c.request_from_row(r) for r in await self._all(_sql(sql), args)]
        return p.request_page(found, run_id=run_id, status=status, limit=limit)

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
        keys = self.keys

        def work(conn: sqlite3.Connection) -> RequestRecord | TamperedRecordError:
            with _write(conn):
                row = conn.execute(_sql(c.SELECT_REQUEST), (request_id,)).fetchone()
                current = c.request_from_row(row) if row else None
                if current is not None and not s.record_ok(keys, current):
                    _insert_log(conn, keys, [s.tamper_log(current, "decide")])
                    return s.tampered(current, "decide")
                new = c.decided_record(
                    current,
                    request_id,
                    decision=decision,
                    decided_by=decided_by,
                    approver=approver,
                    bound_digest=bound_digest,
                    now=now,
                    honour_expiry=honour_expiry,
                )
                new = s.sealed(keys, new)
                conn.execute(_sql(c.DECIDE), c.decide_params(new))
                _insert_log(conn, keys, log)
            return new

        return c.raise_tampered(await self._call(work))

    async def log_refusal(self, entry: LogEntry) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                _insert_log(conn, self.keys, (entry,))

        await self._call(work)

    # -- executions ----------------------------------------------------------------------
    async def begin_execution(
        self, record: ExecutionRecord, *, log: Sequence[LogEntry] = ()
    ) -> tuple[bool, ExecutionRecord]:
        keys, record = self.keys, s.sealed(self.keys, record)

        def work(conn: sqlite3.Connection) -> tuple[bool, ExecutionRecord]:
            with _write(conn):
                cur = conn.execute(_sql(c.INSERT_EXECUTION), c.params(record, c.EXECUTION_COLS))
                if cur.rowcount == 1:
                    _insert_log(conn, keys, log)
                    return True, record
                row = conn.execute(_sql(c.SELECT_EXECUTION), (record.key,)).fetchone()
            return False, c.execution_from_row(row)

        return await self._call(work)

    async def finish_execution(
        self, key: str, *, result: str, now: float, log: Sequence[LogEntry] = ()
    ) -> None:
        keys = self.keys

        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                row = conn.execute(_sql(c.SELECT_EXECUTION), (key,)).fetchone()
                done, extra = c.finished(keys, row, key, result=result, now=now)
                conn.execute(_sql(c.FINISH_EXECUTION), (result, now, done.mac, key))
                _insert_log(conn, keys, [*extra, *log])

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
