"""The two stores benchmarks/bench_scale.py runs on: bulk fill, bytes on disk, clean-up."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from typing import Protocol

import _scale_clone as clone
from _pg import PG_DSN, reachable

from afk.audit.keys import Keyring


class Backend(Protocol):
    name: str
    url: str

    async def template(self, run_id: str) -> clone.Template: ...

    async def clone(self, keys: Keyring, template: clone.Template, n: int) -> list[clone.Clone]: ...

    async def used_bytes(self) -> int:
        """Bytes the store's tables and indexes take now."""

    async def compacted_bytes(self) -> int:
        """The same after compacting (SQLite VACUUM, Postgres VACUUM FULL)."""

    async def drop(self) -> None: ...


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    async def template(self, run_id: str) -> clone.Template:
        return clone.sqlite_template(self.path, run_id)

    async def clone(self, keys: Keyring, template: clone.Template, n: int) -> list[clone.Clone]:
        return await asyncio.to_thread(clone.sqlite_clone, self.path, keys, template, n)

    async def used_bytes(self) -> int:
        with sqlite3.connect(self.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # pages in the WAL count too
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    async def compacted_bytes(self) -> int:
        conn = sqlite3.connect(self.path)
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return os.path.getsize(self.path)

    async def drop(self) -> None:
        for suffix in ("", "-wal", "-shm", ".key"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)


class PostgresBackend:
    name = "postgres"

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.schema = dsn, schema
        self.url = f"{dsn}?afk_schema={schema}"

    async def template(self, run_id: str) -> clone.Template:
        return await clone.postgres_template(self.dsn, self.schema, run_id)

    async def clone(self, keys: Keyring, template: clone.Template, n: int) -> list[clone.Clone]:
        return await clone.postgres_clone(self.dsn, self.schema, keys, template, n)

    async def _admin(self, sql: str, *args: object) -> int:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(sql.encode(), args or None)
            row = await cur.fetchone() if cur.description else None
            return int(row[0]) if row and row[0] is not None else 0

    async def _tables(self) -> list[str]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            cur = await conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
            )
            return [str(r[0]) for r in await cur.fetchall()]

    async def used_bytes(self) -> int:
        return await self._admin(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s "
            "AND c.relkind = 'r'",
            self.schema,
        )

    async def compacted_bytes(self) -> int:
        for name in await self._tables():
            await self._admin(f'VACUUM FULL "{self.schema}"."{name}"')
        return await self.used_bytes()

    async def drop(self) -> None:
        await self._admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


async def sqlite_backend(tmp: str, label: str) -> SQLiteBackend:
    return SQLiteBackend(os.path.join(tmp, f"{label}.db"))


async def postgres_backend() -> PostgresBackend | None:
    """A fresh schema on the bench server, or None (with a note) when it is unreachable."""
    if not await reachable():
        return None
    return PostgresBackend(PG_DSN, f"afk_scale_{uuid.uuid4().hex[:10]}")
