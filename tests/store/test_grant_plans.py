"""The grants a gated call may use are found by the grants_active index, and a page of the
grants listing is read in the grants_page index's order with no sort (afk.store.
_approvals_sql): on SQLite with and without ANALYZE, and on Postgres over 50,000 grants never
ANALYZEd (custom and generic plans), never by reading the whole table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pg_support import PgSchema
from store_support import Backend
from test_ready_plans import _assert_pg_plan, _numbered

from afk.store import PostgresStore
from afk.store import _approvals_sql as a
from afk.store._common import render

N = 50_000
ARGS = ("tool-3", "agent-7", "thread-9", 100.0)  # a tool, two scope values, now
FILL = (
    "INSERT INTO {t}grants (grant_id, tool_name, scope, scope_value, when_json, until, "
    "created_at, uses) VALUES (?, ?, 'agent', ?, '{{}}', 1e10, ?, 0)"
)


PAGES = [  # (active, after, parameters)
    (False, False, (51,)),
    (True, False, (100.0, 51)),
    (True, True, (100.0, 5.0, "g5", 51)),
    (False, True, (5.0, "g5", 51)),
]


def _row(i: int) -> tuple[Any, ...]:
    return (f"g{i}", f"tool-{i % 10}", f"agent-{i % 1000}", float(i))


async def test_sqlite_finds_grants_by_index(tmp_path: Path) -> None:
    store = Backend("sqlite", str(tmp_path / "plans.db")).open()
    await store.setup()
    await store.close()
    sql = render(a.active_grants_sql(2), prefix="", postgres=False)
    with sqlite3.connect(tmp_path / "plans.db") as conn:
        for filled in (False, True):
            if filled:
                insert = render(FILL.replace("{{}}", "{}"), prefix="", postgres=False)
                conn.executemany(insert, (_row(i) for i in range(N)))
                conn.execute("ANALYZE")
            plan = "\n".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ARGS))
            assert "INDEX grants_active" in plan, plan
            assert "SCAN grants" not in plan.replace("USING INDEX", ""), plan
            for active, after, args in PAGES:
                page = render(a.grants_page_sql(active=active, after=after), prefix="",
                              postgres=False)  # fmt: skip
                rows = conn.execute(f"EXPLAIN QUERY PLAN {page}", args)
                plan = "\n".join(row[3] for row in rows)
                assert "INDEX grants_page" in plan and "TEMP B-TREE" not in plan, plan


async def test_postgres_finds_grants_by_index(pg_schema: PgSchema) -> None:
    from psycopg import sql as sql_

    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    prefix = f'"{pg_schema.schema}".'
    try:
        async with store._cursor(tx=False) as cur:
            await cur.execute(
                f"ALTER TABLE {prefix}grants SET (autovacuum_enabled = false)".encode()
            )
            await cur.execute(
                f"INSERT INTO {prefix}grants (grant_id, tool_name, scope, scope_value, "
                "when_json, until, created_at, uses) SELECT 'g' || i, 'tool-' || (i % 10), "
                "'agent', 'agent-' || (i % 1000), '{}', 1e10, i::float8, 0 "
                f"FROM generate_series(1, {N}) AS i".encode()
            )
            sql = render(a.active_grants_sql(2), prefix=prefix, postgres=True)
            await cur.execute(f"EXPLAIN {sql}".encode(), ARGS)
            _assert_indexed(sql, [row[0] for row in await cur.fetchall()])
            await cur.execute(f"PREPARE g AS {_numbered(sql)}".encode())
            await cur.execute("SET plan_cache_mode = force_generic_plan")
            values = sql_.SQL(", ").join(sql_.Literal(v) for v in ARGS)
            await cur.execute(sql_.SQL("EXPLAIN EXECUTE g({})").format(values))
            _assert_indexed(sql, [row[0] for row in await cur.fetchall()])
            await cur.execute("RESET plan_cache_mode")
            for active, after, args in PAGES:
                page = render(a.grants_page_sql(active=active, after=after), prefix=prefix,
                              postgres=True)  # fmt: skip
                await cur.execute(f"EXPLAIN {page}".encode(), args)
                _assert_pg_plan(page, [row[0] for row in await cur.fetchall()], "grants_page")
    finally:
        await store.close()


def _assert_indexed(sql: str, lines: list[str]) -> None:
    plan = "\n".join(lines)
    assert any("grants_active on" in line for line in lines), (sql, plan)
    assert "Seq Scan" not in plan, (sql, plan)
