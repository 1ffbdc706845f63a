"""Every readiness query is one index range scan, whatever the table holds and whether or
not it has statistics: the ready index (partial, paused runs), the lease index (leased runs)
and the per-run requests index. Checked with EXPLAIN on SQLite and on Postgres (100,000 runs
never ANALYZEd, custom and generic plans)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pg_support import PgSchema
from store_support import Backend

from afk.store import PostgresStore
from afk.store import _ready as r
from afk.store._common import render

N = 100_000


def _queries(postgres: bool) -> list[tuple[str, str, list[Any]]]:
    """(sql template, the index it must use, parameters)."""
    agents = (
        ("AND agent_name = ANY(?)", [["a1", "a2"]])
        if postgres
        else ("AND agent_name IN (?, ?)", ["a1", "a2"])
    )
    lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    now = 5000.0
    return [
        (r.READY_RUNS, "runs_ready", [now, now, now, 100]),
        (r.CANDIDATE.replace("{agents}", agents[0]), "runs_ready", [now, now, now, *agents[1]]),
        (r.CANDIDATE.replace("{agents}", "") + lock, "runs_ready", [now, now, now]),
        (r.claim_sql("", lock), "runs_ready", ["w", now + 30, now, now, now]),
        (r.claim_sql(agents[0], lock), "runs_ready", ["w", now + 30, now, now, now, *agents[1]]),
        (r.NEXT_WAKE, "runs_ready", []),
        (r.HELD_LEASES, "runs_leased", [now, 100]),
        (r.PENDING_HORIZON, "requests_page_run_status", ["r7"]),
        (r.SET_WAKE, "requests_page_run_status", ["r7", now, "r7"]),
    ]


# -- SQLite --------------------------------------------------------------------------------
async def test_sqlite_readiness_queries_use_their_index(tmp_path: Path) -> None:
    store = Backend("sqlite", str(tmp_path / "plans.db")).open()
    await store.setup()
    await store.close()
    with sqlite3.connect(tmp_path / "plans.db") as conn:
        for filled in (False, True):
            if filled:
                _sqlite_fill(conn)
            for template, index, args in _queries(postgres=False):
                sql = render(template, prefix="", postgres=False)
                plan = "\n".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
                index = index.split("|")[0]  # SQLite is pinned to the first (INDEXED BY)
                assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, (
                    sql,
                    plan,
                )
                assert "TEMP B-TREE" not in plan and "SCAN runs" not in plan, (sql, plan)


def _sqlite_fill(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT INTO runs (run_id, agent_name, status, snapshot, schema_version, created_at, "
        "updated_at, wake_at, lease_owner, lease_expires_at) "
        "VALUES (?, ?, ?, '{}', 1, 1, ?, ?, ?, ?)",
        (_run_row(i) for i in range(20_000)),
    )
    conn.execute("ANALYZE")  # statistics must not change the plan either


def _run_row(i: int) -> tuple[Any, ...]:
    paused = i % 4 != 0
    leased = i % 10 == 0
    return (
        f"r{i}", f"a{i % 3}", "paused" if paused else "completed", float(i),
        float(i) if paused else None, "w" if leased else None, float(i) if leased else None,
    )  # fmt: skip


# -- Postgres ------------------------------------------------------------------------------
async def test_postgres_readiness_queries_use_their_index(pg_schema: PgSchema) -> None:
    store = PostgresStore(pg_schema.dsn, schema=pg_schema.schema)
    await store.setup()
    prefix = f'"{pg_schema.schema}".'
    try:
        # Explained on the store's own connection: its settings are part of the plan.
        async with store._cursor(tx=False) as cur:
            await _postgres_fill(cur, prefix)
            await _assert_pg_plans(cur, prefix)
            for table in ("runs", "requests"):  # and with statistics: the same plans
                await cur.execute(f"ANALYZE {prefix}{table}".encode())
            await _assert_pg_plans(cur, prefix)
    finally:
        await store.close()


async def _assert_pg_plans(cur: Any, prefix: str) -> None:
    from psycopg import sql as sql_

    for n, (template, index, args) in enumerate(_queries(postgres=True)):
        sql = render(template, prefix=prefix, postgres=True)
        await cur.execute(f"EXPLAIN {sql}".encode(), args)
        _assert_pg_plan(sql, [row[0] for row in await cur.fetchall()], index)
        # A generic plan (what a prepared statement may settle on): the same scan.
        await cur.execute(f"PREPARE q{n} AS {_numbered(sql)}".encode())
        await cur.execute("SET plan_cache_mode = force_generic_plan")
        values = sql_.SQL(", ").join(sql_.Literal(a) for a in args)  # no binding here
        marks = sql_.SQL("({})").format(values) if args else sql_.SQL("")
        await cur.execute(sql_.SQL("EXPLAIN EXECUTE {}{}").format(sql_.Identifier(f"q{n}"), marks))
        _assert_pg_plan(sql, [row[0] for row in await cur.fetchall()], index)
        await cur.execute("RESET plan_cache_mode")
        await cur.execute(f"DEALLOCATE q{n}".encode())


def _numbered(sql: str) -> str:
    parts = sql.split("%s")
    return "".join(f"{part}${i}" if i < len(parts) else part for i, part in enumerate(parts, 1))


def _assert_pg_plan(sql: str, lines: list[str], index: str) -> None:
    plan = "\n".join(lines)
    scans = [line for line in lines if "Scan" in line]
    assert any(f"using {i} on" in line for line in scans for i in index.split("|")), (sql, plan)
    assert "Seq Scan" not in plan and "Sort  " not in plan and "Hash" not in plan, (sql, plan)


async def _postgres_fill(conn: Any, prefix: str) -> None:
    for table in ("runs", "requests"):  # never ANALYZEd: no statistics at all
        await conn.execute(f"ALTER TABLE {prefix}{table} SET (autovacuum_enabled = false)".encode())
    await conn.execute(
        f"INSERT INTO {prefix}runs (run_id, agent_name, status, snapshot, schema_version, "
        "created_at, updated_at, wake_at, lease_owner, lease_expires_at) "
        "SELECT 'r' || i, 'a' || (i % 3), CASE WHEN i % 4 = 0 THEN 'completed' ELSE 'paused' END, "
        "'{}', 1, 1.0, i::float8, CASE WHEN i % 4 = 0 THEN NULL ELSE i::float8 END, "
        "CASE WHEN i % 10 = 0 THEN 'w' END, CASE WHEN i % 10 = 0 THEN i::float8 END "
        f"FROM generate_series(1, {N}) AS i".encode()
    )
    await conn.execute(
        f"INSERT INTO {prefix}requests (request_id, run_id, kind, request, args_digest, status, "
        "created_at, expires_at) SELECT 'q' || i, 'r' || i, 'approval', '{}', 'd', "
        "CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'decided' END, i::float8, 1e10 "
        f"FROM generate_series(1, {N}) AS i".encode()
    )
    stats = await conn.execute(
        "SELECT count(*) FROM pg_stats WHERE schemaname = %s", (prefix.strip('".'),)
    )
    assert (await stats.fetchone())[0] == 0
