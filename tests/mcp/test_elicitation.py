"""A real MCP server's elicitation (the shop's ``cancel_order`` asks why) as the call's
``ToolContext.request_input``: over stdio and streamable HTTP, answered inline by the
provider, by the headless fallback, and as a durable request in external mode (SQLite and
Postgres) whose answer reaches the server after a resume from another runner. The same over
the legacy handshake, where the elicitation comes on the back channel mid-call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from mcp_support import ran

from afk.agents import Agent
from afk.approvals.requests import UserInputRequest
from afk.core import (
    InMemoryInteractiveProvider,
    Runner,
    RunnerConfig,
    UserInputDecision,
    UserInputRequested,
)
from afk.errors import InvalidDecisionError
from afk.llms import ScriptedModel, ToolCall
from afk.mcp import MCPServer

EXTERNAL = RunnerConfig(interaction_mode="external")


# The shop's Reason model as the client receives it in the elicitation's requestedSchema.
SCHEMA = {
    "type": "object",
    "properties": {"reason": {"title": "Reason", "type": "string"}},
    "required": ["reason"],
}


def rendered() -> dict[str, object]:
    """The requestedSchema the shop renders from its Reason model."""
    from mcp.server.elicitation import render_elicitation_schema
    from shop_server import Reason

    schema: dict[str, object] = render_elicitation_schema(Reason)
    return schema


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest_asyncio.fixture
async def shop(
    transport: str, request: pytest.FixtureRequest, stdio_shop: Callable[..., MCPServer]
) -> AsyncIterator[MCPServer]:
    if transport == "stdio":
        server = stdio_shop()
    else:
        server = MCPServer.http(request.getfixturevalue("http_url"), name="shop")
    async with server:
        yield server


def clerk(shop: MCPServer, *orders: str) -> Agent:
    calls = [ToolCall("shop__cancel_order", {"order": order}) for order in orders]
    return Agent("clerk", ScriptedModel([calls, "Done."]), mcp_servers=[shop])


def answer(reason: object) -> UserInputDecision:
    import json

    return UserInputDecision(kind="allow", value=json.dumps({"reason": reason}), approver="ann")


async def test_interactive_the_provider_answers_inline(shop: MCPServer, ledger: Path) -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
    )
    asked: list[tuple[str, object]] = []
    handle = runner.run_stream(clerk(shop, "o-5", "o-6"), user_message="cancel o-5 and o-6")
    async for event in handle:
        if isinstance(event, UserInputRequested):
            request = event.request
            asked.append((request.prompt, request.input_schema))
            if request.tool_args == {"order": "o-5"}:
                provider.resolve_input(request.request_id, answer("duplicate"))
            else:
                provider.resolve_input(
                    request.request_id, UserInputDecision(kind="deny", approver="ann")
                )
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.state == "completed", result.error
    assert sorted(asked) == [(f"Why cancel {order}?", SCHEMA) for order in ("o-5", "o-6")]
    assert [e.output for e in result.tool_executions] == [
        {"result": "cancelled o-5: duplicate"},
        {"result": "kept o-6: the human did not say why (decline)"},
    ]
    assert ran(ledger) == ["cancel o-5 duplicate"]


async def test_headless_the_fallback_answers_and_the_server_hears_cancel(
    shop: MCPServer, ledger: Path
) -> None:
    result = await asyncio.wait_for(Runner().run(clerk(shop, "o-7"), user_message="cancel o-7"), 30)
    [call] = result.tool_executions
    assert call.output == {"result": "kept o-7: the human did not say why (cancel)"}
    [requested] = [e for e in result.events if isinstance(e, UserInputRequested)]
    assert requested.request.prompt == "Why cancel o-7?"
    assert ran(ledger) == []


async def test_external_the_run_pauses_and_the_answer_reaches_the_server_once(
    shop: MCPServer, ledger: Path, store_url: str
) -> None:
    agent = clerk(shop, "o-8")
    async with Runner(config=EXTERNAL, store=store_url) as runner:
        paused = await asyncio.wait_for(runner.run(agent, user_message="cancel o-8"), 30)
        assert paused.state == "paused", paused.error
        [request] = paused.pending_requests
        assert isinstance(request, UserInputRequest)
        assert (request.prompt, request.input_schema) == ("Why cancel o-8?", SCHEMA)
        assert (request.tool_name, request.tool_args) == ("shop__cancel_order", {"order": "o-8"})
        assert ran(ledger) == []
        with pytest.raises(InvalidDecisionError, match="does not fit its input_schema"):
            await runner.resolve(request.request_id, answer(5))
        assert runner.store is not None
        pending = await runner.store.list_requests(status="pending", run_id=paused.run_id)
        assert [r.request_id for r in pending] == [request.request_id]
        await runner.resolve(request.request_id, answer("duplicate"))
    async with Runner(config=EXTERNAL, store=store_url) as other:
        done = await asyncio.wait_for(other.resume(paused.run_id, agent), 30)
        assert done.state == "completed", done.error
        assert [e.output for e in done.tool_executions] == [{"result": "cancelled o-8: duplicate"}]
        assert await other.resume_ready([agent]) == []
    assert ran(ledger) == ["cancel o-8 duplicate"]  # after the elicitation: exactly once


@pytest.fixture
def legacy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speak the pre-2026 handshake, as with a server that does not know the 2026 protocol:
    the elicitation is a request on the back channel, answered from the SDK's receive loop."""
    import afk.mcp.server

    monkeypatch.setattr(afk.mcp.server, "_CLIENT_MODE", "legacy")


