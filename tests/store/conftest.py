"""Every store test runs once per backend: SQLite in tmp_path, Postgres in a fresh schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_support import PG_DSN, Backend, new_schema

from afk.store.store import RunStore


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "afk.db"))
        return
    found = Backend("postgres", PG_DSN, new_schema())
    try:
        yield found
    finally:
        await found.execute(f'DROP SCHEMA IF EXISTS "{found.schema}" CASCADE')


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[RunStore]:
    opened = backend.open()
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()
