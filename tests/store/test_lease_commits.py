"""On SQLite a commit that writes only lease columns skips the fsync (synchronous=NORMAL);
every other commit stays FULL: the relaxed setting must never outlive the lease write,
also when the write fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_support import request, run

from afk.store import SQLiteStore, StoreError

FULL = 2


def synchronous(store: SQLiteStore) -> int:
    conn = store._connect()  # the store's one connection: what its next commit uses
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_lease_writes_leave_the_connection_durable(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    try:
        await store.save_run(run(), requests=[request("q1")])
        assert synchronous(store) == FULL
        assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
        assert synchronous(store) == FULL
        claimed = await store.claim_run("run-1", owner="w1", ttl_s=10, now=101.0)
        assert claimed.leased and synchronous(store) == FULL
        assert await store.take_over_lease(
            "run-1", from_owner="w1", owner="w2", ttl_s=10, now=102.0
        )
        await store.release_lease("run-1", owner="w2")
        assert synchronous(store) == FULL
    finally:
        await store.close()


async def test_a_failing_lease_write_leaves_it_durable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from afk.store import _common

    store = SQLiteStore(str(tmp_path / "runs.db"))
    await store.setup()
    try:
        monkeypatch.setattr(_common, "ACQUIRE_LEASE", "UPDATE no_such_table SET x = ?")
        with pytest.raises(StoreError, match="no_such_table"):
            await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
        assert synchronous(store) == FULL
    finally:
        await store.close()
