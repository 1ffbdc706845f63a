"""Durable-run benchmarks through the public Runner API. Run: python benchmarks/bench_durable.py

Per backend (SQLite file in a temp dir; Postgres in a throwaway schema, dropped afterwards),
with a refund agent whose one tool call needs an approval (a short conversation: system, user,
assistant tool call):

- pause: ``runner.run()`` of an external-mode gated run until it returns ``paused``, end to
  end, and the store writes inside it (``save_run`` + ``release_lease``, timed in place);
- decision: ``runner.resolve()`` from another Runner (read, durable compare-and-set + log);
- resolve-to-tool-start: from just before ``resolve()`` on another Runner (own connection, as
  another process would have) until the tool body starts, (a) interactive mode, the run waiting
  in this process (SQLite: the waiter polls every 200 ms, so resolves are spread over the poll
  phase; Postgres: LISTEN/NOTIFY), (b) external mode, ``resolve()`` then ``resume(run_id)``;
- size: column bytes of one paused run's rows, and disk growth per run over N paused runs;
- memory: tracemalloc growth per run after N external runs returned paused and were dropped.

Postgres: $AFK_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test); skipped with
a note when unreachable. Optional argument: N (default 1000).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _pg import PG_DSN

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import tool

GB = 1_000_000_000
TIMED = 200  # paused runs for the pause / decision / external resume timings
INTERACTIVE = 40  # interactive resolve-to-tool-start samples
ALLOW = ApprovalDecision(kind="allow", approver="bench")
EXTERNAL = RunnerConfig(interaction_mode="external")
INTERACTIVE_MODE = RunnerConfig(interaction_mode="interactive", approval_timeout_s=60)

TOOL_STARTS: list[float] = []  # perf_counter() at the start of each refund body


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    TOOL_STARTS.append(time.perf_counter())
    return f"refunded {amount} on {order}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    order = next(m.content for m in messages if isinstance(m, UserMessage))
    if not any(isinstance(m, ToolMessage) for m in messages):
        return ToolCall("refund", {"order": order, "amount": 250})
    return ModelResponse(text=f"{order}: done")


POLICY = PolicyEngine(
    [
        PolicyRule(
            "refunds-need-approval",
            condition=lambda e: e.tool_name == "refund",
            action="request_approval",
            reason="Refunds need a human.",
        )
    ]
)


def agent() -> Agent:
    return Agent(
        "billing", FunctionModel(_model, name="billing-model"), "You refund.", tools=[refund]
    )


# -- helpers -----------------------------------------------------------------------------------
def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.2f} ms"


def ms_spread(samples: list[float]) -> str:
    return f"{ms(samples)} (max {max(samples) * 1e3:.1f})"


def timed_method(obj: Any, name: str, into: list[float]) -> None:
    """Wrap ``obj.name`` (an async method) so each call adds its duration to ``into``."""
    inner = getattr(obj, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await inner(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(obj, name, wrapper)


def row_bytes(rows: list[tuple[Any, ...]]) -> int:
    """Bytes of the values in ``rows``: text as UTF-8, binary by its length, numbers as 8."""
    total = 0
    for row in rows:
        for value in row:
            if isinstance(value, str):
                total += len(value.encode())
            elif isinstance(value, bytes | memoryview):
                total += len(value)
            elif value is not None:
                total += 8
    return total


Rows = Callable[[str, str], Awaitable[list[tuple[Any, ...]]]]  # (table, run_id) -> rows


class Backend:
    def __init__(self, name: str, url: str, size: Callable[[], Awaitable[int]], rows: Rows):
        self.name, self.url, self.size, self.rows = name, url, size, rows
        self.results: dict[str, str] = {}


# -- the measurements --------------------------------------------------------------------------
async def bench_pause_decide_resume(b: Backend) -> None:
    async with (
        Runner(POLICY, config=EXTERNAL, store=b.url) as runner,
        Runner(store=b.url) as resolver,
        Runner(POLICY, config=EXTERNAL, store=b.url) as worker,
    ):
        assert runner.store is not None
        for i in range(10):  # warm-up: schema setup, connections, caches
            paused = await runner.run(agent(), user_message=f"warm-{i}")
            await resolver.resolve(paused.pending_requests[0].request_id, ALLOW)
            await worker.resume(paused.run_id, agent())
        writes: list[float] = []
        timed_method(runner.store, "save_run", writes)
        timed_method(runner.store, "release_lease", writes)
        runs, per_run_writes, paused_runs = [], [], []
        for i in range(TIMED):
            del writes[:]
            start = time.perf_counter()
            paused = await runner.run(agent(), user_message=f"order-{i}")
            runs.append(time.perf_counter() - start)
            per_run_writes.append(sum(writes))
            assert paused.state == "paused"
            paused_runs.append((paused.run_id, paused.pending_requests[0].request_id))
        decisions, to_start, resume_only = [], [], []
        for run_id, request_id in paused_runs:
            start = time.perf_counter()
            await resolver.resolve(request_id, ALLOW)
            decided = time.perf_counter()
            done = await worker.resume(run_id, agent())
            assert done.state == "completed", done.error
            decisions.append(decided - start)
            to_start.append(TOOL_STARTS[-1] - start)
            resume_only.append(TOOL_STARTS[-1] - decided)
    b.results["pause: runner.run() external until paused, end to end"] = ms(runs)
    b.results["pause: store writes in it (save_run + release_lease)"] = ms(per_run_writes)
    b.results["decision: runner.resolve() (durable CAS + log)"] = ms(decisions)
    b.results["resolve-to-tool-start, external: resolve + resume()"] = ms(to_start)
    b.results["  of which resume(run_id) to tool start"] = ms(resume_only)


async def bench_interactive_wake(b: Backend) -> None:
    """A run waits in interactive mode; another Runner (its own store connection) decides."""
    jitter = random.Random(7)
    provider = InMemoryInteractiveProvider()
    async with (
        Runner(POLICY, provider, INTERACTIVE_MODE, store=b.url) as waiter,
        Runner(store=b.url) as resolver,
    ):
        assert resolver.store is not None
        await resolver.pending_requests()  # schema setup
        samples = []
        for i in range(INTERACTIVE + 2):
            handle = waiter.run_stream(agent(), user_message=f"wait-{i}")
            while not (pending := await resolver.store.list_requests(run_id=handle.run_id)):
                await asyncio.sleep(0.005)
            # A decision lands at a random point of the waiter's poll cycle, as a human's would.
            await asyncio.sleep(jitter.uniform(0.0, 0.25))
            start = time.perf_counter()
            await resolver.resolve(pending[0].request_id, ALLOW)
            done = await handle.result()
            assert done.state == "completed", done.error
            if i >= 2:  # the first two warm up
                samples.append(TOOL_STARTS[-1] - start)
    label = "resolve-to-tool-start, interactive: other Runner resolves"
    b.results[label] = ms_spread(samples)


async def bench_size_and_memory(b: Backend, n: int) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=b.url) as runner:
        warm = [await runner.run(agent(), user_message=f"mem-{i}") for i in range(20)]
        one = warm[-1].run_id
        del warm
        tables = ("runs", "requests", "event_batches", "log")
        columns = sum([row_bytes(await b.rows(t, one)) for t in tables])
        gc.collect()
        disk_before = await b.size()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        results = [await runner.run(agent(), user_message=f"order-{i:05d}") for i in range(n)]
        paused = sum(r.state == "paused" for r in results)
        del results
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        disk_after = await b.size()
    assert paused == n, f"{paused} of {n} runs paused"
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    disk = (disk_after - disk_before) / n
    b.results["stored size: column bytes of one paused run's rows"] = f"{columns:,} B"
    b.results[f"stored size: disk growth per run over {n:,} paused runs"] = f"{disk:,.0f} B"
    b.results["paused runs per GB (from disk growth)"] = f"{GB / disk:,.0f}" if disk > 0 else "-"
    memory = f"{grown / n:,.1f} B (all: {grown / 1024:,.1f} KB)"
    b.results[f"memory per paused run after {n:,} dropped (tracemalloc)"] = memory


async def bench_backend(b: Backend, n: int) -> None:
    await bench_pause_decide_resume(b)
    await bench_interactive_wake(b)
    await bench_size_and_memory(b, n)


# -- backends ----------------------------------------------------------------------------------
def run_sqlite(n: int) -> Backend:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "runs.db")

        async def size() -> int:
            # Pages sit in the WAL until a checkpoint; fold them in so the file size is real.
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return os.path.getsize(path)

        async def rows(table: str, run_id: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                return conn.execute(f"SELECT * FROM {table} WHERE run_id = ?", (run_id,)).fetchall()

        backend = Backend("sqlite", f"sqlite:///{path}", size, rows)
        asyncio.run(bench_backend(backend, n))
    return backend


def run_postgres(n: int) -> Backend | None:
    import psycopg

    schema = f"afk_bench_{uuid.uuid4().hex[:8]}"

    async def main() -> Backend | None:
        try:
            admin = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
        except psycopg.OperationalError as exc:
            print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
            return None

        async def size() -> int:
            cur = await admin.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s "
                "AND c.relkind = 'r'",
                (schema,),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        async def rows(table: str, run_id: str) -> list[tuple[Any, ...]]:
            query = f'SELECT * FROM "{schema}".{table} WHERE run_id = %s'
            cur = await admin.execute(query.encode(), (run_id,))
            return await cur.fetchall()

        backend = Backend("postgres", f"{PG_DSN}?afk_schema={schema}", size, rows)
        try:
            await bench_backend(backend, n)
        finally:
            await admin.execute("SET lock_timeout = '10s'")
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
            await admin.close()
        return backend

    return asyncio.run(main())


TARGETS = {
    "resolve-to-tool-start, external: resolve + resume()": "< 20 ms (SQLite)",
    "resolve-to-tool-start, interactive": "SQLite: a poll, <= 250 ms",
    "stored size: disk growth per run": "< 8 KB",
    "memory per paused run": "0 B",
}


def target(label: str) -> str:
    return next((t for prefix, t in TARGETS.items() if label.startswith(prefix)), "")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    started = time.perf_counter()
    backends = [b for b in (run_sqlite(n), run_postgres(n)) if b is not None]
    head = ("benchmark (medians)", *(b.name for b in backends), "target")
    table = [head] + [
        (label, *(b.results.get(label, "-") for b in backends), target(label))
        for label in backends[0].results
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    table.insert(1, tuple("-" * w for w in widths))
    for line in table:
        cells = [f"{c:<{w}}" if i in (0, len(head) - 1) else f"{c:>{w}}"
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]  # fmt: skip
        print("  ".join(cells).rstrip())
    print(
        f"{TIMED} timed runs, {INTERACTIVE} interactive wakes, {n:,} runs for size and memory; "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
