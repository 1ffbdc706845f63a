"""Several tool calls in one model step: gated each on its own, answered independently."""

from __future__ import annotations

import asyncio

import pytest
from hitl_support import Calls, gate, interactive, of_type, one, types, wait_pending

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule, UserInputDecision
from afk.errors import RequestExpiredError
from afk.llms import FunctionModel, ScriptedModel, ToolCall, ToolMessage
from afk.tools import tool


def two_drops_agent(calls: Calls, extra: list | None = None) -> Agent:
    step_one = [ToolCall("drop_table", {"name": "a"}), ToolCall("drop_table", {"name": "b"})]
    return Agent(
        "db-agent",
        ScriptedModel([step_one + (extra or []), "done"]),
        "i",
        tools=[calls.drop_table_tool(), calls.read_table_tool()],
    )


def request_for(provider, name):
    return next(r for r in provider.pending() if r.tool_args["name"] == name)


async def test_each_call_is_evaluated_and_requested_on_its_own_and_pending_together():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    pending = await wait_pending(provider, 2)

    assert sorted(r.tool_args["name"] for r in pending) == ["a", "b"]
    assert len({r.request_id for r in pending}) == 2
    assert len({r.tool_call_id for r in pending}) == 2
    for request in pending:
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))
    async with asyncio.timeout(2):
        result = await handle.result()

    assert sorted(calls.log, key=str) == [
        ("drop_table", {"name": "a"}),
        ("drop_table", {"name": "b"}),
    ]
    assert len(of_type(result, "policy_decision")) == 2
    assert len(of_type(result, "approval_requested")) == 2


async def test_both_requests_are_open_when_the_run_reports_it_paused():
    """A UI that reacts to run_paused (or approval_requested) must be able to answer at once."""
    calls = Calls()
    runner, provider = interactive(
        gate("request_approval", tool_name="drop_table"), approval_timeout_s=2
    )
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    pending_at_pause = None
    async with asyncio.timeout(3):
        async for event in handle:
            if event.type == "run_paused":
                pending_at_pause = sorted(r.request_id for r in provider.pending())
                await wait_pending(provider, 2)
                for request_id in event.request_ids:
                    provider.resolve_approval(request_id, ApprovalDecision(kind="allow"))
        result = await handle.result()
    assert pending_at_pause == sorted(one(result, "run_paused").request_ids)


async def test_one_pause_for_the_step_and_one_resume_after_the_last_decision():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    seen: list[str] = []

    async def watch():
        async for event in handle:
            seen.append(event.type)

    watcher = asyncio.create_task(watch())
    await wait_pending(provider, 2)
    provider.resolve_approval(request_for(provider, "a").request_id, ApprovalDecision(kind="allow"))
    async with asyncio.timeout(2):
        while "tool_completed" not in seen:
            await asyncio.sleep(0.001)
    assert "run_resumed" not in seen  # one request is still open
    provider.resolve_approval(request_for(provider, "b").request_id, ApprovalDecision(kind="deny"))
    async with asyncio.timeout(2):
        result = await handle.result()
        await watcher

    paused = one(result, "run_paused")
    resumed = one(result, "run_resumed")
    requested = [e.request.request_id for e in of_type(result, "approval_requested")]
    assert paused.request_ids == tuple(requested)
    assert set(resumed.request_ids) == set(requested)
    order = types(result)
    # paused right after the step's last request; resumed right after the last decision
    assert (
        order.index("run_paused")
        == max(i for i, t in enumerate(order) if t == "approval_requested") + 1
    )
    assert (
        order.index("run_resumed")
        == max(i for i, t in enumerate(order) if t == "approval_resolved") + 1
    )


async def test_partial_approval_runs_only_the_approved_call():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    await wait_pending(provider, 2)
    provider.resolve_approval(
        request_for(provider, "b").request_id, ApprovalDecision(kind="deny", reason="keep b")
    )
    provider.resolve_approval(request_for(provider, "a").request_id, ApprovalDecision(kind="allow"))
    async with asyncio.timeout(2):
        result = await handle.result()

    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "a"})]
    first, second = result.tool_executions
    assert (first.args, first.success, first.denied) == ({"name": "a"}, True, False)
    assert (second.args, second.success, second.denied) == ({"name": "b"}, False, True)
    assert "keep b" in second.error


