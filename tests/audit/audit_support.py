"""Ledger builders and raw database access for the audit tests (imported by name)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pg_support

from afk.audit.keys import Keyring, SecretKey
from afk.store import PostgresStore, SQLiteStore
from afk.store import _packed as pk
from afk.store.store import LogEntry, RunRecord, RunStore

# A checkpoint key of its own (what $AFK_AUDIT_KEY gives), apart from the store's keyring.
KEY = Keyring(SecretKey(secret=b"test-checkpoint-key-0123456789abcdef"))


@dataclass
class Where:
    """Where one test's store lives: a SQLite file, or a fresh schema in the test database."""

    name: str  # sqlite | postgres
    location: str  # file path or DSN
    schema: str = ""

    @property
    def url(self) -> str:
        if self.name == "sqlite":
            return f"sqlite:///{self.location}"
        return f"{self.location}?afk_schema={self.schema}"

    def open(self) -> RunStore:
        if self.name == "sqlite":
            return SQLiteStore(self.location)
        return PostgresStore(self.location, schema=self.schema)

    def table(self, name: str) -> str:
        return f'"{self.schema}".{name}' if self.schema else name

    def packed(self, column: pk.Column, text: str) -> str:
        """An SQL literal of ``text`` as the store keeps that column (store schema 8: deflated,
        afk.store._packed), for tampering as an attacker who knows the format would."""
        data = pk.pack(column, text).hex()
        return f"X'{data}'" if self.name == "sqlite" else f"decode('{data}', 'hex')"

    async def execute(self, *statements: str) -> None:
        """Raw SQL outside any store, in one transaction: how the tests tamper."""
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as conn:
                for sql in statements:
                    conn.execute(sql)
            return
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.location) as conn:
            for sql in statements:
                await conn.execute(sql.encode())
            await conn.commit()

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.location, autocommit=True) as conn:
            cur = await conn.execute(sql.encode())
            return await cur.fetchall()


def __getattr__(name: str) -> Any:
    # PG_DSN is looked up when imported, not when this module loads: a conftest can load it
    # before the session has chosen its Postgres server.
    if name == "PG_DSN":
        return pg_support.dsn()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_schema() -> str:
    return f"afk_audit_{uuid.uuid4().hex[:12]}"


def entry(i: int, kind: str = "decided", run_id: str = "run-1") -> LogEntry:
    payload = {"kind": "allow", "reason": f"ticket {i}", "args_digest": f"{i:064x}"}
    return LogEntry(
        kind=kind,
        run_id=run_id,
        request_id=f"{run_id}:q{i}",
        actor="alice",
        payload=json.dumps(payload, sort_keys=True),
        at=1_700_000_000.0 + i / 8,
    )


def run(run_id: str = "run-1") -> RunRecord:
    now = time.time()
    return RunRecord(
        run_id=run_id, agent_name="dba", status="running", snapshot="{}", schema_version=1,
        created_at=now, updated_at=now,
    )  # fmt: skip


async def fill(store: RunStore, n: int, *, batch: int = 500, start: int = 0) -> None:
    """Append ``n`` entries in transactions of ``batch`` (as ``save_run`` writes them)."""
    for first in range(start, start + n, batch):
        last = min(start + n, first + batch)
        await store.save_run(run(), log=[entry(i) for i in range(first, last)])
