"""The run event stream: order, numbering, the terminal event, notify, and JSON round-trips."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from hitl_support import (
    Calls,
    drop_agent,
    gate,
    headless,
    interactive,
    of_type,
    one,
    run_resolving,
    types,
)

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule, UserInputDecision
from afk.core import (
    ApprovalRequested,
    ApprovalResolved,
    LLMCalled,
    LLMCompleted,
    PolicyDecisionEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunResumed,
    RunStarted,
    RunWarning,
    StepStarted,
    TextDelta,
    ToolCompleted,
    ToolStarted,
    UserInputRequested,
    UserInputResolved,
    event_from_dict,
    event_to_dict,
)
from afk.llms import FunctionModel, ModelResponse, ScriptedModel, ToolCall
from afk.tools import tool

TERMINAL = {"run_completed", "run_failed", "run_cancelled"}
RUN_LEVEL = {"run_started"} | TERMINAL


def check_stream(result) -> None:
    """The invariants every run's events keep."""
    events = result.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.run_id == result.run_id for e in events)
    assert all(b.ts >= a.ts for a, b in itertools.pairwise(events))
    assert events[0].type == "run_started"
    assert [e.type for e in events if e.type in TERMINAL] == [events[-1].type]
    for event in events:
        if event.type in RUN_LEVEL:
            assert event.step is None, event
        elif event.type != "warning":
            assert isinstance(event.step, int) and event.step >= 1, event


class Streaming:
    """A tiny streaming model: text deltas, then the whole response."""

    def __init__(self, pieces):
        self.pieces = pieces

    async def complete(self, messages, tools):
        raise AssertionError("the runner should prefer stream()")

    async def stream(self, messages, tools):
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece
        yield ModelResponse(text="".join(self.pieces))


async def test_a_streaming_model_produces_text_deltas_before_llm_completed():
    result = await headless().run(
        Agent("a", Streaming(["Hel", "lo", " world"]), "i"), user_message="x"
    )
    check_stream(result)
    deltas = of_type(result, "text_delta")
    assert [d.delta for d in deltas] == ["Hel", "lo", " world"]
    assert all(d.step == 1 for d in deltas)
    order = types(result)
    assert order.index("llm_called") < order.index("text_delta")
    assert max(i for i, t in enumerate(order) if t == "text_delta") < order.index("llm_completed")
    assert result.final_text == "Hello world"
    assert one(result, "llm_completed").text == "Hello world"


async def test_a_non_streaming_model_produces_no_text_deltas():
    result = await headless().run(Agent("a", ScriptedModel(["hi"]), "i"), user_message="x")
    assert "text_delta" not in types(result)


async def test_seq_run_id_and_steps_across_a_multi_step_gated_run():
    calls = Calls()
    agent = drop_agent(
        calls,
        turns=[
            ToolCall("read_table", {"name": "a"}),
            ToolCall("drop_table", {"name": "a"}),
            "done",
        ],
    )
    runner, provider = interactive(gate("request_approval", tool_name="drop_table"))
    result = await run_resolving(
        runner,
        agent,
        provider,
        lambda r: provider.resolve_approval(r.request_id, ApprovalDecision(kind="allow")),
    )
    check_stream(result)
    assert [e.step for e in of_type(result, "step_started")] == [1, 2, 3]
    assert one(result, "approval_requested").step == 2
    assert one(result, "run_paused").step == 2
    started = one(result, "run_started")
    assert (started.agent_name, started.user_message) == ("db-agent", "go")
    llm_called = of_type(result, "llm_called")
    assert [e.message_count for e in llm_called] == [2, 4, 6]
    llm_completed = of_type(result, "llm_completed")
    assert llm_completed[0].tool_calls[0].name == "read_table"
    assert llm_completed[-1].text == "done"