@pytest.mark.usefixtures("legacy")
async def test_legacy_back_channel_pauses_cancels_the_call_and_re_enters(
    stdio_shop: Callable[..., MCPServer], ledger: Path, store_url: str
) -> None:
    async with stdio_shop() as shop:
        agent = clerk(shop, "o-9")
        async with Runner(config=EXTERNAL, store=store_url) as runner:
            paused = await asyncio.wait_for(runner.run(agent, user_message="cancel o-9"), 30)
            assert paused.state == "paused", paused.error
            [request] = paused.pending_requests
            assert isinstance(request, UserInputRequest)
            # On the back channel the schema comes as the server rendered it, title and all.
            assert (request.prompt, request.input_schema) == ("Why cancel o-9?", rendered())
            await runner.resolve(request.request_id, answer("typo"))
        async with Runner(config=EXTERNAL, store=store_url) as other:
            done = await asyncio.wait_for(other.resume(paused.run_id, agent), 30)
        assert done.state == "completed", done.error
        assert [e.output for e in done.tool_executions] == [{"result": "cancelled o-9: typo"}]
        # The cancelled first entry left the session serving: the next call goes through.
        again = await asyncio.wait_for(Runner().run(clerk(shop, "o-10"), user_message="x"), 30)
        assert again.tool_executions[0].output == {
            "result": "kept o-10: the human did not say why (cancel)"
        }
    assert ran(ledger) == ["cancel o-9 typo"]


@pytest.mark.usefixtures("legacy")
async def test_legacy_inline_the_humans_wait_does_not_count_against_timeout_s(
    stdio_shop: Callable[..., MCPServer], ledger: Path
) -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
    )
    async with stdio_shop() as shop:
        shop.timeout_s = 0.5  # for the call (a connect would need longer)
        handle = runner.run_stream(clerk(shop, "o-11"), user_message="cancel o-11")
        async for event in handle:
            if isinstance(event, UserInputRequested):
                await asyncio.sleep(1.0)  # twice the call's timeout_s
                provider.resolve_input(event.request.request_id, answer("late"))
        result = await asyncio.wait_for(handle.result(), 30)
    assert [e.output for e in result.tool_executions] == [{"result": "cancelled o-11: late"}]
    assert ran(ledger) == ["cancel o-11 late"]
