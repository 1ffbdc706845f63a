"""Helpers shared by the runtime tests: building agents, waiting for requests, reading events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig, RunResult
from afk.llms import ScriptedModel, ToolMessage
from afk.tools import tool


def types(result: RunResult) -> list[str]:
    """The event types of a run, in order."""
    return [e.type for e in result.events]


def of_type(result: RunResult, event_type: str) -> list[Any]:
    return [e for e in result.events if e.type == event_type]


def one(result: RunResult, event_type: str) -> Any:
    found = of_type(result, event_type)
    assert len(found) == 1, f"expected one {event_type}, got {len(found)}: {types(result)}"
    return found[0]


def tool_messages(messages: Iterable[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def gate(action: str, *, tool_name: str | None = None, **kwargs: Any) -> PolicyEngine:
    """An engine with one rule; it matches every tool call, or only calls to ``tool_name``."""
    condition = None
    if tool_name is not None:

        def condition(event: Any) -> bool:
            return event.tool_name == tool_name

    kwargs.setdefault("reason", f"{action} by test rule")
    return PolicyEngine(
        rules=[PolicyRule("test-rule", action=action, condition=condition, **kwargs)]
    )


def interactive(
    engine: PolicyEngine | None = None, **config: Any
) -> tuple[Runner, InMemoryInteractiveProvider]:
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        policy_engine=engine,
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", **config),
    )
    return runner, provider


def headless(engine: PolicyEngine | None = None, **config: Any) -> Runner:
    return Runner(policy_engine=engine, config=RunnerConfig(interaction_mode="headless", **config))


class Calls:
    """Records every invocation of the tools it builds."""

    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.threads: list[int] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.log]

    def drop_table_tool(self) -> Any:
        calls = self

        @tool
        def drop_table(name: str) -> str:
            """Drop a database table.

            Args:
                name: The table to drop.
            """
            calls.log.append(("drop_table", {"name": name}))
            calls.threads.append(threading.get_ident())
            return f"dropped {name}"

        return drop_table

    def read_table_tool(self) -> Any:
        calls = self

        @tool
        async def read_table(name: str) -> str:
            """Read a table."""
            calls.log.append(("read_table", {"name": name}))
            return f"rows of {name}"

        return read_table


def drop_agent(calls: Calls, turns: list[Any] | None = None, **kwargs: Any) -> Agent:
    """An agent whose model asks once to drop ``old_logs`` and then says ``Done.``."""
    from afk.llms import ToolCall

    script = turns if turns is not None else [ToolCall("drop_table", {"name": "old_logs"}), "Done."]
    kwargs.setdefault("tools", [calls.drop_table_tool(), calls.read_table_tool()])
    return Agent("db-agent", ScriptedModel(script), "You manage databases.", **kwargs)


async def wait_pending(
    provider: InMemoryInteractiveProvider, count: int = 1, timeout: float = 2.0
) -> list[Any]:
    """Wait until the provider holds ``count`` open requests (a run is waiting for them)."""
    async with asyncio.timeout(timeout):
        while len(provider.pending()) < count:
            await asyncio.sleep(0.001)
    return provider.pending()


def wait_pending_blocking(
    provider: InMemoryInteractiveProvider, count: int = 1, timeout: float = 2.0
) -> list[Any]:
    """The same, from a plain thread."""
    deadline = time.monotonic() + timeout
    while len(provider.pending()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} pending requests never appeared")
        time.sleep(0.001)
    return provider.pending()


async def run_resolving(
    runner: Runner,
    agent: Agent,
    provider: InMemoryInteractiveProvider,
    decide: Callable[[Any], Any],
    *,
    count: int = 1,
    user_message: str = "go",
    **kwargs: Any,
) -> RunResult:
    """Run the agent; when ``count`` requests are pending, call ``decide(request)`` on each."""

    async def human() -> None:
        for request in await wait_pending(provider, count):
            decide(request)

    run_task = asyncio.create_task(runner.run(agent, user_message=user_message, **kwargs))
    helper = asyncio.create_task(human())
    await asyncio.wait({run_task, helper}, timeout=5.0, return_when=asyncio.FIRST_EXCEPTION)
    if helper.done() and helper.exception() is not None:
        run_task.cancel()
        await asyncio.gather(run_task, return_exceptions=True)
        raise helper.exception()  # type: ignore[misc]
    if not helper.done():
        helper.cancel()
        await asyncio.gather(helper, return_exceptions=True)
    async with asyncio.timeout(5.0):
        return await run_task
