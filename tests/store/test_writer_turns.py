"""SQLite writers of afk take turns on an flock of ``<path>.lock`` before SQLite's own write
lock, so a waiting writer wakes when the one before commits instead of sleeping in SQLite's
busy handler. The turn is bounded: a holder that hangs delays others by at most
TURN_WAIT_S, after which SQLite's lock decides as before."""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import time
from pathlib import Path

import pytest
from store_support import request, run

from afk.store import SQLiteStore
from afk.store import _sqlite_driver as driver


async def test_the_lock_file_is_made_beside_the_store_for_its_owner_only(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    try:
        await store.save_run(run(), requests=[request("q1")])
        mode = os.stat(tmp_path / "runs.db.lock").st_mode
        assert stat.S_IMODE(mode) == 0o600
    finally:
        await store.close()


async def test_writers_of_two_stores_on_one_file_all_land(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")
    stores = [SQLiteStore(path) for _ in range(3)]
    for s in stores:
        await s.setup()
    try:
        await asyncio.gather(
            *(s.save_run(run(f"r{i}-{j}")) for i, s in enumerate(stores) for j in range(20))
        )
        listed = await stores[0].list_runs(limit=100)
        assert len(listed) == 60
    finally:
        for s in stores:
            await s.close()


async def test_a_hung_turn_holder_delays_a_writer_only_so_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "TURN_WAIT_S", 0.3)
    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    holder = os.open(tmp_path / "runs.db.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a process that took its turn and hung
    try:
        start = time.monotonic()
        await store.save_run(run())
        waited = time.monotonic() - start
        assert 0.25 <= waited < 5, waited
        assert await store.load_run("run-1") is not None
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        await store.close()


async def test_an_uncontended_operation_runs_in_the_loops_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No other writer: the operation runs at once in this thread (a hop to a worker thread
    costs as much as the operation), reads and writes alike."""
    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    hops: list[str] = []
    real = asyncio.to_thread

    async def counted(fn: object, /, *args: object) -> object:
        hops.append(repr(fn))
        return await real(fn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", counted)
    try:
        await store.save_run(run(), requests=[request("q1")])
        assert await store.load_run("run-1") is not None
        assert await store.get_request("q1") is not None
        assert hops == []
    finally:
        await store.close()


async def test_a_writer_behind_another_waits_in_a_thread_not_in_the_loop(
    tmp_path: Path,
) -> None:
    """Another writer holds the turn: the write goes to a worker thread, so the event loop
    goes on meanwhile, and it lands once the holder lets go."""
    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    holder = os.open(tmp_path / "runs.db.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process in the middle of its write
    released = False
    try:
        write = asyncio.ensure_future(store.save_run(run(), requests=[request("q1")]))
        ticks = 0
        while ticks < 20:  # the loop keeps turning while the write waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert not write.done()
        fcntl.flock(holder, fcntl.LOCK_UN)
        released = True
        await asyncio.wait_for(write, 5)
        assert await store.get_request("q1") is not None
    finally:
        if not released:
            fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
        await store.close()


def test_a_no_wait_drive_raises_before_the_procedure_starts(tmp_path: Path) -> None:
    """WouldWait leaves the procedure unstarted, so the store can drive it again, waiting."""
    import sqlite3

    from afk.store._procs import Q

    path = str(tmp_path / "x.db")
    conn = sqlite3.connect(path, isolation_level=None, factory=driver.Connection)
    conn.turns = driver.WriterTurns(path + ".lock")
    conn.execute("CREATE TABLE t (a INTEGER)")
    started: list[bool] = []

    def proc() -> driver.Proc[None]:
        started.append(True)
        yield Q("INSERT INTO t (a) VALUES (1)")

    holder = os.open(path + ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        unstarted = proc()
        for tx in (True, False):
            with pytest.raises(driver.WouldWait):
                driver.drive(conn, unstarted, tx=tx, wait=False)
        assert started == []
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    driver.drive(conn, unstarted, tx=True)
    assert started == [True] and conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    conn.close()
