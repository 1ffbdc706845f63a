"""Every store-backed audit test runs on SQLite (tmp_path) and Postgres (a fresh schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audit_support import PG_DSN, Where, new_schema

from afk.store.store import RunStore


@pytest.fixture(params=["sqlite", "postgres"])
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Where]:
    if request.param == "sqlite":
        yield Where("sqlite", str(tmp_path / "ledger.db"))
        return
    found = Where("postgres", PG_DSN, new_schema())
    try:
        yield found
    finally:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute("SET lock_timeout = '10s'")
            await conn.execute(f'DROP SCHEMA IF EXISTS "{found.schema}" CASCADE'.encode())


@pytest.fixture
async def store(where: Where) -> AsyncIterator[RunStore]:
    opened = where.open()
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()
