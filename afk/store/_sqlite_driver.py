"""The SQLite driver of the store's procedures (:mod:`afk.store._procs`): the whole
procedure runs in the calling thread (one ``asyncio.to_thread`` hop per operation), a
write inside one ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from afk.store import _common as c
from afk.store._procs import LockLog, Notify, Proc, Q

T = TypeVar("T")
_SERIAL = "INTEGER PRIMARY KEY AUTOINCREMENT"  # AUTOINCREMENT: ids are never reused


@functools.cache
def _sql(template: str) -> str:
    return c.render(template, prefix="", postgres=False, real="REAL", serial=_SERIAL, blob="BLOB")


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE: the write lock is taken before the first read, so a compare-and-set read
    # cannot be overtaken by another process's write before its update (row locks, on
    # Postgres, are Q.lock; SQLite has no need of them).
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    conn.commit()


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
    conn: sqlite3.Connection, proc: Proc[T], *, tx: bool, durable: bool = True
) -> tuple[T, bool]:
    """Run ``proc`` to its end on ``conn`` (in one BEGIN IMMEDIATE transaction when ``tx``;
    else each statement commits by itself); its result, and whether it asked to notify.
    ``durable=False``: the procedure writes only leases (see lease_only)."""
    with contextlib.nullcontext() if durable else lease_only(conn):
        return _drive(conn, proc, tx=tx)


def _drive(conn: sqlite3.Connection, proc: Proc[T], *, tx: bool) -> tuple[T, bool]:
    notified = False
    with _write(conn) if tx else contextlib.nullcontext():
        try:
            op = next(proc)
            while True:
                result: Any = None
                if isinstance(op, Q):
                    result = _execute(conn, op)
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
