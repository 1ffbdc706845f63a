"""The SQLite driver of the store's procedures (:mod:`afk.store._procs`): the whole
procedure runs in one thread (the event loop's when nothing makes it wait, else a worker's:
afk.store.sqlite), a write inside one ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

if sys.platform != "win32":  # no flock there: writers wait in SQLite's busy handler only
    import fcntl

from afk.store import _common as c
from afk.store._procs import Last, LockLog, Notify, Proc, Q, Together

T = TypeVar("T")
TURN_WAIT_S = 5.0  # at most this long for a writer's turn (then SQLite's lock decides)
_SERIAL = "INTEGER PRIMARY KEY AUTOINCREMENT"  # AUTOINCREMENT: ids are never reused


@functools.cache
def _sql(template: str) -> str:
    return c.render(template, prefix="", postgres=False, real="REAL", serial=_SERIAL, blob="BLOB")


class WriterTurns:
    """afk's writers to one SQLite file take turns on an ``flock`` of ``<path>.lock`` before
    SQLite's own write lock. A writer SQLite finds the file locked for sleeps in its busy
    handler (1, 2, 5, 10... ms) before it looks again; one waiting here wakes the moment the
    writer before it commits. SQLite's lock still decides (other programs do not take this
    one); on Windows, or when the lock file cannot be opened, writers simply do not take
    turns here."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @contextmanager
    def held(self, *, wait: bool = True) -> Iterator[None]:
        """The turn, until the block ends (its transaction committed or rolled back).
        ``wait=False``: WouldWait when another writer holds it, instead of waiting."""
        fd = self._open()
        if fd is None:
            yield
            return
        taken = _take(fd) if wait else _take_now(fd)
        try:
            yield
        finally:
            if taken:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int | None:
        if sys.platform == "win32":
            return None
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None  # a read-only directory: SQLite reports any write itself
        return self._fd

    def close(self) -> None:
        """Close the lock file (the store is closing)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _take(fd: int) -> bool:
    """Wait for the turn, polling from 50 µs up to 1 ms apart (finer than SQLite's busy
    handler, and bounded: a holder that hangs must not hang every other writer). After
    ``TURN_WAIT_S`` the writer goes on without it and SQLite's own lock and busy timeout
    decide, as they would without turns. This store's own descriptor: threads of one
    process take turns too."""
    if sys.platform == "win32":
        return False
    deadline, pause = time.monotonic() + TURN_WAIT_S, 50e-6
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)


def _take_now(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise WouldWait from None
    return True


class WouldWait(Exception):
    """A no-wait attempt (``drive(wait=False)``) found another writer holding the turn or
    SQLite's write lock. Raised before the procedure's first statement: nothing ran, and
    the same procedure can be driven again, waiting."""


class Connection(sqlite3.Connection):
    """The store's connection (``sqlite3.connect(factory=...)``): it carries its turns."""

    turns: WriterTurns | None = None


@contextmanager
def _write(conn: sqlite3.Connection, *, wait: bool = True) -> Iterator[None]:
    # IMMEDIATE: the write lock is taken before the first read, so a compare-and-set read
    # cannot be overtaken by another process's write before its update (row locks, on
    # Postgres, are Q.lock; SQLite has no need of them).
    turns = getattr(conn, "turns", None)
    with turns.held(wait=wait) if turns is not None else contextlib.nullcontext():
        _begin(conn, wait=wait)
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()


def _begin(conn: sqlite3.Connection, *, wait: bool) -> None:
    if wait:
        conn.execute("BEGIN IMMEDIATE")
        return
    # Not waiting: SQLite's busy handler off for this one statement (another program may
    # write the file without taking afk's turn).
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise WouldWait from exc
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


@contextmanager
def lease_only(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits that write only lease columns do not wait for the disk (``synchronous =
    NORMAL``, set between transactions: SQLite refuses it inside one). In WAL mode every
    other connection sees the commit at once; only a power loss can undo it, and that
    stops the lease holder with it (the lease then expires, as a dead holder's does). The
    next durable commit writes it to disk too. About 0.3 ms off every lease write here."""
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def drive(
    conn: sqlite3.Connection,
    proc: Proc[T],
    *,
    tx: bool,
    durable: bool = True,
    wait: bool = True,
) -> tuple[T, bool]:
    """Run ``proc`` to its end on ``conn`` (in one BEGIN IMMEDIATE transaction when ``tx``;
    else each statement commits by itself); its result, and whether it asked to notify.
    ``durable=False``: the procedure writes only leases (see lease_only). ``wait=False``:
    raise WouldWait, before the procedure starts, rather than wait for another writer (the
    turn is then taken for reads too, so that no afk writer is mid-transaction)."""
    turns = getattr(conn, "turns", None) if not tx else None  # tx: _write takes its turn
    if durable and wait:
        return _drive(conn, proc, tx=tx)
    if durable:
        with turns.held(wait=False) if turns is not None else contextlib.nullcontext():
            return _drive(conn, proc, tx=tx, wait=False)
    with (
        lease_only(conn),
        turns.held(wait=wait) if turns is not None else contextlib.nullcontext(),
    ):
        return _drive(conn, proc, tx=tx, wait=wait)


def _drive(
    conn: sqlite3.Connection, proc: Proc[T], *, tx: bool, wait: bool = True
) -> tuple[T, bool]:
    notified = False
    with _write(conn, wait=wait) if tx else contextlib.nullcontext():
        try:
            op = next(proc)
            while True:
                result: Any = None
                if isinstance(op, Q):
                    result = _execute(conn, op)
                elif isinstance(op, Last):
                    result = [_execute(conn, q) for q in op.queries]
                elif isinstance(op, Together):  # LockLog: this connection is the only writer
                    result = [_execute(conn, q) if isinstance(q, Q) else None for q in op.ops]
                elif isinstance(op, Notify):
                    notified = True  # signalled by the store once committed
                else:
                    assert isinstance(op, LockLog)  # this connection is the only writer
                op = proc.send(result)
        except StopIteration as stop:
            value: T = stop.value
    return value, notified


def _execute(conn: sqlite3.Connection, op: Q) -> Any:
    sql = _sql(op.sql)
    cursor = conn.executemany(sql, op.args) if op.many else conn.execute(sql, op.args)
    if op.fetch == "one":
        return cursor.fetchone()
    if op.fetch == "all":
        return cursor.fetchall()
    if op.fetch == "count":
        return cursor.rowcount
    return None
