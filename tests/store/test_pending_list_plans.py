"""Every query of the expiry listing (afk.store._listing) is one range scan of a partial
index of its filters in expiry order, stopped by LIMIT, with no sort: on SQLite (pinned, with
and without ANALYZE) and on Postgres (100,000 requests never ANALYZEd, then ANALYZEd; custom
and generic plans). One run's listing reads that run's index prefix and sorts what it finds
(a run holds few)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pg_support import PgSchema
from store_support import Backend
from test_ready_plans import _assert_pg_plan, _numbered

from afk.store import PostgresStore
from afk.store import _listing as ls
from afk.store import _paging as p
from afk.store._common import render

N = 100_000


def _queries() -> list[tuple[str, list[Any], str, bool]]:
    """(sql template, parameters, the index it must use, whether it may sort)."""
    found = []
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "requests_pending_expires"),
        ({"tool": "t1"}, "requests_pending_tool"),
        ({"rule": "r1"}, "requests_pending_rule"),
        ({"agent": "a1"}, "requests_pending_agent"),
        # Combined: SQLite is pinned to the first filter's index; Postgres may take any
        # index of the filters it was given, each an ordered range scan with no sort.
        ({"tool": "t1", "agent": "a2"}, "requests_pending_tool|requests_pending_agent"),
        (
            {"rule": "r1", "tool": "t1", "agent": "a2"},
            "requests_pending_rule|requests_pending_tool|requests_pending_agent",
        ),
    ]
    for filters, index in cases:
        full = {"tool": None, "rule": None, "agent": None, **filters}
        for after in (False, True):
            key = (None, "pending", full["tool"], full["rule"], full["agent"])
            cursor = p.encode_cursor(ls.LISTING, key, (5000.0, "q9")) if after else None
            sql, args = ls.query(
                order="expires", run_id=None, status="pending", limit=50, cursor=cursor, **full
            )
            found.append((sql, args, index, False))
    sql, args = ls.query(
        order="expires", run_id="r7", status=None, limit=50, cursor=None, tool=None, rule=None,
        agent=None,
    )  # fmt: skip
    found.append((sql, args, "requests_page_run_status", True))
    return found


# -- SQLite --------------------------------------------------------------------------------
async def test_sqlite_listing_queries_use_their_index(tmp_path: Path) -> None:
    store = Backend("sqlite", str(tmp_path / "plans.db")).open()
    await store.setup()
    await store.close()
    with sqlite3.connect(tmp_path / "plans.db") as conn:
        for filled in (False, True):
            if filled:
                conn.executemany(
                    "INSERT INTO requests (request_id, run_id, kind, request, args_digest, "
                    "status, created_at, expires_at, tool_name, rule_id, agent_name) "
                    "VALUES (?, ?, 'approval', '{}', 'd', ?, ?, ?, ?, ?, ?)",
                    (_row(i) for i in range(20_000)),
                )
                conn.execute("ANALYZE")
            for template, args, index, sorts in _queries():
                sql = render(template, prefix="", postgres=False)
                plan = "\n".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
                assert f"INDEX {index.split('|')[0]}" in plan, (sql, plan)
                assert sorts or "TEMP B-TREE" not in plan, (sql, plan)


def _row(i: int) -> tuple[Any, ...]:
    status = "pending" if i % 3 == 0 else "decided"
    return (f"q{i}", f"r{i % 500}", status, float(i), float(i % 977), f"t{i % 5}", f"r{i % 2}",
            f"a{i % 7}")  # fmt: skip


# -- Postgres ------------------------------------------------------------------------------
async def test_postgres_listing_queries_use_their_index(pg_schema: PgSchema) -> None:
    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    prefix = f'"{pg_schema.schema}".'
    try:
        async with store._cursor(tx=False) as cur:
            await _fill(cur, prefix)
            await _assert_plans(cur, prefix)
            await cur.execute(f"ANALYZE {prefix}requests".encode())
            await _assert_plans(cur, prefix)
    finally:
        await store.close()


async def _assert_plans(cur: Any, prefix: str) -> None:
    from psycopg import sql as sql_

    for n, (template, args, index, sorts) in enumerate(_queries()):
        sql = render(template, prefix=prefix, postgres=True)
        await cur.execute(f"EXPLAIN {sql}".encode(), args)
        _check(sql, [row[0] for row in await cur.fetchall()], index, sorts)
        await cur.execute(f"PREPARE l{n} AS {_numbered(sql)}".encode())
        await cur.execute("SET plan_cache_mode = force_generic_plan")
        values = sql_.SQL(", ").join(sql_.Literal(a) for a in args)
        await cur.execute(
            sql_.SQL("EXPLAIN EXECUTE {}({})").format(sql_.Identifier(f"l{n}"), values)
        )
        _check(sql, [row[0] for row in await cur.fetchall()], index, sorts)
        await cur.execute("RESET plan_cache_mode")
        await cur.execute(f"DEALLOCATE l{n}".encode())


def _check(sql: str, lines: list[str], index: str, sorts: bool) -> None:
    if not sorts:
        _assert_pg_plan(sql, lines, index)
        return
    plan = "\n".join(lines)
    assert any(f"using {index} on" in line for line in lines), (sql, plan)
    assert "Seq Scan" not in plan, (sql, plan)


async def _fill(cur: Any, prefix: str) -> None:
    await cur.execute(f"ALTER TABLE {prefix}requests SET (autovacuum_enabled = false)".encode())
    await cur.execute(
        f"INSERT INTO {prefix}requests (request_id, run_id, kind, request, args_digest, status, "
        "created_at, expires_at, tool_name, rule_id, agent_name) "
        "SELECT 'q' || i, 'r' || (i % 500), 'approval', '{}', 'd', "
        "CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'decided' END, "
        "i::float8, (i % 977)::float8, 't' || (i % 5), 'r' || (i % 2), 'a' || (i % 7) "
        f"FROM generate_series(1, {N}) AS i".encode()
    )
