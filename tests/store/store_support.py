"""Record builders and backend plumbing shared by the store tests."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from afk.store import PostgresStore, SQLiteStore
from afk.store import _packed as pk
from afk.store.store import EventRow, ExecutionRecord, LogEntry, RequestRecord, RunRecord, RunStore

FAR = 4_000_000_000.0  # an expires_at that never passes in these tests


@dataclass
class Backend:
    """Where one test's store lives; ``open()`` gives a fresh store (its own connection)."""

    name: str
    location: str  # a file path (sqlite) or a DSN (postgres)
    schema: str = ""

    def open(self) -> RunStore:
        if self.name == "sqlite":
            return SQLiteStore(self.location)
        return PostgresStore(self.location, schema=self.schema)

    def table(self, name: str) -> str:
        return f'"{self.schema}".{name}' if self.schema else name

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        """Run raw SQL outside any store (to corrupt or inspect what a store wrote); ``args``
        fill its ``?`` placeholders."""
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as conn:
                conn.execute(sql, args)
            return
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.location, autocommit=True) as conn:
            if args:
                await conn.execute(sql.replace("?", "%s").encode(), args)
            else:
                await conn.execute(sql.encode())

    async def edit_packed(
        self, table: str, column: pk.Column, key: tuple[str, Any], change: Callable[[str], str]
    ) -> None:
        """Rewrite one row's packed JSON column as an attacker who knows the format would:
        inflate it, ``change`` the text, deflate it back (afk.store._packed)."""
        where = f"{key[0]} = {key[1]!r}" if isinstance(key[1], int) else f"{key[0]} = '{key[1]}'"
        [(stored,)] = await self.rows(f"SELECT {column} FROM {self.table(table)} WHERE {where}")
        text = change(pk.unpack(column, stored))
        await self.execute(
            f"UPDATE {self.table(table)} SET {column} = ? WHERE {where}", (pk.pack(column, text),)
        )

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Read raw rows outside any store (to see what a store wrote)."""
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.location, autocommit=True) as conn:
            return await (await conn.execute(sql.encode())).fetchall()


def snapshot(run_id: str, *, pad: int = 0) -> str:
    """A paused run's snapshot, shaped like the runner's (messages, pending call, usage)."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful database assistant."},
        {"role": "user", "content": "Clean up the old_logs table, it is taking space."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "name": "drop_table", "arguments": {"name": "old_logs"}}
            ],
        },
    ]
    data = {
        "schema_version": 1,
        "run_id": run_id,
        "agent": {"name": "dba", "model": "openai:gpt-4o-mini", "instructions_hash": "ab" * 32},
        "messages": messages,
        "pending": [{"request_id": f"{run_id}-req", "tool_call_id": "call_1"}],
        "usage": {"input_tokens": 1234, "output_tokens": 87, "steps": 2},
        "notes": "x" * pad,
    }
    return json.dumps(data, separators=(",", ":"))


def run(run_id: str = "run-1", **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "run_id": run_id,
        "agent_name": "dba",
        "status": "paused",
        "snapshot": snapshot(run_id),
        "schema_version": 1,
        "created_at": 100.0,
        "updated_at": 100.0,
        "thread_id": "thread-1",
        "requested_by": "alice",
    }
    return RunRecord(**(fields | overrides))


def request(request_id: str, run_id: str = "run-1", **overrides: Any) -> RequestRecord:
    args = {"name": "old_logs"}
    fields: dict[str, Any] = {
        "request_id": request_id,
        "run_id": run_id,
        "kind": "approval",
        "request": json.dumps({"request_id": request_id, "tool_name": "drop_table", "args": args}),
        "args_digest": "d" * 64,
        "status": "pending",
        "created_at": 100.0,
        "expires_at": FAR,
        "tool_name": "drop_table",
    }
    return RequestRecord(**(fields | overrides))


def event(run_id: str, seq: int, type_: str = "step") -> EventRow:
    payload = json.dumps({"type": type_, "seq": seq, "run_id": run_id})
    return EventRow(run_id=run_id, seq=seq, type=type_, payload=payload, ts=100.0 + seq)


def entry(kind: str, run_id: str = "run-1", request_id: str | None = None) -> LogEntry:
    return LogEntry(kind=kind, run_id=run_id, request_id=request_id, actor="alice")


def execution(key: str, run_id: str = "run-1", digest: str = "d" * 64) -> ExecutionRecord:
    return ExecutionRecord(
        key=key,
        run_id=run_id,
        tool_call_id="call_1",
        args_digest=digest,
        status="executing",
        started_at=200.0,
    )


