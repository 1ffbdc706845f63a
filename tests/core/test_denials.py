"""Denials from any source reach the model with a reason; stop_run ends the run ``stopped``."""

from __future__ import annotations

import asyncio

import pytest
from hitl_support import Calls, gate, headless, interactive, of_type, one, wait_pending

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.llms import FunctionModel, ToolCall, ToolMessage


def recording_agent(calls: Calls, seen: list) -> Agent:
    def model(messages, tools):
        seen.append(list(messages))
        if len(seen) == 1:
            return ToolCall("drop_table", {"name": "old_logs"}, id="call-drop")
        return "ok, I will not drop it"

    return Agent("db-agent", FunctionModel(model), "i", tools=[calls.drop_table_tool()])


@pytest.mark.parametrize(
    ("source", "expected_reason"),
    [
        ("rule", "No drops in production."),
        ("human", "Billing still reads it."),
        ("timeout", "timed out"),
        ("fallback", "approval_fallback"),
    ],
)
async def test_every_kind_of_deny_reaches_the_model_with_its_reason(source, expected_reason):
    calls = Calls()
    seen: list = []
    agent = recording_agent(calls, seen)
    if source == "rule":
        runner = headless(gate("deny", reason="No drops in production."))
        result = await runner.run(agent, user_message="x")
    elif source == "fallback":
        result = await headless(gate("request_approval")).run(agent, user_message="x")
    else:
        runner, provider = interactive(
            gate("request_approval"), approval_timeout_s=0.05 if source == "timeout" else 5
        )
        handle = runner.run_stream(agent, user_message="x")
        if source == "human":
            [request] = await wait_pending(provider, 1)
            provider.resolve_approval(
                request.request_id, ApprovalDecision(kind="deny", reason="Billing still reads it.")
            )
        async with asyncio.timeout(2):
            result = await handle.result()

    assert result.state == "completed"
    assert result.final_text == "ok, I will not drop it"
    assert calls.log == []
    [message] = [m for m in seen[1] if isinstance(m, ToolMessage)]
    assert message.tool_call_id == "call-drop"
    assert message.is_error
    assert "denied" in message.content.lower()
    assert expected_reason in message.content
    completed = one(result, "tool_completed")
    assert (completed.tool_call_id, completed.denied, completed.success) == (
        "call-drop",
        True,
        False,
    )
    [execution] = result.tool_executions
    assert execution.denied and not execution.executed


async def test_a_deny_rule_with_stop_run_stops_the_run():
    calls = Calls()
    seen: list = []
    engine = PolicyEngine(
        rules=[PolicyRule("halt", action="deny", stop_run=True, reason="Never drop.")]
    )
    result = await headless(engine).run(recording_agent(calls, seen), user_message="x")

    assert result.state == "stopped"
    assert calls.log == []
    assert len(seen) == 1  # the model is not called again
    last = result.events[-1]
    assert (last.type, last.state) == ("run_completed", "stopped")
    assert one(result, "tool_completed").denied
    assert result.tool_executions[0].denied


async def test_a_stop_run_rule_also_stops_in_interactive_mode_without_asking():
    calls = Calls()
    seen: list = []
    engine = PolicyEngine(rules=[PolicyRule("halt", action="deny", stop_run=True)])
    runner, provider = interactive(engine)
    async with asyncio.timeout(2):
        result = await runner.run(recording_agent(calls, seen), user_message="x")
    assert result.state == "stopped"
    assert of_type(result, "approval_requested") == []
    assert provider.pending() == []


async def test_a_plain_deny_lets_the_run_continue_to_completion():
    calls = Calls()
    seen: list = []
    result = await headless(gate("deny")).run(recording_agent(calls, seen), user_message="x")
    assert result.state == "completed"
    assert len(seen) == 2