async def test_policy_and_tool_events_carry_their_fields():
    calls = Calls()
    engine = PolicyEngine(
        rules=[
            PolicyRule("audit", action="allow", reason="reads are fine", priority=1),
            PolicyRule("catch-all", action="allow"),
        ]
    )
    agent = drop_agent(calls, turns=[ToolCall("read_table", {"name": "users"}, id="c-1"), "done"])
    result = await headless(engine).run(agent, user_message="x")
    decision = one(result, "policy_decision")
    assert isinstance(decision, PolicyDecisionEvent)
    assert decision.tool_name == "read_table"
    assert decision.tool_call_id == "c-1"
    assert decision.action == "allow"
    assert decision.rule_id == "audit"
    assert set(decision.matched_rules) == {"audit", "catch-all"}
    assert decision.reason == "reads are fine"
    started = one(result, "tool_started")
    assert (started.tool_name, started.tool_call_id, started.args) == (
        "read_table",
        "c-1",
        {"name": "users"},
    )
    completed = one(result, "tool_completed")
    assert (completed.tool_name, completed.tool_call_id, completed.success, completed.denied) == (
        "read_table",
        "c-1",
        True,
        False,
    )
    assert completed.output == "rows of users"
    [execution] = result.tool_executions
    assert (execution.tool_name, execution.tool_call_id, execution.args) == (
        "read_table",
        "c-1",
        {"name": "users"},
    )
    assert (execution.success, execution.output, execution.error) == (True, "rows of users", None)
    assert execution.policy.rule_id == "audit"


async def test_run_stream_yields_the_same_events_as_the_result():
    calls = Calls()
    handle = headless(gate("request_approval")).run_stream(drop_agent(calls), user_message="x")
    streamed = []
    async with asyncio.timeout(2):
        async for event in handle:
            streamed.append(event)
        result = await handle.result()
    assert streamed == result.events
    assert streamed[-1].type == "run_completed"
    assert handle.run_id == result.run_id


# -- the terminal event ------------------------------------------------------------------------


async def test_completed_run_ends_with_run_completed():
    result = await headless().run(Agent("a", ScriptedModel(["bye"]), "i"), user_message="x")
    check_stream(result)
    last = result.events[-1]
    assert isinstance(last, RunCompleted)
    assert (last.state, last.final_text) == ("completed", "bye")


async def test_failed_run_ends_with_run_failed():
    result = await headless().run(Agent("a", ScriptedModel([]), "i"), user_message="x")
    check_stream(result)
    assert isinstance(result.events[-1], RunFailed)
    assert result.events[-1].error


async def test_cancelled_run_ends_with_run_cancelled():
    async def slow(messages, tools):
        await asyncio.sleep(5)
        return "never"

    handle = headless().run_stream(Agent("a", FunctionModel(slow), "i"), user_message="x")
    async with asyncio.timeout(2):
        async for event in handle:
            if event.type == "llm_called":
                handle.cancel()
        result = await handle.result()
    assert result.state == "cancelled"
    check_stream(result)
    assert isinstance(result.events[-1], RunCancelled)


async def test_cancelling_right_after_run_stream_still_gives_a_cancelled_result():
    handle = headless().run_stream(Agent("a", ScriptedModel(["hi"]), "i"), user_message="x")
    handle.cancel()
    async with asyncio.timeout(2):
        result = await handle.result()
    assert result.state == "cancelled"
    assert result.events[-1].type == "run_cancelled"


# -- notify ------------------------------------------------------------------------------------


class NotifyingProvider:
    def __init__(self, notify):
        self.notify = notify

    async def request_approval(self, request):
        return ApprovalDecision(kind="allow")

    async def request_user_input(self, request):
        return UserInputDecision(kind="allow", value="typed")


def notifying_runner(notify):
    from afk.core import Runner, RunnerConfig

    return Runner(
        policy_engine=gate("request_approval"),
        interaction_provider=NotifyingProvider(notify),
        config=RunnerConfig(interaction_mode="interactive"),
    )


@pytest.mark.parametrize("is_async", [False, True])
async def test_notify_receives_every_event(is_async):
    received = []

    def sync_notify(event):
        received.append(event)

    async def async_notify(event):
        received.append(event)

    calls = Calls()
    result = await notifying_runner(async_notify if is_async else sync_notify).run(
        drop_agent(calls), user_message="x"
    )
    assert result.state == "completed"
    assert received == result.events
    assert "approval_requested" in [e.type for e in received]


async def test_a_raising_notify_becomes_a_warning_and_the_run_goes_on():
    received = []

    def notify(event):
        received.append(event.type)
        if event.type == "tool_started":
            raise RuntimeError("dashboard offline")

    calls = Calls()
    result = await notifying_runner(notify).run(drop_agent(calls), user_message="x")
    assert result.state == "completed"
    assert len(calls.log) == 1
    check_stream(result)
    warning = one(result, "warning")
    assert isinstance(warning, RunWarning)
    assert "dashboard offline" in warning.message
    order = types(result)
    assert order[order.index("tool_started") + 1] == "warning"
    assert "warning" not in received  # warnings are not sent to notify
    assert len(result.warnings) == 1 and "dashboard offline" in result.warnings[0]


