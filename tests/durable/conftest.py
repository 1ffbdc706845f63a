"""Durable-run tests run against both stores: SQLite in a temp dir, Postgres in a fresh schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from durable_support import _OPEN

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    schema = f"afk_t_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        yield f"{PG_DSN}?afk_schema={schema}"
    # Close the test's runners before dropping their schema: open connections hold locks.
    while _OPEN:
        await _OPEN.pop().aclose()
    if request.param == "postgres":
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute("SET lock_timeout = '10s'")
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side_effects.txt"
    path.touch()
    monkeypatch.setenv("AFK_TEST_SIDE_EFFECTS", str(path))
    return path
