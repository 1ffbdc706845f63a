"""Decision-ledger benchmarks. Run: python benchmarks/bench_audit.py [N]

Per backend, the cost per entry of appending to the hash-chained ledger through the store's
API: one entry per transaction (``log_refusal``, as a refusal or a policy decision is
written) and 500 per transaction (``save_run(log=...)``). Beside each, the "plain" cost: the
same rows inserted without a chain (no head read, no hashing, no hash columns) into a copy of
the v1 ``log`` table, through the same connection, lock and transaction shape. Last, the time
``afk.audit.verify`` takes to re-compute a chain of N entries (default 10,000).

Postgres: $AFK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), in a
throwaway schema dropped afterwards; skipped with a note when unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from afk.store import PostgresStore, SQLiteStore
from afk.store import _common as c
from afk.store.store import LogEntry, RunRecord, RunStore

PG_DSN = os.environ.get("AFK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SINGLES = 300  # one-entry transactions per measurement
BATCH = 500
ROUNDS = 3
ROWS: list[tuple[str, ...]] = []

PLAIN_DDL = """CREATE TABLE IF NOT EXISTS {t}log_plain (
    id {serial}, kind TEXT NOT NULL, run_id TEXT NOT NULL, request_id TEXT, actor TEXT,
    payload TEXT NOT NULL, at {real} NOT NULL)"""
PLAIN_INSERT = (
    "INSERT INTO {t}log_plain (kind, run_id, request_id, actor, payload, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def entry(i: int) -> LogEntry:
    payload = {
        "kind": "allow",
        "decided_by": "human",
        "reason": "ticket OPS-1234: disk at 91%, table idle for 400 days",
        "args_digest": f"{i:064x}",
    }
    return LogEntry(
        kind="decided",
        run_id=f"run-{i // 4:06d}",
        request_id=f"run-{i // 4:06d}:call_{i % 4}",
        actor="bob@example.com",
        payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
        at=time.time(),
    )


def run_record(now: float) -> RunRecord:
    return RunRecord(
        run_id="bench", agent_name="dba", status="running", snapshot="{}", schema_version=1,
        created_at=now, updated_at=now,
    )  # fmt: skip


def plain_row(e: LogEntry) -> tuple[Any, ...]:
    return (e.kind, e.run_id, e.request_id, e.actor, e.payload, e.at)


# -- the plain insert, through each store's own plumbing ------------------------------------
PlainWriter = Callable[[list[LogEntry], bool], Awaitable[None]]


def sqlite_plain(store: SQLiteStore) -> tuple[Callable[[], Awaitable[None]], PlainWriter]:
    from afk.store.sqlite import _sql, _write

    async def create() -> None:
        await store._call(lambda conn: conn.execute(_sql(PLAIN_DDL)))

    async def write(entries: list[LogEntry], with_run: bool) -> None:
        def work(conn: Any) -> None:
            with _write(conn):
                if with_run:  # as save_run does
                    run = c.params(run_record(time.time()), c.RUN_COLS)
                    conn.execute(_sql(c.UPSERT_RUN), run)
                conn.executemany(_sql(PLAIN_INSERT), [plain_row(e) for e in entries])

        await store._call(work)

    return create, write


def postgres_plain(store: PostgresStore) -> tuple[Callable[[], Awaitable[None]], PlainWriter]:
    async def create() -> None:
        async with store._tx() as cur:
            await cur.execute(store._sql(PLAIN_DDL))

    async def write(entries: list[LogEntry], with_run: bool) -> None:
        async with store._tx() as cur:
            if with_run:  # as save_run does
                run = c.params(run_record(time.time()), c.RUN_COLS)
                await cur.execute(store._sql(c.UPSERT_RUN), run)
            lock = store._lock_key + ":plain"
            await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            await cur.executemany(store._sql(PLAIN_INSERT), [plain_row(e) for e in entries])

    return create, write


# -- measurements ---------------------------------------------------------------------------
async def per_entry(n: int, work: Callable[[int], Awaitable[None]], calls: int) -> float:
    """Microseconds per entry for ``calls`` awaits of ``work`` writing ``n`` entries in all."""
    start = time.perf_counter()
    for i in range(calls):
        await work(i)
    return (time.perf_counter() - start) / n * 1e6


async def appends(store: RunStore, write_plain: PlainWriter, n: int) -> list[float]:
    """Per-entry µs: one entry per transaction plain and chained, then batches of BATCH."""
    now = time.time()
    batches = max(1, n // BATCH)

    def batch(b: int) -> list[LogEntry]:
        return [entry(b * BATCH + i) for i in range(BATCH)]

    async def chained_batch(b: int) -> None:
        await store.save_run(run_record(now), log=batch(b))

    async def chained_single(i: int) -> None:
        await store.log_refusal(entry(i))

    # Interleaved rounds, best of each: warm-up and disk noise hit both sides alike.
    best = [float("inf")] * 4
    for _ in range(ROUNDS):
        found = [
            await per_entry(SINGLES, lambda i: write_plain([entry(i)], False), SINGLES),
            await per_entry(SINGLES, chained_single, SINGLES),
            await per_entry(batches * BATCH, lambda b: write_plain(batch(b), True), batches),
            await per_entry(batches * BATCH, chained_batch, batches),
        ]
        best = [min(a, b) for a, b in zip(best, found, strict=True)]
    return best


async def verify_time(store: RunStore, n: int) -> str:
    """Milliseconds for ``afk.audit.verify`` over a fresh ledger of exactly ``n`` entries."""
    try:
        from afk.audit import verify
    except ImportError:  # measuring a checkout from before the ledger
        return "n/a"
    await store.setup()
    now = time.time()
    for b in range(0, n, BATCH):
        log = [entry(i) for i in range(b, min(n, b + BATCH))]
        await store.save_run(run_record(now), log=log)
    start = time.perf_counter()
    report = await verify(store)
    elapsed = time.perf_counter() - start
    assert report.ok and report.entries == n, report
    return f"{elapsed * 1e3:,.0f}"


async def bench(
    name: str, store: RunStore, plain: tuple[Any, PlainWriter], fresh: RunStore, n: int
) -> None:
    create, write_plain = plain
    await store.setup()
    await create()
    try:
        plain_1, chain_1, plain_b, chain_b = await appends(store, write_plain, n)
        verify_ms = await verify_time(fresh, n)
    finally:
        await store.close()
        await fresh.close()
    cells = (f"{plain_1:,.0f}", f"{chain_1:,.0f}", f"{plain_b:,.1f}", f"{chain_b:,.1f}")
    ROWS.append((name, *cells, verify_ms))


async def run_sqlite(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(os.path.join(tmp, "bench.db"))
        fresh = SQLiteStore(os.path.join(tmp, "verify.db"))
        await bench("sqlite", store, sqlite_plain(store), fresh, n)


async def run_postgres(n: int) -> None:
    import psycopg

    schemas = [f"afk_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        admin = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
        return
    try:
        store, fresh = (PostgresStore(PG_DSN, schema=s) for s in schemas)
        await bench("postgres", store, postgres_plain(store), fresh, n)
    finally:
        for schema in schemas:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
        await admin.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    asyncio.run(run_sqlite(n))
    asyncio.run(run_postgres(n))
    print(
        f"append: µs per entry, best of {ROUNDS} rounds of {SINGLES} one-entry transactions and "
        f"{n:,} entries in batches of {BATCH}; verify: {n:,} entries"
    )
    head = (
        "backend",
        "1/tx plain µs",
        "1/tx chained µs",
        f"{BATCH}/tx plain µs",
        f"{BATCH}/tx chained µs",
        "verify ms",
    )
    widths = [max(len(str(r[i])) for r in [head, *ROWS]) for i in range(len(head))]
    for line in [head, tuple("-" * w for w in widths), *ROWS]:
        print("  ".join(f"{cell:>{w}}" if i else f"{cell:<{w}}" for i, (cell, w) in enumerate(
            zip(line, widths, strict=True))))  # fmt: skip


if __name__ == "__main__":
    main()
