"""Every store-backed audit test runs on SQLite (tmp_path) and Postgres (a fresh schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audit_support import Where
from pg_support import PgSchema

from afk.store.store import RunStore


@pytest.fixture
def where(backend_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Where:
    if backend_name == "sqlite":
        return Where("sqlite", str(tmp_path / "ledger.db"))
    made: PgSchema = request.getfixturevalue("pg_schema")  # dropped when the test ends
    return Where("postgres", made.dsn, made.schema)


@pytest.fixture
async def store(where: Where) -> AsyncIterator[RunStore]:
    opened = where.open()
    await opened.setup()
    try:
        yield opened
    finally:
        await opened.close()
