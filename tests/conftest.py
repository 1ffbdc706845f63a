"""Suite-wide settings. One fixed deployment key for every test (set at import, so the
subprocesses tests start inherit it too); tests of the key file take it away with
``monkeypatch.delenv``.

Postgres: ``pg_support`` decides once per session where the Postgres tests get a server. Tests
ask for ``pg_dsn`` (the server's DSN), ``pg_schema`` (a fresh schema, dropped afterwards) or
``store_url`` (one store URL per backend, SQLite and Postgres); without a server the Postgres
ones are skipped and the run ends with one line saying how to enable them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pg_support
import pytest

TEST_SECRET_KEY = "a1" * 32
os.environ.setdefault("AFK_SECRET_KEY", TEST_SECRET_KEY)


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        pg_support.start_session()
    except pg_support.PostgresUnavailable as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_unconfigure(config: pytest.Config) -> None:
    pg_support.end_session()


def pytest_report_header(config: pytest.Config) -> str | None:
    found = pg_support.current()
    return pg_support.describe(found) if found is not None and found.dsn else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = pg_support.current()
    if found is not None and not found.dsn:
        terminalreporter.write_line(pg_support.HINT, yellow=True)


@pytest.fixture
def pg_dsn() -> str:
    found = pg_support.current()
    if found is None or not found.dsn:
        pytest.skip(pg_support.HINT)
    return found.dsn


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[pg_support.PgSchema]:
    made = pg_support.PgSchema(dsn=pg_dsn, schema=f"afk_t_{uuid.uuid4().hex[:12]}")
    yield made
    pg_support.drop_schema(made.dsn, made.schema)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A store URL per backend: a SQLite file in tmp_path, or a fresh Postgres schema."""
    if backend_name == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    made: pg_support.PgSchema = request.getfixturevalue("pg_schema")
    return made.url
