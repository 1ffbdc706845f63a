"""What the pooled HTTP client saves per model call. Run: python benchmarks/bench_http_pool.py

An OpenAIModel calls a local OpenAI-compatible server (tests/llms/fakeserver.py) over
loopback: once with a new httpx client per call (what a model built by hand without a pool
does, and what models named by string did before the pool), once through a ClientPool (what
models named by string do now). The server either closes every connection (the saving is the
client's construction) or keeps it alive (the saving adds the TCP connect, and the server's
thread per connection). Loopback has no TLS and no network round trip, so these savings are a
floor: against a provider over TLS, reusing the connection also skips the handshake, one to
two round trips (tens of milliseconds) per call.

Prints one table: µs per call, the median over rounds of each round's mean.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "llms"))

from fakeserver import (
    FakeServer,
    Reply,
    json_reply,
    openai_completion,
    openai_sse_reply,
)

from afk.llms import UserMessage
from afk.llms._http import ClientPool
from afk.llms.openai import OpenAIModel

ROUNDS = 7
CALLS = 150
HELLO = [UserMessage(content="hi")]


def json_answer() -> Reply:
    return json_reply(openai_completion({"content": "ok"}))


def sse_answer() -> Reply:
    return openai_sse_reply([{"choices": [{"index": 0, "delta": {"content": "ok"}}]}])


async def _round(model: OpenAIModel, stream: bool) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        if stream:
            async for _item in model.stream(HELLO, []):
                pass
        else:
            await model.complete(HELLO, [])
    return (time.perf_counter() - start) / CALLS * 1e6


async def _measure(keep_alive: bool, pooled: bool, stream: bool) -> float:
    answer: Callable[[], Reply] = sse_answer if stream else json_answer
    pool = ClientPool() if pooled else None
    samples: list[float] = []
    with FakeServer(keep_alive=keep_alive) as server:
        model = OpenAIModel("gpt-4o-mini", api_key="sk", base_url=server.url + "/v1", pool=pool)
        server.queue(*[answer() for _ in range(20)])
        await _round_warm(model, stream)
        for _ in range(ROUNDS):
            server.queue(*[answer() for _ in range(CALLS)])
            samples.append(await _round(model, stream))
        if pool is not None:
            await pool.aclose()
    return statistics.median(samples)


async def _round_warm(model: OpenAIModel, stream: bool) -> None:
    for _ in range(20):  # imports, caches, the first connection
        if stream:
            async for _item in model.stream(HELLO, []):
                pass
        else:
            await model.complete(HELLO, [])


async def main() -> None:
    rows: list[tuple[str, float, float]] = []
    for label, keep_alive, stream in [
        ("complete(), server closes connections", False, False),
        ("complete(), server keeps connections alive", True, False),
        ("stream(), server keeps connections alive", True, True),
    ]:
        fresh = await _measure(keep_alive, pooled=False, stream=stream)
        pooled = await _measure(keep_alive, pooled=True, stream=stream)
        rows.append((label, fresh, pooled))
    print(f"µs per model call, median of {ROUNDS} rounds x {CALLS} calls (loopback, no TLS)")
    header: tuple[Any, ...] = ("scenario", "new client/call", "pooled", "saved", "saved %")
    print(f"{header[0]:<46} {header[1]:>16} {header[2]:>9} {header[3]:>9} {header[4]:>8}")
    for label, fresh, pooled in rows:
        saved = fresh - pooled
        print(f"{label:<46} {fresh:>16.0f} {pooled:>9.0f} {saved:>9.0f} {saved / fresh:>8.0%}")


if __name__ == "__main__":
    asyncio.run(main())