R = TypeVar("R")


def unsealed(record: R | None) -> R:
    """A stored record without the MAC the store added (to compare with what was saved)."""
    assert record is not None
    return dataclasses.replace(record, mac="")  # type: ignore[type-var]


def decision(kind: str = "allow", approver: str = "alice") -> str:
    return json.dumps({"kind": kind, "approver": approver})


async def to_v8(backend: Backend) -> None:
    """Rewrite the store as afk wrote it at store schema 8: requests without the rule_id and
    agent_name columns and the listing's partial indexes (afk.store._listing)."""
    from afk.store import _listing as ls

    for name in ("expires", "rule", "tool", "agent"):
        await backend.execute(f"DROP INDEX {backend.table(f'requests_pending_{name}')}")
    for column, _ in ls.COLUMNS:
        await backend.execute(f"ALTER TABLE {backend.table('requests')} DROP COLUMN {column}")
    await backend.execute(
        f"UPDATE {backend.table('meta')} SET value = '8' WHERE key = 'store_schema_version'"
    )


async def to_v7(backend: Backend) -> None:
    """Rewrite the store as afk wrote it at store schema 7: its JSON and digest columns as
    text (on Postgres, TEXT columns), and the requests_page_run index."""
    from afk.store import _migrate as m

    await to_v8(backend)

    for table, key, column in m.PACKED:
        rows = await backend.rows(f"SELECT {key}, {column} FROM {backend.table(table)}")
        if backend.name == "postgres":
            await backend.execute(
                f"ALTER TABLE {backend.table(table)} ALTER COLUMN {column} TYPE TEXT USING ''"
            )
        for id_, stored in rows:
            await backend.execute(
                f"UPDATE {backend.table(table)} SET {column} = ? WHERE {key} = ?",
                (pk.unpack(column, stored), id_),
            )
    for table, key, columns in m.DIGESTS:
        rows = await backend.rows(f"SELECT {key}, {', '.join(columns)} FROM {backend.table(table)}")
        for column in columns if backend.name == "postgres" else ():
            await backend.execute(
                f"ALTER TABLE {backend.table(table)} ALTER COLUMN {column} TYPE TEXT USING ''"
            )
        sets = ", ".join(f"{column} = ?" for column in columns)
        for id_, *values in rows:
            await backend.execute(
                f"UPDATE {backend.table(table)} SET {sets} WHERE {key} = ?",
                (*(pk.unpack_digest(v) for v in values), id_),
            )
    if backend.name == "sqlite":  # event_batches as a rowid table
        for sql in (
            "ALTER TABLE event_batches RENAME TO old_batches",
            "CREATE TABLE event_batches (run_id TEXT NOT NULL, last_seq BIGINT NOT NULL, "
            "events BLOB NOT NULL, PRIMARY KEY (run_id, last_seq))",
            "INSERT INTO event_batches SELECT * FROM old_batches",
            "DROP TABLE old_batches",
        ):
            await backend.execute(sql)
    await backend.execute(
        f"CREATE INDEX requests_page_run ON {backend.table('requests')} "
        "(run_id, created_at, request_id)"
    )
    await backend.execute(
        f"UPDATE {backend.table('meta')} SET value = '7' WHERE key = 'store_schema_version'"
    )


async def to_v9(backend: Backend) -> None:
    """Rewrite the store as afk wrote it at store schema 9: on SQLite, runs and requests as
    rowid tables; on Postgres, their indexes at the default fill (afk.store._migrate)."""
    from afk.store import _listing as ls
    from afk.store import _migrate as m
    from afk.store import _paging as p
    from afk.store import _ready as r
    from afk.store._sqlite_driver import _sql

    if backend.name == "postgres":
        for name in m.FILLED_INDEXES:
            await backend.execute(f"ALTER INDEX {backend.table(name)} RESET (fillfactor)")
    else:
        for table in ("runs", "requests"):
            [(ddl,)] = await backend.rows(m.SQLITE_TABLE_SQL.replace("?", f"'{table}'"))
            for sql in (
                f"ALTER TABLE {table} RENAME TO old_{table}",
                ddl.replace("WITHOUT ROWID", ""),
                f"INSERT INTO {table} SELECT * FROM old_{table}",
                f"DROP TABLE old_{table}",
            ):
                await backend.execute(sql)
        for ddl in (*p.INDEXES, *r.INDEXES, *ls.INDEXES):
            await backend.execute(_sql(ddl))
    await backend.execute(
        f"UPDATE {backend.table('meta')} SET value = '9' WHERE key = 'store_schema_version'"
    )