async def test_a_notify_raising_on_the_terminal_event_is_only_counted_in_warnings():
    def notify(event):
        if event.type == "run_completed":
            raise RuntimeError("too late to tell")

    calls = Calls()
    result = await notifying_runner(notify).run(drop_agent(calls), user_message="x")
    assert result.state == "completed"
    assert result.events[-1].type == "run_completed"
    assert "warning" not in types(result)
    assert len(result.warnings) == 1 and "too late to tell" in result.warnings[0]


# -- JSON round-trips --------------------------------------------------------------------------


async def _runs_covering_every_event_type():
    results = []
    # streaming + user input + approval + pause/resume + tools + warning
    mail_sent = []

    @tool
    def send(body: str) -> dict:
        mail_sent.append(body)
        return {"sent": body, "n": 1}

    class StreamingTools:
        async def complete(self, messages, tools):
            raise AssertionError

        async def stream(self, messages, tools):
            turn = sum(1 for m in messages if m.role == "assistant")
            if turn == 0:
                yield "thinking"
                yield ModelResponse(text="thinking", tool_calls=[ToolCall("send", {"body": "hi"})])
            elif turn == 1:
                yield ModelResponse(tool_calls=[ToolCall("send", {"body": "again"})])
            else:
                yield "done"
                yield ModelResponse(text="done")

    def notify(event):
        if event.type == "step_started":
            raise ValueError("notify broke")

    class Provider(NotifyingProvider):
        pass

    from afk.core import Runner, RunnerConfig

    engine = PolicyEngine(
        rules=[
            PolicyRule(
                "ask",
                action="request_user_input",
                input_target_arg="body",
                condition=lambda e: e.step == 1,
            ),
            PolicyRule("approve", action="request_approval", condition=lambda e: e.step == 2),
        ]
    )
    runner = Runner(
        policy_engine=engine,
        interaction_provider=Provider(notify),
        config=RunnerConfig(interaction_mode="interactive"),
    )
    results.append(
        await runner.run(Agent("a", StreamingTools(), "i", tools=[send]), user_message="x")
    )
    results.append(await headless().run(Agent("a", ScriptedModel([]), "i"), user_message="x"))

    async def slow(messages, tools):
        await asyncio.sleep(5)

    handle = headless().run_stream(Agent("a", FunctionModel(slow), "i"), user_message="x")
    async for event in handle:
        if event.type == "llm_called":
            handle.cancel()
    results.append(await handle.result())
    return results


async def test_every_event_round_trips_through_dicts_and_json():
    results = await _runs_covering_every_event_type()
    classes = {
        RunStarted,
        StepStarted,
        LLMCalled,
        LLMCompleted,
        TextDelta,
        PolicyDecisionEvent,
        ApprovalRequested,
        ApprovalResolved,
        UserInputRequested,
        UserInputResolved,
        RunPaused,
        RunResumed,
        ToolStarted,
        ToolCompleted,
        RunWarning,
        RunCompleted,
        RunFailed,
        RunCancelled,
    }
    seen = set()
    for result in results:
        check_stream(result)
        for event in result.events:
            seen.add(type(event))
            data = event_to_dict(event)
            assert data["type"] == event.type
            text = json.dumps(data)
            back = event_from_dict(json.loads(text))
            assert type(back) is type(event)
            assert back == event
    assert seen == classes, classes - seen


async def test_cancelling_while_notify_handles_run_completed_does_not_add_a_second_terminal_event():
    class SlowNotify(NotifyingProvider):
        def __init__(self):
            super().__init__(self._notify)
            self.release = asyncio.Event()

        async def _notify(self, event):
            if event.type == "run_completed":
                await self.release.wait()

    from afk.core import Runner, RunnerConfig

    runner = Runner(
        interaction_provider=SlowNotify(), config=RunnerConfig(interaction_mode="interactive")
    )
    handle = runner.run_stream(Agent("a", ScriptedModel(["hi"]), "i"), user_message="x")
    async with asyncio.timeout(2):
        async for event in handle:
            if event.type == "run_completed":
                handle.cancel()
        result = await handle.result()
    terminal = [e.type for e in result.events if e.type in TERMINAL]
    assert len(terminal) == 1, terminal
    assert result.events[-1].type == terminal[0]
