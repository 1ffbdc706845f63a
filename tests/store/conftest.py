"""Every store test runs once per backend: SQLite in tmp_path, Postgres in a fresh schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pg_support import PgSchema
from store_support import Backend

from afk.store.store import RunStore


@pytest.fixture
def backend(backend_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if backend_name == "sqlite":
        return Backend("sqlite", str(tmp_path / "afk.db"))
    made: PgSchema = request.getfixturevalue("pg_schema")  # dropped when the test ends
    return Backend("postgres", made.dsn, made.schema)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[RunStore]:
    opened = backend.open()
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()
