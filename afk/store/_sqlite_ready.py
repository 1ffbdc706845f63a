"""The SQLite store's claims and wake-ups (a mixin of :class:`~afk.store.sqlite.SQLiteStore`);
the other readiness queries are shared (afk.store._ops).

Waking: ``PRAGMA data_version`` on a connection of the watcher's own changes whenever any
other connection commits, this store's own connection and other processes alike. Reading it
takes microseconds and no lock, so an idle waiter reads it every ``WATCH_INTERVAL_S`` from
the event loop itself (no thread hop); commits through this store object also wake waiters
at once, without waiting for the next read.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from afk.store import _common as c
from afk.store import _ready as r
from afk.store._docs import documented_as
from afk.store._sqlite_driver import _sql, _write, lease_only
from afk.store.store import RunRecord, RunStore

# Only the waits need asyncio: imported there, so an inline store's command never loads it.
if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
WATCH_INTERVAL_S = 0.025
# UPDATE ... RETURNING needs SQLite 3.35; before it, the claim selects then updates, in the
# same BEGIN IMMEDIATE transaction (the write lock makes that just as atomic).
RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


class Watcher:
    """``PRAGMA data_version`` of the database, read on a connection only this uses."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def version(self) -> int | None:
        """The current data version; None when it cannot be read right now (no database
        yet, or locked): a waiter then just reads again."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(
                        _uri(self._path), uri=True, timeout=0, isolation_level=None,
                        check_same_thread=False,
                    )  # fmt: skip
                row = self._conn.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _uri(path: str) -> str:
    """The database's URI, opened read-write only (the watcher never creates it)."""
    from pathlib import Path  # here: only a waiter's watcher needs pathlib

    return Path(path).as_uri() + "?mode=rw"


class _Store(Protocol):
    """What the mixin uses of the store."""

    _watcher: Watcher
    _mark: int | None
    _marked: bool
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def _all(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]: ...

    async def _one(self, sql: str, args: Sequence[Any]) -> tuple[Any, ...] | None: ...

    def _take_mark(self) -> None: ...


def _agents(names: list[str] | None) -> tuple[str, list[str]]:
    if names is None:
        return "", []
    return f"AND agent_name IN ({', '.join('?' for _ in names)})", names


def _claim(
    conn: sqlite3.Connection, names: list[str] | None, lease: tuple[str, float], now: float
) -> tuple[Any, ...] | None:
    clause, args = _agents(names)
    ready = (now, now, now, *args)
    candidate = r.CANDIDATE.replace("{agents}", clause)
    # A read first, outside the write lock: an idle worker's poll never takes it.
    if conn.execute(_sql(candidate), ready).fetchone() is None:
        return None
    with lease_only(conn), _write(conn):  # the claim writes only the lease columns
        if RETURNING:
            rows = conn.execute(_sql(r.claim_sql(clause)), (*lease, *ready)).fetchall()
            return rows[0] if rows else None
        found = conn.execute(_sql(candidate), ready).fetchone()
        if found is None:
            return None
        conn.execute(_sql(r.TAKE_LEASE), (*lease, found[0], now, now, now))
        row: tuple[Any, ...] | None = conn.execute(_sql(c.SELECT_RUN), (found[0],)).fetchone()
        return row


@documented_as(RunStore)
class SQLiteReady:
    """Readiness by index, one claim at a time, and wake-ups within ``WATCH_INTERVAL_S``."""

    @property
    def _returning(self) -> bool:
        """Whether this SQLite has UPDATE ... RETURNING (afk.store._ops's claim_run)."""
        return RETURNING

    async def claim_ready(
        self: _Store,
        *,
        owner: str,
        ttl_s: float,
        now: float,
        agents: Sequence[str] | None = None,
    ) -> RunRecord | None:
        names, lease = r.check_agents(agents), (owner, now + r.check_ttl(ttl_s))
        self._take_mark()  # before the query: see wait_for_work
        if names == []:
            return None
        row = await self._call(lambda conn: _claim(conn, names, lease, now))
        return c.run_from_row(row) if row else None

    async def wait_for_work(self: _Store, *, timeout_s: float) -> None:
        # Returns when the data version moved since the first readiness query (claim_ready,
        # next_wake_at, ready_runs) after the last wait read it: a commit between that query
        # and this wait is not missed. The version this wait saw becomes the mark, so
        # waiting again without a query in between waits for the next commit.
        try:
            await _until_commit(self, self._mark, timeout_s)
        finally:
            self._mark, self._marked = self._watcher.version(), False

    async def wait_for_decisions(
        self: _Store, request_ids: Sequence[str], *, timeout_s: float
    ) -> None:
        if not request_ids:
            return
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sql = _sql(c.any_decided_sql(len(request_ids)))
        while True:
            mark = self._watcher.version()  # before the check: a later decision moves it
            if await self._one(sql, list(request_ids)) is not None:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await _until_commit(self, mark, remaining)

    def _signal_work(self: _Store) -> None:
        """Wake this store's waiters now (a commit through it may have made a run ready)."""
        for loop, woken in list(self._waiters):
            try:
                loop.call_soon_threadsafe(_wake, woken)
            except RuntimeError:  # its loop is closed: nobody waits there any more
                self._waiters.discard((loop, woken))


async def _until_commit(store: _Store, mark: int | None, timeout_s: float) -> None:
    """Return once the data version differs from ``mark`` (None: from the one read now), a
    commit through ``store`` signals, or ``timeout_s`` passes."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, float(timeout_s))
    woken: asyncio.Future[None] = loop.create_future()
    entry = (loop, woken)
    store._waiters.add(entry)
    try:
        while not woken.done():
            current = store._watcher.version()
            if mark is None:
                mark = current
            elif current is not None and current != mark:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.wait([woken], timeout=min(WATCH_INTERVAL_S, remaining))
    finally:
        store._waiters.discard(entry)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
