"""The Postgres store outlives its connections: after the server ends them (here with
``pg_terminate_backend``, as a restart or an idle timeout would), the next operation gets a
fresh connection, and the LISTEN connection comes back and still wakes waiters."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest
from pg_support import PgSchema
from store_support import decision, request, run

from afk.errors import ConfigurationError, StoreError
from afk.store import PostgresStore


@pytest.fixture
async def pg(pg_schema: PgSchema) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    try:
        yield store
    finally:
        await store.close()


async def kill(dsn: str, application_name: str) -> int:
    """End every backend with this application_name; how many there were."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            # The timeout: return once each backend has exited, not just been signalled.
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (application_name,),
        )
        return len(await cur.fetchall())


async def decide(store: PostgresStore, request_id: str) -> None:
    await store.decide(
        request_id, decision=decision(), decided_by="human", approver="alice",
        bound_digest="d" * 64, now=time.time(),
    )  # fmt: skip


async def test_operations_survive_terminated_connections(
    pg: PostgresStore, pg_schema: PgSchema
) -> None:
    await pg.save_run(run())
    for _ in range(3):
        # Several connections in the pool, all of them ended by the server while idle.
        await asyncio.gather(*(pg.load_run("run-1") for _ in range(6)))
        assert await kill(pg_schema.dsn, pg.application_name) >= 1
        loaded = await pg.load_run("run-1")
        assert loaded is not None and loaded.run_id == "run-1"
        await pg.save_run(run(updated_at=200.0), requests=[request(f"q{_}")])


async def test_the_listener_comes_back_and_wakes_a_worker(
    pg: PostgresStore, pg_schema: PgSchema
) -> None:
    await pg.save_run(run(), requests=[request("q1")])
    await pg.wait_for_work(timeout_s=0.05)  # listening
    assert await kill(pg_schema.dsn, pg.application_name + ":listen") == 1
    other = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)

    async def worker() -> str:
        while True:  # a worker's loop: claim, else wait (long timeout: only a wake-up helps)
            found = await pg.claim_ready(owner="w1", ttl_s=30, now=time.time())
            if found is not None:
                return found.run_id
            await pg.wait_for_work(timeout_s=30)

    try:
        task = asyncio.create_task(worker())
        await asyncio.sleep(0.5)
        assert not task.done()
        decided_at = time.monotonic()
        await decide(other, "q1")
        assert await asyncio.wait_for(task, 10) == "run-1"
        assert time.monotonic() - decided_at < 2.0
    finally:
        await other.close()


async def test_a_run_waiting_for_a_decision_survives_its_listener(
    pg: PostgresStore, pg_schema: PgSchema
) -> None:
    await pg.save_run(run(), requests=[request("q1")])
    other = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    try:
        waiter = asyncio.create_task(pg.wait_for_decisions(["q1"], timeout_s=30))
        await asyncio.sleep(0.3)
        assert await kill(pg_schema.dsn, pg.application_name + ":listen") == 1
        await asyncio.sleep(0.5)
        assert not waiter.done()  # a lost connection is no decision
        decided_at = time.monotonic()
        await decide(other, "q1")
        await asyncio.wait_for(waiter, 10)
        assert time.monotonic() - decided_at < 2.0
    finally:
        await other.close()


async def test_each_store_has_its_own_application_name(pg_schema: PgSchema) -> None:
    one = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    two = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    assert one.application_name != two.application_name
    assert pg_schema.schema in one.application_name
    await one.close()
    await two.close()


async def test_an_unreachable_server_fails_at_once() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none", schema="afk")
    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect"):
        await store.load_run("run-1")
    with pytest.raises(StoreError, match="cannot connect"):  # tried again, not cached
        await store.load_run("run-1")
    assert time.monotonic() - start < 10
    await store.close()


def test_missing_pool_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(ConfigurationError, match=r'pip install "afk-agents\[postgres\]"'):
        PostgresStore("postgresql://db/x")
