"""Ready-index benchmarks: does finding work stay flat in the number of paused runs?

Run: python benchmarks/bench_ready.py [N ...]   (default 1000 10000 100000; Postgres up to
10000)

For each backend and N, the store holds N paused runs, each waiting for a decision on one
pending request (filled by batched inserts of sealed rows through the store's own SQL), so
nothing is ready. Prints, as medians of 200 calls: ``claim_ready`` (nothing ready),
``next_wake_at`` and ``ready_runs(limit=100)``; the CPU an idle ``wait_for_work`` uses over
5 s; and the p50 latency from a decision (``decide`` called on another store object, i.e.
another connection) to an idle worker loop (``claim_ready``, else ``wait_for_work``)
holding the decided run, over 20 decisions.
Targets: flat in N, each query under 5 ms at 100,000; decision -> wake under 50 ms (SQLite).

Postgres: $AFK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), in a
throwaway schema dropped afterwards, never ANALYZEd; skipped with a note when unreachable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from _pg import PG_DSN, reachable

from afk.store import PostgresStore, SQLiteStore
from afk.store import _common as c
from afk.store import _ready as r
from afk.store.store import RequestRecord, RunRecord, RunStore

SIZES = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
PG_MAX = 10_000
BATCH = 5_000
CALLS = 200
DECISIONS = 20
IDLE_S = 5.0
TARGET_MS = 5.0
FAR = 4e9
os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # Postgres stores need one


def _run(run_id: str, at: float) -> RunRecord:
    return RunRecord(
        run_id=run_id, agent_name="billing", status="paused", snapshot='{"messages":[]}',
        schema_version=1, created_at=at, updated_at=at,
    )  # fmt: skip


def _request(digest: str, request_id: str, run_id: str, at: float) -> RequestRecord:
    body = {"request_id": request_id, "run_id": run_id, "tool_name": "refund", "amount": 250}
    return RequestRecord(
        request_id=request_id, run_id=run_id, kind="approval", request=json.dumps(body),
        args_digest=digest, status="pending", created_at=at,
        expires_at=FAR, tool_name="refund",
    )  # fmt: skip


def _rows(store: RunStore, start: int, stop: int) -> Iterator[tuple[list[Any], list[Any]]]:
    """UPSERT_RUN_WAKE and INSERT_REQUEST parameters, BATCH runs at a time. Their MACs are a
    stand-in of the right length: nothing here reads these rows back through a check, and
    sealing 100,000 of them would take longer than the benchmark."""
    digest = store.keys.digest({"amount": 250})
    for first in range(start, stop, BATCH):
        runs, requests = [], []
        for i in range(first, min(first + BATCH, stop)):
            at = 1_000_000.0 + i
            run = dataclasses.replace(_run(f"run-{i:06d}", at), mac="0" * 64)
            runs.append(r.upsert_params(c.params(run, c.RUN_COLS), "paused", (FAR,), at))
            request = _request(digest, f"req-{i:06d}", run.run_id, at)
            requests.append(c.params(dataclasses.replace(request, mac="0" * 64), c.REQUEST_COLS))
        yield runs, requests


async def _fill(store: RunStore, start: int, stop: int) -> None:
    templates = (c.UPSERT_RUN_WAKE, c.INSERT_REQUEST)
    if isinstance(store, SQLiteStore):
        sql = [c.render(q, prefix="", postgres=False) for q in templates]
        with sqlite3.connect(store.path) as conn:  # one transaction
            for runs, requests in _rows(store, start, stop):
                conn.executemany(sql[0], runs)
                conn.executemany(sql[1], requests)
        return
    assert isinstance(store, PostgresStore)
    import psycopg

    prefix = f'"{store.schema}".'
    sql = [c.render(q, prefix=prefix, postgres=True) for q in templates]
    async with await psycopg.AsyncConnection.connect(store.dsn) as conn:
        async with conn.cursor() as cur:
            for runs, requests in _rows(store, start, stop):
                await cur.executemany(sql[0].encode(), runs)
                await cur.executemany(sql[1].encode(), requests)
        await conn.commit()


async def _median_ms(call: Callable[[], Awaitable[Any]]) -> float:
    await call()
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def _idle_cpu(store: RunStore) -> float:
    """Percent of one core an idle waiter uses (process CPU time over wall time)."""
    await store.claim_ready(owner="bench", ttl_s=30, now=time.time())
    await store.wait_for_work(timeout_s=0.05)  # started (Postgres: listening)
    await store.claim_ready(owner="bench", ttl_s=30, now=time.time())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await store.wait_for_work(timeout_s=IDLE_S)
    return 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)


async def _wake_ms(store: RunStore, decider: RunStore) -> float:
    """p50 from calling decide (another connection) to an idle worker loop (claim, else
    wait_for_work with a long timeout) holding the decided run."""
    samples = []
    for k in range(DECISIONS):
        at = time.time()
        run_id, request_id = f"wake-{uuid.uuid4().hex[:8]}", f"wake-req-{k}-{uuid.uuid4().hex[:6]}"
        request = _request(store.keys.digest({"amount": 250}), request_id, run_id, at)
        await decider.save_run(_run(run_id, at), requests=[request])

        async def worker() -> tuple[float, str]:
            while (
                found := await store.claim_ready(owner="bench", ttl_s=30, now=time.time())
            ) is None:
                await store.wait_for_work(timeout_s=5)
            return time.perf_counter(), found.run_id

        task = asyncio.create_task(worker())
        await asyncio.sleep(0.05 + 0.003 * k)  # idle by now, at varied phases of its poll
        t0 = time.perf_counter()
        await decider.decide(
            request_id, decision='{"kind":"allow"}', decided_by="human", approver="bench",
            bound_digest="d" * 64, now=time.time(),
        )  # fmt: skip
        claimed_at, claimed = await task
        assert claimed == run_id
        samples.append((claimed_at - t0) * 1000)
        await store.save_run(dataclasses.replace(_run(run_id, at), status="completed"))
    return statistics.median(samples)


async def _bench(name: str, make: Callable[[], RunStore], sizes: list[int]) -> None:
    store, decider = make(), make()
    await store.setup()
    filled = 0
    for n in sizes:
        t0 = time.perf_counter()
        await _fill(store, filled, n)
        fill_s, filled = time.perf_counter() - t0, n
        claim = await _median_ms(
            lambda: store.claim_ready(owner="bench", ttl_s=30, now=time.time())
        )
        wake = await _median_ms(store.next_wake_at)
        ready = await _median_ms(lambda: store.ready_runs(now=time.time(), limit=100))
        cpu = await _idle_cpu(store)
        latency = await _wake_ms(store, decider)
        worst = max(claim, wake, ready)
        mark = "ok" if worst < TARGET_MS else "SLOW"
        print(
            f"{name:<8} {n:>8,} {fill_s:>6.1f}s {claim:>9.3f} {wake:>9.3f} {ready:>9.3f} "
            f"{mark:<4} {cpu:>8.2f}% {latency:>22.1f}"
        )
    await store.close()
    await decider.close()


async def _postgres_schema() -> str | None:
    if not await reachable():
        return None
    return f"afk_bench_{uuid.uuid4().hex[:10]}"


async def main() -> None:
    print(f"nothing ready; medians of {CALLS} calls in ms; idle CPU over {IDLE_S:g} s")
    print(
        f"{'backend':<8} {'N':>8} {'fill':>7} {'claim':>9} {'next_wake':>9} {'ready100':>9} "
        f"{'':<4} {'idle CPU':>9} {'decision->claim p50 ms':>22}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/ready.db"
        await _bench("sqlite", lambda: SQLiteStore(path), SIZES)
    schema = await _postgres_schema()
    if schema is None:
        return
    try:
        await _bench(
            "postgres",
            lambda: PostgresStore(PG_DSN, schema=schema),
            [n for n in SIZES if n <= PG_MAX],
        )
    finally:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


if __name__ == "__main__":
    asyncio.run(main())
