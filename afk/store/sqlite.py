"""The SQLite run store: one file, safe for many processes on one machine.

Each store owns one connection, used one call at a time under a lock: in the calling thread
when nothing makes the call wait (see ``SQLiteStore._now``), else from a worker thread
(``asyncio.to_thread``) so the event loop goes on; an ``inline`` store always in the calling
thread. Cross-process
safety comes from SQLite itself: WAL lets readers run beside the single writer, every
read-modify-write starts with ``BEGIN IMMEDIATE`` so it takes the write lock before reading
(two processes' compare-and-set cannot interleave), and ``busy_timeout`` makes a writer wait
for the lock instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from afk.audit.chain import GENESIS
from afk.audit.keys import Keyring, sqlite_keyring
from afk.errors import ConfigurationError, StoreError
from afk.store import _common as c
from afk.store import _event_batches as eb
from afk.store import _listing as ls
from afk.store import _migrate as m
from afk.store import _ready as r
from afk.store._docs import documented_as
from afk.store._ops import StoreOps
from afk.store._procs import Proc
from afk.store._sqlite_driver import Connection, WouldWait, WriterTurns, _sql, _write, drive
from afk.store._sqlite_ready import WATCH_INTERVAL_S, SQLiteReady, Watcher
from afk.store.store import RunStore

# asyncio is imported where a thread hop or a wait needs it, not here: an inline store (the
# afk command line's) never loads it, and it is most of what such a command would import.
if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
BUSY_TIMEOUT_S = 10.0
# How often a waiter (wait_for_work, wait_for_decisions) reads PRAGMA data_version.
POLL_INTERVAL_S = WATCH_INTERVAL_S


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


def _add_column(conn: sqlite3.Connection, table: str, column: str, kind: str = "TEXT") -> None:
    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _migrate(conn: sqlite3.Connection, keys: Keyring) -> None:
    """v1/v2 → v3: add the hash and mac columns (where missing), seal every row and chain
    the ledger under ``keys`` in id order (see afk.store._migrate)."""
    for column in ("prev_hash", "hash"):
        _add_column(conn, "log", column)
    for table in m.SEALED_TABLES:
        _add_column(conn, table, "mac")
    from afk.store import _seal_migration as sm  # a v1/v2 store's only

    for step in sm.STEPS:
        rows = conn.execute(_sql(step.select)).fetchall()
        conn.executemany(_sql(step.update), step.updates(keys, rows))
    head, entries = (0, GENESIS), 0
    while rows := conn.execute(_sql(c.LIST_LOG), (head[0], 1000)).fetchall():
        updates, head = c.rehash(keys, rows, head)
        conn.executemany(_sql(c.SET_LOG_HASH), updates)
        entries += len(rows)
    if conn.execute(_sql(m.COUNT_CHECKPOINTS)).fetchone()[0]:
        conn.execute(_sql(c.INSERT_CHECKPOINT), sm.fresh_checkpoint(keys, head, entries))


def _migrate_wake(conn: sqlite3.Connection) -> None:
    """v3 → v4: add runs.wake_at and fill it for every paused run (afk.store._ready)."""
    _add_column(conn, "runs", "wake_at", "REAL")
    rows = conn.execute(_sql(r.PAUSED_HORIZONS)).fetchall()
    conn.executemany(_sql(r.FILL_WAKE), r.fill_params(rows))


def _without_rowid(conn: sqlite3.Connection) -> None:
    """v7 → v8: event_batches rebuilt as a WITHOUT ROWID table (its rows in its primary key's
    b-tree, not in a rowid table plus an index repeating the key)."""
    (ddl,) = conn.execute(m.SQLITE_TABLE_SQL, ("event_batches",)).fetchone()
    if "WITHOUT ROWID" in ddl.upper():
        return
    conn.execute("ALTER TABLE event_batches RENAME TO event_batches_v7")
    conn.execute(_sql(eb.DDL))
    conn.execute(
        "INSERT INTO event_batches (run_id, last_seq, events) "
        "SELECT run_id, last_seq, events FROM event_batches_v7"
    )
    conn.execute("DROP TABLE event_batches_v7")


def _current(conn: sqlite3.Connection) -> bool:
    names = [row[0] for row in conn.execute(m.SQLITE_OBJECTS)]
    if "meta" not in names:
        return False
    found = conn.execute(_sql(c.SELECT_VERSION)).fetchone()
    return m.is_current(found[0] if found else None, names)


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


@documented_as(RunStore)
class SQLiteStore(SQLiteReady, StoreOps):
    """A :class:`~afk.store.RunStore` in one SQLite file.

    ``inline=True``: every operation runs to its end in the calling thread, blocking it (and
    the event loop running there) meanwhile, so a coroutine that awaits only this store never
    suspends. For a program with nothing else to do while it waits for the database: the
    ``afk`` command line drives its commands that way, without an event loop."""

    def __init__(
        self, path: str | os.PathLike[str], *, keys: Keyring | None = None, inline: bool = False
    ) -> None:
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
        self._inline = inline
        self._watcher = Watcher(self.path)
        self._turns = WriterTurns(self.path + ".lock")
        # The data version the first readiness query since the last wait saw.
        self._mark: int | None = None
        self._marked = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @property
    def inline(self) -> bool:
        """Whether operations run in the calling thread (``inline=True``), not a worker's."""
        return self._inline

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
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                factory=Connection,
            )
            conn.turns = self._turns
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
        return await self._hop(lambda: self._locked(fn))

    async def _hop(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread, so the event loop goes on meanwhile; in this thread
        when the store is inline."""
        if self._inline:
            return fn()
        import asyncio

        return await asyncio.to_thread(fn)

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

    async def _run(self, proc: Proc[T], *, tx: bool, durable: bool = True) -> T:
        done = None if self._inline else self._now(proc, tx=tx, durable=durable)
        if done is None:
            done = await self._call(lambda conn: drive(conn, proc, tx=tx, durable=durable))
        value, notified = done
        if notified:
            self._signal_work()
        return value

    def _now(self, proc: Proc[T], *, tx: bool, durable: bool) -> tuple[T, bool] | None:
        """``proc`` run in this thread when nothing makes it wait: no other thread on the
        connection, no other writer holding the turn or SQLite's write lock; None (nothing
        ran) otherwise. An operation is a few statements and at most one commit: a thread
        hop costs about as much as the operation itself (~0.1 ms here), so the loop waits
        for the disk instead, and only a writer it would queue behind sends it to a thread."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return drive(self._connect(), proc, tx=tx, durable=durable, wait=False)
        except WouldWait:
            return None
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}{_hint(exc)}") from exc
        finally:
            self._lock.release()

    async def _byte_ordered(self) -> bool:
        return True  # SQLite compares TEXT bytewise: code-point order for UTF-8

    def _take_mark(self) -> None:
        # The first query after a wait sets it: a later one (claim_ready, then
        # next_wake_at) must not move it past a commit that only the first could miss.
        if not self._marked:
            self._mark, self._marked = self._watcher.version(), True

    # -- lifecycle -----------------------------------------------------------------------
    async def setup(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            # The write lock is taken before any DDL, so concurrent setups run one by one.
            with _write(conn):
                if _current(conn):  # no DDL to run again: see afk.store._migrate.is_current
                    # Still one write, so a file this process cannot write fails here, at
                    # setup, not at the first decision.
                    conn.execute(_sql(c.INSERT_VERSION), (str(c.STORE_SCHEMA_VERSION),))
                    return
                conn.execute(_sql(c.DDL[0]))
                found = conn.execute(_sql(c.SELECT_VERSION)).fetchone()
                c.check_schema_version(found[0] if found else None, self.url)
                names = [row[0] for row in conn.execute(m.SQLITE_OBJECTS)]
                for ddl in m.TABLES:
                    conn.execute(_sql(ddl))
                for table, column, kind in m.ADDED_COLUMNS:
                    _add_column(conn, table, column, kind)
                version = found[0] if found else None
                if c.needs_seal_migration(version):
                    _migrate(conn, self.keys)
                if r.needs_wake_migration(version):
                    _migrate_wake(conn)
                if m.needs_compact_migration(version):
                    drive(conn, m.compact(self.keys, names), tx=False)
                if m.needs_pack_migration(version):
                    drive(conn, m.pack_columns(), tx=False)
                    _without_rowid(conn)
                if ls.needs_listing_migration(version):
                    drive(conn, ls.fill_columns(), tx=False)
                for ddl in m.AFTER_MIGRATIONS:
                    conn.execute(_sql(ddl))
                drive(conn, m.rebuild_without_rowid(), tx=False)  # store schema 10
                conn.execute(_sql(c.INSERT_VERSION), (str(c.STORE_SCHEMA_VERSION),))

        await self._call(work)

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                self._turns.close()
            self._watcher.close()

        await self._hop(work)


__all__ = [
    "BUSY_TIMEOUT_S",
    "POLL_INTERVAL_S",
    "SQLiteStore",
]
