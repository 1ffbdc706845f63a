"""setup() on a store that already has this afk's schema runs no DDL: on Postgres even
CREATE INDEX IF NOT EXISTS takes a SHARE lock on its table, which waits for every writer and
deadlocks with one that holds another table. A store missing one of the tables or indexes
this afk makes is set up again."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable

import pytest
from pg_support import PgSchema
from store_support import Backend, request, run

from afk.store import PostgresStore
from afk.store import _migrate as m


async def test_setup_of_a_current_postgres_store_takes_no_table_lock(pg_schema: PgSchema) -> None:
    import psycopg

    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    async with await psycopg.AsyncConnection.connect(pg_schema.dsn) as writer:
        # A writer mid-transaction, as a running run is: it holds ROW EXCLUSIVE on runs.
        await writer.execute(f'LOCK TABLE "{pg_schema.schema}".runs IN ROW EXCLUSIVE MODE'.encode())
        again = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
        try:
            await asyncio.wait_for(again.setup(), 10)
        finally:
            await again.close()
        await writer.rollback()
    await store.close()


async def test_a_setup_that_waited_for_another_runs_no_ddl(
    pg_schema: PgSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    # As if this setup had looked before the other one committed: it takes the setup lock,
    # and must look again before running any DDL.
    real, looks = m.is_current, []

    def first_look_stale(version: str | None, names: Iterable[str]) -> bool:
        looks.append(version)
        return len(looks) > 1 and real(version, names)

    monkeypatch.setattr(m, "is_current", first_look_stale)
    async with await psycopg.AsyncConnection.connect(pg_schema.dsn) as writer:
        await writer.execute(f'LOCK TABLE "{pg_schema.schema}".runs IN ROW EXCLUSIVE MODE'.encode())
        again = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
        try:
            await asyncio.wait_for(again.setup(), 10)
        finally:
            await again.close()
        await writer.rollback()
    assert len(looks) == 2
    await store.close()


async def test_many_setups_beside_writers_do_not_deadlock(backend: Backend) -> None:
    first = backend.open()
    await first.setup()
    stores = [backend.open() for _ in range(4)]

    async def save(i: int) -> None:
        await first.save_run(run(f"r{i}"), requests=[request(f"q{i}", f"r{i}")])

    try:
        work = [*(s.setup() for s in stores for _ in range(3)), *(save(i) for i in range(20))]
        await asyncio.wait_for(asyncio.gather(*work), 60)
    finally:
        for opened in (first, *stores):
            await opened.close()


async def test_a_changed_schema_is_set_up_again(store: object, backend: Backend) -> None:
    assert await _has_index(backend, "runs_ready")
    index = backend.table("runs_ready") if backend.schema else "runs_ready"
    await backend.execute(f"DROP INDEX {index}")
    again = backend.open()
    try:
        await again.setup()
    finally:
        await again.close()
    assert await _has_index(backend, "runs_ready")


async def _has_index(backend: Backend, name: str) -> bool:
    if backend.name == "sqlite":
        with sqlite3.connect(backend.location) as conn:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
            return conn.execute(sql, (name,)).fetchone() is not None
    import psycopg

    async with await psycopg.AsyncConnection.connect(backend.location) as conn:
        sql = "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s"
        return await (await conn.execute(sql, (backend.schema, name))).fetchone() is not None


async def test_a_v4_store_drops_the_indexes_the_paging_indexes_replace(
    store: object, backend: Backend
) -> None:
    # Back to a v4 store: the three indexes whose columns lead a paging index, and the
    # per-run one store schema 8 dropped (requests_page_run_status serves its listing).
    for name, on in (
        ("runs_status_updated", "runs (status, updated_at)"),
        ("requests_status_created", "requests (status, created_at)"),
        ("requests_run", "requests (run_id)"),
        ("requests_page_run", "requests (run_id, created_at, request_id)"),
    ):
        table, columns = on.split(" ", 1)
        await backend.execute(f"CREATE INDEX {name} ON {backend.table(table)} {columns}")
    await backend.execute(
        f"UPDATE {backend.table('meta')} SET value = '4' WHERE key = 'store_schema_version'"
    )
    assert await _has_index(backend, "requests_run")
    again = backend.open()
    try:
        await again.setup()
    finally:
        await again.close()
    for name in m.DROPPED_INDEXES:
        assert not await _has_index(backend, name), name
    assert await _has_index(backend, "requests_page_run_status")
