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