async def test_an_allowed_call_does_not_wait_for_its_siblings_approval():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    agent = Agent(
        "db-agent",
        ScriptedModel(
            [[ToolCall("drop_table", {"name": "a"}), ToolCall("read_table", {"name": "r"})], "done"]
        ),
        "i",
        tools=[calls.drop_table_tool(), calls.read_table_tool()],
    )
    handle = runner.run_stream(agent, user_message="x")
    async with asyncio.timeout(2):
        async for event in handle:
            if event.type == "tool_completed" and event.tool_name == "read_table":
                # the read finished while the drop is still waiting for its human
                assert calls.log == [("read_table", {"name": "r"})]
                [request] = await wait_pending(provider, 1)
                provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))
        result = await handle.result()

    order = [(e.type, getattr(e, "tool_name", None)) for e in result.events]
    assert order.index(("tool_completed", "read_table")) < order.index(("approval_resolved", None))
    assert calls.names() == ["read_table", "drop_table"]


async def test_results_go_back_to_the_model_in_the_models_call_order():
    finished = []

    @tool
    async def slow(tag: str) -> str:
        await asyncio.sleep(0.05)
        finished.append(tag)
        return f"slow {tag}"

    @tool
    async def fast(tag: str) -> str:
        finished.append(tag)
        return f"fast {tag}"

    seen: list[list] = []

    def model(messages, tools):
        seen.append(messages)
        if len(seen) == 1:
            return [
                ToolCall("fast", {"tag": "gated-1"}, id="c1"),
                ToolCall("slow", {"tag": "free-2"}, id="c2"),
                ToolCall("fast", {"tag": "gated-3"}, id="c3"),
                ToolCall("fast", {"tag": "free-4"}, id="c4"),
            ]
        return "done"

    engine = PolicyEngine(
        rules=[
            PolicyRule(
                "gate-gated",
                action="request_approval",
                condition=lambda e: e.tool_args.get("tag", "").startswith("gated"),
            )
        ]
    )
    runner, provider = interactive(engine)
    handle = runner.run_stream(
        Agent("a", FunctionModel(model), "i", tools=[slow, fast]), user_message="x"
    )
    await wait_pending(provider, 2)
    # answer the later call first
    provider.resolve_approval(
        next(r for r in provider.pending() if r.tool_call_id == "c3").request_id,
        ApprovalDecision(kind="allow"),
    )
    async with asyncio.timeout(2):
        while "gated-3" not in finished:
            await asyncio.sleep(0.001)
    provider.resolve_approval(
        next(r for r in provider.pending() if r.tool_call_id == "c1").request_id,
        ApprovalDecision(kind="allow"),
    )
    async with asyncio.timeout(2):
        result = await handle.result()

    assert finished.index("gated-3") < finished.index("gated-1")
    tool_results = [m for m in seen[1] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_results] == ["c1", "c2", "c3", "c4"]
    assert [m.content for m in tool_results] == [
        "fast gated-1",
        "slow free-2",
        "fast gated-3",
        "fast free-4",
    ]
    assert [e.tool_call_id for e in result.tool_executions] == ["c1", "c2", "c3", "c4"]


async def test_stop_run_on_one_call_expires_its_siblings_requests():
    calls = Calls()
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    await wait_pending(provider, 2)
    sibling = request_for(provider, "b")
    provider.resolve_approval(
        request_for(provider, "a").request_id,
        ApprovalDecision(kind="deny", reason="stop everything", stop_run=True),
    )
    async with asyncio.timeout(2):
        result = await handle.result()

    assert result.state == "stopped"
    assert calls.log == []
    resolved = {e.request_id: e for e in of_type(result, "approval_resolved")}
    assert resolved[sibling.request_id].decided_by == "fallback"
    assert resolved[sibling.request_id].decision.kind == "deny"
    assert "run stopped" in resolved[sibling.request_id].decision.reason
    assert provider.pending() == []
    with pytest.raises(RequestExpiredError):
        provider.resolve_approval(sibling.request_id, ApprovalDecision(kind="allow"))
    assert calls.log == []
    assert result.events[-1].type == "run_completed"
    assert result.events[-1].state == "stopped"
    assert len(of_type(result, "llm_called")) == 1


