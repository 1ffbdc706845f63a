"""Run store benchmarks. Run: python benchmarks/bench_store.py [N]

For each backend, N paused runs (default 1000) are saved, decided and executed one call at a
time, as a runner would. Prints one table: median latency per operation and the stored size
of a paused run (snapshot ~3 KB, one request, eight events, one log entry).

Postgres: $AFK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), in a
throwaway schema dropped afterwards; skipped with a note when unreachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from afk.store import PostgresStore, SQLiteStore
from afk.store.store import EventRow, ExecutionRecord, LogEntry, RequestRecord, RunRecord, RunStore

PG_DSN = os.environ.get("AFK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
GB = 1_000_000_000
ROWS: list[tuple[str, str, str, str, str, str]] = []

SYSTEM = (
    "You are the on-call database assistant for the billing team. You may inspect schemas, "
    "run read-only queries and propose maintenance. Destructive statements (DROP, TRUNCATE, "
    "DELETE without WHERE) always need a human approval; explain why before asking."
)
TABLES = [
    {"table": f"audit_log_{y}_{m:02d}", "rows": 120_000 * m + y, "mb": 37 * m, "idle_days": 400}
    for y in (2021, 2022)
    for m in range(1, 13)
]


def snapshot(run_id: str) -> str:
    args = {"name": "audit_log_2021_01", "cascade": False}
    data: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "agent": {"name": "dba", "model": "openai:gpt-4o-mini", "instructions_sha256": "ab" * 32},
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "The disk is at 91%. Free some space, oldest first."},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "list_tables"}]},
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(TABLES)},
            {
                "role": "assistant",
                "content": "audit_log_2021_01 has not been read for 400 days; dropping it.",
                "tool_calls": [{"id": "call_2", "name": "drop_table", "arguments": args}],
            },
        ],
        "pending": [{"request_id": f"{run_id}:call_2", "tool_call_id": "call_2"}],
        "policy": {"rule": "destructive-sql", "action": "request_approval", "timeout_s": 3600},
        "usage": {"input_tokens": 2841, "output_tokens": 212, "steps": 3, "cost_usd": 0.0011},
    }
    return json.dumps(data, separators=(",", ":"))


Paused = tuple[RunRecord, RequestRecord, list[EventRow]]


def paused_run(i: int, now: float) -> Paused:
    run_id = f"run-{i:06d}-{uuid.uuid4().hex[:8]}"
    run = RunRecord(
        run_id=run_id, agent_name="dba", status="paused", snapshot=snapshot(run_id),
        schema_version=1, created_at=now, updated_at=now, thread_id=f"slack:C04:{i}",
        requested_by="alice@example.com",
    )  # fmt: skip
    tool_args = json.dumps({"name": "audit_log_2021_01", "cascade": False}, sort_keys=True)
    req = RequestRecord(
        request_id=f"{run_id}:call_2", run_id=run_id, kind="approval",
        request=json.dumps({"tool_name": "drop_table", "tool_args": json.loads(tool_args),
                            "reason": "destructive-sql", "message": "Drop audit_log_2021_01?"}),
        args_digest=hashlib.sha256(tool_args.encode()).hexdigest(), status="pending",
        created_at=now, expires_at=now + 3600, tool_name="drop_table",
    )  # fmt: skip
    kinds = ["run_started", "model_called", "model_responded", "tool_called", "tool_result"]
    kinds += ["model_called", "model_responded", "approval_requested"]
    events = [
        EventRow(run_id=run_id, seq=n, type=k, payload=json.dumps({"type": k, "step": n}), ts=now)
        for n, k in enumerate(kinds, start=1)
    ]
    return run, req, events


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.2f}"


async def save_all(store: RunStore, runs: list[Paused]) -> list[float]:
    samples = []
    for run, req, events in runs:
        log = [LogEntry(kind="request_opened", run_id=run.run_id, request_id=req.request_id)]
        start = time.perf_counter()
        await store.save_run(run, requests=[req], events=events, log=log)
        samples.append(time.perf_counter() - start)
    return samples


async def decide_all(store: RunStore, runs: list[Paused], now: float) -> list[float]:
    samples = []
    decision = json.dumps({"kind": "allow", "approver": "bob@example.com", "note": "ok"})
    for run, req, _ in runs:
        log = [LogEntry(kind="decided", run_id=run.run_id, request_id=req.request_id)]
        start = time.perf_counter()
        await store.decide(
            req.request_id, decision=decision, decided_by="human", approver="bob@example.com",
            bound_digest=req.args_digest, now=now, log=log,
        )  # fmt: skip
        samples.append(time.perf_counter() - start)
    return samples


async def execute_all(store: RunStore, runs: list[Paused], now: float) -> list[float]:
    samples = []
    for run, req, _ in runs:
        record = ExecutionRecord(
            key=req.request_id, run_id=run.run_id, tool_call_id="call_2",
            args_digest=req.args_digest, status="executing", started_at=now,
        )  # fmt: skip
        start = time.perf_counter()
        await store.begin_execution(record)
        await store.finish_execution(record.key, result='{"dropped":true}', now=now)
        samples.append(time.perf_counter() - start)
    return samples


async def bench(name: str, store: RunStore, size: Callable[[], Awaitable[int]], n: int) -> None:
    await store.setup()
    now = time.time()
    runs = [paused_run(i, now) for i in range(n)]
    before = await size()
    saves = await save_all(store, runs)
    per_run = (await size() - before) / n
    decides = await decide_all(store, runs, now + 1)
    executions = await execute_all(store, runs, now + 2)
    await store.close()
    per_gb = f"{GB / per_run:,.0f}"
    ROWS.append((name, ms(saves), ms(decides), ms(executions), f"{per_run:,.0f}", per_gb))


async def run_sqlite(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")

        async def size() -> int:
            # Pages sit in the WAL until a checkpoint; fold them in so the file size is real.
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return os.path.getsize(path)

        await bench("sqlite", SQLiteStore(path), size, n)


async def run_postgres(n: int) -> None:
    import psycopg

    schema = f"afk_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
        return

    async def size() -> int:
        cur = await admin.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s "
            "AND c.relkind = 'r'",
            (schema,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    try:
        await bench("postgres", PostgresStore(PG_DSN, schema=schema), size, n)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
        await admin.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    asyncio.run(run_sqlite(n))
    asyncio.run(run_postgres(n))
    print(f"{n} paused runs per backend, snapshot {len(snapshot('run-000000-abcdef12'))} bytes")
    head = ("backend", "save_run ms", "decide ms", "begin+finish ms", "bytes/run", "runs/GB")
    widths = [max(len(str(r[i])) for r in [head, *ROWS]) for i in range(len(head))]
    for line in [head, tuple("-" * w for w in widths), *ROWS]:
        print("  ".join(f"{cell:>{w}}" if i else f"{cell:<{w}}" for i, (cell, w) in enumerate(
            zip(line, widths, strict=True))))  # fmt: skip
    print("latencies are medians; bytes/run is table+index+TOAST growth per saved paused run")


if __name__ == "__main__":
    main()
