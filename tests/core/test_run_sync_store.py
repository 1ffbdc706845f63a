"""run_sync closes its store with its event loop and reopens it for the next call: from the
spec it was given (password and ``?afk_schema=`` included), never from the masked
``store.url``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pg_support
import psycopg
import pytest

import afk.store
from afk.agents import Agent
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel

PG_DSN = pg_support.dsn()
# The test server trusts local connections, so a password is accepted and ignored: enough to
# see that it is kept.
PG_DSN_WITH_PASSWORD = pg_support.with_password(PG_DSN, "s3cret")


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    name = f"afk_rs_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'.encode())


def agent() -> Agent:
    return Agent("a", ScriptedModel(["done"]), "i")


def headless(store: Any = None) -> Runner:
    return Runner(config=RunnerConfig(interaction_mode="headless"), store=store)


def stored_runs(schema: str) -> set[str]:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        rows = conn.execute(f'SELECT run_id FROM "{schema}".runs'.encode()).fetchall()
    return {row[0] for row in rows}


def test_a_second_run_sync_uses_the_same_postgres_schema(schema):
    runner = headless(f"{PG_DSN}?afk_schema={schema}")
    first = runner.run_sync(agent(), user_message="one")
    assert first.state == "completed", first.error
    # Checked before the next run: reopened from the masked url, it would write to "afk".
    assert runner.store is not None and runner.store.schema == schema  # type: ignore[attr-defined]
    second = runner.run_sync(agent(), user_message="two")
    assert second.state == "completed", second.error
    assert stored_runs(schema) == {first.run_id, second.run_id}


def test_the_store_is_reopened_from_the_unmasked_spec_with_its_password(schema, monkeypatch):
    url = f"{PG_DSN_WITH_PASSWORD}?afk_schema={schema}"
    opened: list[object] = []
    real_open = afk.store.open_store

    def recording_open(spec: Any) -> Any:
        opened.append(spec)
        return real_open(spec)

    monkeypatch.setattr(afk.store, "open_store", recording_open)
    runner = headless(url)
    before = runner.store
    assert runner.run_sync(agent(), user_message="one").state == "completed"
    assert opened == [url, url]
    reopened: Any = runner.store
    assert reopened is not before
    assert (reopened.dsn, reopened.schema) == (PG_DSN_WITH_PASSWORD, schema)
    assert "s3cret" not in reopened.url  # still masked wherever it is shown
    assert runner._grants.store is reopened


def test_a_store_named_by_afk_store_is_reopened_from_that_spec(schema, monkeypatch):
    monkeypatch.setenv("AFK_STORE", f"{PG_DSN}?afk_schema={schema}")
    runner = headless()
    monkeypatch.delenv("AFK_STORE")  # what the runner read at construction is what counts
    first = runner.run_sync(agent(), user_message="one")
    assert runner.store is not None and runner.store.schema == schema  # type: ignore[attr-defined]
    second = runner.run_sync(agent(), user_message="two")
    assert (first.state, second.state) == ("completed", "completed")
    assert stored_runs(schema) == {first.run_id, second.run_id}


def test_a_sqlite_store_is_reopened_at_the_same_path(tmp_path):
    runner = headless(tmp_path / "runs.db")
    first = runner.run_sync(agent(), user_message="one")
    second = runner.run_sync(agent(), user_message="two")
    assert (first.state, second.state) == ("completed", "completed")
    assert runner.store is not None and runner.store.url.endswith("runs.db")


def test_a_runner_without_a_store_stays_without_one(monkeypatch):
    monkeypatch.delenv("AFK_STORE", raising=False)
    runner = headless()
    assert runner.run_sync(agent(), user_message="one").state == "completed"
    assert runner.store is None
