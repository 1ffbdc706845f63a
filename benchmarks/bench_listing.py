"""Listing benchmarks: is the first page flat in the number of stored rows?

Run: python benchmarks/bench_listing.py [N ...]   (default 1000 10000 100000)

For each backend and N, the store holds N paused runs with one pending request each (filled
by batched inserts of sealed rows through the store's own SQL). Prints the first page time
of ``Runner.pending_requests()`` (median of 20), and the wall time of ``afk approvals list``
and ``afk runs list`` (one page of 50, best of 3, in a fresh process, so Python's startup is
included). Target: flat in N, and the first page under 5 ms at 100,000.

Postgres: $AFK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), in a
throwaway schema dropped afterwards; skipped with a note when unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from _pg import PG_DSN, reachable

from afk.approvals.requests import ApprovalRequest
from afk.core import Runner
from afk.core._snapshot import to_json
from afk.store import PostgresStore, SQLiteStore, open_store
from afk.store import _common as c
from afk.store import _seal as s
from afk.store.store import RequestRecord, RunRecord, RunStore

SIZES = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
BATCH = 5_000
TARGET_MS = 5.0
os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # Postgres stores need one


def _rows(store: RunStore, start: int, stop: int) -> Iterator[tuple[list[Any], list[Any]]]:
    """Sealed UPSERT_RUN and INSERT_REQUEST parameters, BATCH runs at a time."""
    body = json.loads(
        to_json(
            ApprovalRequest(
                request_id="",
                run_id="",
                step=1,
                agent_name="billing",
                tool_name="refund",
                tool_args={"amount": 250},
                tool_call_id="call_1",
                rule_id="big-refunds",
                reason="Refunds over 100 need finance sign-off.",
                created_at=0.0,
                expires_at=4e9,
            ),
            ApprovalRequest,
        )
    )
    for first in range(start, stop, BATCH):
        runs, requests = [], []
        for i in range(first, min(first + BATCH, stop)):
            at = 1_000_000.0 + i
            run = RunRecord(
                run_id=f"run-{i:06d}",
                agent_name="billing",
                status="paused",
                snapshot="{}",
                schema_version=1,
                created_at=at,
                updated_at=at,
            )
            text = json.dumps({**body, "request_id": f"req-{i:06d}", "run_id": run.run_id})
            request = RequestRecord(
                request_id=f"req-{i:06d}",
                run_id=run.run_id,
                kind="approval",
                request=text,
                args_digest=store.keys.digest({"amount": 250}),
                status="pending",
                created_at=at,
                expires_at=4e9,
                tool_name="refund",
            )
            runs.append(c.run_params(store.keys, run, None))
            requests.append(c.params(s.sealed(store.keys, request), c.REQUEST_COLS))
        yield runs, requests


async def _fill(store: RunStore, start: int, stop: int) -> None:
    if isinstance(store, SQLiteStore):
        sql = [c.render(q, prefix="", postgres=False) for q in (c.UPSERT_RUN, c.INSERT_REQUEST)]
        with sqlite3.connect(store.path) as conn:  # one transaction
            for runs, requests in _rows(store, start, stop):
                conn.executemany(sql[0], runs)
                conn.executemany(sql[1], requests)
        return
    assert isinstance(store, PostgresStore)
    import psycopg

    prefix = f'"{store.schema}".'
    sql = [c.render(q, prefix=prefix, postgres=True) for q in (c.UPSERT_RUN, c.INSERT_REQUEST)]
    async with await psycopg.AsyncConnection.connect(store.dsn) as conn:
        async with conn.cursor() as cur:
            for runs, requests in _rows(store, start, stop):
                await cur.executemany(sql[0].encode(), runs)
                await cur.executemany(sql[1].encode(), requests)
        await conn.commit()
        await conn.execute(f"ANALYZE {prefix}requests".encode())
        await conn.execute(f"ANALYZE {prefix}runs".encode())


async def _first_page_ms(url: str) -> float:
    runner = Runner(store=url)
    try:
        await runner.pending_requests()  # setup and connection
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            page = await runner.pending_requests()
            times.append((time.perf_counter() - t0) * 1000)
        assert len(page) == 50 and page.next_cursor is not None
        return statistics.median(times)
    finally:
        await runner.aclose()


def _cli_ms(*argv: str) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "afk", *argv], check=True, capture_output=True)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


async def _bench(name: str, url: str) -> None:
    store = open_store(url)
    await store.setup()
    filled = 0
    for n in SIZES:
        t0 = time.perf_counter()
        await _fill(store, filled, n)
        fill_s, filled = time.perf_counter() - t0, n
        page_ms = await _first_page_ms(url)
        approvals = _cli_ms("approvals", "list", "--store", url)
        runs = _cli_ms("runs", "list", "--store", url)
        mark = "ok" if page_ms < TARGET_MS else "SLOW"
        print(
            f"{name:<8} {n:>8,} {fill_s:>7.1f}s {page_ms:>9.2f} ms {mark:<4} "
            f"{approvals:>10.0f} ms {runs:>10.0f} ms"
        )
    await store.close()


async def _postgres_url() -> str | None:
    if not await reachable():
        return None
    return f"{PG_DSN}?afk_schema=afk_bench_{uuid.uuid4().hex[:10]}"


async def main() -> None:
    print(f"target: flat in N, first page < {TARGET_MS:g} ms at 100,000 (CLI: process wall time)")
    print(
        f"{'backend':<8} {'N':>8} {'fill':>8} {'first page':>12}      {'approvals':>10}    "
        f"{'runs list':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        await _bench("sqlite", f"sqlite:///{tmp}/listing.db")
    url = await _postgres_url()
    if url is None:
        return
    try:
        await _bench("postgres", url)
    finally:
        import psycopg

        schema = url.rsplit("=", 1)[1]
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


if __name__ == "__main__":
    asyncio.run(main())
