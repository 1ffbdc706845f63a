"""The per-turn cost of a conversation (issue 10). Run: python benchmarks/bench_sessions.py [TURNS]

One thread of TURNS turns (default 20), each run on ``thread_id="t"``: every turn's model call
sees the whole conversation so far (a function model, no network), and every fifth turn
calls a tool. Prints, per store (in memory: no store; SQLite: a fresh file; Postgres when
reachable: a throwaway schema): the median, first and last turn's wall time in µs; the data a
turn stores (its ``thread_turns`` row's messages and its run row's snapshot, in bytes), for
the first and the last turn, so whether it grows with the conversation shows; and the store's
growth on disk over the thread divided by its turns (SQLite: the file after VACUUM;
Postgres: ``pg_total_relation_size`` of the tables a turn writes).

What a turn stores: its own messages once (``thread_turns``), and its run row, whose
snapshot leaves the thread's history to the thread (snapshot schema 4).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _pg import PG_DSN, reachable

from afk.agents import Agent
from afk.core import Runner
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import tool

os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # Postgres stores need one


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order}: shipped"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    users = [m for m in messages if isinstance(m, UserMessage)]
    last = users[-1].content
    since = messages[max(i for i, m in enumerate(messages) if isinstance(m, UserMessage)) :]
    if last.startswith("lookup") and not any(isinstance(m, ToolMessage) for m in since):
        return ToolCall("lookup", {"order": last.split()[-1]})
    return ModelResponse(text=f"turn {len(users)}: noted ({len(messages)} messages so far)")


def agent() -> Agent:
    return Agent("chat", FunctionModel(_model), "You chat with a customer.", tools=[lookup])


def message(turn: int) -> str:  # the last turn calls the tool when TURNS is a multiple of 5
    return f"lookup A-{turn}" if turn % 5 == 0 else f"message {turn}: tell me more about my order"


Size = Callable[[], Awaitable[int]]


async def conversation(
    runner: Runner, turns: int, size: Size
) -> tuple[list[float], list[int], list[int]]:
    """Each turn's wall time (µs), the data it stored (bytes) and the store's size after."""
    times, stored, sizes = [], [], []
    thread = f"t-{uuid.uuid4().hex[:8]}"
    for turn in range(1, turns + 1):
        start = time.perf_counter()
        result = await runner.run(agent(), user_message=message(turn), thread_id=thread)
        times.append((time.perf_counter() - start) * 1e6)
        assert result.state == "completed", result.error
        stored.append(await _stored(runner, thread, result.run_id))
        sizes.append(await size())
    return times, stored, sizes


async def _stored(runner: Runner, thread: str, run_id: str) -> int:
    store = runner.store
    if store is None:
        return 0
    [*_, last] = await store.thread_turns(thread)
    record = await store.load_run(run_id)
    assert record is not None
    return len(last.messages.encode()) + len(record.snapshot.encode())


def sqlite_size(path: str) -> Size:
    async def size() -> int:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
        return os.path.getsize(path)

    return size


def postgres_size(schema: str) -> Size:
    async def size() -> int:
        import psycopg

        tables = ("runs", "threads", "thread_turns", "event_batches", "log")
        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            total = 0
            for table in tables:
                cur = await conn.execute(
                    "SELECT pg_total_relation_size(%s)", (f'"{schema}".{table}',)
                )
                row = await cur.fetchone()
                total += int(row[0]) if row else 0
            return total

    return size


async def measure(name: str, url: str | None, size: Size | None, turns: int) -> list[str]:
    async with Runner(store=url) as runner:
        await conversation(runner, 2, size or _zero)  # warm: imports, setup, first pages
        times, stored, sizes = await conversation(runner, turns, size or _zero)
    durable = size is not None
    return [
        name,
        f"{statistics.median(times):,.0f}",
        f"{times[0]:,.0f}",
        f"{times[-1]:,.0f}",
        f"{stored[0]:,}" if durable else "-",
        f"{stored[-2]:,}" if durable else "-",  # a turn like the first, late in the thread
        f"{stored[-1]:,}" if durable else "-",
        f"{(sizes[-1] - sizes[0]) / (turns - 1):,.0f}" if durable else "-",
    ]


async def _zero() -> int:
    return 0


async def main(turns: int) -> None:
    rows = [await measure("in memory", None, None, turns)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chat.db")
        rows.append(await measure("sqlite", f"sqlite:///{path}", sqlite_size(path), turns))
    if await reachable():
        import psycopg

        schema = f"bench_sessions_{uuid.uuid4().hex[:8]}"
        try:
            url = f"{PG_DSN}?afk_schema={schema}"
            rows.append(await measure("postgres", url, postgres_size(schema), turns))
        finally:
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        print(f"(postgres skipped: nothing at {PG_DSN})")
    head = [
        "store", "µs/turn median", "µs turn 1", f"µs turn {turns}", "B stored turn 1",
        f"B turn {turns - 1}", f"B turn {turns} (tool)", "disk B/turn",
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for line in [head, ["-" * w for w in widths], *rows]:
        cells = enumerate(zip(line, widths, strict=True))
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in cells))
    print(f"{turns} turns on one thread; every fifth turn calls a tool")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
