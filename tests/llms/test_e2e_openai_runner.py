"""The seed example end to end: a gated tool, headless deny, a real OpenAI-protocol server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, openai_sse_reply

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.tools import tool

dropped: list[str] = []


@tool
def drop_table(name: str) -> str:
    """Drop a database table.

    Args:
        name: the table to drop
    """
    dropped.append(name)
    return f"dropped {name}"


def chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with FakeServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-e2e")
        yield fake


async def test_denied_drop_table_reaches_the_model_as_a_tool_message(server: FakeServer) -> None:
    call = {
        "index": 0,
        "id": "call_drop",
        "type": "function",
        "function": {"name": "drop_table", "arguments": json.dumps({"name": "users"})},
    }
    # The runner prefers stream(), so the server answers in SSE.
    server.queue(
        openai_sse_reply([chunk({"role": "assistant", "tool_calls": [call]})]),
        openai_sse_reply(
            [chunk({"content": "I was not allowed "}), chunk({"content": "to drop users."})]
        ),
    )
    gate = PolicyRule(
        "approve-drops",
        action="request_approval",
        condition=lambda event: event.tool_name == "drop_table",
    )
    agent = Agent(
        "dba",
        "gpt-4o-mini",
        "You manage the database.",
        tools=[drop_table],
        policy_engine=PolicyEngine([gate]),
    )

    result = await Runner(config=RunnerConfig(interaction_mode="headless")).run(
        agent, user_message="Drop the users table."
    )

    assert result.state == "completed", result.error
    assert result.final_text == "I was not allowed to drop users."
    assert dropped == []
    assert len(server.requests) == 2
    first, second = server.bodies
    assert first["tools"][0]["function"]["name"] == "drop_table"
    assistant_turn, tool_result = second["messages"][-2:]
    assert assistant_turn["tool_calls"][0]["id"] == "call_drop"
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == "call_drop"
    assert "denied" in tool_result["content"].lower()