async def test_stop_run_lets_siblings_that_are_already_running_finish():
    release = asyncio.Event()
    finished = []

    @tool
    async def backup(name: str) -> str:
        await release.wait()
        finished.append(name)
        return f"backed up {name}"

    calls = Calls()
    agent = Agent(
        "db-agent",
        ScriptedModel(
            [[ToolCall("backup", {"name": "a"}), ToolCall("drop_table", {"name": "a"})], "done"]
        ),
        "i",
        tools=[backup, calls.drop_table_tool()],
    )
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    handle = runner.run_stream(agent, user_message="x")
    [request] = await wait_pending(provider, 1)
    provider.resolve_approval(request.request_id, ApprovalDecision(kind="deny", stop_run=True))
    await asyncio.sleep(0.01)
    release.set()
    async with asyncio.timeout(2):
        result = await handle.result()

    assert result.state == "stopped"
    assert finished == ["a"]
    backup_run, drop_run = result.tool_executions
    assert backup_run.success and backup_run.output == "backed up a"
    assert drop_run.denied


async def test_an_approved_call_does_not_wait_for_a_sibling_that_times_out():
    calls = Calls()
    runner, provider = interactive(
        gate("request_approval", tool_name="drop_table"), approval_timeout_s=0.3
    )
    handle = runner.run_stream(two_drops_agent(calls), user_message="x")
    await wait_pending(provider, 2)
    provider.resolve_approval(request_for(provider, "a").request_id, ApprovalDecision(kind="allow"))
    async with asyncio.timeout(0.2):  # well before b's deadline
        while calls.log != [("drop_table", {"name": "a"})]:
            await asyncio.sleep(0.001)
    assert not handle.done()
    async with asyncio.timeout(2):
        result = await handle.result()

    assert calls.log == [("drop_table", {"name": "a"})]
    decided = {e.decided_by for e in of_type(result, "approval_resolved")}
    assert decided == {"human", "timeout"}
    assert result.tool_executions[1].denied


async def test_approval_and_input_requests_of_one_step_are_pending_together():
    sent = []

    @tool
    def send_note(text: str) -> str:
        sent.append(text)
        return "noted"

    calls = Calls()
    engine = PolicyEngine(
        rules=[
            PolicyRule(
                "approve-drops",
                action="request_approval",
                condition=lambda e: e.tool_name == "drop_table",
            ),
            PolicyRule(
                "ask-for-text",
                action="request_user_input",
                input_target_arg="text",
                reason="Write the note",
                condition=lambda e: e.tool_name == "send_note",
            ),
        ]
    )
    agent = Agent(
        "a",
        ScriptedModel(
            [[ToolCall("drop_table", {"name": "a"}), ToolCall("send_note", {"text": "?"})], "ok"]
        ),
        "i",
        tools=[calls.drop_table_tool(), send_note],
    )
    runner, provider = interactive(engine)
    handle = runner.run_stream(agent, user_message="x")
    pending = await wait_pending(provider, 2)
    kinds = {r.kind: r for r in pending}
    assert set(kinds) == {"approval", "user_input"}
    provider.resolve_input(
        kinds["user_input"].request_id, UserInputDecision(kind="allow", value="dropping a")
    )
    provider.resolve_approval(kinds["approval"].request_id, ApprovalDecision(kind="allow"))
    async with asyncio.timeout(2):
        result = await handle.result()
    assert sent == ["dropping a"]
    assert calls.log == [("drop_table", {"name": "a"})]
    assert len(one(result, "run_paused").request_ids) == 2
