"""A database agent whose drops wait for a human, an inbox served on 127.0.0.1, and a
thread to reach the store from synchronous (Playwright) tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from dba_support import add_token, agent, drop_table, executed  # noqa: F401

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.console import app
from afk.core import Runner, RunnerConfig
from afk.store import RunStore, open_store

T = TypeVar("T")
_pool = ThreadPoolExecutor(max_workers=1)


def sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a thread of its own: the tests are synchronous
    (Playwright's sync API owns the main thread's event loop)."""

    def run() -> T:
        async def main() -> T:
            return await make()

        return asyncio.run(main())

    return _pool.submit(run).result(timeout=60)


def runner(store_url: str, **rule: Any) -> Runner:
    policy = PolicyEngine(
        [
            PolicyRule(
                "gate-drops",
                tool="drop_*",
                action="request_approval",
                reason="Dropping a table needs a human.",
                **rule,
            )
        ]
    )
    return Runner(policy, config=RunnerConfig(interaction_mode="external"), store=store_url)


def paused(
    make: Callable[[], Runner], agent_of: Callable[[], Agent], *messages: str, **kwargs: Any
) -> list[str]:
    """Runs of ``agent_of()`` (one per message) on ``make()``'s runner, each paused on one
    request: their request ids."""

    async def go() -> list[str]:
        async with make() as run:
            ids = []
            for message in messages:
                result = await run.run(agent_of(), user_message=message, **kwargs)
                assert result.state == "paused", result
                ids.append(result.pending_requests[0].request_id)
            return ids

    return sync(go)


def worker_pass(make: Callable[[], Runner], agent_of: Callable[[], Agent]) -> list[Any]:
    """One worker pass (``Runner.resume_ready``) on ``make()``'s runner: how each ready
    run ended."""

    async def go() -> list[Any]:
        async with make() as run:
            return await run.resume_ready([agent_of()])

    return sync(go)


def pause(store_url: str, *tables: str, **rule: Any) -> list[str]:
    """Paused runs (one per table) through the public API: their request ids."""
    return paused(lambda: runner(store_url, **rule), agent, *tables)


def resume_ready(store_url: str) -> list[Any]:
    """One worker pass (``Runner.resume_ready``): how each ready run ended."""
    return worker_pass(lambda: runner(store_url), agent)


def with_store(store_url: str, use: Callable[[RunStore], Awaitable[T]]) -> T:
    """``use`` on a store of its own (as another process would open it)."""

    async def go() -> T:
        store = open_store(store_url)
        await store.setup()
        try:
            return await use(store)
        finally:
            await store.close()

    return sync(go)


def mint(store_url: str, who: str) -> tuple[str, str]:
    """A token for ``who``: its secret and its id."""

    async def add(store: RunStore) -> tuple[str, str]:
        secret, record = await add_token(store, who)
        return secret, record.token_id

    return with_store(store_url, add)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(store_url: str) -> Iterator[str]:
    """The console app (API and inbox) under uvicorn on a free 127.0.0.1 port, on a thread
    of its own; its base URL once it is up."""
    port = _free_port()
    config = uvicorn.Config(
        app(store=store_url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
