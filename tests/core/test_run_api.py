"""Runner.run / run_sync / run_stream and what a RunResult holds."""

from __future__ import annotations

import asyncio

from hitl_support import Calls, drop_agent, gate, headless, interactive, one, wait_pending

from afk.agents import Agent, ApprovalDecision
from afk.core import RunHandle, Runner, RunResult, ToolExecution
from afk.llms import FunctionModel, ScriptedModel, ToolCall


def test_run_sync_runs_an_agent_from_plain_code():
    calls = Calls()
    result = Runner().run_sync(drop_agent(calls), user_message="drop")
    assert isinstance(result, RunResult)
    assert result.state == "completed"
    assert result.final_text == "Done."
    assert calls.log == [("drop_table", {"name": "old_logs"})]


async def test_run_returns_a_result_with_executions_in_call_order():
    calls = Calls()
    agent = drop_agent(
        calls,
        turns=[
            [ToolCall("read_table", {"name": "a"}), ToolCall("drop_table", {"name": "b"})],
            ToolCall("read_table", {"name": "c"}),
            "Finished.",
        ],
    )
    result = await headless(gate("deny", tool_name="drop_table", reason="no")).run(
        agent, user_message="x"
    )
    assert result.state == "completed"
    assert result.final_text == "Finished."
    assert result.run_id.startswith("run_")
    assert all(isinstance(e, ToolExecution) for e in result.tool_executions)
    assert [(e.tool_name, e.args) for e in result.tool_executions] == [
        ("read_table", {"name": "a"}),
        ("drop_table", {"name": "b"}),
        ("read_table", {"name": "c"}),
    ]
    first, denied, last = result.tool_executions
    assert (first.success, first.output, first.error) == (True, "rows of a", None)
    assert denied.success is False and denied.denied and "no" in denied.error
    assert denied.policy.action == "deny"
    assert last.success
    assert result.warnings == []


async def test_run_does_not_raise_for_failures_during_the_run():
    def boom(messages, tools):
        raise ValueError("kaboom")

    result = await Runner().run(Agent("a", FunctionModel(boom), "i"), user_message="x")
    assert result.state == "failed"
    assert "kaboom" in result.error


async def test_run_stream_is_a_plain_call_returning_a_handle():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))
    handle = runner.run_stream(drop_agent(calls), user_message="drop")
    assert isinstance(handle, RunHandle)
    types_seen = []

    async with asyncio.timeout(2):
        async for event in handle:
            types_seen.append(event.type)
            if event.type == "run_paused":
                [request] = await wait_pending(provider, 1)
                provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))
        result = await handle.result()
    assert types_seen[0] == "run_started"
    assert types_seen[-1] == "run_completed"
    assert result.state == "completed"
    assert handle.done()
    assert calls.log == [("drop_table", {"name": "old_logs"})]


async def test_cancel_ends_the_run_cancelled_with_run_cancelled_last():
    calls = Calls()
    runner, provider = interactive(gate("request_approval"))
    handle = runner.run_stream(drop_agent(calls), user_message="drop")
    await wait_pending(provider, 1)
    handle.cancel()
    async with asyncio.timeout(2):
        result = await handle.result()
    assert result.state == "cancelled"
    assert result.events[-1].type == "run_cancelled"
    assert [e.type for e in result.events].count("run_cancelled") == 1
    assert calls.log == []


async def test_two_runs_share_a_runner_and_a_provider_independently():
    calls_a, calls_b = Calls(), Calls()
    runner, provider = interactive(gate("request_approval"))
    first = runner.run_stream(drop_agent(calls_a), user_message="a")
    second = runner.run_stream(drop_agent(calls_b), user_message="b")
    pending = await wait_pending(provider, 2)
    by_run = {r.run_id: r for r in pending}
    provider.resolve_approval(by_run[first.run_id].request_id, ApprovalDecision(kind="allow"))
    provider.resolve_approval(by_run[second.run_id].request_id, ApprovalDecision(kind="deny"))
    async with asyncio.timeout(2):
        a, b = await first.result(), await second.result()
    assert calls_a.log == [("drop_table", {"name": "old_logs"})]
    assert calls_b.log == []
    assert one(a, "approval_resolved").decision.kind == "allow"
    assert one(b, "approval_resolved").decision.kind == "deny"


async def test_the_agent_accepts_a_model_object_directly():
    result = await Runner().run(Agent("a", ScriptedModel(["direct"]), "i"), user_message="x")
    assert result.final_text == "direct"
