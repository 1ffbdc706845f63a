"""A commit that writes only lease columns does not wait for the disk (SQLite:
synchronous=NORMAL; Postgres: SET LOCAL synchronous_commit = off); every other commit does:
the relaxed setting must never outlive the lease write, also when the write fails."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pg_support import PgSchema
from store_support import request, run

from afk.store import PostgresStore, SQLiteStore, StoreError

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


async def pg_settings(store: PostgresStore) -> set[str]:
    """Where ``synchronous_commit`` comes from on every connection the store's pool holds:
    a lease write's ``SET LOCAL`` ends with its transaction, a session ``SET`` would stay
    (source ``session``). The server's own value is whatever it is configured with (a
    throwaway test server may run with it off)."""
    async with contextlib.AsyncExitStack() as held:
        conns = [await held.enter_async_context(store._connection()) for _ in range(3)]
        seen = set()
        for conn in conns:
            query = "SELECT source FROM pg_settings WHERE name = 'synchronous_commit'"
            row = await (await conn.execute(query)).fetchone()
            assert row is not None
            seen.add(str(row[0]))
    return seen


async def test_postgres_lease_writes_leave_every_connection_durable(pg_schema: PgSchema) -> None:
    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    try:
        await store.save_run(run(updated_at=50.0), requests=[])
        assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
        claimed = await store.claim_run("run-1", owner="w1", ttl_s=10, now=101.0)
        assert claimed.leased and claimed.run is not None
        assert claimed.run.lease_owner == "w1"
        await store.release_lease("run-1", owner="w1")
        ready = await store.claim_ready(owner="w2", ttl_s=10, now=200.0)
        assert ready is not None and ready.lease_owner == "w2"
        stored = await store.load_run("run-1")
        assert stored is not None and stored.lease_owner == "w2"  # committed, seen by others
        assert "session" not in await pg_settings(store)
    finally:
        await store.close()


async def test_a_failing_postgres_lease_write_rolls_back_and_stays_durable(
    pg_schema: PgSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    from afk.store import _common

    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    try:
        await store.save_run(run(), requests=[request("q1")])
        broken = "UPDATE no_such_table SET a = ?, b = ?, c = ?, d = ?, e = ?"  # its 5 args
        monkeypatch.setattr(_common, "ACQUIRE_LEASE", broken)
        with pytest.raises(StoreError, match="no_such_table"):
            await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
        monkeypatch.undo()
        assert "session" not in await pg_settings(store)
        assert await store.acquire_lease("run-1", owner="w1", ttl_s=10, now=100.0)
    finally:
        await store.close()
