"""Headless mode: every policy action, resolved without a human by the configured fallbacks."""

from __future__ import annotations

import pytest
from hitl_support import Calls, drop_agent, gate, headless, of_type, one, tool_messages, types

from afk.core import HeadlessInteractionProvider, Runner, RunnerConfig


async def test_allow_runs_the_tool():
    calls = Calls()
    result = await headless(gate("allow")).run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    decision = one(result, "policy_decision")
    assert (decision.action, decision.rule_id) == ("allow", "test-rule")
    assert types(result) == [
        "run_started",
        "step_started",
        "llm_called",
        "llm_completed",
        "policy_decision",
        "tool_started",
        "tool_completed",
        "step_started",
        "llm_called",
        "llm_completed",
        "run_completed",
    ]


async def test_no_policy_at_all_runs_the_tool():
    calls = Calls()
    result = await Runner().run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "old_logs"})]


async def test_deny_blocks_the_tool_tells_the_model_why_and_the_run_completes():
    calls = Calls()
    engine = gate("deny", reason="Dropping tables is forbidden on Fridays.")
    result = await headless(engine).run(drop_agent(calls), user_message="drop")

    assert result.state == "completed"
    assert result.final_text == "Done."
    assert calls.log == []
    assert "approval_requested" not in types(result)
    [execution] = result.tool_executions
    assert execution.denied and not execution.executed and not execution.success
    completed = one(result, "tool_completed")
    assert completed.denied is True
    assert completed.tool_call_id == execution.tool_call_id
    [message] = tool_messages(result.messages)
    assert message.tool_call_id == execution.tool_call_id
    assert "denied" in message.content.lower()
    assert "Dropping tables is forbidden on Fridays." in message.content


async def test_request_approval_with_default_fallback_is_denied_without_pausing():
    calls = Calls()
    result = await headless(gate("request_approval")).run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == []
    requested = one(result, "approval_requested")
    resolved = one(result, "approval_resolved")
    assert resolved.request_id == requested.request.request_id
    assert resolved.decided_by == "fallback"
    assert resolved.decision.kind == "deny"
    assert "run_paused" not in types(result)
    assert "run_resumed" not in types(result)
    assert result.tool_executions[0].decided_by == "fallback"
    assert tool_messages(result.messages)[0].is_error


async def test_request_approval_with_explicit_allow_fallback_runs_the_tool():
    calls = Calls()
    runner = headless(gate("request_approval"), approval_fallback="allow")
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("fallback", "allow")
    assert "run_paused" not in types(result)
    order = types(result)
    assert (
        order.index("approval_requested")
        < order.index("approval_resolved")
        < order.index("tool_started")
    )


async def test_request_user_input_with_default_fallback_is_denied():
    calls = Calls()
    result = await headless(gate("request_user_input")).run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert calls.log == []
    one(result, "user_input_requested")
    resolved = one(result, "user_input_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("fallback", "deny")
    assert "run_paused" not in types(result)
    assert result.tool_executions[0].denied


async def test_request_user_input_with_allow_fallback_runs_the_tool_with_its_original_arguments():
    calls = Calls()
    runner = headless(gate("request_user_input"), input_fallback="allow")
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "user_input_resolved")
    assert (resolved.decided_by, resolved.decision.kind) == ("fallback", "allow")
    assert result.tool_executions[0].args == {"name": "old_logs"}


async def test_headless_with_a_matching_headless_provider_behaves_the_same():
    calls = Calls()
    runner = Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=HeadlessInteractionProvider(approval_fallback="allow"),
        config=RunnerConfig(interaction_mode="headless", approval_fallback="allow"),
    )
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    assert one(result, "approval_resolved").decided_by == "fallback"


@pytest.mark.parametrize("action", ["deny", "request_approval", "request_user_input"])
async def test_gated_tools_leave_ungated_ones_alone(action):
    calls = Calls()
    from afk.llms import ToolCall

    agent = drop_agent(
        calls,
        turns=[
            [ToolCall("drop_table", {"name": "t"}), ToolCall("read_table", {"name": "t"})],
            "done",
        ],
    )
    result = await headless(gate(action, tool_name="drop_table")).run(agent, user_message="x")
    assert calls.names() == ["read_table"]
    actions = [(e.tool_name, e.action) for e in of_type(result, "policy_decision")]
    assert actions == [("drop_table", action), ("read_table", "allow")]
